"""Sending many messages: streamed in chunks, concurrent calls, batches within Firehose's limits
(≤500 records and ≤4 MiB per PutRecordBatch), identity changes kept in order, and a send that
can be cancelled.

A burst is built, journaled and sent one chunk at a time (``FIRST_CHUNK_MESSAGES``, doubling up
to ``CHUNK_MESSAGES``), the next chunk built while one is sent, so memory does not grow with its
size; ``before_chunk`` (the session journals the chunk in the outbox) runs
before any message of the chunk goes out. Within a chunk, a message that ``follows`` another
(an identity change's re-add follows its remove) is sent only once that one was acknowledged,
in a later wave of calls: different users still go out concurrently. Every call goes through
the Deliverer (retries, dead letters), paced by ``engine.pacing`` under --rate and the quota.
See the README, "Bursts: count, rate, batches and quotas" and "Reliability".
"""

from __future__ import annotations

import copy
import math
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

from engine.delivery import Deliverer, DeliveryOutcome
from engine.events import EventSink, ignore_events
from engine.pacing import paced_deliverer
from engine.quotas import BATCH_MAX_BYTES, BATCH_MAX_RECORDS, DirectPutQuota
from engine.records import OutgoingMessage

__all__ = [
    "BATCH_MAX_BYTES",
    "BATCH_MAX_RECORDS",
    "CHUNK_MESSAGES",
    "FIRST_CHUNK_MESSAGES",
    "batch_limits",
    "chunk_for_batches",
    "send_messages",
    "stream_messages",
]

# Messages built, journaled and sent at a time: big enough to keep every worker busy with
# full batches, small enough that memory stays a few megabytes whatever the burst's size.
CHUNK_MESSAGES = 10_000

# The first chunk of a burst: small, so the calls start soon; the chunks then double.
FIRST_CHUNK_MESSAGES = 1_000

# With a rate limit, one PutRecordBatch carries at most this many seconds' worth of records, so
# the records flow evenly (and the rate reacts) instead of arriving in a few big lumps.
BATCH_SECONDS_AT_RATE = 0.2

_Task = TypeVar("_Task")
_Result = TypeVar("_Result")


def chunk_for_batches(
    messages: Sequence[OutgoingMessage],
    *,
    max_records: int = BATCH_MAX_RECORDS,
    max_bytes: int = BATCH_MAX_BYTES,
) -> Iterator[list[OutgoingMessage]]:
    """Split messages, in order, into PutRecordBatch calls of at most ``max_records`` records
    and ``max_bytes`` bytes (a single record over ``max_bytes`` goes alone)."""
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


def batch_limits(
    batch_size: int, rate: float | None, quota: DirectPutQuota | None
) -> tuple[int, int]:
    """(records, bytes) at most per PutRecordBatch: Firehose's 500 and 4 MiB, the configured
    batch size, no more than a second of the quota's bytes, and with --rate no more than
    ``BATCH_SECONDS_AT_RATE`` seconds' worth of records."""
    records = min(batch_size, BATCH_MAX_RECORDS)
    if rate:
        records = min(records, max(1, math.ceil(rate * BATCH_SECONDS_AT_RATE)))
    size = BATCH_MAX_BYTES
    if quota:
        size = min(size, quota.bytes_per_second)
    return max(1, records), size


