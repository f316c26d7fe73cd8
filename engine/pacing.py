"""Pacing the calls of a send: token buckets under the records, requests and bytes limits, and a
records limit that backs off when Firehose throttles and recovers when it stops (AIMD).

``paced_deliverer`` wraps a Deliverer so that every PutRecord / PutRecordBatch call, retries
included, goes through a ``PacedSender``: it waits its turn under a ``SendPacer`` (defaults from
the region's Direct PUT quota in ``engine.quotas``) and tells the ``AdaptiveRate`` what came
back. See the README, "Bursts: count, rate, batches and quotas".
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from engine.delivery import Deliverer, RecordSender, SendCancelled
from engine.events import EventSink, RateAdjusted, RateChange
from engine.failures import FailureClass, classify, classify_code
from engine.gateway import BatchEntryResult
from engine.quotas import DirectPutQuota

__all__ = [
    "AdaptiveRate",
    "PacedSender",
    "RateLimiter",
    "SendPacer",
    "paced_deliverer",
]


class _TokenBucket:
    """One limit: ``rate`` permits per second, ``burst_seconds`` of them saved up at most
    (never less than one permit).

    The bucket may go into debt: a caller takes its permits at once and then waits until the
    debt is paid back at ``rate``, so waits never drift however late the sleeps wake up.
    Not thread-safe on its own; its owners lock around it.
    """

    __slots__ = ("burst_seconds", "capacity", "rate", "tokens", "updated")

    def __init__(self, rate: float, burst_seconds: float, now: float) -> None:
        self.burst_seconds = burst_seconds
        self.rate = self.capacity = 0.0
        self._set(rate)
        self.tokens = self.capacity
        self.updated = now

    def _set(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = max(1.0, rate * self.burst_seconds)

    def take(self, permits: float, now: float) -> float:
        """Take ``permits`` now; the seconds to wait before using them."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate) - permits
        self.updated = now
        return -self.tokens / self.rate if self.tokens < 0 else 0.0

    def set_rate(self, rate: float, now: float) -> None:
        # Settle what accrued at the old rate first; any debt is then repaid at the new one.
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        self._set(rate)


