"""Bursts end to end on the embedded sandbox: delivered means delivered — with records failing
inside batches, the S3 destination holds each record exactly once — and the CLI's verify on a
real endpoint stays light."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from engine.events import RateAdjusted, RateChange
from engine.records import Action
from engine.session import ConsoleSession
from engine.settings_file import load_settings

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = """
[connections.travel]
delivery_stream_name = "{stream}"

[delivery]
max_attempts = 20
backoff_base_seconds = 0.001
backoff_cap_seconds = 0.002
concurrency = 4

[sandbox]
failure_rate = {rate}
failures = {failures}
seed = 7
"""


def session_with_chaos(tmp_path: Path, rate: float, failures: list[str], events: list):
    stream = f"burst-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "settings.toml"
    path.write_text(SETTINGS.format(stream=stream, rate=rate, failures=failures))
    session = ConsoleSession(
        load_settings(path), use_sandbox=True, sink=events.append, sleep=lambda seconds: None
    )
    return session, stream


def customer_ids_in_s3(session: ConsoleSession) -> Counter[str]:
    return Counter(
        record.decoded["UserIdentities"]["CustomerId"]
        for record in session.delivered_records()
        if record.decoded
    )


def test_partial_batch_chaos_leaves_each_record_in_s3_exactly_once(tmp_path: Path) -> None:
    events: list = []
    session, _ = session_with_chaos(tmp_path, 0.8, ["partial-batch"], events)
    try:
        report = session.send(Action.ADD, count=1300, batch=True)
        assert (report.requested, report.delivered, report.failed) == (1300, 1300, 0)
        retried = [o for o in report.outcomes if o.attempts > 1]
        assert len(retried) > 200  # the chaos really failed records inside batches
        in_s3 = customer_ids_in_s3(session)
    finally:
        session.close()
    expected = {f"p.fogg138-{n}" for n in range(1, 1301)}
    assert set(in_s3) == expected
    assert set(in_s3.values()) == {1}  # exactly once: no record re-sent after its RecordId
    assert any(isinstance(e, RateAdjusted) and e.change is RateChange.DECREASED for e in events)


def test_failed_single_puts_are_retried_into_s3_exactly_once(tmp_path: Path) -> None:
    events: list = []
    session, _ = session_with_chaos(tmp_path, 0.4, ["throttling", "server-error"], events)
    try:
        report = session.send(Action.REMOVE, count=80)
        assert report.delivered == 80 and any(o.attempts > 1 for o in report.outcomes)
        in_s3 = customer_ids_in_s3(session)
    finally:
        session.close()
    assert in_s3 == Counter({f"p.fogg138-{n}": 1 for n in range(1, 81)})


def test_verify_against_a_real_endpoint_loads_neither_moto_nor_textual(tmp_path: Path) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text(
        '[account]\naccess_key_id = "AKIAIOSFODNN7EXAMPLE"\n'
        'secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"\n'
        '[connections.travel]\ndelivery_stream_name = "s"\n'
        # Nothing listens on the discard port: verify fails at once, never leaving loopback.
        'endpoint_url = "http://127.0.0.1:9"\n'
        "[delivery]\nconnect_timeout_seconds = 1\nread_timeout_seconds = 1\n"
    )
    probe = (
        "import io, contextlib, sys\n"
        "from console.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    status = main(['--settings', {str(settings)!r}, 'verify', '--json'])\n"
        "print(status)\n"
        "print('\\n'.join(sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    status, *loaded = result.stdout.split()
    assert status == "1"  # the endpoint is not there: a failed check, not a crash
    assert "moto" not in loaded and "textual" not in loaded


@pytest.mark.parametrize("command", [["preview", "add"], ["preview", "identity-change"]])
def test_preview_loads_neither_moto_nor_textual(tmp_path: Path, command: list[str]) -> None:
    probe = (
        "import io, contextlib, sys\n"
        "from console.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    main(['--settings', {str(tmp_path / 'absent.toml')!r}, *{command!r}])\n"
        "print('\\n'.join(sys.modules))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert "moto" not in loaded and "textual" not in loaded
    # Nor boto3 and botocore's client machinery (half a second): a preview calls no AWS API.
    assert "boto3" not in loaded and "botocore.client" not in loaded


def test_a_sends_elapsed_time_leaves_out_starting_the_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The achieved rate is records over the send's own time, not the sandbox's boot."""
    session, _ = session_with_chaos(tmp_path, 0.0, [], [])
    real_deliverer = ConsoleSession.deliverer

    def slow_to_start(self: ConsoleSession):
        time.sleep(0.5)  # as a cold sandbox takes
        return real_deliverer(self)

    monkeypatch.setattr(ConsoleSession, "deliverer", slow_to_start)
    try:
        report = session.send(Action.ADD, count=3)
    finally:
        session.close()
    assert report.delivered == 3 and report.elapsed_seconds < 0.5