class _SendThreads:
    """The threads that make a send's calls, started once and kept for every wave of every
    chunk: a thread per call would start hundreds in a long burst, and each new thread may take
    a fresh malloc arena of its own (a million records then held tens of megabytes more)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._loops: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._serve, name=f"burst-{n}", daemon=True)
            for n in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def _serve(self) -> None:
        while (loop := self._loops.get()) is not None:
            loop()

    def run(self, loops: Sequence[Callable[[], None]]) -> None:
        """Run each of ``loops`` on a thread of its own (no more loops than threads), and
        return once every one has returned; the first that raised is raised here (the thread
        that ran it stays, for the next wave)."""
        remaining = [len(loops)]
        errors: list[BaseException] = []
        finished = threading.Condition()

        def counted(loop: Callable[[], None]) -> Callable[[], None]:
            def run_then_count() -> None:
                try:
                    loop()
                except BaseException as error:  # re-raised in the caller's thread below
                    errors.append(error)
                finally:
                    with finished:
                        remaining[0] -= 1
                        finished.notify_all()

            return run_then_count

        for loop in loops:
            self._loops.put(counted(loop))
        with finished:
            finished.wait_for(lambda: remaining[0] == 0)
        if errors:
            raise errors[0]

    def stop(self) -> None:
        for _ in self._threads:
            self._loops.put(None)


def _in_parallel(
    tasks: Sequence[_Task],
    work: Callable[[_Task], _Result],
    threads: _SendThreads | None,
    cancel: threading.Event | None = None,
) -> list[_Result | None]:
    """``work`` on every task by the send's ``threads`` (one task at a time in the caller's
    thread when None); results in task order.

    Workers pull the next task as they free up, so memory stays one result per task (a
    thread pool's map would also hold a future per task). Once ``cancel`` is set no task
    starts: the tasks never started have None.
    """
    results: list[_Result | None] = [None] * len(tasks)
    if threads is None or len(tasks) <= 1:
        for index, task in enumerate(tasks):
            if cancel is not None and cancel.is_set():
                break
            results[index] = work(task)
        return results
    errors: list[BaseException] = []
    lock = threading.Lock()
    position = iter(range(len(tasks)))

    def worker() -> None:
        while not errors and not (cancel is not None and cancel.is_set()):
            with lock:
                index = next(position, None)
            if index is None:
                return
            try:
                results[index] = work(tasks[index])
            except BaseException as error:  # re-raised in the caller's thread below
                errors.append(error)
                return

    threads.run([worker] * min(threads.count, len(tasks)))
    if errors:
        raise errors[0]
    return results


def _chunks(
    messages: Iterable[OutgoingMessage], sizes: Iterator[int]
) -> Iterator[tuple[list[OutgoingMessage], int]]:
    """``messages`` in lists of about the next of ``sizes`` each, with the size planned for
    it (a list shorter than that is the last), never cutting a message from the one right
    before it that it follows (an identity change's pair stays in one chunk)."""
    chunk: list[OutgoingMessage] = []
    size = next(sizes)
    for message in messages:
        if len(chunk) >= size and message.follows != chunk[-1].message_id:
            yield chunk, size
            chunk, size = [], next(sizes)
        chunk.append(message)
    if chunk:
        yield chunk, size


def _chunk_sizes(size: int) -> Iterator[int]:
    """``FIRST_CHUNK_MESSAGES``, doubling up to ``size``, then ``size``: the first calls go out
    after a thousand messages are built and journaled, not ten thousand, and each chunk is sent
    in about the time the next, twice as big, takes to build."""
    planned = min(size, FIRST_CHUNK_MESSAGES)
    while True:
        yield planned
        planned = min(size, 2 * planned)


class _ChunkSender:
    """Sends one chunk in waves: every message whose predecessor is settled (or that follows
    none) goes in the current wave, concurrently; the others wait for a later wave."""

    def __init__(
        self,
        deliverer: Deliverer,
        *,
        threads: _SendThreads | None,
        batch_limits: tuple[int, int] | None,
        cancel: threading.Event | None,
    ) -> None:
        self.deliverer = deliverer
        self.threads = threads  # None: one call at a time
        self.batch_limits = batch_limits
        self.cancel = cancel
        # What became of the previous chunk's messages, for a follower whose predecessor was
        # cut off into it (never happens for a burst: its pairs are adjacent). Only those not
        # delivered are kept (few, so memory stays small): the others need no waiting for.
        self._previous_failed: dict[str, DeliveryOutcome] = {}

    def send(self, chunk: Sequence[OutgoingMessage]) -> list[DeliveryOutcome]:
        outcomes: list[DeliveryOutcome | None] = [None] * len(chunk)
        position = {message.message_id: index for index, message in enumerate(chunk)}
        waiting = list(range(len(chunk)))
        while waiting:
            ready: list[int] = []
            later: list[int] = []
            for index in waiting:
                message = chunk[index]
                unsettled, predecessor = self._predecessor(message, position, outcomes)
                if unsettled:
                    later.append(index)
                elif predecessor is None or predecessor.delivered or predecessor.skipped:
                    ready.append(index)  # nothing (left) to wait for
                else:
                    outcomes[index] = self.deliverer.hold_back(message, predecessor)
            if not ready and later:  # a cycle of follows (a damaged journal): send as is
                ready, later = later, []
            self._send_wave(chunk, ready, outcomes)
            waiting = later
        settled = [outcome for outcome in outcomes if outcome is not None]
        assert len(settled) == len(chunk), "every message of a chunk is accounted for"
        self._previous_failed = {
            o.message.message_id: o for o in settled if not (o.delivered or o.skipped)
        }
        return settled

    def _predecessor(
        self,
        message: OutgoingMessage,
        position: dict[str, int],
        outcomes: Sequence[DeliveryOutcome | None],
    ) -> tuple[bool, DeliveryOutcome | None]:
        """(still unsettled, outcome) of the message ``message`` follows; the outcome is None
        when it follows none, or one not in this send (nothing to wait for)."""
        if message.follows is None:
            return False, None
        index = position.get(message.follows)
        if index is None:  # in the previous chunk, or not in this send: nothing to wait for
            return False, self._previous_failed.get(message.follows)
        return outcomes[index] is None, outcomes[index]

    def _send_wave(
        self,
        chunk: Sequence[OutgoingMessage],
        indexes: Sequence[int],
        outcomes: list[DeliveryOutcome | None],
    ) -> None:
        messages = [chunk[index] for index in indexes]
        results: list[DeliveryOutcome | None]
        if self.batch_limits is None:
            results = _in_parallel(messages, self.deliverer.deliver, self.threads, self.cancel)
        else:
            max_records, max_bytes = self.batch_limits
            calls = list(chunk_for_batches(messages, max_records=max_records, max_bytes=max_bytes))
            answered = _in_parallel(calls, self.deliverer.deliver_batch, self.threads, self.cancel)
            results = []
            for call, call_outcomes in zip(calls, answered, strict=True):
                results.extend(call_outcomes if call_outcomes is not None else [None] * len(call))
        self._set_aside_unstarted(messages, results)
        for index, outcome in zip(indexes, results, strict=True):
            outcomes[index] = outcome

    def _set_aside_unstarted(
        self, messages: Sequence[OutgoingMessage], results: list[DeliveryOutcome | None]
    ) -> None:
        """The messages of calls the cancellation kept from starting: never sent (one
        dead-letter write for them all); those refused on purpose stay refused."""
        unstarted = [n for n, outcome in enumerate(results) if outcome is None]
        unsendable = [n for n in unstarted if not messages[n].will_send]
        for n in unsendable:
            results[n] = self.deliverer.deliver(messages[n])  # refused at once, nothing sent
        unsent = [n for n in unstarted if messages[n].will_send]
        set_aside = self.deliverer.set_aside_unsent([messages[n] for n in unsent])
        for n, outcome in zip(unsent, set_aside, strict=True):
            results[n] = outcome


def _cancellable_sleep(cancel: threading.Event) -> Callable[[float], None]:
    """A sleep that ends as soon as the send is cancelled (for the pacing waits)."""

    def sleep(seconds: float) -> None:
        cancel.wait(seconds)

    return sleep


def stream_messages(
    deliverer: Deliverer,
    messages: Iterable[OutgoingMessage],
    on_outcome: Callable[[DeliveryOutcome], None],
    *,
    before_chunk: Callable[[Sequence[OutgoingMessage]], None] | None = None,
    chunk_size: int = CHUNK_MESSAGES,
    concurrency: int = 1,
    batch: bool = False,
    batch_size: int = BATCH_MAX_RECORDS,
    rate: float | None = None,
    quota: DirectPutQuota | None = None,
    sink: EventSink = ignore_events,
    adaptive: bool = True,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    cancel: threading.Event | None = None,
) -> int:
    """Send ``messages`` chunk by chunk (consumed lazily); ``on_outcome`` hears every
    message's outcome, in the messages' order, once its chunk is settled. Returns how many
    messages were consumed: once ``cancel`` is set no new call starts and no further chunk
    is built (those left in the chunk are set aside as never sent).

    ``before_chunk`` runs before any message of a chunk is sent. ``rate`` (records per second)
    and ``quota`` (the stream's Direct PUT quota) bound the send; with either, the records
    limit adapts to throttling (``AdaptiveRate``, announced to ``sink`` as ``RateAdjusted``
    events) unless ``adaptive`` is off. With neither, nothing is paced. ``batch`` uses
    PutRecordBatch; only the records that fail inside a batch are sent again (see
    ``Deliverer.deliver_batch``). A message that ``follows`` another is sent only once that one
    was delivered; if it was not, it is dead-lettered unsent (``Deliverer.hold_back``).
    """
    if cancel is None:
        cancel = deliverer.cancel
    elif deliverer.cancel is not cancel:
        deliverer = copy.copy(deliverer)
        deliverer.cancel = cancel
    if cancel is not None and sleep is time.sleep:
        sleep = _cancellable_sleep(cancel)
    ceiling = rate or (quota.records_per_second if quota else None)
    if ceiling is not None or quota is not None:
        deliverer = paced_deliverer(
            deliverer, ceiling, quota, sink, adaptive, clock, sleep, cancel=cancel
        )
    threads = _SendThreads(concurrency) if concurrency > 1 else None
    sender = _ChunkSender(
        deliverer,
        threads=threads,
        batch_limits=batch_limits(batch_size, rate, quota) if batch else None,
        cancel=cancel,
    )
    try:
        return _stream_chunks(
            sender,
            _chunks(messages, _chunk_sizes(max(1, chunk_size))),
            on_outcome,
            before_chunk,
            cancel,
        )
    finally:
        if threads is not None:
            threads.stop()


class _ChunkInFlight:
    """One chunk being sent on a thread of its own, so the caller's thread can build and
    journal the next chunk, and hand the previous one's outcomes on, meanwhile."""

    def __init__(self, sender: _ChunkSender, chunk: Sequence[OutgoingMessage]) -> None:
        self._sender = sender
        self._chunk = chunk
        self._outcomes: list[DeliveryOutcome] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="burst-chunk", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._outcomes = self._sender.send(self._chunk)
        except BaseException as error:  # re-raised in the caller's thread by outcomes()
            self._error = error

    def wait(self) -> None:
        self._thread.join()

    def outcomes(self) -> list[DeliveryOutcome]:
        """The chunk's outcomes, in its order, once every message of it is settled."""
        self.wait()
        if self._error is not None:
            raise self._error
        return self._outcomes


def _stream_chunks(
    sender: _ChunkSender,
    chunks: Iterator[tuple[list[OutgoingMessage], int]],
    on_outcome: Callable[[DeliveryOutcome], None],
    before_chunk: Callable[[Sequence[OutgoingMessage]], None] | None,
    cancel: threading.Event | None,
) -> int:
    """Send the chunks one after the other; while one is in flight, the previous one's
    outcomes are handed on and the next one is built and journaled (``before_chunk``), so
    the building, journaling and output overlap the calls. At most two chunks are in memory
    at once; no chunk is sent before the previous one is settled (so an identity change's
    pair, even cut across chunks, keeps its order). Returns how many messages were
    consumed: after a cancel, the one chunk already built is set aside unsent, not dropped."""

    def prepared() -> tuple[list[OutgoingMessage], int] | None:
        planned = next(chunks, None)
        if planned is not None and before_chunk is not None:
            before_chunk(planned[0])
        return planned

    consumed = 0
    settled: list[DeliveryOutcome] = []
    following = prepared()
    while following is not None:
        chunk, size = following
        consumed += len(chunk)
        if len(chunk) < size:  # the last chunk: nothing to overlap it with
            for outcome in settled:
                on_outcome(outcome)
            settled = sender.send(chunk)
            break
        flight = _ChunkInFlight(sender, chunk)
        try:
            for outcome in settled:
                on_outcome(outcome)
            settled = []
            following = None if cancel is not None and cancel.is_set() else prepared()
        except Exception:
            flight.wait()  # no call goes on behind the caller's back (a second Ctrl-C
            raise  # is no Exception: it abandons the calls in flight, as it always did)
        settled = flight.outcomes()
    for outcome in settled:
        on_outcome(outcome)
    return consumed


def send_messages(
    deliverer: Deliverer,
    messages: Iterable[OutgoingMessage],
    *,
    concurrency: int = 1,
    batch: bool = False,
    batch_size: int = BATCH_MAX_RECORDS,
    rate: float | None = None,
    quota: DirectPutQuota | None = None,
    sink: EventSink = ignore_events,
    adaptive: bool = True,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    cancel: threading.Event | None = None,
) -> list[DeliveryOutcome]:
    """Send every message; one outcome per message consumed, in the messages' order, all kept
    in memory (``stream_messages`` hands them over one by one instead, for a burst of any
    size). The options are ``stream_messages``'s."""
    outcomes: list[DeliveryOutcome] = []
    stream_messages(
        deliverer,
        messages,
        outcomes.append,
        concurrency=concurrency,
        batch=batch,
        batch_size=batch_size,
        rate=rate,
        quota=quota,
        sink=sink,
        adaptive=adaptive,
        clock=clock,
        sleep=sleep,
        cancel=cancel,
    )
    return outcomes
