"""The running send's progress line on the Send tab: redrawn four times a second without laying
the screen out again while it keeps its size, and laid out again when it does not
(README: "The console (TUI): a short tour")."""

from __future__ import annotations

import asyncio

from driving import screen_text
from textual.app import App, ComposeResult
from textual.widgets import Static

from console.widgets.send_pane import SendPane


class PaneOnly(App[None]):
    def compose(self) -> ComposeResult:
        yield SendPane(id="send")


def test_the_progress_line_shows_each_update_whether_or_not_it_keeps_its_size() -> None:
    asyncio.run(_each_update_shown())


async def _each_update_shown() -> None:
    app = PaneOnly()
    async with app.run_test(size=(60, 30)) as pilot:
        pane = app.query_one(SendPane)
        progress = app.query_one("#send-progress", Static)
        pane.show_progress("Burst of 9 add: 1 / 9\ndelivered 1")
        await pilot.pause()
        assert "Burst of 9 add: 1 / 9" in screen_text(app) and progress.size.height == 2
        pane.show_progress("Burst of 9 add: 2 / 9\ndelivered 2")  # same size: a repaint
        await pilot.pause()
        text = screen_text(app)
        assert "Burst of 9 add: 2 / 9" in text and "delivered 2" in text
        long = "Burst of 9 add: 3 / 9 · " + "x" * 70  # wider than the pane: it wraps
        pane.show_progress(f"{long}\ndelivered 3")
        await pilot.pause()
        assert progress.size.height == 4 and "delivered 3" in screen_text(app)
        pane.show_progress("Burst of 9 add: 4 / 9\ndelivered 4")  # shorter again
        await pilot.pause()
        assert progress.size.height == 2 and "delivered 4" in screen_text(app)
        pane.show_progress(None)
        await pilot.pause()
        assert not progress.display
