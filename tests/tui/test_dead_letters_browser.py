"""The dead-letter browser, opened from the Alerts tab: many letters at once, the selected one in
full, replay or drop it, replay all to the current stream; refused and failed calls become a
notification and an alert row, never a crash (README: "The console (TUI): a short tour")."""

from __future__ import annotations

from pathlib import Path

import pytest
from driving import make_app, notifications, run_scenario, sandbox_settings, screen_text, settle
from textual.pilot import Pilot
from textual.widgets import DataTable, RichLog, Static

import engine.dead_letters as dead_letters_module
from console.app import FirehoseConsoleApp
from console.widgets.dead_letters_pane import DeadLettersBrowser
from engine.dead_letters import DeadLetter, DeadLetterJournal
from engine.events import InterruptedRunRecovered
from engine.failures import Failure, FailureClass
from engine.journaled import JournaledMessage
from engine.jsonl import JournalWriteFailed, append_json_lines
from engine.records import Action, burst_messages
from engine.settings_file import load_settings

THROTTLED = Failure(FailureClass.THROTTLED, "ServiceUnavailableException", "Slow down.", 503)


def journal_with_letters(settings_path: Path, *, damaged_line: bool = False) -> tuple[Path, list]:
    """Four letters in the connection's sandbox journal: three throttled, the last left by an
    interrupted run with its fate unknown (a possible duplicate)."""
    settings = load_settings(settings_path).settings
    messages = burst_messages(
        settings, Action.ADD, 4, timestamp=1234565788, connection_name="travel"
    )
    letters = [
        DeadLetter.from_failure(m, "travel", THROTTLED, 3, "2026-12-01T10:00:00+00:00")
        for m in messages[:3]
    ]
    letters.append(
        DeadLetter.interrupted(
            JournaledMessage.from_message(messages[3], "travel", "t"),
            "2026-12-01T10:00:01+00:00",
            sent=True,
        )
    )
    journal = DeadLetterJournal.for_connection(settings.delivery, "travel.sandbox").path
    append_json_lines(journal, [letter.document() for letter in letters])
    if damaged_line:
        with journal.open("ab") as file:
            file.write(b'{"message_id": "cut\n')
    return journal, letters


def browser(app: FirehoseConsoleApp) -> DeadLettersBrowser:
    assert isinstance(app.screen, DeadLettersBrowser), type(app.screen).__name__
    return app.screen


def browser_rows(app: FirehoseConsoleApp) -> list[str]:
    table = browser(app).query_one(DataTable)
    return [" | ".join(str(cell) for cell in table.get_row(key)) for key in table.rows]


def detail(app: FirehoseConsoleApp) -> str:
    """The selected letter's detail, whole (the screen shows its top)."""
    return str(browser(app).query_one("#dead-letter-detail", Static).render())


def question(app: FirehoseConsoleApp) -> str:
    """The open dialog's question, unwrapped."""
    return str(app.screen.query_one(".dialog-question", Static).render())


async def confirm(pilot: Pilot[int]) -> None:
    await pilot.click("#confirm")
    await settle(pilot)


