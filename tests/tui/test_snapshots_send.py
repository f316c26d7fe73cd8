"""How a running send, the question before a send, and the sandbox-or-AWS choice look, at 80×24
and at 120×40 (pytest-textual-snapshot). Update after checking the new look:
pytest --snapshot-update.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from driving import settle
from textual.pilot import Pilot

from console.app import FirehoseConsoleApp
from console.send_progress import RunningSend
from console.widgets.dialogs import ConfirmScreen
from console.widgets.send_confirm import ConfirmSendScreen
from console.widgets.send_pane import SendPane
from console.widgets.target_choice import ChooseTargetScreen
from engine.event_digest import DeliveryTally
from engine.settings_file import load_settings

SIZES = {"80x24": (80, 24), "120x40": (120, 40)}
# A path that never exists: the console runs on the sandbox and says where ctrl+s would write.
NO_SETTINGS_FILE = Path("snapshot-run/settings.toml")


async def running_burst(pilot: Pilot[int]) -> None:
    """The Send tab during a burst: its progress as a fixed clock and tally leave it."""
    await settle(pilot)
    await pilot.press("f3")
    await settle(pilot)
    app = pilot.app
    assert isinstance(app, FirehoseConsoleApp)
    started_then_now = iter([100.0] + [160.0] * 1000)
    running = RunningSend("Burst of 100,000 add", 100_000, clock=started_then_now.__next__)
    running.observe(DeliveryTally(delivered=29_980, retrying=12, failed=8))
    app.running_send = running  # what starting a send sets: the footer changes with it
    app.refresh_bindings()
    app.query_one(SendPane).show_progress(running.describe())
    await settle(pilot)  # the picker's focus style too, restyled after the switch


async def quit_during_burst(pilot: Pilot[int]) -> None:
    """ctrl+q while the burst above runs: the question, which ctrl+q again answers."""
    await running_burst(pilot)
    pilot.app.clear_notifications()  # the start's toast would show over the dialog
    await pilot.press("ctrl+q")
    await pilot.pause()
    assert isinstance(pilot.app.screen, ConfirmScreen)


async def confirm_delete(pilot: Pilot[int]) -> None:
    await settle(pilot)
    pilot.app.clear_notifications()  # the start's toast would show over the dialog
    await pilot.press("f3", "d")
    await pilot.pause()
    assert isinstance(pilot.app.screen, ConfirmSendScreen)


async def choose_target(pilot: Pilot[int]) -> None:
    await settle(pilot)
    pilot.app.clear_notifications()  # the start's toast would show over the dialog
    await pilot.press("ctrl+s")
    await pilot.pause()
    assert isinstance(pilot.app.screen, ChooseTargetScreen)


SCREENS: dict[str, Callable[[Pilot[int]], Awaitable[None]]] = {
    "running-burst": running_burst,
    "quit-during-burst": quit_during_burst,
    "confirm-delete": confirm_delete,
    "choose-target": choose_target,
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("screen", SCREENS)
def test_send_screen_looks_as_approved(snap_compare, screen: str, size: str) -> None:
    app = FirehoseConsoleApp(
        load_settings(NO_SETTINGS_FILE), clock=lambda: 1234565788, auto_verify=False
    )
    app.animation_level = "none"

    async def run_before(pilot: Pilot[int]) -> None:
        await SCREENS[screen](pilot)
        pilot.app.clear_notifications()
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZES[size], run_before=run_before)
