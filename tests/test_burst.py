"""Bursts: the rate limiter, the quota pacer, AIMD on throttling, batch chunking and the
re-send-only-failed rule — on fake clocks and scripted senders, so every test is instant and
deterministic."""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.alerts import AlertBoard
from engine.burst import batch_limits, chunk_for_batches, send_messages
from engine.delivery import Deliverer, RetryPolicy
from engine.events import RateAdjusted, RateChange
from engine.gateway import BatchEntryResult
from engine.pacing import AdaptiveRate, PacedSender, RateLimiter, SendPacer
from engine.quotas import (
    BATCH_MAX_BYTES,
    BATCH_MAX_RECORDS,
    DIRECT_PUT_QUOTAS,
    HIGHER_QUOTA,
    MIB,
    STANDARD_QUOTA,
    DirectPutQuota,
    direct_put_quota,
)
from engine.records import Action, MessageKind, OutgoingMessage

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


class FakeClock:
    """Virtual time: ``sleep`` moves the clock instead of waiting."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def message(number: int, size: int = 100) -> OutgoingMessage:
    body = f'{{"n":{number}}}'.encode()
    data = body + b" " * max(0, size - len(body) - 1) + b"\n"
    return OutgoingMessage(
        kind=MessageKind.ADD,
        action=Action.ADD,
        stream_name="stream",
        data={"n": number},
        data_bytes=data,
        message_id=f"m{number}",
    )


def throttle_error() -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "ServiceUnavailableException", "Message": "Slow down."},
            "ResponseMetadata": {"HTTPStatusCode": 503},
        },
        "PutRecord",
    )


def deliverer(
    sender, *, attempts: int = 5, sink=None, sleep=lambda seconds: None, cap: float = 0.02
) -> Deliverer:
    return Deliverer(
        sender,
        RetryPolicy(attempts, 0.01, cap),
        connection_name="test",
        alerts=AlertBoard(),
        sink=sink if sink is not None else (lambda event: None),
        sleep=sleep,
        rng=random.Random(0),
    )


# -- the token bucket ------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [1.0, 37.5, 200.0, 5000.0])
def test_rate_limiter_holds_the_rate_over_ten_seconds(rate: float) -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate, clock=clock, sleep=clock.sleep)
    started = clock.now
    passed = 0
    while True:
        limiter.acquire()
        if clock.now - started > 10.0:
            break
        passed += 1
    # Exactly rate × 10 s, plus the one permit a full bucket lets through at once.
    assert passed == pytest.approx(rate * 10 + 1, abs=1)


def test_rate_limiter_with_big_permits_pays_before_sending() -> None:
    clock = FakeClock()
    limiter = RateLimiter(100, clock=clock, sleep=clock.sleep)
    waits = [limiter.acquire(50) for _ in range(20)]
    assert waits[0] == pytest.approx(0.49)  # 50 permits, 1 saved up
    assert clock.now - 1000.0 == pytest.approx((20 * 50 - 1) / 100)


def test_concurrent_callers_queue_up_one_slot_each() -> None:
    """Callers that do not sleep (as threads asking at the same instant) get successive slots."""
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock, sleep=lambda seconds: None)
    assert [round(limiter.acquire(), 6) for _ in range(4)] == [0.0, 0.1, 0.2, 0.3]


def test_sleeping_late_does_not_slow_the_rate() -> None:
    """A sleep that overshoots is not added to the next wait: waits follow a fixed schedule."""
    clock = FakeClock()

    def oversleep(seconds: float) -> None:
        clock.now += seconds + 0.003

    limiter = RateLimiter(100, clock=clock, sleep=oversleep)
    started = clock.now
    for _ in range(1000):
        limiter.acquire()
    assert 1000 / (clock.now - started) == pytest.approx(100, rel=0.01)


def test_an_idle_limiter_saves_up_only_its_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, burst=3, clock=clock, sleep=clock.sleep)
    clock.now += 3600
    waits = [limiter.acquire() for _ in range(5)]
    assert waits[:3] == [0.0, 0.0, 0.0] and waits[3] == pytest.approx(0.1)


def test_threads_asking_at_once_get_successive_slots() -> None:
    clock = FakeClock()  # frozen: every thread asks at the same virtual instant
    limiter = RateLimiter(50, clock=clock, sleep=lambda seconds: None)
    lock = threading.Lock()
    waits: list[float] = []

    def worker() -> None:
        for _ in range(100):
            wait = limiter.acquire()
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(round(wait, 6) for wait in waits) == [round(n / 50, 6) for n in range(400)]


def test_a_new_rate_applies_to_the_debt_still_owed() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock, sleep=lambda seconds: None)
    limiter.acquire(11)  # 10 permits of debt: 1 s at 10/s
    limiter.set_rate(5)
    assert limiter.acquire() == pytest.approx(11 / 5)  # (10 owed + 1) at 5/s
    with pytest.raises(ValueError):
        limiter.set_rate(0)


# -- the pacer: records, requests and bytes together -------------------------------------------


def test_the_strictest_of_the_three_limits_sets_the_pace() -> None:
    # Each limit saves up a tenth of a second of its rate (at least one unit) while idle.
    assert SendPacer.BURST_SECONDS == 0.1
    clock = FakeClock()
    pacer = SendPacer(
        1000, requests_per_second=10, bytes_per_second=1_000_000, clock=clock, sleep=clock.sleep
    )
    for _ in range(21):
        pacer.acquire(1, 100)
    assert clock.now - 1000.0 == pytest.approx(2.0)  # requests bound: 20 waits of 0.1 s

    clock = FakeClock()
    pacer = SendPacer(
        1000, requests_per_second=2000, bytes_per_second=10_000, clock=clock, sleep=clock.sleep
    )
    for _ in range(11):
        pacer.acquire(1, 1000)
    assert clock.now - 1000.0 == pytest.approx((11 * 1000 - 1000) / 10_000)  # bytes bound

    clock = FakeClock()
    pacer = SendPacer(
        1000, requests_per_second=2000, bytes_per_second=10**9, clock=clock, sleep=clock.sleep
    )
    for _ in range(4):
        pacer.acquire(500, 50_000)
    assert clock.now - 1000.0 == pytest.approx((2000 - 100) / 1000)  # records bound


def test_the_time_a_call_takes_is_not_lost_to_the_next_one() -> None:
    """One call at a time, each taking 50 ms, under a limit it could meet: it meets it."""
    clock = FakeClock()
    pacer = SendPacer(1000, bytes_per_second=5 * MIB, clock=clock, sleep=clock.sleep)
    started = clock.now
    for _ in range(100):
        pacer.acquire(40, 40 * 300)  # 40 records per call: 800/s at most at 50 ms a call
        clock.now += 0.050
    assert 4000 / (clock.now - started) == pytest.approx(800, rel=0.01)
    clock = FakeClock()
    pacer = SendPacer(600, clock=clock, sleep=clock.sleep)
    started = clock.now
    for _ in range(100):
        pacer.acquire(40, 40 * 300)
        clock.now += 0.050
    assert 4000 / (clock.now - started) == pytest.approx(600, rel=0.01)


def test_the_records_limit_can_change_mid_send() -> None:
    clock = FakeClock()
    pacer = SendPacer(100, clock=clock, sleep=clock.sleep)
    pacer.set_records_per_second(10)
    assert pacer.records_per_second == 10
    for _ in range(11):
        pacer.acquire(1, 10)
    assert clock.now - 1000.0 == pytest.approx(1.0)


def test_batch_limits_follow_firehose_the_quota_and_the_rate() -> None:
    assert batch_limits(500, None, None) == (500, BATCH_MAX_BYTES)
    assert batch_limits(900, None, HIGHER_QUOTA) == (500, 4 * MIB)
    assert batch_limits(500, None, STANDARD_QUOTA) == (500, 1 * MIB)
    assert batch_limits(500, 100, None) == (20, BATCH_MAX_BYTES)  # 0.2 s at 100/s
    assert batch_limits(500, 0.5, None) == (1, BATCH_MAX_BYTES)
    assert batch_limits(50, 10_000, None) == (50, BATCH_MAX_BYTES)


# -- AIMD --------------------------------------------------------------------------------------


def adaptive(clock: FakeClock, ceiling: float = 1000.0, **options) -> tuple[AdaptiveRate, list]:
    changes: list[tuple[float, RateChange]] = []
    rate = AdaptiveRate(
        ceiling, clock=clock, on_change=lambda r, c: changes.append((r, c)), **options
    )
    return rate, changes


def send_for(rate: AdaptiveRate, clock: FakeClock, per_second: int, seconds: float) -> None:
    for _ in range(int(per_second * seconds)):
        rate.sent(1)
        clock.now += 1 / per_second


def test_it_starts_at_the_ceiling_and_halves_what_was_really_sent_on_throttling() -> None:
    clock = FakeClock()
    rate, changes = adaptive(clock, decrease_factor=0.5)
    assert rate.rate == 1000
    send_for(rate, clock, per_second=200, seconds=2)  # far below the ceiling
    rate.throttled()
    # Halving the nominal 1000 would change nothing: it halves the 200 actually sent.
    assert rate.rate == pytest.approx(100, rel=0.02)
    assert changes == [(rate.rate, RateChange.DECREASED)]


def test_answers_to_calls_in_flight_count_as_one_throttle() -> None:
    clock = FakeClock()
    rate, changes = adaptive(clock, decrease_factor=0.5, cooldown_seconds=1.0)
    send_for(rate, clock, per_second=400, seconds=1)
    for _ in range(10):
        rate.throttled()
        clock.now += 0.05
    assert len(changes) == 1
    clock.now += 1.0
    send_for(rate, clock, per_second=200, seconds=1)
    rate.throttled()
    assert len(changes) == 2 and changes[-1][1] is RateChange.DECREASED


def test_it_recovers_additively_up_to_the_ceiling_and_no_further() -> None:
    clock = FakeClock()
    rate, changes = adaptive(
        clock, decrease_factor=0.5, increase_fraction=0.1, increase_interval_seconds=0.1
    )
    send_for(rate, clock, per_second=1000, seconds=1)
    rate.throttled()
    assert rate.rate == pytest.approx(500, rel=0.02)
    low = rate.rate
    rises = []
    for _ in range(30):  # accepted calls every 0.1 s
        clock.now += 0.1
        rate.accepted()
        rises.append(rate.rate)
    steps = [round(b - a, 6) for a, b in zip([low, *rises], rises, strict=False)]
    assert set(steps[:9]) == {round(0.1 * low, 6)}  # additive: the same step each interval
    assert rate.rate == 1000 and max(rises) == 1000
    assert all(change is RateChange.INCREASED for _, change in changes[1:])


def test_accepted_calls_within_an_interval_raise_the_rate_once() -> None:
    clock = FakeClock()
    rate, _ = adaptive(clock, decrease_factor=0.5, increase_interval_seconds=0.1)
    send_for(rate, clock, per_second=1000, seconds=1)
    rate.throttled()
    low = rate.rate
    for _ in range(50):
        clock.now += 0.001
        rate.accepted()
    assert rate.rate == low  # 50 ms: not yet an interval
    clock.now += 0.06
    rate.accepted()
    assert rate.rate > low


def test_it_never_goes_below_the_floor() -> None:
    clock = FakeClock()
    rate, _ = adaptive(clock, floor=5.0, cooldown_seconds=0.0)
    for _ in range(100):
        rate.sent(1)
        clock.now += 1.0
        rate.throttled()
    assert rate.rate == 5.0


def test_throttled_before_anything_was_sent_decreases_from_the_limit() -> None:
    clock = FakeClock()
    rate, _ = adaptive(clock, ceiling=100.0, decrease_factor=0.5)
    rate.throttled()
    assert rate.rate == 50.0


def test_the_sent_rate_forgets_what_is_older_than_the_window() -> None:
    clock = FakeClock()
    rate, _ = adaptive(clock, window_seconds=1.0)
    assert rate.sent_rate() is None
    send_for(rate, clock, per_second=500, seconds=3)
    assert rate.sent_rate() == pytest.approx(500, rel=0.1)
    clock.now += 5
    assert rate.sent_rate() == 0


def test_bad_aimd_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        AdaptiveRate(0)
    with pytest.raises(ValueError):
        AdaptiveRate(10, decrease_factor=1.5)


# -- the paced sender --------------------------------------------------------------------------


class ScriptedSender:
    """Answers each call with the next scripted outcome: an exception, a list of per-record
    error codes for a batch (None = accepted), or nothing (all accepted)."""

    def __init__(self, script: Sequence[object] = ()) -> None:
        self.script = list(script)
        self.batches: list[list[bytes]] = []
        self.singles: list[bytes] = []
        self._lock = threading.Lock()
        self._ids = 0

    def _next(self) -> object:
        with self._lock:
            self._ids += 1
            return self.script.pop(0) if self.script else None

    def put_record(self, stream_name: str, data: bytes) -> str:
        self.singles.append(data)
        outcome = self._next()
        if isinstance(outcome, BaseException):
            raise outcome
        return f"id-{self._ids}"

    def put_record_batch(self, stream_name: str, records: Sequence[bytes]):
        self.batches.append(list(records))
        outcome = self._next()
        if isinstance(outcome, BaseException):
            raise outcome
        codes = outcome if isinstance(outcome, list) else [None] * len(records)
        return [
            BatchEntryResult(None, code, "Slow down.") if code else BatchEntryResult(f"r-{i}")
            for i, code in enumerate(codes)
        ]


def test_paced_sender_tells_aimd_what_came_back_and_passes_errors_through() -> None:
    clock = FakeClock()
    rate, changes = adaptive(clock, cooldown_seconds=0.0, decrease_factor=0.5)
    pacer = SendPacer(1000, clock=clock, sleep=clock.sleep)
    sender = PacedSender(
        ScriptedSender([throttle_error(), None, ["ServiceUnavailableException", None]]),
        pacer,
        rate,
    )
    with pytest.raises(ClientError):
        sender.put_record("stream", b"x")
    assert changes[-1][1] is RateChange.DECREASED
    assert sender.put_record("stream", b"x").startswith("id-")
    results = sender.put_record_batch("stream", [b"a", b"b"])
    assert results[0].error_code == "ServiceUnavailableException" and results[1].record_id
    assert [change for _, change in changes] == [RateChange.DECREASED, RateChange.DECREASED]


def test_other_failures_inside_a_batch_neither_slow_nor_speed_the_rate() -> None:
    clock = FakeClock()
    rate, changes = adaptive(clock, cooldown_seconds=0.0)
    sender = PacedSender(
        ScriptedSender([["InternalFailure", None]]),
        SendPacer(None, clock=clock, sleep=clock.sleep),
        rate,
    )
    sender.put_record_batch("stream", [b"a", b"b"])
    assert changes == []


# -- chunking ----------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=1_024_000), min_size=0, max_size=1200),
    max_records=st.integers(min_value=1, max_value=500),
)
def test_chunks_keep_order_and_stay_within_records_and_bytes(
    sizes: list[int], max_records: int
) -> None:
    messages = [message(n, size) for n, size in enumerate(sizes)]
    chunks = list(chunk_for_batches(messages, max_records=max_records))
    assert [m for chunk in chunks for m in chunk] == messages  # nothing lost, order kept
    for chunk in chunks:
        assert 1 <= len(chunk) <= max_records
        assert sum(m.size_bytes for m in chunk) <= BATCH_MAX_BYTES
    for first, second in zip(chunks, chunks[1:], strict=False):  # chunks are full, not ragged
        full = len(first) == max_records
        assert full or sum(m.size_bytes for m in first) + second[0].size_bytes > BATCH_MAX_BYTES


def test_firehose_batch_limits_are_500_records_and_4_mib() -> None:
    assert (BATCH_MAX_RECORDS, BATCH_MAX_BYTES) == (500, 4 * 1024 * 1024)
    big = [message(n, 1_000_000) for n in range(9)]
    assert [len(chunk) for chunk in chunk_for_batches(big)] == [4, 4, 1]
    small = [message(n, 50) for n in range(1201)]
    assert [len(chunk) for chunk in chunk_for_batches(small)] == [500, 500, 201]


# -- send_messages -----------------------------------------------------------------------------


class RandomlyFailingBatches(ScriptedSender):
    """Fails each record of each batch call with probability ``share`` (throttled)."""

    def __init__(self, share: float, seed: int) -> None:
        super().__init__()
        self.rng = random.Random(seed)
        self.share = share

    def put_record_batch(self, stream_name: str, records: Sequence[bytes]):
        with self._lock:
            self.batches.append(list(records))
            codes = [
                "ServiceUnavailableException" if self.rng.random() < self.share else None
                for _ in records
            ]
        return [
            BatchEntryResult(None, code, "Slow down.") if code else BatchEntryResult(f"id-{d!r}")
            for d, code in zip(records, codes, strict=True)
        ]


@settings(max_examples=25, deadline=None)
@given(
    count=st.integers(min_value=1, max_value=1300),
    share=st.sampled_from([0.0, 0.1, 0.5, 0.9]),
    seed=st.integers(min_value=0, max_value=10_000),
    concurrency=st.sampled_from([1, 3]),
)
def test_only_the_records_that_failed_inside_a_batch_are_sent_again(
    count: int, share: float, seed: int, concurrency: int
) -> None:
    messages = [message(n) for n in range(count)]
    sender = RandomlyFailingBatches(share, seed)
    outcomes = send_messages(
        deliverer(sender, attempts=200), messages, batch=True, concurrency=concurrency
    )
    assert [o.message for o in outcomes] == messages
    assert all(o.delivered for o in outcomes)
    sent_per_record: dict[bytes, int] = {}
    for call in sender.batches:
        assert len(call) <= BATCH_MAX_RECORDS
        for data in call:
            sent_per_record[data] = sent_per_record.get(data, 0) + 1
    # Each record went out once per attempt it needed: never again once it had a RecordId.
    assert sent_per_record == {o.message.data_bytes: o.attempts for o in outcomes}
    # Each retry call holds exactly records that failed in an earlier call.
    assert sum(len(call) for call in sender.batches) == sum(o.attempts for o in outcomes)


def test_outcomes_follow_the_messages_order_whatever_the_concurrency() -> None:
    messages = [message(n) for n in range(300)]
    sender = ScriptedSender()
    outcomes = send_messages(deliverer(sender), messages, concurrency=8)
    assert [o.message for o in outcomes] == messages
    assert all(o.delivered for o in outcomes) and len(sender.singles) == 300


def test_a_rate_paces_every_call_retries_included() -> None:
    clock = FakeClock()
    sender = ScriptedSender([throttle_error()] * 5)
    messages = [message(n) for n in range(20)]
    outcomes = send_messages(
        deliverer(sender, attempts=10),
        messages,
        rate=10,
        adaptive=False,
        clock=clock,
        sleep=clock.sleep,
    )
    assert all(o.delivered for o in outcomes)
    assert len(sender.singles) == 25  # 20 records + 5 retries
    assert clock.now - 1000.0 == pytest.approx(2.4)  # 25 calls at 10/s, the first at once


def test_a_rate_keeps_batches_to_a_fifth_of_a_second() -> None:
    clock = FakeClock()
    sender = ScriptedSender()
    send_messages(
        deliverer(sender),
        [message(n) for n in range(100)],
        batch=True,
        rate=50,
        clock=clock,
        sleep=clock.sleep,
    )
    assert [len(call) for call in sender.batches] == [10] * 10
    assert clock.now - 1000.0 == pytest.approx((100 - 5) / 50)  # 0.1 s saved up: 5


class QuotaStream(ScriptedSender):
    """A stream that throttles every call beyond ``quota`` calls per (virtual) second."""

    def __init__(self, clock: FakeClock, quota: int) -> None:
        super().__init__()
        self.clock = clock
        self.quota = quota
        self.per_second: dict[int, int] = {}
        self.calls = 0
        self.throttled = 0

    def put_record(self, stream_name: str, data: bytes) -> str:
        second = int(self.clock.now)
        self.per_second[second] = self.per_second.get(second, 0) + 1
        self.calls += 1
        self.clock.now += 0.001  # each call takes a millisecond
        if self.per_second[second] > self.quota:
            self.throttled += 1
            raise throttle_error()
        return "id"


def burst_into_quota(adaptive: bool) -> tuple[QuotaStream, list[RateAdjusted], float]:
    clock = FakeClock()
    stream = QuotaStream(clock, quota=200)
    events: list[RateAdjusted] = []

    def sink(event) -> None:
        if isinstance(event, RateAdjusted):
            events.append(event)

    outcomes = send_messages(
        deliverer(stream, attempts=100, sleep=clock.sleep),
        [message(n) for n in range(3000)],
        quota=DirectPutQuota(500_000, 2_000, 5 * MIB),
        sink=sink,
        adaptive=adaptive,
        clock=clock,
        sleep=clock.sleep,
    )
    assert all(o.delivered for o in outcomes)
    return stream, events, 3000 / (clock.now - 1000.0)


def test_throttling_backs_the_rate_off_and_it_recovers() -> None:
    stream, events, delivered_per_second = burst_into_quota(adaptive=True)
    changes = [event.change for event in events]
    assert changes[0] is RateChange.STARTED and events[0].records_per_second == 500_000
    assert RateChange.DECREASED in changes and RateChange.INCREASED in changes
    # Recovers after each decrease (additive steps), backs off again when over the quota.
    first_decrease = changes.index(RateChange.DECREASED)
    assert RateChange.INCREASED in changes[first_decrease:]
    assert changes.count(RateChange.DECREASED) >= 3
    assert all(event.records_per_second <= 500_000 for event in events)
    # Hammering at the requests quota (2,000/s) against a 200/s stream gets a quarter of all
    # calls throttled here; backing off cuts that share several times, at nearly the same speed.
    hammer, _, hammer_per_second = burst_into_quota(adaptive=False)
    assert stream.throttled / stream.calls < (hammer.throttled / hammer.calls) / 2.5
    assert delivered_per_second > 0.75 * hammer_per_second


def test_without_a_rate_or_quota_nothing_is_paced_or_announced() -> None:
    events: list = []
    sender = ScriptedSender()
    send_messages(deliverer(sender), [message(1)], sink=events.append)
    assert events == []


# -- the quota table ---------------------------------------------------------------------------


def test_the_quota_table_follows_the_firehose_documentation() -> None:
    for region in ("us-east-1", "us-west-2", "eu-west-1"):
        assert direct_put_quota(region) == DirectPutQuota(500_000, 2_000, 5 * MIB)
    for region in ("us-east-2", "eu-central-1", "ap-southeast-2", "sa-east-1"):
        assert direct_put_quota(region) == DirectPutQuota(100_000, 1_000, 1 * MIB)


def test_the_readme_quota_table_is_the_engines() -> None:
    match = re.search(r"<!-- quotas:start -->\n(.*?)<!-- quotas:end -->", README, re.S)
    assert match, "README lacks the quotas table markers"
    rows = [
        "| regions | records/s | requests/s | MiB/s |",
        "|---|---|---|---|",
        f"| {', '.join(f'`{r}`' for r in DIRECT_PUT_QUOTAS)} | {HIGHER_QUOTA.records_per_second:,}"
        f" | {HIGHER_QUOTA.requests_per_second:,} | {HIGHER_QUOTA.bytes_per_second // MIB} |",
        f"| every other region | {STANDARD_QUOTA.records_per_second:,} | "
        f"{STANDARD_QUOTA.requests_per_second:,} | {STANDARD_QUOTA.bytes_per_second // MIB} |",
    ]
    assert match.group(1) == "\n".join(rows) + "\n"
