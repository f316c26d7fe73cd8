"""The console's first screen (README: "Performance"): the Settings form shows its first section
at once and builds the others right after; the garbage collector, off while the console starts,
is on again once that screen is drawn."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

from driving import make_app, run_scenario, sandbox_settings, settle
from textual import events
from textual.app import App, ComposeResult
from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import Input
from textual.widgets._footer import FooterKey

from console.app import FirehoseConsoleApp
from console.widgets.settings_fields import FieldRow
from console.widgets.settings_form import SettingsForm
from console.widgets.settings_sections import FormSection
from engine.settings_file import load_settings


class FormAlone(App[None]):
    """The form on its own: nothing builds its waiting sections unless the test asks."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def compose(self) -> ComposeResult:
        yield SettingsForm(load_settings(self.path), "travel", id="settings-form")


def _mounted_keys(form: SettingsForm) -> list[str]:
    return [section.key for section in form.query(FormSection)]


def test_the_form_shows_its_first_section_first_and_keeps_the_others_whole(
    tmp_path: Path,
) -> None:
    path = sandbox_settings(
        tmp_path,
        account={"access_key_id": "AKIAFIRSTSCREEN1", "secret_access_key": "first-screen-secret"},
    )
    app = FormAlone(path)

    async def main() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            form = app.query_one(SettingsForm)
            assert _mounted_keys(form) == ["connections.travel"]
            # Unbuilt fields are still the form's: listed for ctrl+g, and their values kept.
            assert "account.access_key_id" in [key for key, _ in form.fields()]
            assert form.document()["account"]["access_key_id"] == "AKIAFIRSTSCREEN1"
            assert form.toggle_secret() is False  # nothing on screen to reveal yet
            await form.go_to_field("account.access_key_id")  # builds them first
            await pilot.pause()
            assert len(_mounted_keys(form)) == 6
            focused = app.focused
            assert isinstance(focused, Input)
            row = next(node for node in focused.ancestors if isinstance(node, FieldRow))
            assert row.key == "account.access_key_id"
            assert focused.value == "AKIAFIRSTSCREEN1"

    asyncio.run(main())


def test_the_console_builds_every_section_once_its_first_screen_is_drawn(
    tmp_path: Path,
) -> None:
    app = make_app(sandbox_settings(tmp_path), auto_verify=False)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        keys = _mounted_keys(app.form)
        assert keys == [
            "connections.travel",
            "account",
            "audience",
            "test_user",
            "delivery",
            "sandbox",
        ]
        assert app.form.toggle_secret() is True  # the account's secret is on the form now

    run_scenario(app, scenario)


def test_the_first_frame_holds_the_first_section_the_focused_stream_and_the_settings_keys(
    tmp_path: Path,
) -> None:
    # Textual's Ready follows the first frame on the terminal: what the app holds when it
    # handles Ready is what that frame showed.
    app = make_app(sandbox_settings(tmp_path), auto_verify=False)
    first_frame: dict[str, list[str] | str | None] = {}

    def at_ready(message: Message) -> None:
        if isinstance(message, events.Ready) and not first_frame:
            first_frame["sections"] = _mounted_keys(app.form)
            first_frame["keys"] = [key.key for key in app.query(FooterKey)]
            ancestors = app.focused.ancestors if app.focused is not None else []
            row = next((node for node in ancestors if isinstance(node, FieldRow)), None)
            first_frame["focus"] = row.key if row is not None else None

    async def main() -> None:
        async with app.run_test(size=(80, 24), message_hook=at_ready) as pilot:
            await pilot.pause()
            assert len(_mounted_keys(app.form)) == 6  # the others follow at once
            await settle(pilot)  # the other tabs are built after the first frame, one by one

    asyncio.run(main())
    assert first_frame["sections"] == ["connections.travel"]
    assert {"ctrl+s", "ctrl+q", "ctrl+p"} <= set(first_frame["keys"] or [])
    assert first_frame["focus"] == "connections.travel.delivery_stream_name"


def test_the_collector_turned_off_for_the_launch_is_on_after_the_first_screen(
    tmp_path: Path,
) -> None:
    app = make_app(sandbox_settings(tmp_path), auto_verify=False)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        assert gc.isenabled()

    gc.disable()  # as `firehose-console` does before it imports and opens the console
    try:
        run_scenario(app, scenario)
    finally:
        gc.enable()
