"""Sending many messages: a client-side rate limit, concurrency, and batches within Firehose's
limits (≤500 records and ≤4 MiB per PutRecordBatch)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from engine.delivery import Deliverer, DeliveryOutcome
from engine.records import OutgoingMessage

BATCH_MAX_RECORDS = 500
BATCH_MAX_BYTES = 4 * 1024 * 1024


class RateLimiter:
    """A token bucket: ``acquire`` blocks so that at most ``rate`` permits pass per second."""

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
        self.rate = rate
        self.capacity = max(burst, 1.0)
        self._tokens = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self, permits: float = 1.0) -> None:
        """Take ``permits``; the bucket may go into debt, and the caller sleeps it off."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            self._tokens -= permits
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)


def chunk_for_batches(
    messages: Sequence[OutgoingMessage],
    *,
    max_records: int = BATCH_MAX_RECORDS,
    max_bytes: int = BATCH_MAX_BYTES,
) -> Iterator[list[OutgoingMessage]]:
    """Split messages into PutRecordBatch calls of at most ``max_records`` and ``max_bytes``."""
    chunk: list[OutgoingMessage] = []
    size = 0
    for message in messages:
        too_many = len(chunk) >= max_records
        too_big = size + message.size_bytes > max_bytes
        if chunk and (too_many or too_big):
            yield chunk
            chunk, size = [], 0
        chunk.append(message)
        size += message.size_bytes
    if chunk:
        yield chunk


def send_messages(
    deliverer: Deliverer,
    messages: Sequence[OutgoingMessage],
    *,
    concurrency: int = 1,
    batch: bool = False,
    batch_size: int = BATCH_MAX_RECORDS,
    rate: float | None = None,
) -> list[DeliveryOutcome]:
    """Send every message, in order of the outcomes returned (one per message)."""
    limiter = RateLimiter(rate) if rate else None
    if batch:
        chunks = list(chunk_for_batches(messages, max_records=min(batch_size, BATCH_MAX_RECORDS)))

        def send_chunk(chunk: list[OutgoingMessage]) -> list[DeliveryOutcome]:
            if limiter:
                limiter.acquire(len(chunk))
            return deliverer.deliver_batch(chunk)

        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            return [outcome for result in pool.map(send_chunk, chunks) for outcome in result]

    def send_one(message: OutgoingMessage) -> DeliveryOutcome:
        if limiter:
            limiter.acquire()
        return deliverer.deliver(message)

    if concurrency <= 1 or len(messages) <= 1:
        return [send_one(message) for message in messages]
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(send_one, messages))
