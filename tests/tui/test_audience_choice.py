"""Choosing the audience in the console (README: "The console (TUI): a short tour"): the
Preview follows the choice, sends use it, the status line shows it, a new session keeps it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from driving import (
    confirm_send,
    make_app,
    notifications,
    run_scenario,
    sandbox_settings,
    screen_text,
    settle,
    status,
    type_into,
)
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, OptionList

from console.app import FirehoseConsoleApp
from console.widgets.dialogs import ChooseAudienceScreen

NAMED_AUDIENCES = {
    "churn": {"id": 7, "external_name": "ChurnRisk"},
    "vip": {"id": 8, "external_name": "Vip"},
}


def two_audiences(tmp_path: Path) -> Path:
    return sandbox_settings(tmp_path, audiences=NAMED_AUDIENCES)


async def choose_audience(pilot: Pilot[int], label: str) -> None:
    """ctrl+l, then the list entry that starts with ``label``."""
    await pilot.press("ctrl+l")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, ChooseAudienceScreen), screen
    shown = screen_text(pilot.app)
    for entry in ("[audience] (default)", "churn", "vip", "all"):
        assert entry in shown
    options = screen.query_one(OptionList)
    prompts = [str(options.get_option_at_index(n).prompt) for n in range(options.option_count)]
    target = next(n for n, prompt in enumerate(prompts) if prompt.startswith(label))
    while options.highlighted != target:
        await pilot.press("down" if (options.highlighted or 0) < target else "up")
    await pilot.press("enter")
    await pilot.pause()


def audience_column(app: FirehoseConsoleApp) -> Counter[str]:
    table = app.query_one("#landing-table", DataTable)
    return Counter(str(table.get_row(key)[1]) for key in table.rows)


def test_the_chosen_audience_drives_the_preview_the_status_line_and_a_burst(
    tmp_path: Path,
) -> None:
    app = make_app(two_audiences(tmp_path), use_sandbox=True, auto_verify=False)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        assert "audience" not in status(app)  # [audience]: the line as it always was
        await pilot.press("f2")
        await pilot.pause()
        assert '"AudienceName": "LowEngagement"' in screen_text(app)

        await choose_audience(pilot, "churn")
        assert "audience churn" in status(app)
        shown = screen_text(app)
        assert '"AudienceName": "ChurnRisk"' in shown
        assert "LowEngagement" not in shown

        await choose_audience(pilot, "all")
        assert "audience all" in status(app)
        await pilot.press("f3")
        await pilot.pause()
        app.query_one("#burst-count", Input).value = "4"
        await pilot.press("b")
        await confirm_send(pilot)
        await settle(pilot)
        await pilot.press("f6")
        await settle(pilot)
        assert audience_column(app) == Counter({"ChurnRisk": 2, "Vip": 2})

    run_scenario(app, scenario)


def test_the_audience_given_at_start_survives_a_save_and_default_goes_back(
    tmp_path: Path,
) -> None:
    app = make_app(
        two_audiences(tmp_path), use_sandbox=True, auto_verify=False, audience_name="vip"
    )

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        assert "audience vip" in status(app)
        await type_into(pilot, app, "test_user.mpid", "1234")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "Settings saved: Saved" in notifications(app)
        assert app.session.audience_name == "vip"  # the new session carries the choice
        assert "audience vip" in status(app)
        await pilot.press("f2")
        await pilot.pause()
        assert '"AudienceName": "Vip"' in screen_text(app)

        await choose_audience(pilot, "[audience]")
        assert "audience" not in status(app)
        assert '"AudienceName": "LowEngagement"' in screen_text(app)

    run_scenario(app, scenario)
