"""A canary secret run through every command and error path never shows up: not in any byte of
output, not in any file written (journals, temporary files), not in logs, reprs, alerts, events
or exceptions, whether it came from the settings file or the environment."""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pydantic import SecretStr

from console.cli import main
from engine.gateway import FirehoseGateway, GatewayConfig
from engine.records import Action
from engine.session import ConsoleSession
from engine.settings_file import SettingsError, load_settings, save_settings

ROOT = Path(__file__).resolve().parents[1]
CANARY = "canary-SECRET-d4f1c0ffee9b7a21"
KEY_ID = "AKIAIOSFODNN7EXAMPLE"
ACCOUNT = f'[account]\naccess_key_id = "{KEY_ID}"\nsecret_access_key = "{CANARY}"\n'
CHAOS = """
[connections.travel]
delivery_stream_name = "canary-stream"

[delivery]
state_dir = "{state}"
max_attempts = 2
backoff_base_seconds = 0.01
backoff_cap_seconds = 0.02

[sandbox]
failure_rate = {rate}
failures = ["throttling", "server-error", "timeout", "access-denied", "partial-batch"]
seed = 3
"""
ENDPOINT = """
[connections.travel]
delivery_stream_name = "canary-stream"
endpoint_url = "{endpoint}"

[delivery]
state_dir = "{state}"
max_attempts = 2
backoff_base_seconds = 0.01
backoff_cap_seconds = 0.02
connect_timeout_seconds = 0.5
read_timeout_seconds = 0.5
"""
BAD_SETTINGS = {
    "secret pasted as the region": ACCOUNT
    + f'[connections.travel]\ndelivery_stream_name = "s"\nregion = "{CANARY}"\n',
    "account is not a table": f'account = "{CANARY}"\n[connections.travel]\n'
    'delivery_stream_name = "s"\n',
    "account is a list": f'account = ["{CANARY}"]\n'
    '[connections.travel]\ndelivery_stream_name = "s"\n',
    "secret of the wrong type": f'[account]\naccess_key_id = "{KEY_ID}"\n'
    f'secret_access_key = ["{CANARY}"]\n[connections.travel]\ndelivery_stream_name = "s"\n',
    "secret inside another value": ACCOUNT
    + '[connections.travel]\ndelivery_stream_name = "s"\n'
    + f'identities_to_exclude = [{{ x = "{CANARY}" }}]\n',
    "unterminated secret": f'[account]\nsecret_access_key = "{CANARY}\n',
    "secret without a key id": f'[account]\nsecret_access_key = "{CANARY}"\n'
    '[connections.travel]\ndelivery_stream_name = "s"\n',
    "secret with a malformed key id": f'[account]\naccess_key_id = "{CANARY}"\n'
    f'secret_access_key = "{CANARY}"\n[connections.travel]\ndelivery_stream_name = "s"\n',
}


class EchoingFirehose(ThreadingHTTPServer):
    """A server that quotes the secret back in its error (say, a misbehaving proxy)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _EchoHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _EchoHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        message = f"The key {CANARY} is not authorized (see {self.headers.get('Authorization')})"
        body = json.dumps({"__type": "InvalidArgumentException", "message": message}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echoing() -> Iterator[EchoingFirehose]:
    server = EchoingFirehose()
    yield server
    server.shutdown()


def closed_port_url() -> str:
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Temporary files of this test land where the walk can see them."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setenv("TMPDIR", str(directory))
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


class Transcript:
    """Runs the CLI in this process and keeps every byte it printed."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.printed: list[str] = []
        self.statuses: list[int] = []

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        status = main(list(argv))
        captured = self.capsys.readouterr()
        self.printed += [captured.out, captured.err]
        self.statuses.append(status)
        return status, captured.out, captured.err

    def assert_clean(self) -> None:
        for text in self.printed:
            assert CANARY not in text
        assert any(self.printed)  # something was printed at all


def files_holding_canary(root: Path, *, skip: Path) -> list[Path]:
    return [
        path
        for path in root.rglob("*")
        if path.is_file() and skip not in path.parents and CANARY.encode() in path.read_bytes()
    ]


