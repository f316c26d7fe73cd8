"""The console's main screen: Textual's, less a whole-screen repaint at every focus change.

Textual repaints the entire screen whenever the focus moves, on top of repainting the widget
that lost it and the one that gained it (each refreshes itself, and its focus styles). A tab
switch moves the focus, so each switch painted the whole screen twice, once for the new tab's
layout and once more for the focus; every Tab between two fields painted it once (README:
"Performance").
"""

from __future__ import annotations

from textual.reactive import Reactive
from textual.screen import Screen
from textual.widget import Widget


class MainScreen(Screen[None]):
    """The screen under the tabs; dialogs and the dead-letter browser are screens of their own."""

    focused: Reactive[Widget | None] = Reactive(None, repaint=False)
