"""Sending through the embedded sandbox: results as they happen, what reached S3, live alerts
when chaos is on, dead letters and their replay, and the verification checklist."""

from __future__ import annotations

from pathlib import Path

from driving import (
    confirm_send,
    make_app,
    notifications,
    received,
    run_scenario,
    sandbox_settings,
    screen_text,
    settle,
    type_into,
)
from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, RichLog, TextArea

from console.app import FirehoseConsoleApp
from console.messages import BurstRequest, EventsDigested, SendFinished, SendRequested
from engine.records import Action


def attempt_log(app: FirehoseConsoleApp) -> str:
    """The attempt log's lines, unwrapped."""
    return "".join(strip.text for strip in app.query_one(RichLog).lines)


def rows(app: FirehoseConsoleApp, table_id: str) -> list[str]:
    table = app.query_one(table_id, DataTable)
    return [" | ".join(str(cell) for cell in table.get_row(key)) for key in table.rows]


def test_send_add_shows_a_delivered_result_and_a_delivered_record(tmp_path: Path) -> None:
    app = make_app(sandbox_settings(tmp_path), use_sandbox=True)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        await pilot.press("f3", "a")
        await settle(pilot)
        [result] = rows(app, "#send-results")
        assert "add" in result and "delivered" in result
        assert "Send add: requested 1 · delivered 1 · failed 0" in screen_text(app)
        await pilot.press("f6")
        await settle(pilot)
        [record] = rows(app, "#delivered-table")
        assert '"MembershipChangedTimestamp":"1234565788"' in record
        assert '"IsMember":true' in record
        assert "1 record(s) in the sandbox's S3 bucket" in screen_text(app)

    run_scenario(app, scenario)


def test_a_sends_result_reaches_the_screen_before_its_summary(tmp_path: Path) -> None:
    app = make_app(sandbox_settings(tmp_path), use_sandbox=True, auto_verify=False)

    def delivered_in(message: Message) -> int:
        if isinstance(message, EventsDigested):
            return message.digest.counts.get("RecordDelivered", 0)
        return 0

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        for _ in range(3):
            await pilot.press("f3", "a")
            await settle(pilot)
        order = [
            "summary" if isinstance(m, SendFinished) else "result"
            for m in received(app, Message)
            if isinstance(m, SendFinished) or delivered_in(m)
        ]
        assert order == ["result", "summary"] * 3

    run_scenario(app, scenario)


def test_keys_and_buttons_start_a_send_through_one_message(tmp_path: Path) -> None:
    app = make_app(sandbox_settings(tmp_path), use_sandbox=True, auto_verify=False)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        await pilot.press("f3", "r")
        await settle(pilot)
        await pilot.click("#send-once")
        await settle(pilot)
        app.query_one("#burst-count", Input).value = "3"
        await pilot.press("b")
        await confirm_send(pilot, dont_ask_again=True)  # a burst asks first, once here
        await settle(pilot)
        await pilot.click("#send-burst")
        await settle(pilot)
        app.query_one("#burst-count", Input).value = "0"
        await pilot.press("b")
        await pilot.click("#send-burst")
        await settle(pilot)
        requests = [(m.action, m.burst) for m in received(app, SendRequested)]
        burst = BurstRequest(3, None, False)
        assert requests == [
            (Action.REMOVE, None),
            (Action.REMOVE, None),
            (Action.REMOVE, burst),
            (Action.REMOVE, burst),
        ]
        reports = [(m.what, m.report.delivered) for m in received(app, SendFinished)]
        assert reports == [
            ("Send remove", 1),
            ("Send remove", 1),
            ("Burst of 3 remove", 3),
            ("Burst of 3 remove", 3),
        ]
        refused = "the burst count must be 1 or more, and the rate above 0"
        assert notifications(app).count(refused) == 2

    run_scenario(app, scenario)


