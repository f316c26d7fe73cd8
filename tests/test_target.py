"""The sandbox or AWS: the settings file's ``target`` decides, --sandbox overrides it.

README: "The sandbox or AWS".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.cli import main
from engine.session import ConsoleSession
from engine.settings_file import load_settings

FILE = """
target = "{target}"

[connections.travel]
delivery_stream_name = "mPTravelAudiences"

[delivery]
state_dir = "{state}"
"""


def settings_file(tmp_path: Path, target: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(FILE.format(target=target, state=tmp_path / "state"), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("target", "forced", "sandbox"),
    [("sandbox", False, True), ("aws", False, False), ("aws", True, True)],
)
def test_the_files_target_chooses_and_sandbox_overrides(
    tmp_path: Path, target: str, forced: bool, sandbox: bool
) -> None:
    loaded = load_settings(settings_file(tmp_path, target))
    assert ConsoleSession(loaded, use_sandbox=forced).uses_sandbox is sandbox


def test_no_settings_file_runs_on_the_sandbox(tmp_path: Path) -> None:
    assert ConsoleSession(load_settings(tmp_path / "absent.toml")).uses_sandbox


def test_an_unknown_target_is_refused_with_the_choices(tmp_path: Path, capsys) -> None:
    path = settings_file(tmp_path, "moon")
    status = main(["--settings", str(path), "preview", "add"])
    err = capsys.readouterr().err
    assert status != 0
    assert "target" in err and "'aws' or 'sandbox'" in err
    assert "Traceback" not in err


def test_the_cli_sends_to_the_sandbox_when_the_file_says_so(tmp_path: Path, capsys) -> None:
    path = settings_file(tmp_path, "sandbox")
    status = main(["--settings", str(path), "send", "add", "--json"])
    document = json.loads(capsys.readouterr().out)
    assert status == 0
    assert document["delivered"] == 1
