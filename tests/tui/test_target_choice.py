"""The sandbox or AWS, chosen on the first save from the sandbox and remembered by the file.

README: "The sandbox or AWS".
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from driving import make_app, notifications, run_scenario, screen_text, settle, status
from textual.pilot import Pilot

from console.app import FirehoseConsoleApp
from console.widgets.target_choice import ChooseTargetScreen


def first_save(path: Path, button: str) -> tuple[FirehoseConsoleApp, str]:
    """Open the console with no settings file, press ctrl+s and answer with ``button``; the
    app and its status line then."""
    app = make_app(path, auto_verify=False)
    after: list[str] = []

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        assert "· sandbox ·" in status(app)
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ChooseTargetScreen)
        text = screen_text(app)
        assert "Where do this file's sends go?" in text
        assert "mPTravelAudiences in" in text
        await pilot.click(button)
        await settle(pilot)
        after.append(status(app))

    run_scenario(app, scenario)
    return app, after[0]


def status_at_start(path: Path) -> str:
    app = make_app(path, auto_verify=False)
    seen: list[str] = []

    async def scenario(app: FirehoseConsoleApp, pilot: Pilot[int]) -> None:
        seen.append(status(app))

    run_scenario(app, scenario)
    return seen[0]


def test_keeping_the_sandbox_is_written_down_and_kept_at_the_next_start(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    app, now = first_save(path, "#keep-sandbox")
    assert "· sandbox ·" in now
    assert tomllib.loads(path.read_text())["target"] == "sandbox"
    assert f"Created {path}: sends go to the embedded sandbox" in notifications(app)
    assert "· sandbox ·" in status_at_start(path)


def test_choosing_aws_switches_now_and_at_the_next_start(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    app, now = first_save(path, "#use-aws")
    assert tomllib.loads(path.read_text())["target"] == "aws"
    assert "sends go to mPTravelAudiences on AWS" in notifications(app)
    assert "· AWS ·" in now
    assert "· AWS ·" in status_at_start(path)


def test_cancelling_the_choice_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    app, now = first_save(path, "#cancel")
    assert "· sandbox ·" in now
    assert not path.exists()
    assert "Save settings: Not saved." in notifications(app)
