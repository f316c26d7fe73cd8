"""Coalescing a storm of delivery events into one compact digest per interval.

A burst emits several events per record (attempt started, delivered, alert raised…), thousands
a second. A front that redraws on each one falls behind and queues them without bound. Use a
``DigestSink`` as the session's event sink instead: it counts, and keeps only the latest of
each thing, in memory bounded whatever the input rate; ``take()`` hands over everything since
the previous take as one ``EventDigest``. A ``DigestPump`` calls a consumer with a digest every
interval from its own thread (the TUI posts it to the app as a message).

``DeliveryCounter`` is the honest tally both fronts show: delivered only when a RecordId came
back, retrying while a failed message still has attempts left, failed once given up.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from engine.alerts import Alert
from engine.events import (
    AlertRaised,
    AttemptFailed,
    AttemptStarted,
    DeadLettered,
    DeliveryEvent,
    DeliveryGaveUp,
    RateAdjusted,
    RecordDelivered,
)
from engine.failures import AlertType, FailureClass

# What goes into a digest's attempt log by default: every event but alerts, which the digest
# carries as their latest state instead.
LOGGED_EVENTS: tuple[type, ...] = (
    AttemptStarted,
    AttemptFailed,
    RecordDelivered,
    DeliveryGaveUp,
    DeadLettered,
    RateAdjusted,
)


@dataclass(frozen=True)
class DeliveryTally:
    """Where the messages of a session stand, counted from its events."""

    attempts: int = 0  # calls' worth of attempts started (one per record per attempt)
    delivered: int = 0  # a RecordId came back
    retrying: int = 0  # failed, will be tried again, fate not known yet
    failed: int = 0  # given up on
    dead_lettered: int = 0  # kept in the dead-letter journal
    throttled: int = 0  # attempts Firehose throttled

    @property
    def done(self) -> int:
        """Messages whose fate is known."""
        return self.delivered + self.failed


class DeliveryCounter:
    """Counts events into a DeliveryTally. Not thread-safe: its owner locks around ``count``.

    A message is *retrying* from its first failure that will be retried until it is delivered
    or given up on — counted from the events alone, so memory stays constant.
    """

    __slots__ = ("attempts", "dead_lettered", "delivered", "failed", "retrying", "throttled")

    def __init__(self) -> None:
        self.attempts = self.delivered = self.retrying = 0
        self.failed = self.dead_lettered = self.throttled = 0

    def count(self, event: DeliveryEvent) -> None:
        if isinstance(event, AttemptStarted):
            self.attempts += 1
        elif isinstance(event, RecordDelivered):
            self.delivered += 1
            if event.attempts > 1:
                self.retrying -= 1
        elif isinstance(event, AttemptFailed):
            if event.failure.failure_class is FailureClass.THROTTLED:
                self.throttled += 1
            if event.will_retry and event.attempt == 1:
                self.retrying += 1
        elif isinstance(event, DeliveryGaveUp):
            self.failed += 1
            if event.attempts > 1:
                self.retrying -= 1
        elif isinstance(event, DeadLettered):
            self.dead_lettered += 1

    def tally(self) -> DeliveryTally:
        return DeliveryTally(
            attempts=self.attempts,
            delivered=self.delivered,
            retrying=self.retrying,
            failed=self.failed,
            dead_lettered=self.dead_lettered,
            throttled=self.throttled,
        )


@dataclass(frozen=True)
class EventDigest:
    """Everything that happened in one interval, in a size that does not grow with the rate."""

    seconds: float  # how long the interval was
    counts: Mapping[str, int]  # events by type name (``"RecordDelivered"``…), this interval
    totals: Mapping[str, int]  # events by type name since the sink began (or was cleared)
    tally: DeliveryTally  # since the sink began (or was cleared)
    alerts: tuple[Alert, ...]  # latest state of each alert raised or updated this interval
    recent: tuple[DeliveryEvent, ...]  # the last logged events of the interval, oldest first
    recent_dropped: int  # logged events of the interval that did not fit in ``recent``
    rate: RateAdjusted | None = None  # the latest rate change of the interval, if any
    at: float = 0.0  # the sink's clock when the digest was taken

    @property
    def events(self) -> int:
        """How many events the interval held."""
        return sum(self.counts.values())

    @property
    def empty(self) -> bool:
        return not self.counts


class DigestSink:
    """An EventSink that coalesces events; ``take()`` returns them as one EventDigest.

    Safe to call from any number of threads. Memory is bounded: counts per event type, one
    alert per alert type, one rate, and at most ``recent_limit`` logged events.
    """

    def __init__(
        self,
        *,
        recent_limit: int = 100,
        logged: tuple[type, ...] = LOGGED_EVENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if recent_limit < 0:
            raise ValueError("recent_limit cannot be negative")
        self._logged = frozenset(logged)
        self._clock = clock
        self._lock = threading.Lock()
        self._counter = DeliveryCounter()
        self._totals: dict[str, int] = {}
        self._recent: deque[DeliveryEvent] = deque(maxlen=recent_limit)
        self._interval_started = clock()
        self._reset_interval()

    def _reset_interval(self) -> None:
        self._counts: dict[type, int] = {}  # by class: hashing a class is cheaper than a name
        self._alerts: dict[AlertType, Alert] = {}
        self._rate: RateAdjusted | None = None
        self._recent.clear()
        self._logged_count = 0

    def __call__(self, event: DeliveryEvent) -> None:
        # Called for every event of every thread: a few dictionary updates under one lock.
        kind = type(event)
        with self._lock:
            self._counts[kind] = self._counts.get(kind, 0) + 1
            self._counter.count(event)
            if isinstance(event, AlertRaised):
                self._alerts[event.alert.type] = event.alert
            elif isinstance(event, RateAdjusted):
                self._rate = event
            if kind in self._logged:
                self._recent.append(event)
                self._logged_count += 1

    def tally(self) -> DeliveryTally:
        """The running tally, without taking a digest."""
        with self._lock:
            return self._counter.tally()

    def take(self) -> EventDigest:
        """Everything since the previous take (or since the sink began), then start afresh."""
        with self._lock:
            now = self._clock()
            counts = {kind.__name__: count for kind, count in self._counts.items()}
            for name, count in counts.items():
                self._totals[name] = self._totals.get(name, 0) + count
            digest = EventDigest(
                seconds=now - self._interval_started,
                counts=MappingProxyType(counts),
                totals=MappingProxyType(dict(self._totals)),
                tally=self._counter.tally(),
                alerts=tuple(self._alerts.values()),
                recent=tuple(self._recent),
                recent_dropped=self._logged_count - len(self._recent),
                rate=self._rate,
                at=now,
            )
            self._interval_started = now
            self._reset_interval()
            return digest

    def clear(self) -> None:
        """Forget everything, totals and tally included (the console's "clear alerts")."""
        with self._lock:
            self._counter = DeliveryCounter()
            self._totals = {}
            self._interval_started = self._clock()
            self._reset_interval()


class DigestPump:
    """Hands ``consumer`` one digest per ``interval_seconds`` from a thread of its own, while
    events keep coming (empty intervals are skipped unless ``skip_empty`` is off).

    ``stop()`` hands over the last digest before returning, so nothing counted is lost;
    ``flush()`` hands over what is pending now, from the caller's thread, so whatever the
    caller reports next reaches the consumer after the events it follows. A consumer that
    raises stops the pump: the error is kept in ``error`` and passed to ``on_error`` (from the
    pump's thread), and ``start()`` starts it again.
    """

    def __init__(
        self,
        sink: DigestSink,
        consumer: Callable[[EventDigest], object],
        *,
        interval_seconds: float = 0.1,
        skip_empty: bool = True,
        on_error: Callable[[BaseException], object] | None = None,
    ) -> None:
        if interval_seconds <= 0:
            raise ValueError("interval_seconds must be positive")
        self.sink = sink
        self.consumer = consumer
        self.interval_seconds = interval_seconds
        self.skip_empty = skip_empty
        self.on_error = on_error
        self.error: BaseException | None = None
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._hand_over_lock = threading.Lock()

    def start(self) -> DigestPump:
        """Start handing over digests (again, after the consumer failed)."""
        # After a failure the old thread is ending (on_error may restart from within it).
        if self._thread is None or self.error is not None or not self._thread.is_alive():
            self.error = None
            self._stopped.clear()
            self._thread = threading.Thread(target=self._run, name="digest-pump", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        self._stopped.set()
        if thread is not None:
            thread.join()
        if self.error is None:
            self._hand_over()

    def flush(self) -> bool:
        """Hand over the pending events now; False when the consumer failed (see ``error``)."""
        if self.error is not None:
            return False
        return self._hand_over()

    def __enter__(self) -> DigestPump:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stopped.wait(self.interval_seconds):
            if not self._hand_over():
                return

    def _hand_over(self) -> bool:
        with self._hand_over_lock:  # stop() and the thread never interleave two digests
            digest = self.sink.take()
            if digest.empty and self.skip_empty:
                return True
            try:
                self.consumer(digest)
            except Exception as error:  # kept for the owner; the pump must not print
                self.error = failure = error
                self._stopped.set()
            else:
                return True
        if self.on_error is not None:  # outside the lock: the owner may flush or restart
            self.on_error(failure)
        return False
