"""The edit loop (README: "The console (TUI): a short tour"): focus that shows and comes back,
going to a field by name, identities edited in place, the dialogs around saving and the keys
panel."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from driving import (
    field,
    make_app,
    open_section,
    paste,
    run_scenario,
    sandbox_settings,
    screen_text,
    settle,
    type_into,
    write_settings,
)
from textual.command import CommandPalette
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, OptionList, Select

from console.app import FirehoseConsoleApp
from console.widgets.dialogs import ChoiceScreen, ConfirmScreen, KeysScreen
from console.widgets.settings_fields import IdentityRows
from console.widgets.settings_sections import FormSection, SectionTitle


def _section(app: FirehoseConsoleApp, key: str) -> FormSection:
    return next(section for section in app.query(FormSection) if section.key == key)


def test_switching_tabs_returns_focus_to_the_last_field(tmp_path: Path) -> None:
    app = make_app(sandbox_settings(tmp_path), auto_verify=False)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        stream = field(app, "connections.travel.delivery_stream_name").query_one(Input)
        stream.focus()
        await pilot.press("f2")
        await settle(pilot)
        assert app.focused is not None and "Tabs" not in type(app.focused).__name__
        await pilot.press("f1")
        await settle(pilot)
        assert app.focused is stream
        # The focused row wears the ring: its own pseudo-class, styled by the stylesheet.
        row = field(app, "connections.travel.delivery_stream_name")
        assert row.has_pseudo_class("focus-within")
        assert row.styles.border_left[0] == "outer"

    run_scenario(app, scenario)


def test_go_to_field_opens_its_folded_section_and_focuses_it(tmp_path: Path) -> None:
    app = make_app(sandbox_settings(tmp_path), auto_verify=False)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        await pilot.press("f2")
        await settle(pilot)
        assert _section(app, "delivery").folded
        await pilot.press("ctrl+g")
        await settle(pilot)
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"max_attempts")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert app.query_one("#tabs").active == "settings"  # type: ignore[attr-defined]
        assert not _section(app, "delivery").folded
        row = field(app, "delivery.max_attempts")
        assert app.focused is row.query_one(Input)
        scroller = app.query_one("#settings-fields")
        top = row.region.y
        assert scroller.region.y <= top < scroller.region.bottom  # scrolled into view

    run_scenario(app, scenario)


def test_identity_rows_are_edited_in_place_and_keep_their_order(tmp_path: Path) -> None:
    app = make_app(sandbox_settings(tmp_path), auto_verify=False)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        await open_section(pilot, app, "test_user")
        identities = field(app, "test_user.identities")
        assert isinstance(identities, IdentityRows)
        order = list(identities.value())
        assert order[:3] == ["CustomerId", "Email", "Other"]

        # Enter on Email, then walk away: nothing is lost and nothing moves.
        identities.query_one(DataTable).focus()
        await pilot.press("down", "enter")
        assert app.focused is identities.query_one(".identity-value", Input)
        field(app, "test_user.mpid").focus_control()
        await pilot.pause()
        assert list(identities.value()) == order

        # Enter on Email and change its value: the row changes where it stands.
        identities.query_one(DataTable).focus()
        await pilot.press("enter")
        await pilot.press("end", "ctrl+u")
        await paste(pilot, "fogg@reform.club")
        await pilot.press("enter")
        await settle(pilot)
        assert list(identities.value()) == order
        assert identities.value()["Email"] == "fogg@reform.club"

        # Renaming a row's key keeps its place too.
        identities.query_one(DataTable).focus()
        await pilot.press("enter")
        identities.query_one(".identity-key", Input).focus()
        await pilot.press("end", "ctrl+u")
        await paste(pilot, "MicrosoftId")
        await pilot.press("enter")
        await settle(pilot)
        assert list(identities.value()) == [
            "MicrosoftId" if key == "Email" else key for key in order
        ]
        draft = app.form.unsaved_draft()
        assert draft is not None
        assert list(draft.test_user.identities)[1] == "MicrosoftId"

    run_scenario(app, scenario)


def test_save_and_quit_writes_the_edit_and_the_active_connection(tmp_path: Path) -> None:
    path = sandbox_settings(tmp_path)
    app = make_app(path, auto_verify=False)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        await type_into(pilot, app, "audience.internal_name", "someone")
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, ChoiceScreen)
        assert app.focused is not None and app.focused.id == "cancel"
        await pilot.press("left")  # the arrow keys walk the buttons
        assert app.focused is not None and app.focused.id == "discard"
        await pilot.press("left", "enter")  # Save and quit
        await settle(pilot)

    run_scenario(app, scenario)
    assert app.return_code == 0
    saved = tomllib.loads(path.read_text())
    assert saved["audience"]["internal_name"] == "someone"
    assert saved["active_connection"] == "travel"
    assert "\n# The user's mParticle ID (sent as MPID).\nmpid = " in path.read_text()


def test_a_file_changed_on_disk_can_be_reloaded_and_edits_reverted(tmp_path: Path) -> None:
    path = sandbox_settings(tmp_path)
    app = make_app(path, auto_verify=False)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        stream = "connections.travel.delivery_stream_name"
        await type_into(pilot, app, stream, "Mine")
        on_disk = tomllib.loads(path.read_text())
        on_disk["connections"]["travel"]["delivery_stream_name"] = "Theirs"
        write_settings(path, on_disk)
        os.utime(path, ns=(1, 1))  # a different mtime, whatever the clock's resolution
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, ChoiceScreen)
        assert "Reload from disk" in screen_text(app) and "Overwrite" in screen_text(app)
        await pilot.click("#reload")
        await settle(pilot)
        assert field(app, stream).value() == "Theirs"
        assert not app.form.dirty
        assert (
            tomllib.loads(path.read_text())["connections"]["travel"]["delivery_stream_name"]
            == "Theirs"
        )

        # Revert (ctrl+z) drops an edit, after asking.
        await type_into(pilot, app, stream, "Scratch")
        assert app.form.dirty
        await pilot.press("ctrl+z")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.click("#confirm")
        await settle(pilot)
        assert field(app, stream).value() == "Theirs"
        assert not app.form.dirty

        # ctrl+n asks first while there are unsaved edits, as ctrl+o does.
        await type_into(pilot, app, stream, "Scratch")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)

    run_scenario(app, scenario)


def test_question_mark_lists_the_tabs_keys_and_the_palette_puts_the_consoles_first(
    tmp_path: Path,
) -> None:
    app = make_app(sandbox_settings(tmp_path), auto_verify=False)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        text = screen_text(app)
        tabs_line = next(line for line in text.splitlines() if "Settings f1" in line)
        assert "Preview f2" in tabs_line and "Delivered f6" in tabs_line  # fits 80 columns

        # Typed into a field, ? is text, not the keys panel.
        stream = field(app, "connections.travel.delivery_stream_name").query_one(Input)
        stream.focus()
        await pilot.press("end", "question_mark")
        assert stream.value.endswith("?")
        assert not isinstance(app.screen, KeysScreen)

        await pilot.press("f2")
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, KeysScreen)
        shown = screen_text(app)
        assert "On the Preview tab" in shown
        assert "Preview add" in shown and "Everywhere" in shown and "Save settings" in shown
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, KeysScreen)

        await pilot.press("ctrl+p")
        await settle(pilot)
        palette = app.screen
        assert isinstance(palette, CommandPalette)
        options = palette.query_one(OptionList)
        prompts = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert prompts[0].startswith("Settings: Save settings")
        quits = [prompt for prompt in prompts if "Quit" in prompt]
        assert len(quits) == 1 and quits[0].startswith("Console: Quit")
        assert not any(prompt.startswith("Keys") for prompt in prompts)

    run_scenario(app, scenario)


def test_a_wide_terminal_shows_the_preview_beside_the_form_following_edits(
    tmp_path: Path,
) -> None:
    for size, beside in (((120, 40), True), ((80, 24), False)):
        app = make_app(sandbox_settings(tmp_path), auto_verify=False)

        async def scenario(
            app: FirehoseConsoleApp, pilot: Pilot[int], beside: bool = beside
        ) -> None:
            text = screen_text(app)
            assert ("Record 1 of 1: add" in text) is beside
            assert ("Settings f1" in text) and ("Connection travel" in text)
            if not beside:
                return
            await type_into(pilot, app, "audience.external_name", "Balloonists")
            await settle(pilot)
            lines = [line for line in screen_text(app).splitlines() if "Balloonists" in line]
            assert any('"AudienceName": "Balloonists"' in line for line in lines)
            # Focusing a field scrolls the side preview to where that setting shows.
            app.action_preview("identity-change")  # two records: more than one screen
            await settle(pilot)
            side = app.query_one("#side-preview #preview-body")
            side.scroll_home(animate=False)
            await pilot.pause()
            field(app, "connections.travel.identities_to_exclude").focus_control()
            await settle(pilot)
            assert side.scroll_y > 0
            assert "Dropped identities" in screen_text(app)

        run_scenario(app, scenario, size=size)


def test_opening_a_folded_section_scrolls_it_into_view(tmp_path: Path) -> None:
    app = make_app(sandbox_settings(tmp_path), auto_verify=False)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        section = _section(app, "delivery")
        section.query_one(SectionTitle).focus(scroll_visible=False)
        await pilot.press("enter")
        await settle(pilot)
        assert not section.folded
        scroller = app.query_one("#settings-fields")
        assert scroller.scroll_y > 0
        first_row = field(app, "delivery.max_attempts")
        assert scroller.region.y <= first_row.region.y < scroller.region.bottom

    run_scenario(app, scenario)


def test_a_picker_left_open_on_another_tab_comes_back_closed_and_focused(
    tmp_path: Path,
) -> None:
    """Leaving a tab with a picker's list open closes the list; coming back focuses the picker,
    so the next keys open it again instead of moving through a hidden list (where enter would
    change the region unseen)."""
    app = make_app(sandbox_settings(tmp_path), auto_verify=False)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        region = field(app, "connections.travel.region").query_one(Select)
        before = region.value
        region.focus()
        await pilot.press("enter")
        await settle(pilot)
        assert region.expanded
        await pilot.press("f2")
        await settle(pilot)
        await pilot.press("f1")
        await settle(pilot)
        assert app.focused is region
        assert not region.expanded
        await pilot.press("down")
        await settle(pilot)
        assert region.expanded  # the list shows again, on the region as it is
        await pilot.press("enter")
        await settle(pilot)
        assert region.value == before

    run_scenario(app, scenario)