def test_chaos_raises_live_alerts_and_a_dead_letter_that_replay_delivers(tmp_path: Path) -> None:
    path = sandbox_settings(
        tmp_path,
        sandbox={"failure_rate": 1.0, "failures": ["throttling"]},
        delivery={"max_attempts": 2, "backoff_base_seconds": 0.01},
    )
    app = make_app(path, use_sandbox=True)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        await pilot.press("f3", "a")
        await settle(pilot)
        assert "gave up" in rows(app, "#send-results")[0]
        await pilot.press("f4")
        await pilot.pause()
        alerts = "\n".join(rows(app, "#alerts-table"))
        assert "500 - Internal Server Error | fatal | 2" in alerts
        assert "Retry Limit Exceeded | fatal | 1" in alerts
        log = attempt_log(app)
        assert "attempt 1: HTTP 503 ServiceUnavailableException: Slow down. — retry in" in log
        assert "attempt 2: HTTP 503 ServiceUnavailableException: Slow down. — no retry" in log
        assert "gave up after 2 attempt(s)" in log
        assert "kept in the dead-letter journal" in log
        assert "Dead letters: 1" in screen_text(app)
        assert "not delivered: see the Alerts tab" in notifications(app)

        # Calm the chaos, save (the session is rebuilt with the new settings), replay.
        await pilot.press("f1")
        await type_into(pilot, app, "sandbox.failure_rate", "0")
        await pilot.press("ctrl+s")
        await settle(pilot)
        await pilot.press("f4", "p")
        await settle(pilot)
        assert "Dead letters: none" in screen_text(app)
        assert "Replay of dead letters: 1 of 1 delivered." in notifications(app)
        await pilot.press("f3")
        assert "Replay of dead letters: requested 1 · delivered 1" in screen_text(app)
        await pilot.press("f6")
        await settle(pilot)
        assert len(rows(app, "#delivered-table")) == 1

    run_scenario(app, scenario)


def test_verify_shows_the_checklist_and_copies_the_policy(tmp_path: Path) -> None:
    app = make_app(sandbox_settings(tmp_path), use_sandbox=True)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        await pilot.press("f5")
        await pilot.pause()
        text = screen_text(app)
        assert "· verified" in text  # it ran once at start, in the background
        assert "✓ pass  credentials resolve: account 123456789012" in text
        assert "✓ pass  stream found" in text
        assert "! warn  encryption: server-side encryption disabled" in text
        policy = app.query_one("#policy", TextArea).text
        assert '"firehose:PutRecord"' in policy and ":123456789012:deliverystream/tui-" in policy
        await pilot.press("c")
        assert app.clipboard == policy
        # Says what was done: the terminal may ignore OSC 52, and then w writes a file.
        assert "sent to the terminal's clipboard (OSC 52). If your terminal ignores" in (
            notifications(app)
        )
        await pilot.press("w")
        await settle(pilot)
        written = tmp_path / "iam-policy-travel.json"
        assert written.read_text() == policy + "\n"
        assert f"IAM policy written to {written}" in notifications(app)

        # At 80 columns the ARN stays on one line (cut, scrolls sideways), never wrapped.
        area = app.query_one("#policy", TextArea)
        area.scroll_visible(animate=False)
        await pilot.pause()
        lines = screen_text(app).splitlines()
        [arn_row] = [n for n, line in enumerate(lines) if "arn:aws:firehose:us-east-1" in line]
        assert lines[arn_row + 1].strip("▊▎ ").startswith("]")
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert "· verified" in screen_text(app)

    run_scenario(app, scenario)


def test_the_attempt_log_written_while_hidden_wraps_at_its_own_width(tmp_path: Path) -> None:
    app = make_app(sandbox_settings(tmp_path), use_sandbox=True, auto_verify=False)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        await pilot.press("f4", "f3", "a")  # the log has been laid out, and is hidden now
        await settle(pilot)
        await pilot.press("f4")
        await settle(pilot)
        lines = [strip.text for strip in app.query_one(RichLog).lines]
        # At the log's 20-column minimum this phrase would be cut over two lines.
        assert any("delivered after 1 attempt(s)" in line for line in lines), lines

    run_scenario(app, scenario)
