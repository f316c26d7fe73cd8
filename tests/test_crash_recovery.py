"""A send killed mid-burst loses nothing: every message is acknowledged in the destination or
listed for re-send, and after the re-send the destination holds each exactly once, apart from
those reported as possible duplicates.

The destination must outlive the killed process, so it is an embedded sandbox in the test
process, reached through the settings' ``endpoint_url`` (not ``--sandbox``, which would die with
the subprocess), behind a proxy that can hold Firehose's answers back: the kill then lands with
calls whose records were written but whose RecordIds never came back (fate unknown).
"""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import tomllib
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.sandbox import EmbeddedSandbox
from engine.settings_file import (
    load_settings,
    save_settings,
    settings_from_document,
    temporary_leftovers,
)
from engine.settings_template import render_settings_document

ROOT = Path(__file__).resolve().parents[1]
COUNT = 60
SETTINGS = """
[account]
access_key_id = "AKIAIOSFODNN7EXAMPLE"

[connections.crash]
delivery_stream_name = "{stream}"
endpoint_url = "http://127.0.0.1:{port}"

[delivery]
state_dir = "{state}"
max_attempts = 3
backoff_base_seconds = 0.01
backoff_cap_seconds = 0.05
concurrency = {concurrency}
batch_size = 10
"""


