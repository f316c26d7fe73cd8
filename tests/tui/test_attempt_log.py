"""The attempt log wraps at its own width, even when its events arrive while the Alerts tab is
hidden (they used to wrap at 20 columns: README "The console (TUI): a short tour")."""

from __future__ import annotations

from pathlib import Path

import pytest
import sample_events
from driving import make_app, run_scenario, settle
from textual.pilot import Pilot
from textual.widgets import RichLog

from console.app import FirehoseConsoleApp


def widest_line(app: FirehoseConsoleApp) -> int:
    return max(strip.cell_length for strip in app.query_one("#attempt-log", RichLog).lines)


@pytest.mark.parametrize("visited_first", [False, True], ids=["never-shown", "shown-then-hidden"])
def test_events_logged_while_the_tab_is_hidden_wrap_at_the_log_width(
    tmp_path: Path, visited_first: bool
) -> None:
    app = make_app(tmp_path / "settings.toml", auto_verify=False)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        if visited_first:
            await pilot.press("f4")
            await settle(pilot)
        await pilot.press("f3")
        await settle(pilot)
        for event in sample_events.burst_events():
            app.event_sink(event)
        await settle(pilot)
        await pilot.press("f4")
        await settle(pilot)
        log = app.query_one("#attempt-log", RichLog)
        width = log.scrollable_content_region.width
        assert width > 60
        # The longest event line is wider than 60 columns: it fills the log's width.
        assert widest_line(app) > 60 and widest_line(app) <= width

    run_scenario(app, scenario)
