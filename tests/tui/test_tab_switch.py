"""What a tab switch does and no longer does (README: "Performance"): the footer's keys of a tab
are built once and shown again, and a pane restyles only what its focus changes."""

from __future__ import annotations

import gc
from pathlib import Path

from driving import make_app, run_scenario, sandbox_settings, screen_text, settle
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import DataTable
from textual.widgets._select import SelectCurrent

from console.app import FirehoseConsoleApp
from console.commands import CONSOLE_ACTIONS
from console.widgets.key_footer import KeyFooter, KeySet
from console.widgets.preview_pane import ActionSelect
from console.widgets.status_line import VerificationState
from console.widgets.verify_pane import VerifyPane


def _shown_key_set(app: FirehoseConsoleApp) -> KeySet:
    shown = [key_set for key_set in app.query_one(KeyFooter).query(KeySet) if key_set.display]
    assert len(shown) == 1
    return shown[0]


def _restyled_as_textual_would(app: FirehoseConsoleApp, widget: Widget) -> list[list[str]]:
    """Restyle ``widget`` and every child, as Textual would on its focus change, and check that
    no child's style changes: none had gone stale. The children's styles."""
    children = list(widget.walk_children())
    look = [child._css_styles.css_lines for child in children]
    app.update_styles(widget)
    assert [child._css_styles.css_lines for child in children] == look
    return look


async def _every_tabs_keys_built(app: FirehoseConsoleApp, pilot: Pilot[int]) -> KeyFooter:
    """Wait until the hidden tabs are built, one by one, then their keys; the footer."""
    footer = app.query_one(KeyFooter)
    for _ in range(100):
        if len(footer.query(KeySet)) >= 6:
            break
        await pilot.pause(0.05)
    return footer


def test_a_tab_shown_again_shows_the_keys_built_for_it_before(tmp_path: Path) -> None:
    app = make_app(sandbox_settings(tmp_path), auto_verify=False)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        await pilot.press("f2")
        await settle(pilot)
        preview_keys = _shown_key_set(app)
        await pilot.press("f1")
        await settle(pilot)
        assert _shown_key_set(app) is not preview_keys
        await pilot.press("f2")
        await settle(pilot)
        assert _shown_key_set(app) is preview_keys
        footer = screen_text(app).splitlines()[-1]
        for action in CONSOLE_ACTIONS:
            if action.show and action.tab == "preview":
                assert f"{app.key_for(action)} {action.footer}" in footer, footer
        settings_only = [a for a in CONSOLE_ACTIONS if a.show and a.tab == "settings"]
        assert settings_only
        assert all(f"{app.key_for(a)} {a.footer}" not in footer for a in settings_only)

    run_scenario(app, scenario)


def test_the_verify_pane_restyles_alone_when_focused_and_no_child_goes_stale(
    tmp_path: Path,
) -> None:
    app = make_app(sandbox_settings(tmp_path), auto_verify=True)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        await pilot.press("f5")
        await settle(pilot)
        pane = app.query_one(VerifyPane)
        assert app.focused is pane
        assert pane.has_pseudo_class("focus")
        assert len(list(pane.walk_children())) > 10  # the checklist is shown
        as_left = _restyled_as_textual_would(app, pane)
        await pilot.press("f6")
        await settle(pilot)
        assert not pane.has_pseudo_class("focus")
        assert _restyled_as_textual_would(app, pane) == as_left

    run_scenario(app, scenario)


def test_the_action_picker_restyles_its_shown_line_alone_and_no_child_goes_stale(
    tmp_path: Path,
) -> None:
    app = make_app(sandbox_settings(tmp_path), auto_verify=False)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        await pilot.press("f2")
        await settle(pilot)
        picker = app.query_one("#preview-action", ActionSelect)
        assert app.focused is picker
        focused_look = _restyled_as_textual_would(app, picker)
        await pilot.press("f3")
        await settle(pilot)
        blurred_look = _restyled_as_textual_would(app, picker)
        assert blurred_look != focused_look  # the shown line lost its focus style

    run_scenario(app, scenario)


def test_each_tab_keys_are_built_before_its_first_visit(tmp_path: Path) -> None:
    app = make_app(sandbox_settings(tmp_path), auto_verify=False)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        footer = await _every_tabs_keys_built(app, pilot)
        built_before = set(footer.query(KeySet))
        assert len(built_before) == 6
        for key in ("f2", "f3", "f4", "f5", "f6", "f1"):
            await pilot.press(key)
            await settle(pilot)
            assert _shown_key_set(app) in built_before, key
        assert set(footer.query(KeySet)) == built_before

    run_scenario(app, scenario)


def test_what_the_start_built_is_out_of_the_collectors_way_once_it_is_done(tmp_path: Path) -> None:
    """Every tab's pane is built and the sandbox verified after the first screen; then their
    objects are frozen, and a full collection no longer walks them (README: "Performance")."""
    app = make_app(sandbox_settings(tmp_path))

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        await _every_tabs_keys_built(app, pilot)
        await settle(pilot)
        assert app.status_line.verification is not VerificationState.CHECKING  # done
        built_late = app.delivered_pane.query_one(DataTable)  # built after the first screen
        assert not any(each is built_late for each in gc.get_objects())

    run_scenario(app, scenario)


def test_a_tab_shown_again_is_laid_out_once(tmp_path: Path) -> None:
    """The footer's keys and the form's help line change with the tab: they are laid out with
    it, not in a second pass over the whole screen after it (README: "Performance")."""
    app = make_app(sandbox_settings(tmp_path), auto_verify=False)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        await _every_tabs_keys_built(app, pilot)
        for key in ("f2", "f3", "f1"):  # every tab here shown once
            await pilot.press(key)
            await settle(pilot)
        screen = app.screen
        lay_out = screen._refresh_layout
        passes: list[str] = []

        def counted(*args: object, **options: object) -> None:
            passes.append(app._shown_tab())
            lay_out(*args, **options)  # type: ignore[arg-type]

        screen._refresh_layout = counted  # type: ignore[method-assign]
        for key in ("f2", "f3", "f1"):
            await pilot.press(key)
            await settle(pilot)
        assert passes == ["preview", "send", "settings"]

    run_scenario(app, scenario)


def test_the_action_pickers_label_is_drawn_on_its_focus_background(tmp_path: Path) -> None:
    """The label and arrow have no background of their own: each focus change must redraw
    them on the picker's new background, not keep the one they were first drawn on (a snapshot
    once caught a focused picker with an unfocused label)."""
    app = make_app(sandbox_settings(tmp_path), auto_verify=False)

    def label_backgrounds(picker: ActionSelect) -> set[str]:
        label = picker.query_one(SelectCurrent).query_one("#label")
        return {
            str(seg.style.bgcolor) for seg in label.render_line(0) if seg.style and seg.text.strip()
        }

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        await pilot.press("f2")
        await settle(pilot)
        picker = app.preview_pane.query_one(ActionSelect)
        assert app.focused is picker
        focused = label_backgrounds(picker)
        app.set_focus(None)
        await settle(pilot)
        blurred = label_backgrounds(picker)
        assert blurred != focused
        picker.focus()
        await settle(pilot)
        assert label_backgrounds(picker) == focused

    run_scenario(app, scenario)
