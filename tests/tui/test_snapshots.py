"""How each tab looks, at 80×24 and at 120×40 (pytest-textual-snapshot).

Live data (send results, alerts, the attempt log, dead letters, delivered records) comes from
fixed events posted as the engine would post them, and the preview's clock is frozen, so every
run draws the same screen. Update after checking the new look: pytest --snapshot-update.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import sample_events
from driving import settle, steady_cursor
from textual.pilot import Pilot

from console.app import FirehoseConsoleApp
from console.messages import DeadLettersLoaded, DeliveredRecordsLoaded
from console.session_app import DIGEST_INTERVAL_SECONDS
from console.widgets.dead_letters_pane import DeadLettersBrowser
from console.widgets.send_pane import SendPane
from engine.jsonl import Quarantined
from engine.settings_file import load_settings

SIZES = {"80x24": (80, 24), "120x40": (120, 40)}
# A path that never exists: the console runs on the sandbox and says where ctrl+s would write.
NO_SETTINGS_FILE = Path("snapshot-run/settings.toml")
QUARANTINE = Path("~/.local/state/firehose-console/dead-letters/travel.sandbox.jsonl.quarantine")


async def _show(pilot: Pilot[int], key: str) -> None:
    await settle(pilot)
    await pilot.press(key)
    await settle(pilot)


async def settings_tab(pilot: Pilot[int]) -> None:
    await settle(pilot)


async def preview_tab(pilot: Pilot[int]) -> None:
    await _show(pilot, "f2")


async def _report(pilot: Pilot[int]) -> None:
    """The burst's events go where a real burst's go: into the app's event sink."""
    app = pilot.app
    assert isinstance(app, FirehoseConsoleApp)
    for event in sample_events.burst_events():
        app.event_sink(event)
    await pilot.pause(3 * DIGEST_INTERVAL_SECONDS)  # the pump hands over a digest
    await settle(pilot)


async def send_tab(pilot: Pilot[int]) -> None:
    await _show(pilot, "f3")
    await _report(pilot)
    # Shown directly: a finished send would also refresh the Delivered tab from the sandbox.
    pilot.app.query_one(SendPane).show_report(sample_events.send_report(), "Burst of 4 add")
    await settle(pilot)


async def alerts_tab(pilot: Pilot[int]) -> None:
    await _show(pilot, "f4")
    await _report(pilot)
    letters = sample_events.dead_letters()
    pilot.app.post_message(DeadLettersLoaded(letters, sample_events.JOURNAL))
    await settle(pilot)


async def verify_tab(pilot: Pilot[int]) -> None:
    await _show(pilot, "f5")  # the real checklist, from the embedded sandbox


async def delivered_tab(pilot: Pilot[int]) -> None:
    await _show(pilot, "f6")
    pilot.app.post_message(DeliveredRecordsLoaded(sample_events.delivered_records()))
    await settle(pilot)


TABS: dict[str, Callable[[Pilot[int]], Awaitable[None]]] = {
    "settings": settings_tab,
    "preview": preview_tab,
    "send": send_tab,
    "alerts": alerts_tab,
    "verify": verify_tab,
    "delivered": delivered_tab,
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("tab", TABS)
def test_tab_looks_as_approved(snap_compare, tab: str, size: str) -> None:
    app = FirehoseConsoleApp(
        load_settings(NO_SETTINGS_FILE),
        clock=lambda: 1234565788,
        auto_verify=tab == "verify",
    )
    app.animation_level = "none"

    async def run_before(pilot: Pilot[int]) -> None:
        await TABS[tab](pilot)
        pilot.app.clear_notifications()
        steady_cursor(pilot.app)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZES[size], run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_dead_letter_browser_looks_as_approved(snap_compare, size: str) -> None:
    """The browser opened from the Alerts tab, on the interrupted add (fate unknown)."""
    app = FirehoseConsoleApp(
        load_settings(NO_SETTINGS_FILE), clock=lambda: 1234565788, auto_verify=False
    )
    app.animation_level = "none"

    async def run_before(pilot: Pilot[int]) -> None:
        await _show(pilot, "f4")
        await pilot.press("l")
        await settle(pilot)  # its own read of the (empty) journal first
        browser = pilot.app.screen
        assert isinstance(browser, DeadLettersBrowser)
        browser.post_message(
            DeadLettersBrowser.LettersRead(
                sample_events.browsed_dead_letters(),
                [Quarantined(sample_events.JOURNAL, QUARANTINE, 2)],
                sample_events.JOURNAL,
                sample_events.STREAM,
            )
        )
        await settle(pilot)
        await pilot.press("down", "down", "down", "down")
        pilot.app.clear_notifications()
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZES[size], run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_keys_panel_looks_as_approved(snap_compare, size: str) -> None:
    """? on the Send tab: its keys, then those that work everywhere."""
    app = FirehoseConsoleApp(
        load_settings(NO_SETTINGS_FILE), clock=lambda: 1234565788, auto_verify=False
    )
    app.animation_level = "none"

    async def run_before(pilot: Pilot[int]) -> None:
        await _show(pilot, "f3")
        await pilot.press("question_mark")
        await settle(pilot)
        pilot.app.clear_notifications()
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZES[size], run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_quit_dialog_with_unsaved_edits_looks_as_approved(snap_compare, size: str) -> None:
    """ctrl+q with an unsaved edit: Save and quit, Quit without saving, Cancel."""
    app = FirehoseConsoleApp(
        load_settings(NO_SETTINGS_FILE), clock=lambda: 1234565788, auto_verify=False
    )
    app.animation_level = "none"

    async def run_before(pilot: Pilot[int]) -> None:
        await settle(pilot)
        pilot.app.clear_notifications()
        await pilot.press("end", *"X")  # the stream name, focused first
        await settle(pilot)
        await pilot.press("ctrl+q")
        await settle(pilot)
        pilot.app.clear_notifications()
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZES[size], run_before=run_before)
