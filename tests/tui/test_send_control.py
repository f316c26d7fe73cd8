"""A running send an operator can trust: its progress, a key that stops it, one send at a time,
a confirmation before a send that changes a real audience, and ctrl+q during a send.

README: "The console (TUI): a short tour".
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from driving import (
    confirm_send,
    make_app,
    notifications,
    received,
    run_scenario,
    sandbox_settings,
    screen_text,
    settle,
    write_settings,
)
from textual.pilot import Pilot
from textual.widgets import Input

from console.app import FirehoseConsoleApp
from console.commands import CONSOLE_ACTIONS
from console.messages import SendFinished, SendRequested
from console.widgets.dialogs import ConfirmScreen
from console.widgets.send_confirm import ConfirmSendScreen
from engine.records import MAX_BURST_COUNT
from engine.session import ConsoleSession
from engine.settings_file import load_settings
from engine.state_dir import INTERRUPTED_UNSENT


def footer_keys(app: FirehoseConsoleApp) -> str:
    """The footer row (the screen's last line)."""
    return screen_text(app).splitlines()[-1]


async def start_slow_burst(app: FirehoseConsoleApp, pilot: Pilot[int], count: int) -> None:
    """A burst of ``count`` at 20 a second on the Send tab, confirmed, and under way."""
    await pilot.press("f3")
    await pilot.pause()
    app.query_one("#burst-count", Input).value = str(count)
    app.query_one("#burst-rate", Input).value = "20"
    await pilot.press("b")
    await confirm_send(pilot)
    running = app.running_send
    for _ in range(100):  # on a busy machine the worker may take a moment to start
        if running is not None or received(app, SendFinished):
            break
        await pilot.pause(0.05)
        running = app.running_send
    assert running is not None, "the burst ended before it could be watched"
    for _ in range(100):  # until a few records are through
        if running.settled_count >= 3:
            return
        await pilot.pause(0.1)
    raise AssertionError("the burst never got going")


async def question_shown(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
    """Wait for the quit question (on a busy machine it may take a moment to show)."""
    for _ in range(50):
        if isinstance(app.screen, ConfirmScreen):
            return
        await pilot.pause(0.05)
    raise AssertionError("ctrl+q during a send asked nothing")


def letters_left(path: Path) -> list[str]:
    """The failure class of every dead letter the sandbox run left."""
    session = ConsoleSession(load_settings(path), use_sandbox=True)
    return [letter.failure_class for letter in session.dead_letters()]


def test_a_running_burst_shows_progress_refuses_a_second_and_stops_on_escape(
    tmp_path: Path,
) -> None:
    path = sandbox_settings(tmp_path)
    app = make_app(path, use_sandbox=True, auto_verify=False)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        await start_slow_burst(app, pilot, 400)
        await pilot.pause(0.3)  # the progress line's timer
        text = screen_text(app)
        assert "Burst of 400 add: " in text and " / 400 · " in text and "/s · ETA " in text
        assert "delivered " in text and " · retrying 0 · failed 0\n" in text
        assert "esc Stop" in footer_keys(app)

        # A second burst, by key, button or another send key, is refused and says why.
        await pilot.press("b")
        await pilot.press("a")
        await pilot.click("#send-burst")
        await pilot.pause()
        assert notifications(app).count("Burst of 400 add is still running") == 3
        assert not isinstance(app.screen, ConfirmSendScreen)

        await pilot.press("escape")
        await settle(pilot)
        [finished] = received(app, SendFinished)
        report = finished.report
        assert report.failed == 0
        assert 0 < report.not_sent < 400
        assert report.delivered + report.not_sent == 400
        assert f"never sent {report.not_sent}" in screen_text(app)
        assert "esc Stop" not in footer_keys(app)
        assert "Stopped: " in notifications(app)
        # What was built and not sent is kept as never sent, nothing as a failure.
        assert set(letters_left(path)) <= {INTERRUPTED_UNSENT}
        # Another send may start now.
        await pilot.press("a")
        await settle(pilot)
        assert len(received(app, SendFinished)) == 2

    run_scenario(app, scenario)


def test_ctrl_q_during_a_send_asks_and_ctrl_q_again_stops_it_and_quits(tmp_path: Path) -> None:
    path = sandbox_settings(tmp_path)
    app = make_app(path, use_sandbox=True, auto_verify=False)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        await start_slow_burst(app, pilot, 400)
        await pilot.press("ctrl+q")
        await question_shown(app, pilot)
        assert "Burst of 400 add is running" in screen_text(app)
        assert "ctrl+q again" in screen_text(app)  # confirms
        await pilot.press("ctrl+q")
        for _ in range(100):
            if not app.is_running:
                break
            await pilot.pause(0.05)

    run_scenario(app, scenario)
    assert app.return_code == 0
    # The send's worker ended before the session (and its sandbox) closed: nothing became a
    # connection failure; what was not sent is on record as never sent.
    letters = letters_left(path)
    assert letters and set(letters) == {INTERRUPTED_UNSENT}


def test_ctrl_q_during_a_send_then_cancel_keeps_sending(tmp_path: Path) -> None:
    app = make_app(sandbox_settings(tmp_path), use_sandbox=True, auto_verify=False)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        await start_slow_burst(app, pilot, 100)  # 5 s at 20/s: still running when asked
        await pilot.press("ctrl+q")
        await question_shown(app, pilot)  # else escape would stop the send
        await pilot.press("escape")  # the dialog's cancel
        await settle(pilot)
        [finished] = received(app, SendFinished)
        assert finished.report.delivered == 100
        assert app.is_running

    run_scenario(app, scenario)


def test_a_delete_on_the_sandbox_asks_once_when_told_not_to_ask_again(tmp_path: Path) -> None:
    app = make_app(sandbox_settings(tmp_path), use_sandbox=True)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        await pilot.press("f3", "d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmSendScreen)
        text = screen_text(app)
        stream = app.session.stream_name
        assert "Send delete?" in text
        for line in (
            "To:      the embedded sandbox",
            "Account: 123456789012",
            "Region:  us-east-1",
            f"Stream:  {stream}",
        ):
            assert line in text
        await pilot.press("escape")
        await settle(pilot)
        assert received(app, SendFinished) == []
        assert "Send delete: Nothing sent." in notifications(app)

        await pilot.press("d")
        await confirm_send(pilot, dont_ask_again=True)
        await settle(pilot)
        await pilot.press("d")
        await settle(pilot)
        assert [m.report.delivered for m in received(app, SendFinished)] == [1, 1]
        # add on the sandbox changes no real audience: no question.
        await pilot.press("a")
        await settle(pilot)
        assert len(received(app, SendFinished)) == 3

    run_scenario(app, scenario)


def test_every_send_to_aws_names_the_account_region_and_stream_first(tmp_path: Path) -> None:
    path = write_settings(
        tmp_path / "settings.toml",
        {
            "connections": {"travel": {"delivery_stream_name": "RealAudiences"}},
            "delivery": {"state_dir": str(tmp_path / "state")},
        },
    )
    app = make_app(path, auto_verify=False)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        await pilot.press("f3", "a")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmSendScreen)
        text = screen_text(app)
        for line in (
            "To:      AWS",
            "Account: unknown account (ctrl+r verifies)",
            "Region:  us-east-1",
            "Stream:  RealAudiences",
        ):
            assert line in text
        await pilot.click("#cancel")
        await pilot.pause()
        assert received(app, SendFinished) == []

    run_scenario(app, scenario)


def test_the_burst_count_has_the_clis_limit(tmp_path: Path) -> None:
    app = make_app(sandbox_settings(tmp_path), use_sandbox=True, auto_verify=False)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        await pilot.press("f3")
        await pilot.pause()
        app.query_one("#burst-count", Input).value = str(MAX_BURST_COUNT + 1)
        await pilot.press("b")
        await pilot.pause()
        assert f"the burst count must be at most {MAX_BURST_COUNT:,}" in notifications(app)
        assert received(app, SendRequested) == []

    run_scenario(app, scenario)


def test_a_key_means_the_same_on_every_tab() -> None:
    meanings: dict[str, set[str]] = defaultdict(set)
    for action in CONSOLE_ACTIONS:
        meanings[action.key].add(action.footer)
    assert {key: labels for key, labels in meanings.items() if len(labels) > 1} == {}


def test_a_send_that_fails_outright_does_not_block_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(sandbox_settings(tmp_path), use_sandbox=True, auto_verify=False)
    real_send = ConsoleSession.send
    calls: list[int] = []

    def failing_once(session: ConsoleSession, *args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("the network is down")
        return real_send(session, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ConsoleSession, "send", failing_once)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        await pilot.press("f3", "a")
        await settle(pilot)
        assert "Send failed: ConnectionError: the network is down" in notifications(app)
        assert "esc Stop" not in footer_keys(app)
        await pilot.press("a")
        await settle(pilot)
        assert "still running" not in notifications(app)
        [finished] = received(app, SendFinished)
        assert finished.report.delivered == 1

    run_scenario(app, scenario)


def test_the_delivered_tab_opened_during_a_send_refreshes_when_it_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(sandbox_settings(tmp_path), use_sandbox=True, auto_verify=False)
    reads: list[str] = []

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        await start_slow_burst(app, pilot, 100)  # 5 s at 20/s
        read = app.read_delivered

        def counted(session: ConsoleSession) -> None:
            reads.append("read")
            read(session)

        monkeypatch.setattr(app, "read_delivered", counted)
        await pilot.press("f6")
        await pilot.pause()
        assert "Refreshed when Burst of 100 add ends; u refreshes it now." in notifications(app)
        assert reads == []  # not while the burst runs
        await pilot.press("u")
        assert reads == ["read"]  # unless asked
        await pilot.press("f3", "escape")
        await settle(pilot)
        assert received(app, SendFinished)
        assert reads == ["read", "read"]  # and once the burst has ended

    run_scenario(app, scenario)
