"""A send that steps aside while the console answers a key (README: "Bursts: count, rate,
batches and quotas"): while its gate is held no call starts and no message is built, calls in
flight finish, and the send then goes on with every message accounted for and journaled before
it was sent; a hold that is never released does not stop the send."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from test_burst_streaming import JitterySender, OutboxCheckingSender, session_with

from engine.gateway import BatchEntryResult
from engine.records import Action
from engine.send_gate import SendGate


class WatchedGate(SendGate):
    """A gate that tells how many of the send's threads are waiting at it, held."""

    def __init__(self) -> None:
        super().__init__(max_hold_seconds=3600.0)  # never expires within a test
        self.changed = threading.Condition()
        self.waiting = 0

    def wait(self) -> None:
        if not self.held:
            super().wait()
            return
        with self.changed:
            self.waiting += 1
            self.changed.notify_all()
        try:
            super().wait()
        finally:
            with self.changed:
                self.waiting -= 1
                self.changed.notify_all()

    def until_waiting(self, threads: int) -> None:
        with self.changed:
            self.changed.wait_for(lambda: self.waiting >= threads)


class GatedSender(OutboxCheckingSender):
    """Checks the outbox at every call (every record journaled before it is sent), takes the
    gate during its ``hold_at``-th call (a key pressed), and counts the calls that start while
    the gate is held and those in flight."""

    def __init__(self, outbox_path: Path, gate: SendGate, hold_at: int) -> None:
        super().__init__(outbox_path)
        self.gate = gate
        self.hold_at = hold_at
        self.started_while_held = 0
        self.in_flight = 0

    def _check(self, records: Sequence[bytes]) -> None:
        if self.gate.held:
            self.started_while_held += 1
        super()._check(records)
        if self.calls == self.hold_at:
            self.gate.hold()

    def put_record(self, stream_name: str, data: bytes) -> str:
        with self.lock:
            self.in_flight += 1
        try:
            return super().put_record(stream_name, data)
        finally:
            with self.lock:
                self.in_flight -= 1

    def put_record_batch(
        self, stream_name: str, records: Sequence[bytes]
    ) -> list[BatchEntryResult]:
        with self.lock:
            self.in_flight += 1
        try:
            return super().put_record_batch(stream_name, records)
        finally:
            with self.lock:
                self.in_flight -= 1


def test_a_gate_held_before_the_send_lets_nothing_be_built_or_sent_until_released(
    tmp_path: Path,
) -> None:
    gate = WatchedGate()
    gate.hold()
    sender = GatedSender(tmp_path / "state" / "outbox" / "live.jsonl", gate, hold_at=0)
    session = session_with(sender, tmp_path)
    reports = []
    send = threading.Thread(
        target=lambda: reports.append(session.send(Action.ADD, count=3_000, batch=True, gate=gate))
    )
    try:
        send.start()
        gate.until_waiting(1)  # the builder, at the burst's first message
        assert sender.calls == 0
        outbox = tmp_path / "state" / "outbox" / "live.jsonl"
        assert not outbox.exists() or outbox.read_bytes() == b""  # nothing built, nothing queued
        assert send.is_alive()
        gate.release()
        send.join()
    finally:
        gate.release()
        send.join()
        session.close()
    [report] = reports
    assert (report.requested, report.delivered, report.failed, report.not_sent) == (
        3_000,
        3_000,
        0,
        0,
    )
    assert sender.started_while_held == 0


def test_a_gate_held_mid_send_starts_no_new_call_lets_those_in_flight_finish_then_resumes(
    tmp_path: Path,
) -> None:
    gate = WatchedGate()
    sender = GatedSender(tmp_path / "state" / "outbox" / "live.jsonl", gate, hold_at=10)
    session = session_with(sender, tmp_path, concurrency=4)
    reports = []
    send = threading.Thread(
        target=lambda: reports.append(session.send(Action.ADD, count=3_000, gate=gate))
    )
    try:
        send.start()
        gate.until_waiting(4)  # every worker stopped at the gate: none is in a call
        with sender.lock:
            assert sender.in_flight == 0
            calls_while_held = sender.calls
        # Only the calls of workers already past the gate when it was taken started since.
        assert sender.started_while_held <= 3
        assert 10 <= calls_while_held <= 13
        gate.release()
        send.join()
    finally:
        gate.release()
        send.join()
        session.close()
    [report] = reports
    assert (report.requested, report.delivered, report.failed, report.not_sent) == (
        3_000,
        3_000,
        0,
        0,
    )
    assert sender.calls == 3_000  # one call per record: every record went, once
    assert gate.waits >= 4


def test_a_hold_never_released_slows_the_send_but_does_not_stop_it(tmp_path: Path) -> None:
    # The clock stands still: the hold never expires, so only the bound on each wait (50 ms)
    # lets the send go on.
    gate = SendGate(max_hold_seconds=0.05, clock=lambda: 0.0)
    gate.hold()  # a front that never answers
    sender = JitterySender(failure_rate=0.0)
    session = session_with(sender, tmp_path)
    try:
        report = session.send(Action.ADD, count=600, batch=True, gate=gate)
    finally:
        session.close()
    assert (report.delivered, report.failed, report.not_sent) == (600, 0, 0)
    assert gate.held and gate.waits >= 2  # it waited before building and before its calls


def test_a_hold_ends_when_released_or_once_its_time_is_up() -> None:
    now = [100.0]
    gate = SendGate(max_hold_seconds=0.5, clock=lambda: now[0])
    assert not gate.held
    gate.hold()
    assert gate.held
    gate.release()
    assert not gate.held
    gate.hold()
    now[0] += 0.5
    assert not gate.held  # expired: a stuck front holds the send no longer
    gate.wait()  # returns at once
    assert gate.waits == 0
    gate.hold()
    now[0] += 0.4
    gate.hold()  # a second key extends the hold
    now[0] += 0.4
    assert gate.held
