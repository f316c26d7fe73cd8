"""Against the embedded sandbox a send makes one call at a time, whatever
``delivery.concurrency`` says; against any other endpoint it makes that many
(README: "The embedded sandbox")."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from engine.gateway import FirehoseGateway
from engine.records import Action
from engine.session import ConsoleSession
from engine.settings_file import load_settings

DELIVERY = {"concurrency": 4, "batch_size": 10}


class CallsInFlight:
    """Wraps ``FirehoseGateway.put_record_batch``: the most calls that were ever out at once."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.most = 0
        self._now = 0
        self._lock = threading.Lock()
        original = FirehoseGateway.put_record_batch

        def counted(gateway: FirehoseGateway, *args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self._now += 1
                self.most = max(self.most, self._now)
            try:
                time.sleep(0.01)  # long enough for the other threads' calls to start
                return original(gateway, *args, **kwargs)
            finally:
                with self._lock:
                    self._now -= 1

        monkeypatch.setattr(FirehoseGateway, "put_record_batch", counted)


def send_200_in_batches_of_10(session: ConsoleSession) -> None:
    try:
        report = session.send(Action.ADD, count=200, batch=True)
    finally:
        session.close()
    assert (report.requested, report.delivered) == (200, 200)


def test_the_embedded_sandbox_takes_one_call_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(
        '[connections.travel]\ndelivery_stream_name = "one-at-a-time"\n'
        f"[delivery]\nconcurrency = {DELIVERY['concurrency']}\n"
        f'batch_size = {DELIVERY["batch_size"]}\nstate_dir = "{tmp_path / "state"}"\n'
    )
    calls = CallsInFlight(monkeypatch)
    session = ConsoleSession(load_settings(path), use_sandbox=True)

    send_200_in_batches_of_10(session)

    assert calls.most == 1
    assert session.send_concurrency() == 1


def test_another_endpoint_takes_the_configured_concurrency(
    standin_firehose: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    firehose = standin_firehose()
    settings = firehose.settings_file(
        tmp_path / "settings.toml", state_dir=tmp_path / "state", delivery=DELIVERY
    )
    calls = CallsInFlight(monkeypatch)
    session = ConsoleSession(load_settings(settings))

    send_200_in_batches_of_10(session)

    assert session.send_concurrency() == DELIVERY["concurrency"]
    assert calls.most > 1
