"""The settings form: live preview, inline validation, save, unsaved changes, connections, and
the secret that never shows unless asked."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from driving import (
    field,
    make_app,
    notifications,
    open_section,
    paste,
    run_scenario,
    screen_text,
    settle,
    status,
    type_into,
    write_settings,
)
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, SelectionList, Static

from console.app import FirehoseConsoleApp
from console.widgets.dialogs import (
    AddConnectionScreen,
    ChoiceScreen,
    ChooseConnectionScreen,
    ConfirmScreen,
)
from console.widgets.preview_pane import PreviewPane
from console.widgets.settings_fields import SecretField, identity_options

CANARY_SECRET = "CANARY-s3cr3t-never-on-screen"


def test_edits_follow_into_the_preview_live(tmp_path: Path) -> None:
    app = make_app(tmp_path / "settings.toml", auto_verify=False)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        await pilot.press("f2")
        assert '"AudienceName": "LowEngagement"' in screen_text(app)
        await pilot.press("f1")
        await open_section(pilot, app, "audience")
        field(app, "audience.external_name").focus_control()
        await pilot.press("end", "ctrl+u", *"Travelers")  # typed key by key
        field(app, "connections.travel.identities_to_exclude").query_one(SelectionList).select(
            "Other3"
        )
        await pilot.press("f2")
        await settle(pilot)
        text = screen_text(app)
        assert '"AudienceName": "Travelers"' in text
        assert '"Other3"' not in text
        assert "● unsaved" in text
        app.query_one("#preview-body").scroll_end(animate=False)
        await pilot.pause()
        assert "Other3 — listed in identities_to_exclude" in screen_text(app)

        # The test user's identities are rows: delete removes one, the line under adds one.
        await pilot.press("f1")
        await open_section(pilot, app, "test_user")
        identities = field(app, "test_user.identities")
        identities.query_one(DataTable).focus()
        await pilot.press("delete")  # the first row: CustomerId
        identities.query_one(".identity-key", Input).focus()
        await paste(pilot, "TwitterId")
        await pilot.press("tab")
        await paste(pilot, "@phileas")
        await pilot.press("enter")
        await pilot.press("f2")
        await settle(pilot)
        data = app.query_one(PreviewPane).messages()[0].data["UserIdentities"]
        assert "CustomerId" not in data and data["TwitterId"] == "@phileas"
        assert '"TwitterId": "@phileas"' in screen_text(app)

    run_scenario(app, scenario)


def test_an_invalid_value_blocks_saving_and_a_valid_one_is_saved(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    app = make_app(path, auto_verify=False)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        stream = "connections.travel.delivery_stream_name"
        await type_into(pilot, app, stream, "bad name!")
        text = screen_text(app)
        assert "'bad name!' is not a valid delivery stream name" in text
        assert "Fix: use 1 to 64" in text
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "Not saved: 1 problem in the settings." in notifications(app)
        assert not path.exists()

        await type_into(pilot, app, stream, "OrdersStream")
        assert "is not a valid delivery stream name" not in screen_text(app)
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.click("#keep-sandbox")  # the first save from the sandbox asks
        await settle(pilot)
        assert status(app) == "travel → OrdersStream (us-east-1) · sandbox · not yet checked"
        assert f"Created {path}: sends go to the embedded sandbox" in notifications(app)

    run_scenario(app, scenario)
    saved = tomllib.loads(path.read_text())
    assert saved["connections"]["travel"]["delivery_stream_name"] == "OrdersStream"


def test_quitting_with_unsaved_changes_asks_first(tmp_path: Path) -> None:
    app = make_app(tmp_path / "settings.toml", auto_verify=False)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        await type_into(pilot, app, "audience.internal_name", "someone")
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, ChoiceScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ChoiceScreen)
        await pilot.press("ctrl+q")
        await pilot.pause()
        await pilot.click("#discard")
        await pilot.pause()

    run_scenario(app, scenario)
    assert app.return_code == 0


def two_connections(tmp_path: Path) -> Path:
    return write_settings(
        tmp_path / "settings.toml",
        {
            "connections": {
                "travel": {"delivery_stream_name": "mPTravelAudiences"},
                "orders": {"delivery_stream_name": "Orders", "region": "eu-west-1"},
            },
            "delivery": {"state_dir": str(tmp_path / "state")},
        },
    )


def test_switching_warns_about_unsaved_changes_and_adding_checks_the_name(
    tmp_path: Path,
) -> None:
    path = two_connections(tmp_path)
    app = make_app(path, use_sandbox=True, auto_verify=False)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        await type_into(pilot, app, "audience.internal_name", "someone")
        await pilot.press("ctrl+o")
        assert isinstance(app.screen, ChooseConnectionScreen)
        await pilot.press("down", "enter")
        assert isinstance(app.screen, ConfirmScreen)
        assert "Discard unsaved changes and switch to orders?" in screen_text(app)
        await pilot.click("#confirm")
        await settle(pilot)
        assert status(app) == "orders → Orders (eu-west-1) · sandbox · not yet checked"
        assert field(app, "connections.orders.region").value() == "eu-west-1"

        await pilot.press("ctrl+n")
        assert isinstance(app.screen, AddConnectionScreen)
        await paste(pilot, "bad name")
        await pilot.press("tab")
        await paste(pilot, "Stream1")
        await pilot.press("enter")
        assert "'bad name' is not a usable connection name" in screen_text(app)
        await pilot.press("shift+tab", "end", "ctrl+u")
        await paste(pilot, "shop")
        await pilot.press("enter")
        assert not isinstance(app.screen, AddConnectionScreen)
        assert "Connection shop (new, unsaved)" in screen_text(app)
        assert status(app).endswith("● unsaved")

        later = path.stat().st_mtime_ns + 1_000_000_000  # someone else saved the file meanwhile
        os.utime(path, ns=(later, later))
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, ChoiceScreen)
        question = str(app.screen.query_one(".dialog-question", Static).render())
        assert "changed on disk since it was loaded. Reload it" in question
        await pilot.click("#overwrite")
        await settle(pilot)
        assert status(app) == "shop → Stream1 (us-east-1) · sandbox · not yet checked"
        assert "Connection shop (new, unsaved)" not in screen_text(app)

    run_scenario(app, scenario)
    connections = tomllib.loads(path.read_text())["connections"]
    assert set(connections) == {"travel", "orders", "shop"}
    assert tomllib.loads(path.read_text())["active_connection"] == "shop"  # written on save
    assert connections["shop"]["delivery_stream_name"] == "Stream1"


def test_the_secret_shows_only_when_revealed(tmp_path: Path) -> None:
    path = write_settings(
        tmp_path / "settings.toml",
        {
            "account": {
                "access_key_id": "AKIAIOSFODNN7EXAMPLE",
                "secret_access_key": CANARY_SECRET,
            },
            "connections": {"travel": {"delivery_stream_name": "mPTravelAudiences"}},
        },
    )
    app = make_app(path, use_sandbox=True, auto_verify=False)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        secret = app.query_one(SecretField)
        secret.scroll_visible(animate=False)
        await pilot.pause()
        for tab in ("f2", "f3", "f4", "f5", "f6", "f1"):
            await pilot.press(tab)
            assert CANARY_SECRET not in screen_text(app)
        await settle(pilot)
        # f1 focused the form's first field, above the secret.
        secret.scroll_visible(animate=False, top=True)
        await pilot.pause()
        assert CANARY_SECRET not in app.export_screenshot()
        assert "•" * 8 in screen_text(app)
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert CANARY_SECRET in screen_text(app)
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert CANARY_SECRET not in screen_text(app)

    run_scenario(app, scenario)


def test_the_exclusion_list_shows_each_state_in_text_and_sums_it_up(tmp_path: Path) -> None:
    app = make_app(tmp_path / "settings.toml", auto_verify=False)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        row = field(app, "connections.travel.identities_to_exclude")
        await open_section(pilot, app, row.key)
        picker = row.query_one(SelectionList)
        picker.focus()
        row.scroll_visible(animate=False)
        await pilot.pause()
        text = screen_text(app)
        assert "[ ] Customer ID" in text and "[x] Customer ID" not in text
        assert "none of 26 excluded; space toggles [x]" in text
        await pilot.press("space")  # the first entry
        await pilot.press("down", "space")
        await pilot.pause()
        first, second = (label for label, _ in identity_options()[:2])
        summary = str(row.query_one(".picker-summary", Static).render())
        assert summary == f"2 of 26 excluded: {first}, {second}"
        lines = screen_text(app).splitlines()
        assert any(f"[x] {first}" in line for line in lines)
        assert any(f"[x] {second}" in line for line in lines)

    run_scenario(app, scenario)


def test_with_problems_in_the_form_preview_and_send_say_the_same_and_fit(
    tmp_path: Path,
) -> None:
    app = make_app(tmp_path / "settings.toml", auto_verify=False)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        await pilot.press("f1")
        await type_into(pilot, app, "audience.external_name", "Travelers")
        await type_into(pilot, app, "sandbox.failure_rate", "7")  # out of range
        await pilot.press("f2")
        await settle(pilot)
        text = screen_text(app)
        # The whole banner is on screen at 80 columns (wrapped, not cut), and it agrees with
        # the verdict under it: the last valid state is what a send would send.
        assert "⚠ The form has problems (see Settings): these records use its last valid" in text
        assert "state, and a send now would send them." in text
        assert "✓ will be sent" in text and '"AudienceName": "Travelers"' in text
        await pilot.press("f3")
        await pilot.pause()
        note = str(app.query_one("#send-note", Static).render())
        assert "records follow the form" not in note
        assert "records use its last valid state, not what it shows now" in note
        assert "apply once saved (ctrl+s)." in screen_text(app)  # whole, wrapped

        await pilot.press("f1")
        await type_into(pilot, app, "sandbox.failure_rate", "0")
        await pilot.press("f3")
        await pilot.pause()
        assert "Unsaved edits: records follow the form" in screen_text(app)
        await pilot.press("f2")
        await settle(pilot)
        assert "The form has problems" not in screen_text(app)

    run_scenario(app, scenario)


def test_the_region_list_is_read_when_the_field_is_first_focused(tmp_path: Path) -> None:
    app = make_app(two_connections(tmp_path), auto_verify=False)

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        from textual.widgets import Select

        from engine.regions import firehose_regions

        select = field(app, "connections.travel.region").query_one(Select)
        assert select.value == "us-east-1"
        select.focus()
        await settle(pilot)
        assert select.value == "us-east-1"
        assert status(app).endswith("not yet checked")  # still nothing unsaved
        await pilot.press("enter", "down", "enter")  # open the list, take the next region
        await settle(pilot)
        regions = firehose_regions()
        chosen = regions[regions.index("us-east-1") + 1]
        assert field(app, "connections.travel.region").value() == chosen
        assert status(app).endswith("● unsaved")

    run_scenario(app, scenario)