class RateLimiter:
    """A token bucket: ``acquire`` blocks so that at most ``rate`` permits pass per second
    (plus ``burst`` saved up while idle). Safe to share between threads."""

    def __init__(
        self,
        rate: float,
        *,
        burst: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self._clock = clock
        self._sleep = sleep
        self._bucket = _TokenBucket(rate, burst / rate, clock())
        self._lock = threading.Lock()

    @property
    def rate(self) -> float:
        return self._bucket.rate

    def set_rate(self, rate: float) -> None:
        with self._lock:
            self._bucket.set_rate(rate, self._clock())

    def acquire(self, permits: float = 1.0) -> float:
        """Take ``permits``, sleeping off any debt; returns the seconds waited."""
        with self._lock:
            wait = self._bucket.take(permits, self._clock())
        if wait > 0:
            self._sleep(wait)
        return wait


class SendPacer:
    """The limits of one send — records, requests and bytes per second — checked together:
    each call waits for the strictest. Safe to share between threads.

    Each limit saves up at most ``BURST_SECONDS`` of its rate: without that, the time a call
    spends on the network would be lost to the next one, and a sender doing one call at a
    time would fall short of the limit.
    """

    BURST_SECONDS = 0.1

    def __init__(
        self,
        records_per_second: float | None,
        *,
        requests_per_second: float | None = None,
        bytes_per_second: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        now = clock()
        self._records, self._requests, self._bytes = (
            _TokenBucket(rate, self.BURST_SECONDS, now) if rate else None
            for rate in (records_per_second, requests_per_second, bytes_per_second)
        )

    @property
    def records_per_second(self) -> float | None:
        return self._records.rate if self._records else None

    def set_records_per_second(self, rate: float) -> None:
        with self._lock:
            if self._records is None:
                self._records = _TokenBucket(rate, self.BURST_SECONDS, self._clock())
            else:
                self._records.set_rate(rate, self._clock())

    def acquire(self, records: int, size_bytes: int) -> float:
        """Wait until a call carrying ``records`` records of ``size_bytes`` bytes may go;
        returns the seconds waited."""
        with self._lock:
            now = self._clock()
            wait = 0.0
            for bucket, permits in (
                (self._records, records),
                (self._requests, 1),
                (self._bytes, size_bytes),
            ):
                if bucket is not None:
                    wait = max(wait, bucket.take(permits, now))
        if wait > 0:
            self._sleep(wait)
        return wait


class AdaptiveRate:
    """The records-per-second limit of one send, steered by Firehose's answers (AIMD).

    - **Multiplicative decrease**: on a throttled call (``ServiceUnavailableException`` and
      kin, or throttled records inside a batch) the limit becomes ``decrease_factor`` × the
      rate actually sent over the last ``window_seconds`` (or × the limit, if lower) — at most
      once per ``cooldown_seconds``, so the answers to calls already in flight count once.
    - **Additive increase**: an accepted call at least ``increase_interval_seconds`` after
      the last change or throttle raises the limit by ``increase_fraction`` of the limit set at
      the last decrease (one step per interval at most), up to ``ceiling`` (the user's --rate
      or the region's quota).

    ``on_change(rate, change)`` hears every change, in order (it must not call back into this
    object). Safe to share between threads.
    """

    def __init__(
        self,
        ceiling: float,
        *,
        floor: float = 1.0,
        decrease_factor: float = 0.7,
        increase_fraction: float = 0.05,
        increase_interval_seconds: float = 0.1,
        cooldown_seconds: float = 1.0,
        window_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[float, RateChange], None] | None = None,
    ) -> None:
        if ceiling <= 0 or floor <= 0:
            raise ValueError("ceiling and floor must be positive")
        if not 0 < decrease_factor < 1:
            raise ValueError("decrease_factor must be between 0 and 1")
        self.ceiling = float(ceiling)
        self.floor = min(float(floor), self.ceiling)
        self.decrease_factor = decrease_factor
        self.increase_fraction = increase_fraction
        self.increase_interval = increase_interval_seconds
        self.cooldown = cooldown_seconds
        self.window = window_seconds
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._rate = self.ceiling
        self._step = max(1.0, increase_fraction * self.ceiling)
        self._last_decrease = -math.inf
        self._last_change = clock()
        # Records sent, in slots of a tenth of the window: bounded whatever the send's length.
        self._slot_seconds = window_seconds / 10
        self._sent_slots: deque[list[float]] = deque()
        self._first_sent: float | None = None

    @property
    def rate(self) -> float:
        return self._rate

    def sent(self, records: int) -> None:
        """A call carrying ``records`` records is going out now."""
        with self._lock:
            now = self._clock()
            if self._first_sent is None:
                self._first_sent = now
            slot = math.floor(now / self._slot_seconds)
            if self._sent_slots and self._sent_slots[-1][0] == slot:
                self._sent_slots[-1][1] += records
            else:
                self._sent_slots.append([slot, records])
            self._forget_old_slots(slot)

    def sent_rate(self) -> float | None:
        """Records per second sent over the last window (None before anything was sent)."""
        with self._lock:
            return self._sent_rate(self._clock())

    def throttled(self) -> None:
        """Firehose throttled a call (or records in it): decrease, unless just done."""
        with self._lock:
            now = self._clock()
            self._last_change = now  # a throttle, even one ignored, is no throttle-free interval
            if now - self._last_decrease < self.cooldown:
                return
            sent = self._sent_rate(now)
            basis = self._rate if sent is None else min(self._rate, sent)
            rate = max(self.floor, basis * self.decrease_factor)
            self._last_decrease = now
            self._step = max(1.0, self.increase_fraction * rate)
            self._set(rate, RateChange.DECREASED)

    def accepted(self) -> None:
        """Firehose accepted a call (every record in it): increase once per interval."""
        with self._lock:
            now = self._clock()
            if self._rate >= self.ceiling or now - self._last_change < self.increase_interval:
                return
            self._last_change = now
            self._set(min(self.ceiling, self._rate + self._step), RateChange.INCREASED)

    def _set(self, rate: float, change: RateChange) -> None:
        # Called under the lock, so listeners hear the changes in the order they happened.
        if rate != self._rate:
            self._rate = rate
            if self._on_change is not None:
                self._on_change(rate, change)

    def _sent_rate(self, now: float) -> float | None:
        if self._first_sent is None:
            return None
        slot = math.floor(now / self._slot_seconds)
        self._forget_old_slots(slot)
        records = sum(count for _, count in self._sent_slots)
        # Young sends are measured over their age (but at least one slot, against flukes).
        span = min(self.window, max(now - self._first_sent, self._slot_seconds))
        return records / span

    def _forget_old_slots(self, slot: int) -> None:
        oldest = slot - 10
        while self._sent_slots and self._sent_slots[0][0] <= oldest:
            self._sent_slots.popleft()


def _throttled(failure_class: FailureClass) -> bool:
    return failure_class is FailureClass.THROTTLED


class PacedSender:
    """A RecordSender that waits its turn under a SendPacer before every call and tells an
    AdaptiveRate how Firehose answered. Errors and results pass through unchanged. When
    ``cancel`` is set by the end of a wait, the call does not start (``SendCancelled``)."""

    def __init__(
        self,
        sender: RecordSender,
        pacer: SendPacer,
        adaptive: AdaptiveRate | None = None,
        *,
        cancel: threading.Event | None = None,
    ) -> None:
        self.sender = sender
        self.pacer = pacer
        self.adaptive = adaptive
        self.cancel = cancel

    def _wait_turn(self, records: int, size_bytes: int) -> None:
        self.pacer.acquire(records, size_bytes)
        if self.cancel is not None and self.cancel.is_set():
            raise SendCancelled

    def put_record(self, stream_name: str, data: bytes) -> str:
        self._wait_turn(1, len(data))
        if self.adaptive is None:
            return self.sender.put_record(stream_name, data)
        self.adaptive.sent(1)
        try:
            record_id = self.sender.put_record(stream_name, data)
        except Exception as error:
            if _throttled(classify(error).failure_class):
                self.adaptive.throttled()
            raise
        self.adaptive.accepted()
        return record_id

    def put_record_batch(
        self, stream_name: str, records: Sequence[bytes]
    ) -> list[BatchEntryResult]:
        self._wait_turn(len(records), sum(len(data) for data in records))
        if self.adaptive is None:
            return self.sender.put_record_batch(stream_name, records)
        self.adaptive.sent(len(records))
        try:
            results = self.sender.put_record_batch(stream_name, records)
        except Exception as error:
            if _throttled(classify(error).failure_class):
                self.adaptive.throttled()
            raise
        if any(
            result.error_code and _throttled(classify_code(result.error_code).failure_class)
            for result in results
        ):
            self.adaptive.throttled()
        elif all(result.record_id and not result.error_code for result in results):
            self.adaptive.accepted()
        return results


def paced_deliverer(
    deliverer: Deliverer,
    ceiling: float | None,
    quota: DirectPutQuota | None,
    sink: EventSink,
    adaptive: bool,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    *,
    cancel: threading.Event | None = None,
) -> Deliverer:
    """A copy of ``deliverer`` whose every call goes through a PacedSender under ``ceiling``
    records/s and the ``quota``; with ``adaptive``, the records limit follows throttling and
    each change is announced to ``sink`` as a ``RateAdjusted`` event."""
    pacer = SendPacer(
        ceiling,
        requests_per_second=quota.requests_per_second if quota else None,
        bytes_per_second=quota.bytes_per_second if quota else None,
        clock=clock,
        sleep=sleep,
    )
    controller: AdaptiveRate | None = None
    if adaptive and ceiling is not None:
        limit = ceiling

        def announce(records_per_second: float, change: RateChange) -> None:
            pacer.set_records_per_second(records_per_second)
            sink(RateAdjusted(records_per_second, limit, change, deliverer.clock()))

        controller = AdaptiveRate(ceiling, clock=clock, on_change=announce)
        sink(RateAdjusted(ceiling, ceiling, RateChange.STARTED, deliverer.clock()))
    paced = copy.copy(deliverer)
    paced.sender = PacedSender(deliverer.sender, pacer, controller, cancel=cancel)
    return paced