class AnswerHoldingProxy:
    """A TCP proxy to the destination. Once ``hold`` is set, requests still reach it (and their
    records are written) but no answer comes back."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.hold = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, answers: bool) -> None:
        try:
            while data := source.recv(65536):
                if not (answers and self.hold.is_set()):
                    target.sendall(data)
        except OSError:
            pass
        finally:
            source.close()
            target.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def proxy(destination: EmbeddedSandbox) -> Iterator[AnswerHoldingProxy]:
    port = int(destination.endpoint_url.rsplit(":", 1)[1])
    running = AnswerHoldingProxy(port)
    yield running
    running.close()


@pytest.fixture(scope="module")
def destination() -> Iterator[EmbeddedSandbox]:
    with EmbeddedSandbox("crash-tests") as sandbox:
        yield sandbox


@pytest.fixture
def stream(destination: EmbeddedSandbox) -> str:
    name = f"crash-{uuid.uuid4().hex[:8]}"
    destination.ensure_stream(name)
    return name


def settings_file(tmp_path: Path, port: int, stream: str, **extra) -> Path:
    path = tmp_path / "settings.toml"
    values = {"concurrency": 2, **extra}
    path.write_text(SETTINGS.format(stream=stream, port=port, state=tmp_path / "state", **values))
    return path


def environment() -> dict[str, str]:
    return {**os.environ, "FIREHOSE_CONSOLE_ACCOUNT__SECRET_ACCESS_KEY": "crash-test-secret"}


def console(settings: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console", "--settings", str(settings), *argv],
        cwd=ROOT,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def user_index(data: bytes) -> int:
    """Which synthetic user a record is for (``--count N`` users get CustomerId ``…-N``)."""
    return int(json.loads(data)["UserIdentities"]["CustomerId"].rsplit("-", 1)[1])


def arrived(destination: EmbeddedSandbox, stream: str) -> Counter[int]:
    return Counter(user_index(record.data) for record in destination.delivered_records(stream))


def settled_count(outbox: Path) -> int:
    """Messages tombstoned so far (one per line, or a call's acknowledged ones in one line)."""
    try:
        lines = outbox.read_text().splitlines()
    except FileNotFoundError:
        return 0
    count = 0
    for line in lines:
        try:
            done = json.loads(line).get("done")
        except ValueError:  # the line being written
            continue
        count += len(done) if isinstance(done, list) else done is not None
    return count


def wait_for(
    condition: Callable[[], bool],
    what: str,
    process: subprocess.Popen[str] | subprocess.Popen[bytes],
) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert process.poll() is None, f"the send ended before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.mark.parametrize(
    "argv",
    [
        ["send", "add", "--count", str(COUNT), "--rate", "20"],
        ["send", "add", "--count", str(COUNT), "--rate", "20", "--batch"],
    ],
    ids=["put-record", "put-record-batch"],
)
def test_a_killed_burst_loses_nothing_and_replay_completes_it(
    tmp_path: Path,
    destination: EmbeddedSandbox,
    proxy: AnswerHoldingProxy,
    stream: str,
    argv: list[str],
) -> None:
    settings = settings_file(tmp_path, proxy.port, stream)
    outbox = tmp_path / "state" / "outbox" / "crash.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "console", "--settings", str(settings), *argv],
        cwd=ROOT,
        env=environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(lambda: settled_count(outbox) >= 10, "10 answers", process)
    proxy.hold.set()
    time.sleep(0.2)  # answers already on their way are through; every later one is held
    # Kill once the destination holds a record whose answer never came back.
    wait_for(
        lambda: sum(arrived(destination, stream).values()) > settled_count(outbox),
        "a call in flight",
        process,
    )
    process.send_signal(signal.SIGKILL)
    assert process.wait(10) == -signal.SIGKILL
    proxy.hold.clear()

    before = arrived(destination, stream)
    assert before and sum(before.values()) < COUNT
    assert max(before.values()) == 1

    listed = console(settings, "dead-letters", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    letters = json.loads(listed.stdout)["dead_letters"]
    unknown = {
        user_index(base64.b64decode(x["data_base64"])) for x in letters if x["possible_duplicate"]
    }
    to_resend = {user_index(base64.b64decode(x["data_base64"])) for x in letters}
    notice = [line for line in listed.stderr.splitlines() if "interrupted run" in line]
    assert len(notice) == 1 and f"{len(letters)} messages from an interrupted run" in notice[0]
    assert "(possible duplicates)" in notice[0] and "dead-letters replay` re-sends" in notice[0]
    assert unknown & set(before)  # some did arrive although their answer never came
    assert set(before) | to_resend == set(range(1, COUNT + 1))  # none missing
    assert not (set(before) & to_resend) - unknown  # only the unknown may be both
    assert all(
        x["failure_class"] == ("UNKNOWN_FATE" if x["possible_duplicate"] else "INTERRUPTED_UNSENT")
        for x in letters
    )

    replayed = console(settings, "dead-letters", "replay", "--json")
    assert replayed.returncode == 0, replayed.stderr
    report = json.loads(replayed.stdout)
    assert report["delivered"] == len(letters) and report["possible_duplicates"] == len(unknown)
    after = arrived(destination, stream)
    assert set(after) == set(range(1, COUNT + 1))
    duplicated = {index for index, times in after.items() if times > 1}
    assert duplicated and duplicated <= unknown and max(after.values()) <= 2

    again = console(settings, "dead-letters", "list", "--json")
    assert json.loads(again.stdout)["dead_letters"] == []
    assert "interrupted run" not in again.stderr
    assert not (tmp_path / "state" / "outbox" / "crash.jsonl").exists()


@pytest.mark.parametrize(
    ("stop", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"]
)
def test_a_burst_stopped_by_ctrl_c_or_sigterm_accounts_for_every_message(
    tmp_path: Path,
    destination: EmbeddedSandbox,
    proxy: AnswerHoldingProxy,
    stream: str,
    stop: signal.Signals,
    status: int,
) -> None:
    settings = settings_file(tmp_path, proxy.port, stream, concurrency=1)
    outbox = tmp_path / "state" / "outbox" / "crash.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "console", "--settings", str(settings), "send", "add"]
        + ["--count", str(COUNT), "--rate", "20", "--json"],
        cwd=ROOT,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: settled_count(outbox) >= 5, "5 answers", process)
    process.send_signal(stop)
    out, err = process.communicate(timeout=30)
    assert process.returncode == status
    assert "Traceback" not in err
    report = json.loads(out)  # one valid document, every message accounted for
    assert len(report["records"]) == report["requested"] == COUNT
    assert report["delivered"] + report["not_sent"] == COUNT and report["failed"] == 0
    assert report["not_sent"] == sum(1 for r in report["records"] if r["not_sent"]) > 0
    assert err.strip().splitlines()[-1] == (
        f"firehose-console: interrupted: {report['not_sent']} message(s) not sent, kept as dead "
        "letters (`firehose-console dead-letters replay` sends them)"
    )
    listed = console(settings, "dead-letters", "list")
    assert listed.returncode == 0 and "from an interrupted run" not in listed.stderr
    before = arrived(destination, stream)
    assert sum(before.values()) == report["delivered"]
    assert f"{COUNT - sum(before.values())} dead letter(s)" in listed.stdout
    assert listed.stdout.count("NEVER SENT") == report["not_sent"]


# -- a settings save killed at random moments ---------------------------------------------

VERSION_A = """
[account]
access_key_id = "AKIAIOSFODNN7EXAMPLE"
secret_access_key = "save-kill-secret"

[connections.travel]
delivery_stream_name = "mPTravelAudiences"
"""
# Longer than A, so a mix of the two could not pass for either.
VERSION_B = VERSION_A.replace('"mPTravelAudiences"', '"other-stream"') + "".join(
    f'\n[connections.c{n}]\ndelivery_stream_name = "stream-{n}"\n' for n in range(40)
)
SAVER = """
import itertools, sys
from pathlib import Path
from engine.settings_file import load_settings, save_settings, settings_from_document
import tomllib
path = Path(sys.argv[1])
versions = [settings_from_document(tomllib.loads(text), "v") for text in sys.argv[2:]]
for n in itertools.count():
    save_settings(versions[(n + 1) % 2], load_settings(path))
    if n == 2:
        print("saving", flush=True)
"""


def rendered(text: str) -> str:
    """The exact text a save writes for a version."""
    settings = settings_from_document(tomllib.loads(text), "v")
    secret = settings.account.secret_access_key.get_secret_value()
    return render_settings_document(settings.to_document(secret=secret))  # commented, as saved


def test_a_save_killed_at_any_moment_leaves_the_old_or_the_new_file(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    versions = {rendered(VERSION_A), rendered(VERSION_B)}
    path.write_text(rendered(VERSION_A))
    dice = random.Random(5)
    for _ in range(6):
        saver = subprocess.Popen(
            [sys.executable, "-c", SAVER, str(path), VERSION_A, VERSION_B],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert saver.stdout is not None and saver.stdout.readline() == "saving\n"
        time.sleep(dice.uniform(0, 0.05))
        saver.send_signal(signal.SIGKILL)
        saver.wait(10)
        assert path.read_text() in versions  # exactly one version, never a mix
        assert (tmp_path / "settings.toml.bak").read_text() in versions
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        load_settings(path)  # and it loads
    # A kill mid-write may leave a temporary file: private, never read, removed by a later save.
    leftovers = temporary_leftovers(path)
    assert all(stat.S_IMODE(leftover.stat().st_mode) == 0o600 for leftover in leftovers)
    if not leftovers:  # the dice never hit the write: make one as a kill would
        leftover = tmp_path / ".settings.toml.firehose-console-tmp-abcd1234"
        leftover.write_text(rendered(VERSION_B)[:50])
        leftovers = [leftover]
    for leftover in leftovers:
        os.utime(leftover, (1, 1))
    loaded = load_settings(path)
    assert loaded.settings.account.secret_access_key.get_secret_value() == "save-kill-secret"
    save_settings(loaded.settings, loaded)
    assert temporary_leftovers(path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["settings.toml", "settings.toml.bak"]
