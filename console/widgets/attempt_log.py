"""The Alerts tab's attempt log (README: "The console (TUI): a short tour").

A module of its own: Textual's RichLog loads rich.pretty (and attrs), some 15 ms of the
console's launch, so the Alerts tab imports it when it is built (README: "Performance").
"""

from __future__ import annotations

from collections import deque
from typing import Self

from rich.text import Text
from textual import events
from textual.widgets import RichLog


class AttemptLog(RichLog):
    """The attempt log: lines written while it is hidden (another tab shown, its width 0)
    wait, and are wrapped at the log's own width once it is shown again — never at the
    narrow minimum a hidden log would use."""

    def __init__(self, *, max_lines: int, id: str | None = None) -> None:
        super().__init__(id=id, max_lines=max_lines, wrap=True, min_width=20)
        self._waiting: deque[Text] = deque(maxlen=max_lines)

    def write_wrapped(self, text: Text) -> None:
        """Write ``text`` wrapped at the log's width (the app console's width can differ,
        e.g. headless), or keep it until the log has a width."""
        width = self.scrollable_content_region.width
        if width and not self._waiting:
            self.write(text, width=width)
        else:
            self._waiting.append(text)

    def on_resize(self, event: events.Resize) -> None:
        super().on_resize(event)
        width = self.scrollable_content_region.width
        if width and self._waiting:
            waiting, self._waiting = list(self._waiting), deque(maxlen=self._waiting.maxlen)
            self.write(Text("\n").join(waiting), width=width)

    def clear(self) -> Self:
        self._waiting.clear()
        return super().clear()
