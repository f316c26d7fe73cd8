"""Whether a pane is on screen: what the panes ask before drawing an update."""

from __future__ import annotations

from textual.widget import Widget


def on_the_shown_tab(pane: Widget) -> bool:
    """``pane`` is mounted, not hidden, and in the tab shown (a hidden tab hides the pane's
    parent, not the pane). A pane on another tab keeps what it is told and draws it when shown:
    an update drawn there would still lay the whole screen out (README: "Performance")."""
    parent = pane.parent
    return pane.is_mounted and pane.display and isinstance(parent, Widget) and parent.display
