"""Smaller guarantees: the readable-secret warning, edits that keep the mtime, the sandbox that
cannot start, and pydantic errors that cannot quote the secret."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from console.cli import main
from engine.sandbox import EmbeddedSandbox, SandboxStartError
from engine.settings import Settings
from engine.settings_file import (
    SettingsChangedOnDisk,
    load_settings,
    permission_warning,
    save_settings,
)

WITH_SECRET = """
[account]
access_key_id = "AKIAIOSFODNN7EXAMPLE"
secret_access_key = "guard-secret-value"

[connections.travel]
delivery_stream_name = "mPTravelAudiences"
"""
WITHOUT_SECRET = '[connections.travel]\ndelivery_stream_name = "mPTravelAudiences"\n'


def settings_file(tmp_path: Path, text: str, mode: int) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_a_secret_readable_by_others_is_warned_about_once_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = settings_file(tmp_path, WITH_SECRET, 0o644)
    assert main(["--settings", str(path), "preview", "add", "--json"]) == 0
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert line == (
        f"firehose-console: warning: {path} holds a secret and is readable by group or others; "
        f"fix: chmod 600 {path}"
    )
    assert "guard-secret-value" not in captured.out + captured.err
    os.chmod(path, 0o600)
    assert main(["--settings", str(path), "preview", "add", "--json"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("text", "mode", "warned"),
    [
        (WITH_SECRET, 0o640, True),  # group can read
        (WITH_SECRET, 0o604, True),  # others can read
        (WITH_SECRET, 0o600, False),
        (WITHOUT_SECRET, 0o644, False),  # nothing secret in it
    ],
)
def test_permission_warning_for_the_fronts(tmp_path: Path, text: str, mode: int, warned) -> None:
    warning = permission_warning(load_settings(settings_file(tmp_path, text, mode)))
    assert (warning is not None) == warned
    if warning:
        assert "chmod 600" in warning


def test_a_secret_from_the_environment_alone_is_not_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIREHOSE_CONSOLE_ACCOUNT__SECRET_ACCESS_KEY", "env-only-secret")
    text = '[account]\naccess_key_id = "AKIAIOSFODNN7EXAMPLE"\n' + WITHOUT_SECRET
    assert permission_warning(load_settings(settings_file(tmp_path, text, 0o644))) is None


def test_an_edit_that_keeps_the_mtime_is_still_not_overwritten(tmp_path: Path) -> None:
    path = settings_file(tmp_path, WITH_SECRET, 0o600)
    loaded = load_settings(path)
    mtime = path.stat().st_mtime_ns
    path.write_text(WITH_SECRET.replace("mPTravelAudiences", "edited-elsewhere"))
    os.utime(path, ns=(mtime, mtime))  # a coarse clock, or a tool that restores it
    with pytest.raises(SettingsChangedOnDisk):
        save_settings(loaded.settings, loaded)
    assert "edited-elsewhere" in path.read_text()


def test_raw_validation_errors_do_not_quote_the_secret() -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(account={"secret_access_key": "raw-canary-secret"})
    assert "raw-canary-secret" not in str(raised.value)


def test_a_sandbox_that_cannot_listen_fails_at_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr(EmbeddedSandbox, "bind_address", "192.0.2.1")  # not an address here
    started = time.monotonic()
    with pytest.raises(SandboxStartError, match="cannot listen on 192.0.2.1"):
        EmbeddedSandbox("s").start()
    status = main(
        ["--settings", str(tmp_path / "absent.toml"), "--sandbox", "send", "add", "--json"]
    )
    captured = capsys.readouterr()
    assert status == 1 and captured.out == ""
    assert captured.err.splitlines()[-1].startswith("firehose-console: SandboxStartError:")
    assert "Traceback" not in captured.err and time.monotonic() - started < 5


def test_a_sandbox_that_hangs_while_starting_gives_up_in_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto.server import ThreadedMotoServer

    stuck = threading.Event()
    monkeypatch.setattr(ThreadedMotoServer, "_server_entry", lambda self: stuck.wait(30))
    monkeypatch.setattr(EmbeddedSandbox, "start_timeout_seconds", 0.5)
    started = time.monotonic()
    with pytest.raises(SandboxStartError, match="did not start within 0.5 s"):
        EmbeddedSandbox("s").start()
    assert time.monotonic() - started < 3
    stuck.set()
