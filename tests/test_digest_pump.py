"""The digest pump's owner hears when it dies, can start it again, and can flush it so a
report follows the events it sums up (README: "From a key to Firehose and back")."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from engine.event_digest import DigestPump, DigestSink, EventDigest
from engine.events import RecordDelivered
from engine.records import MessageKind


def delivered(number: int) -> RecordDelivered:
    return RecordDelivered(
        at=datetime.now(UTC),
        message_id=f"m{number}",
        kind=MessageKind.ADD,
        record_id=f"r{number}",
        attempts=1,
        latency_seconds=0.01,
    )


def test_a_failing_consumer_is_reported_to_the_owner_and_the_pump_restarts() -> None:
    sink = DigestSink()
    failures: list[BaseException] = []
    reported = threading.Event()
    received: list[EventDigest] = []
    calls = 0

    def consume(digest: EventDigest) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("screen gone")
        received.append(digest)

    def failed(error: BaseException) -> None:
        failures.append(error)
        reported.set()

    pump = DigestPump(sink, consume, interval_seconds=0.01, on_error=failed).start()
    sink(delivered(1))
    assert reported.wait(5)
    assert isinstance(failures[0], RuntimeError)
    assert isinstance(pump.error, RuntimeError)
    pump.start()  # again, after the failure
    assert pump.error is None
    sink(delivered(2))
    pump.stop()
    assert sum(d.counts.get("RecordDelivered", 0) for d in received) == 1


def test_flush_hands_over_pending_events_in_the_callers_thread() -> None:
    sink = DigestSink()
    received: list[tuple[str, EventDigest]] = []
    pump = DigestPump(
        sink,
        lambda digest: received.append((threading.current_thread().name, digest)),
        interval_seconds=3600,  # the pump's own thread would not hand anything over
    ).start()
    sink(delivered(1))
    sink(delivered(2))
    assert pump.flush()
    assert [(name, d.counts["RecordDelivered"]) for name, d in received] == [
        (threading.current_thread().name, 2)
    ]
    pump.stop()


def test_the_owner_can_restart_the_pump_from_its_error_callback() -> None:
    sink = DigestSink()
    received: list[EventDigest] = []
    failing = True

    def consume(digest: EventDigest) -> None:
        if failing:
            raise RuntimeError("once")
        received.append(digest)

    def restart(error: BaseException) -> None:
        nonlocal failing
        failing = False
        pump.start()

    pump = DigestPump(sink, consume, interval_seconds=0.01, on_error=restart)
    pump.start()
    sink(delivered(1))
    for _ in range(500):
        if not failing:
            break
        threading.Event().wait(0.01)
    sink(delivered(2))
    got = threading.Event()
    for _ in range(500):
        if received:
            got.set()
            break
        threading.Event().wait(0.01)
    assert got.is_set()  # the restarted pump's own thread handed the second event over
    pump.stop()
    assert pump.error is None