def test_the_browser_shows_every_letter_in_full_and_replays_or_drops_them(tmp_path: Path) -> None:
    path = sandbox_settings(tmp_path)
    journal, letters = journal_with_letters(path, damaged_line=True)
    app = make_app(path, use_sandbox=True)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        await pilot.press("f4")
        await settle(pilot)
        assert "Dead letters: 4" in screen_text(app)
        await pilot.press("l")
        await settle(pilot)
        shown = screen_text(app)
        assert len(browser_rows(app)) == 4
        assert "Dead letters: 4 (" in shown
        assert "1 damaged line set aside in" in shown  # journal_warnings()
        # The detail of the first letter: decoded record, stream, reason, attempts.
        assert f"Message: {letters[0].message_id}" in shown
        assert "Reason: 500 - Internal Server Error: HTTP 503" in shown
        assert "Attempts: 3" in detail(app) and "Possible duplicate: no" in detail(app)
        assert '"IsMember": true' in detail(app)  # the decoded record, below (scrolls)

        # The interrupted one: fate unknown, a possible duplicate; dropping it asks first.
        await pilot.press("down", "down", "down")
        await pilot.pause()
        assert "fate unknown" in detail(app) and "Possible duplicate: yes" in detail(app)
        await pilot.press("d")
        await pilot.pause()
        assert "leaves the journal for good" in question(app)
        await confirm(pilot)
        assert len(browser_rows(app)) == 3
        assert "Drop " in notifications(app) and "Dropped 1 dead letter." in notifications(app)

        # Replay the selected one: it reaches the sandbox and leaves the journal.
        await pilot.press("up", "up", "p")
        await settle(pilot)
        assert f"Replay {letters[0].message_id[:8]}: 1 of 1 delivered." in notifications(app)
        assert len(browser_rows(app)) == 2
        assert letters[0].message_id not in {
            x.message_id for x in DeadLetterJournal(journal).entries()
        }

        # All the rest, to the current stream (it names the stream first).
        await pilot.press("t")
        await pilot.pause()
        stream = load_settings(path).settings.connections["travel"].delivery_stream_name
        assert f"to the current stream {stream}" in question(app)
        await confirm(pilot)
        assert browser_rows(app) == []
        assert "2 of 2 delivered." in notifications(app)

        await pilot.press("escape")
        await settle(pilot)
        assert "Dead letters: none" in screen_text(app)

    run_scenario(app, scenario)


def test_a_replay_refused_while_another_holds_the_journal_is_a_notice_and_an_alert(
    tmp_path: Path,
) -> None:
    path = sandbox_settings(tmp_path)
    journal, _ = journal_with_letters(path)
    app = make_app(path, use_sandbox=True)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        await pilot.press("f4", "l")
        await settle(pilot)
        with DeadLetterJournal(journal).exclusive():  # another replay (or the CLI) holds it
            await pilot.press("a")
            await settle(pilot)
        assert "Replay all dead letters failed: another replay or drop is using" in (
            notifications(app)
        )
        assert len(browser_rows(app)) == 4 and browser(app).busy is None
        await pilot.press("escape", "f4")
        await settle(pilot)
        assert "Replay all dead letters failed" in screen_text(app)  # the alert row

    run_scenario(app, scenario)


def test_a_drop_that_cannot_write_the_journal_is_a_notice_and_an_alert(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = sandbox_settings(tmp_path)
    journal, letters = journal_with_letters(path)
    app = make_app(path, use_sandbox=True)

    def disk_full(target: Path, change: object) -> None:
        raise JournalWriteFailed(target, 0, "No space left on device")

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        await pilot.press("f4", "l")
        await settle(pilot)
        monkeypatch.setattr(dead_letters_module, "update_json_lines", disk_full)
        await pilot.press("d")
        await pilot.pause()
        await confirm(pilot)
        assert "could not write the journal" in notifications(app)
        assert f"Drop {letters[0].message_id[:8]} failed" in notifications(app)
        assert len(browser_rows(app)) == 4

    run_scenario(app, scenario)


def test_the_recovery_notice_tells_unknown_fate_from_never_sent(tmp_path: Path) -> None:
    """57 letters an interrupted run left: 4 sent but unanswered, 53 never sent (the CLI's
    figures); the console no longer calls all 57 possible duplicates."""
    path = sandbox_settings(tmp_path)
    app = make_app(path, use_sandbox=True)
    settings = load_settings(path).settings
    messages = burst_messages(settings, Action.ADD, 57, timestamp=1, connection_name="travel")
    letters = tuple(
        DeadLetter.interrupted(
            JournaledMessage.from_message(message, "travel", "t"), "t", sent=number < 4
        )
        for number, message in enumerate(messages)
    )

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        app.event_sink(InterruptedRunRecovered(letters, "journal.jsonl"))
        await settle(pilot)
        expected = (
            "57 messages of an interrupted run moved to the dead letters: 4 have unknown fate "
            "(possible duplicates: they may have arrived), 53 were never sent"
        )
        assert expected in notifications(app)
        await pilot.press("f4")
        await settle(pilot)
        log = "".join(strip.text for strip in app.query_one(RichLog).lines)
        assert expected in log

    run_scenario(app, scenario)
