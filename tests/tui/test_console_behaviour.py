"""Keys, the command palette, and failures: every action has a key in the footer and a
"Group: Title" palette entry; a failing call becomes an alert and a notification."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from driving import make_app, notifications, run_scenario, screen_text, settle, status
from textual.binding import Binding
from textual.pilot import Pilot
from textual.widgets import DataTable

from console.app import FirehoseConsoleApp
from console.commands import CONSOLE_ACTIONS, ConsoleCommands
from console.widgets.preview_pane import PreviewPane
from engine.event_digest import EventDigest
from engine.events import RecordDelivered
from engine.records import Action, MessageKind
from engine.session import ConsoleSession


def test_every_action_has_one_palette_entry_and_its_key_in_the_help() -> None:
    texts = [action.palette_text for action in CONSOLE_ACTIONS]
    assert len(set(texts)) == len(texts)
    assert all(text.count(": ") == 1 for text in texts)
    for name in ("Send: Send add", "Verify: Verify connection", "Settings: Save settings"):
        assert name in texts
    # Keys are fixed (README: the console tour): the bindings are exactly the table's.
    table_keys = {(action.key, action.action) for action in CONSOLE_ACTIONS}
    app_keys = {
        (binding.key, binding.action)
        for binding in FirehoseConsoleApp.BINDINGS
        if isinstance(binding, Binding) and binding.action != "verify_connection"
    }
    assert app_keys == table_keys


def test_the_footer_shows_each_tab_keys_and_the_palette_runs_actions(tmp_path: Path) -> None:
    app = make_app(tmp_path / "settings.toml", auto_verify=False)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        for number, tab in enumerate(("settings", "preview", "send", "alerts", "verify"), 1):
            await pilot.press(f"f{number}")
            footer = screen_text(app).splitlines()[-1]
            for action in CONSOLE_ACTIONS:
                if action.action == "cancel_send":  # shown only while a send runs
                    continue
                if action.show and action.tab in (None, tab):
                    assert f"{app.key_for(action)} {action.footer}" in footer, (tab, footer)

        provider = ConsoleCommands(app.screen)
        hits = [hit async for hit in provider.discover()]
        # The console's own actions first, then Textual's (theme, screenshot…).
        own = len(CONSOLE_ACTIONS)
        assert [hit.text for hit in hits][:own] == [a.palette_text for a in CONSOLE_ACTIONS]
        assert "Quit" not in [hit.text for hit in hits][own:]
        assert [hit.help for hit in hits][:1] == [
            "Validate and save the settings file (atomically) — key ^s"
        ]

        await pilot.press("f1", "ctrl+p")
        await pilot.press(*"preview remove")
        await pilot.pause(0.3)  # the palette searches in the background
        await pilot.press("enter")
        await settle(pilot)
        assert app.query_one(PreviewPane).action is Action.REMOVE
        assert "Record 1 of 1: remove (IsMember false)" in screen_text(app)

    run_scenario(app, scenario)


def test_a_failing_call_becomes_an_alert_and_a_notification(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_verify(session: ConsoleSession) -> None:
        raise ConnectionError("the network is down")

    monkeypatch.setattr(ConsoleSession, "verify", broken_verify)
    monkeypatch.setattr(ConsoleSession, "gateway", lambda session: None)
    app = make_app(tmp_path / "settings.toml")

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        assert "Verify connection failed: ConnectionError: the network is down" in (
            notifications(app)
        )
        assert status(app).endswith("· failing")
        await pilot.press("f4")
        await pilot.pause()
        table = app.query_one("#alerts-table", DataTable)
        [row] = [" | ".join(map(str, table.get_row(key))) for key in table.rows]
        assert row.startswith("Verify connection failed | error | 1")
        assert '"message": "the network is down"' in screen_text(app)
        await pilot.press("ctrl+r")  # still running, and counting
        await settle(pilot)
        [row] = [" | ".join(map(str, table.get_row(key))) for key in table.rows]
        assert row.startswith("Verify connection failed | error | 2")

    run_scenario(app, scenario)


def sample_delivered(number: int) -> RecordDelivered:
    return RecordDelivered(f"m{number}", MessageKind.ADD, f"r{number}", 1, 0.01, datetime.now(UTC))


def test_a_dead_event_pump_is_shown_and_restarted(tmp_path: Path) -> None:
    app = make_app(tmp_path / "settings.toml", auto_verify=False)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        pump = app.event_pump
        hand_to_screen = pump.consumer
        failures = iter([RuntimeError("the screen was busy")])

        def fails_once(digest: EventDigest) -> None:
            failure = next(failures, None)
            if failure is not None:
                raise failure
            hand_to_screen(digest)

        pump.consumer = fails_once
        app.event_sink(sample_delivered(1))
        await settle(pilot)
        assert (
            "Screen updates from the engine failed: RuntimeError: the screen was busy. "
            "Updates restarted." in notifications(app)
        )
        app.event_sink(sample_delivered(2))  # the restarted pump brings this one
        await settle(pilot)
        assert pump.error is None
        await pilot.press("f3")
        assert "So far: 2 delivered" in screen_text(app)  # the tally counts the lost digest too

    run_scenario(app, scenario)


def test_results_told_while_the_send_tab_is_hidden_show_when_it_is_shown(tmp_path: Path) -> None:
    app = make_app(tmp_path / "settings.toml", auto_verify=False)

    def results(app: FirehoseConsoleApp) -> list[str]:
        table = app.query_one("#send-results", DataTable)
        return [str(table.get_row(key)[-1]) for key in table.rows]

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        await pilot.press("f3")  # built and shown: results go straight to the table
        app.event_sink(sample_delivered(1))
        await settle(pilot)
        assert results(app) == ["r1"]
        await pilot.press("f4")  # hidden: kept, drawn when the tab shows again
        for number in range(2, 6):
            app.event_sink(sample_delivered(number))
        await settle(pilot)
        await pilot.press("f3")
        await pilot.pause()
        assert results(app) == ["r1", "r2", "r3", "r4", "r5"]
        assert "So far: 5 delivered" in screen_text(app)

    run_scenario(app, scenario)
