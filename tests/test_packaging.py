"""`--version` and the launcher in the development install (README: "Development"); the built
wheel itself is tested in test_wheel.py."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from console.cli import main
from firehose_console.launcher import folder_holding_the_packages

ROOT = Path(__file__).resolve().parents[1]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_version_is_the_one_in_pyproject(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr() == (f"firehose-console {VERSION}\n", "")


def test_version_wins_over_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version", "send", "add"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"firehose-console {VERSION}\n"


def test_the_editable_launcher_runs_this_checkouts_engine_and_console() -> None:
    assert folder_holding_the_packages() == ROOT