def test_canary_from_the_file_never_leaks(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    private_tmp: Path,
    echoing: EchoingFirehose,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    config = tmp_path / "config"
    config.mkdir()
    state = tmp_path / "state"
    run = Transcript(capsys)

    chaos = config / "chaos.toml"
    chaos.write_text(ACCOUNT + CHAOS.format(state=state, rate=0.7))
    sandbox = ["--settings", str(chaos), "--sandbox"]
    for command in (
        ["verify"],
        ["verify", "--json"],
        ["preview", "add"],
        ["preview", "identity-change", "--json"],
        ["send", "add", "--count", "6"],
        ["send", "remove", "--count", "6", "--json"],
        ["send", "delete", "--count", "12", "--batch", "--json"],
        ["dead-letters", "list"],
        ["dead-letters", "list", "--json"],
        ["dead-letters", "replay"],
        ["dead-letters", "replay", "--json"],
    ):
        run(*sandbox, *command)
    assert 1 in run.statuses  # chaos did make things fail

    for endpoint in (echoing.url, closed_port_url()):
        settings = config / "endpoint.toml"
        settings.write_text(ACCOUNT + ENDPOINT.format(endpoint=endpoint, state=state))
        # botocore's DEBUG wire log (which the console never turns on) records raw answers, so
        # it would show what the echoing server made up; a real endpoint never gets the secret.
        level = logging.WARNING if endpoint == echoing.url else logging.DEBUG
        with caplog.at_level(level):
            for command in (
                ["verify"],
                ["verify", "--json"],
                ["send", "add"],
                ["send", "add", "--json"],
            ):
                run("--settings", str(settings), *command)
        run("--settings", str(settings), "dead-letters", "list", "--json")

    for name, text in BAD_SETTINGS.items():
        bad = config / f"bad-{len(run.statuses)}.toml"
        bad.write_text(text)
        status, out, err = run("--settings", str(bad), "send", "add", "--json")
        assert status == 2 and "bad settings" in err, name

    # The last-resort handler, should anything ever quote the secret in an exception.
    def explode(self: ConsoleSession) -> None:
        raise RuntimeError(f"something quoted {CANARY}")

    monkeypatch.setattr(ConsoleSession, "verify", explode)
    status, _, err = run("--settings", str(chaos), "--sandbox", "verify")
    assert status == 1 and "RuntimeError: something quoted **********" in err
    monkeypatch.undo()

    run("init", str(tmp_path / "out" / "new.toml"))
    run.assert_clean()
    assert CANARY not in caplog.text
    assert files_holding_canary(tmp_path, skip=config) == []
    assert list(state.rglob("*.jsonl"))  # journals were written (and searched)


def test_canary_from_the_environment_never_leaks(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    private_tmp: Path,
    echoing: EchoingFirehose,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FIREHOSE_CONSOLE_ACCOUNT__SECRET_ACCESS_KEY", CANARY)
    state = tmp_path / "state"
    settings = tmp_path / "settings.toml"
    settings.write_text(
        f'[account]\naccess_key_id = "{KEY_ID}"\n'
        + ENDPOINT.format(endpoint=echoing.url, state=state)
    )
    run = Transcript(capsys)
    for command in (
        ["verify", "--json"],
        ["send", "add", "--count", "3"],
        ["dead-letters", "list"],
    ):
        run("--settings", str(settings), *command)
    pasted = tmp_path / "pasted" / "bad.toml"  # the user pasted the secret in the wrong place
    pasted.parent.mkdir()
    pasted.write_text(f'[connections.travel]\ndelivery_stream_name = "s"\nregion = "{CANARY}"\n')
    status, _, err = run("--settings", str(pasted), "preview", "add")
    assert status == 2 and "'**********' is not a region" in err

    def explode(self: ConsoleSession, action: Action) -> None:
        raise ValueError(f"quoted {CANARY}")

    monkeypatch.setattr(ConsoleSession, "preview", explode)
    status, _, err = run("--settings", str(settings), "preview", "add")
    assert status == 1 and "ValueError: quoted **********" in err
    monkeypatch.undo()
    monkeypatch.setenv("FIREHOSE_CONSOLE_ACCOUNT__SECRET_ACCESS_KEY", CANARY)
    run.assert_clean()

    # Saving never writes a secret that came from the environment into the file.
    loaded = load_settings(settings)
    assert loaded.settings.account.secret_access_key.get_secret_value() == CANARY
    save_settings(loaded.settings, loaded)
    assert files_holding_canary(tmp_path, skip=pasted.parent) == []

    # And a real process, start to finish.
    environment = {**os.environ, "FIREHOSE_CONSOLE_ACCOUNT__SECRET_ACCESS_KEY": CANARY}
    for command in (["send", "add", "--json"], ["verify"], ["dead-letters", "list"]):
        result = subprocess.run(
            [sys.executable, "-m", "console", "--settings", str(settings), *command],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            timeout=120,
        )
        assert result.returncode == 1 or command[0] == "dead-letters"
        assert CANARY.encode() not in result.stdout + result.stderr


def test_reprs_events_alerts_and_errors_hold_no_canary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, echoing: EchoingFirehose
) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text(ACCOUNT + ENDPOINT.format(endpoint=echoing.url, state=tmp_path / "state"))
    loaded = load_settings(settings)
    events: list = []
    session = ConsoleSession(loaded, sink=events.append, rng=random.Random(1))
    try:
        report = session.send(Action.ADD, count=2)
        verification = session.verify()
        letters = session.dead_letters()
    finally:
        session.close()
    assert report.failed == 2 and events and letters
    texts = [
        repr(loaded),
        str(loaded),
        repr(loaded.settings),
        str(loaded.settings),
        loaded.settings.model_dump_json(),
        repr(loaded.settings.model_dump()),
        repr(GatewayConfig("us-east-1", secret_access_key=SecretStr(CANARY))),
        repr(report),
        json.dumps(report.document()),
        repr(verification),
        json.dumps(verification.document()),
        *(repr(event) for event in events),
        *(repr(letter) for letter in letters),
        repr(session.alerts.alerts()),
    ]
    for text in texts:
        assert CANARY not in text
    assert any("**********" in text for text in texts)  # the echo was there, and masked

    bad = tmp_path / "bad.toml"
    bad.write_text(BAD_SETTINGS["secret pasted as the region"])
    with pytest.raises(SettingsError) as raised:
        load_settings(bad)
    assert CANARY not in str(raised.value) and CANARY not in repr(raised.value)
    gateway = FirehoseGateway(
        GatewayConfig("us-east-1", echoing.url, KEY_ID, SecretStr(CANARY), 0.5, 0.5)
    )
    with pytest.raises(Exception) as raised_call:
        gateway.put_record("canary-stream", b"{}")
    assert CANARY not in str(raised_call.value) and CANARY not in repr(raised_call.value)


@pytest.mark.parametrize(
    "environment",
    [
        {
            "FIREHOSE_CONSOLE_ACCOUNT": json.dumps(
                {"access_key_id": KEY_ID, "secret_access_key": CANARY}
            )
        },
        {
            "FIREHOSE_CONSOLE_ACCOUNT__SECRET_ACCESS_KEY": CANARY,
            "FIREHOSE_CONSOLE_ACCOUNT__ACCESS_KEY_ID": KEY_ID,
        },
        {
            "firehose_console_account": json.dumps(
                {"access_key_id": KEY_ID, "SECRET_ACCESS_KEY": CANARY}
            )
        },
    ],
    ids=["JSON table", "own variable", "lower-case JSON table"],
)
def test_an_environment_secret_in_any_form_is_masked_and_never_saved(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    environment: dict[str, str],
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    run = Transcript(capsys)
    pasted = tmp_path / "pasted.toml"  # the secret pasted in the wrong place, too
    pasted.write_text(f'[connections.travel]\ndelivery_stream_name = "s"\nregion = "{CANARY}"\n')
    status, _, err = run("--settings", str(pasted), "preview", "add")
    assert status == 2 and "'**********' is not a region" in err
    settings = tmp_path / "settings.toml"
    settings.write_text('[connections.travel]\ndelivery_stream_name = "s"\n')
    status, _, err = run("--settings", str(settings), "--sandbox", "preview", "add")
    assert status == 0
    run.assert_clean()
    loaded = load_settings(settings)
    assert loaded.secret_from_environment
    save_settings(loaded.settings, loaded)
    assert files_holding_canary(tmp_path, skip=tmp_path / "none") == [pasted]
