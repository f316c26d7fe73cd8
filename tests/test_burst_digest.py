"""The event digest: a storm of events coalesced per interval, nothing lost in the counts,
memory bounded whatever the rate; and the honest tally the progress bar shows."""

from __future__ import annotations

import gc
import io
import threading
import tracemalloc
from datetime import UTC, datetime

import pytest

from console.cli_output import ProgressBar
from engine.alerts import Alert, AlertSample, Severity
from engine.event_digest import DeliveryCounter, DigestPump, DigestSink
from engine.events import (
    AlertRaised,
    AttemptFailed,
    AttemptStarted,
    DeadLettered,
    DeliveryEvent,
    DeliveryGaveUp,
    RateAdjusted,
    RateChange,
    RecordDelivered,
)
from engine.failures import AlertType, Failure, FailureClass
from engine.records import MessageKind

AT = datetime(2024, 5, 1, tzinfo=UTC)
THROTTLED = Failure(FailureClass.THROTTLED, "ServiceUnavailableException", "Slow down.", 503)
DENIED = Failure(FailureClass.ACCESS_DENIED, "AccessDeniedException", "no", 400)


def started(n: int, attempt: int = 1) -> AttemptStarted:
    return AttemptStarted(f"m{n}", MessageKind.ADD, attempt, AT)


def failed(n: int, attempt: int, will_retry: bool, failure: Failure = THROTTLED) -> AttemptFailed:
    return AttemptFailed(f"m{n}", MessageKind.ADD, attempt, failure, will_retry, 0.1, AT)


def delivered(n: int, attempts: int = 1) -> RecordDelivered:
    return RecordDelivered(f"m{n}", MessageKind.ADD, f"id{n}", attempts, 0.01, AT)


def gave_up(n: int, attempts: int, failure: Failure = THROTTLED) -> DeliveryGaveUp:
    return DeliveryGaveUp(f"m{n}", MessageKind.ADD, attempts, failure, AT)


def alert(alert_type: AlertType, count: int, severity: Severity = Severity.WARNING) -> AlertRaised:
    return AlertRaised(Alert(alert_type, severity, count, AT, AT, AlertSample({}, {})))


def one_message_lifecycle(n: int) -> list[DeliveryEvent]:
    """Every third message is throttled once then delivered; every seventh gives up."""
    if n % 7 == 0:
        return [
            started(n),
            failed(n, 1, True),
            alert(AlertType.INTERNAL_SERVER_ERROR, n),
            started(n, 2),
            failed(n, 2, False),
            gave_up(n, 2),
            DeadLettered(f"m{n}", "/tmp/dead.jsonl"),
        ]
    if n % 3 == 0:
        return [started(n), failed(n, 1, True), started(n, 2), delivered(n, 2)]
    return [started(n), delivered(n)]


# -- the tally ---------------------------------------------------------------------------------


def test_retrying_counts_messages_between_a_retryable_failure_and_their_fate() -> None:
    counter = DeliveryCounter()
    retried_twice: list[DeliveryEvent] = [
        started(1),
        failed(1, 1, True),
        started(1, 2),
        failed(1, 2, True),
    ]
    for event in retried_twice:
        counter.count(event)
    assert counter.tally().retrying == 1  # one message, however many attempts
    counter.count(started(2))
    counter.count(failed(2, 1, False, DENIED))  # not retryable: straight to failed
    counter.count(gave_up(2, 1, DENIED))
    assert counter.tally().retrying == 1 and counter.tally().failed == 1
    counter.count(started(1, 3))
    counter.count(delivered(1, 3))
    tally = counter.tally()
    assert (tally.delivered, tally.retrying, tally.failed, tally.throttled) == (1, 0, 1, 2)
    assert tally.attempts == 4 and tally.done == 2


def test_a_message_that_gives_up_after_retrying_leaves_retrying() -> None:
    counter = DeliveryCounter()
    for event in one_message_lifecycle(7):
        counter.count(event)
    tally = counter.tally()
    assert (tally.retrying, tally.failed, tally.dead_lettered, tally.delivered) == (0, 1, 1, 0)


# -- the digest --------------------------------------------------------------------------------


def test_nothing_is_lost_in_the_counts_from_many_threads() -> None:
    sink = DigestSink(recent_limit=50)
    per_thread = 3000

    def write_messages(base: int) -> None:
        for n in range(base, base + per_thread):
            for event in one_message_lifecycle(n):
                sink(event)

    threads = [
        threading.Thread(target=write_messages, args=(base,))
        for base in range(0, 4 * per_thread, per_thread)
    ]
    digests = []
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        digests.append(sink.take())  # taking while they write loses nothing either
    digests.append(sink.take())
    expected: dict[str, int] = {}
    for n in range(4 * per_thread):
        for event in one_message_lifecycle(n):
            name = type(event).__name__
            expected[name] = expected.get(name, 0) + 1
    summed: dict[str, int] = {}
    for digest in digests:
        for name, count in digest.counts.items():
            summed[name] = summed.get(name, 0) + count
    assert summed == expected == dict(digests[-1].totals)
    tally = digests[-1].tally
    gave_up_count = len(range(0, 4 * per_thread, 7))
    assert tally.failed == tally.dead_lettered == gave_up_count
    assert tally.delivered == 4 * per_thread - gave_up_count and tally.retrying == 0


def test_memory_stays_bounded_whatever_the_number_of_events() -> None:
    lifecycles = [event for n in range(21) for event in one_message_lifecycle(n)]

    def grow(rounds: int) -> int:
        sink = DigestSink(recent_limit=100)
        gc.collect()
        tracemalloc.start()
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(rounds):
            for event in lifecycles:  # the same objects: only what the sink keeps can grow
                sink(event)
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return after - before

    small, large = grow(20), grow(800)  # about 1,700 and 67,000 events
    assert large < small + 16 * 1024  # 40× the events, no more memory to speak of


def test_a_digest_keeps_the_last_events_for_the_log_and_says_how_many_it_left_out() -> None:
    sink = DigestSink(recent_limit=5)
    for n in range(12):
        sink(started(n))
    sink(alert(AlertType.INTERNAL_SERVER_ERROR, 1))
    digest = sink.take()
    assert all(isinstance(event, AttemptStarted) for event in digest.recent)
    recent_ids = [event.message_id for event in digest.recent if isinstance(event, AttemptStarted)]
    assert recent_ids == ["m7", "m8", "m9", "m10", "m11"]
    assert digest.recent_dropped == 7  # alerts are not logged events: they come as alerts
    assert digest.events == 13


def test_alerts_come_as_the_latest_state_of_each_type() -> None:
    sink = DigestSink()
    for count in range(1, 500):
        sink(alert(AlertType.INTERNAL_SERVER_ERROR, count))
    sink(alert(AlertType.RETRY_LIMIT_EXCEEDED, 1, Severity.FATAL))
    sink(alert(AlertType.INTERNAL_SERVER_ERROR, 500, Severity.FATAL))
    digest = sink.take()
    by_type = {a.type: a for a in digest.alerts}
    assert len(digest.alerts) == 2
    assert by_type[AlertType.INTERNAL_SERVER_ERROR].count == 500
    assert by_type[AlertType.INTERNAL_SERVER_ERROR].severity is Severity.FATAL
    assert sink.take().alerts == ()  # only alerts that changed in the interval


def test_each_take_covers_its_own_interval_and_the_tally_carries_on() -> None:
    now = [100.0]
    sink = DigestSink(clock=lambda: now[0])
    for n in range(10):
        sink(delivered(n))
    now[0] = 100.5
    first = sink.take()
    assert first.seconds == 0.5 and first.counts == {"RecordDelivered": 10}
    sink(RateAdjusted(50.0, 100.0, RateChange.DECREASED, AT))
    now[0] = 101.0
    second = sink.take()
    assert second.counts == {"RateAdjusted": 1} and second.rate is not None
    assert second.rate.records_per_second == 50.0 and second.tally.delivered == 10
    assert sink.take().empty
    sink.clear()
    assert sink.tally().delivered == 0


def test_the_pump_hands_over_digests_and_the_last_one_on_stop() -> None:
    sink = DigestSink()
    received = []
    got_one = threading.Event()

    def consume(digest) -> None:
        received.append(digest)
        got_one.set()

    with DigestPump(sink, consume, interval_seconds=0.01):
        sink(delivered(1))
        assert got_one.wait(5)
        for n in range(2, 1001):
            sink(delivered(n))
    assert sum(d.counts.get("RecordDelivered", 0) for d in received) == 1000
    assert all(not d.empty for d in received)


def test_a_failing_consumer_stops_the_pump_and_keeps_the_error() -> None:
    sink = DigestSink()
    pump = DigestPump(sink, lambda digest: 1 / 0, interval_seconds=0.01).start()
    sink(delivered(1))
    pump._thread.join(5)  # type: ignore[union-attr]
    pump.stop()
    assert isinstance(pump.error, ZeroDivisionError)


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        DigestSink(recent_limit=-1)
    with pytest.raises(ValueError):
        DigestPump(DigestSink(), print, interval_seconds=0)


# -- the CLI progress bar ----------------------------------------------------------------------


def test_the_progress_bar_shows_delivered_retrying_failed_speed_and_a_lowered_limit() -> None:
    now = [0.0]
    out = io.StringIO()
    bar = ProgressBar(out, clock=lambda: now[0])
    bar.start(10)
    first_second: list[DeliveryEvent] = [
        started(1),
        failed(1, 1, True),
        started(2),
        delivered(2),
        gave_up(3, 1),
    ]
    for event in first_second:
        bar.on_event(event)
    now[0] = 1.0
    for n in range(4, 8):
        bar.on_event(delivered(n))
    line = bar.line()
    assert "6/10" in line and "delivered 5" in line and "retrying 1" in line
    assert "failed 1" in line and "5 rec/s" in line and "limit" not in line
    bar.on_event(RateAdjusted(1000.0, 1000.0, RateChange.STARTED, AT))
    assert "limit" not in bar.line()
    bar.on_event(RateAdjusted(250.0, 1000.0, RateChange.DECREASED, AT))
    assert "limit 250/s" in bar.line()
    bar.finish()
    assert out.getvalue().endswith("\n") and "\r" in out.getvalue()
