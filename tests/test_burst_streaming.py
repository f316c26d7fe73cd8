"""Bursts that stream, keep identity changes in order and can be cancelled (README, "Bursts"
and "Reliability"): fake senders that answer concurrent calls out of order, the real Deliverer,
the real outbox and dead-letter journal."""

from __future__ import annotations

import base64
import io
import json
import random
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from engine.alerts import AlertBoard
from engine.burst import send_messages, stream_messages
from engine.dead_letters import DeadLetter, DeadLetterJournal
from engine.delivery import Deliverer, DeliveryOutcome, RetryPolicy
from engine.gateway import BatchEntryResult
from engine.outbox import Outbox
from engine.records import (
    Action,
    AudienceUser,
    MessageKind,
    OutgoingMessage,
    RecordContext,
    build_messages,
    burst_messages,
    burst_size,
    configured_test_user,
    iter_burst_messages,
    synthetic_user,
)
from engine.session import OUTCOMES_KEPT, ConsoleSession
from engine.settings import Settings
from engine.settings_file import load_settings
from engine.state_dir import INTERRUPTED_UNSENT


def error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutRecord",
    )


class JitterySender:
    """A stand-in Firehose that holds every call a random few milliseconds, so concurrent calls
    are answered out of order; it throttles whole calls and fails records inside batches at
    random. It logs, in one order, when each record's call started and when its RecordId was
    given back."""

    def __init__(self, *, seed: int = 1, failure_rate: float = 0.2, refuse=None) -> None:
        self.rng = random.Random(seed)
        self.failure_rate = failure_rate
        self.refuse = refuse or (lambda data: False)  # records refused for good
        self.lock = threading.Lock()
        self.log: list[tuple[str, bytes]] = []  # ("sent" | "acked", data)
        self.in_flight = 0
        self.most_in_flight = 0
        self.calls = 0

    def _enter(self, records: Sequence[bytes]) -> tuple[float, list[float]]:
        with self.lock:
            self.calls += 1
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self.log.extend(("sent", data) for data in records)
            return self.rng.uniform(0, 0.004), [self.rng.random() for _ in records]

    def _leave(self, acked: Sequence[bytes]) -> None:
        with self.lock:
            self.in_flight -= 1
            self.log.extend(("acked", data) for data in acked)

    def put_record(self, stream_name: str, data: bytes) -> str:
        pause, (luck,) = self._enter([data])
        time.sleep(pause)
        if self.refuse(data):
            self._leave([])
            raise error("AccessDeniedException", 400)
        if luck < self.failure_rate:
            self._leave([])
            raise error("ServiceUnavailableException", 503)
        self._leave([data])
        return f"id-{luck}"

    def put_record_batch(
        self, stream_name: str, records: Sequence[bytes]
    ) -> list[BatchEntryResult]:
        pause, lucks = self._enter(records)
        time.sleep(pause)
        results = []
        for data, luck in zip(records, lucks, strict=True):
            if self.refuse(data):
                results.append(BatchEntryResult(None, "AccessDeniedException", "no"))
            elif luck < self.failure_rate:
                results.append(BatchEntryResult(None, "ServiceUnavailableException", "slow"))
            else:
                results.append(BatchEntryResult(f"id-{luck}"))
        self._leave([d for d, r in zip(records, results, strict=True) if r.record_id])
        return results


def deliverer(sender, tmp_path: Path, *, outbox: Outbox | None = None) -> Deliverer:
    return Deliverer(
        sender,
        RetryPolicy(10, 0.0005, 0.001),
        connection_name="test",
        alerts=AlertBoard(),
        sink=lambda event: None,
        dead_letters=DeadLetterJournal(tmp_path / "dead-letters.jsonl"),
        outbox=outbox,
        rng=random.Random(0),
    )


def identity_changes(count: int) -> list:
    return burst_messages(Settings(), Action.IDENTITY_CHANGE, count, timestamp=1)


def order_by_user(log: list[tuple[str, bytes]]) -> dict[str, list[str]]:
    """Per user, the remove's and the re-add's events in the order they happened."""
    seen: dict[str, list[str]] = {}
    for what, data in log:
        record = json.loads(data)
        user = record["UserIdentities"]["CustomerId"]
        kind = "add" if record["IsMember"] else "remove"
        seen.setdefault(user, []).append(f"{kind} {what}")
    return seen


# -- identity changes: the remove is acknowledged before the re-add goes ----------------------


@pytest.mark.parametrize("batch", [False, True], ids=["one-per-call", "batches"])
def test_a_re_add_goes_only_after_its_remove_was_acknowledged(tmp_path: Path, batch: bool) -> None:
    sender = JitterySender(failure_rate=0.2)
    messages = identity_changes(40)
    outcomes = send_messages(
        deliverer(sender, tmp_path), messages, concurrency=6, batch=batch, batch_size=7
    )
    assert all(o.delivered for o in outcomes) and len(outcomes) == 80
    by_user = order_by_user(sender.log)
    assert len(by_user) == 40
    for user, events in by_user.items():
        first_add = events.index("add sent")
        assert "remove acked" in events[:first_add], (user, events)
    assert sender.most_in_flight > 1  # users still went out concurrently


def test_with_batches_a_remove_and_its_re_add_never_share_a_call(tmp_path: Path) -> None:
    calls: list[list[dict]] = []

    class Recording(JitterySender):
        def put_record_batch(self, stream_name, records):
            calls.append([json.loads(data) for data in records])
            return super().put_record_batch(stream_name, records)

    messages = identity_changes(30)
    send_messages(deliverer(Recording(failure_rate=0.3), tmp_path), messages, batch=True)
    for call in calls:
        users = [r["UserIdentities"]["CustomerId"] for r in call]
        assert len(users) == len(set(users))


def test_a_re_add_whose_remove_failed_waits_in_the_dead_letters_and_replay_keeps_the_order(
    tmp_path: Path,
) -> None:
    def refuses_removes_of_user_3(data: bytes) -> bool:
        record = json.loads(data)
        return not record["IsMember"] and record["UserIdentities"]["CustomerId"] == "p.fogg138-3"

    first = JitterySender(failure_rate=0.0, refuse=refuses_removes_of_user_3)
    messages = identity_changes(5)
    outcomes = send_messages(deliverer(first, tmp_path), messages, concurrency=4)
    assert [o.delivered for o in outcomes].count(False) == 2
    sent_users = {json.loads(d)["UserIdentities"]["CustomerId"] for _, d in first.log}
    assert "p.fogg138-3" in sent_users  # the remove was tried...
    readds_sent = [json.loads(d) for w, d in first.log if w == "sent" and json.loads(d)["IsMember"]]
    assert all(
        r["UserIdentities"]["CustomerId"] != "p.fogg138-3" for r in readds_sent
    )  # ...not its re-add

    letters = DeadLetterJournal(tmp_path / "dead-letters.jsonl").entries()
    remove, readd = letters
    assert (remove.kind, remove.failure_class) == ("remove", "ACCESS_DENIED")
    assert (readd.kind, readd.failure_class) == ("add", "WAITING_FOR_PREDECESSOR")
    assert readd.follows == remove.message_id and readd.alert_type == ""
    assert remove.message_id in readd.detail

    replay = JitterySender(failure_rate=0.3)
    replayed = send_messages(
        deliverer(replay, tmp_path), [letter.to_message() for letter in letters], concurrency=4
    )
    assert all(o.delivered for o in replayed)
    events = order_by_user(replay.log)["p.fogg138-3"]
    assert "remove acked" in events[: events.index("add sent")]


def test_a_re_add_following_a_message_outside_the_send_is_not_held_back(tmp_path: Path) -> None:
    _, readd = identity_changes(1)
    (outcome,) = send_messages(deliverer(JitterySender(failure_rate=0), tmp_path), [readd])
    assert readd.follows and outcome.delivered


def test_a_skipped_remove_does_not_hold_its_re_add_back(tmp_path: Path) -> None:
    settings = Settings(
        connections={"c": {"delivery_stream_name": "s", "send_anonymous_users": False}}
    )
    context = RecordContext.from_settings(settings)
    anonymous = AudienceUser("42", {})
    remove, readd = build_messages(
        Action.IDENTITY_CHANGE,
        context,
        anonymous,
        timestamp=1,
        new_user=AudienceUser("42", {"CustomerId": "c"}),
    )
    assert not remove.will_send and readd.follows == remove.message_id
    outcomes = send_messages(deliverer(JitterySender(failure_rate=0), tmp_path), [remove, readd])
    assert [o.skipped for o in outcomes] == [True, False] and outcomes[1].delivered


def test_on_the_sandbox_every_re_add_is_sent_after_its_remove_was_acknowledged(
    tmp_path: Path,
) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(
        '[connections.travel]\ndelivery_stream_name = "ordered"\n'
        "[delivery]\nmax_attempts = 20\nbackoff_base_seconds = 0.001\n"
        "backoff_cap_seconds = 0.002\nconcurrency = 6\n"
        '[sandbox]\nfailure_rate = 0.3\nfailures = ["throttling", "partial-batch"]\nseed = 3\n'
    )
    for batch in (False, True):
        events: list = []
        session = ConsoleSession(
            load_settings(path), use_sandbox=True, sink=events.append, sleep=lambda s: None
        )
        try:
            report = session.send(Action.IDENTITY_CHANGE, count=30, batch=batch)
        finally:
            session.close()
        assert (report.requested, report.delivered) == (60, 60)
        kinds = {o.message.message_id: o.message for o in report.outcomes}
        acked: set[str] = set()
        for event in events:
            name = type(event).__name__
            if name == "RecordDelivered":
                acked.add(event.message_id)
            elif name == "AttemptStarted" and event.kind is MessageKind.ADD:
                follows = kinds[event.message_id].follows
                assert follows in acked, "a re-add went out before its remove was acknowledged"


# -- building a burst -------------------------------------------------------------------------


def test_a_streamed_burst_is_the_same_records_as_synthetic_users_built_one_by_one() -> None:
    settings = Settings(
        connections={
            "c": {
                "delivery_stream_name": "s",
                "forward_email_addresses": False,
                "identities_to_exclude": ["Other3"],
            }
        }
    )
    context = RecordContext.from_settings(settings)
    base = configured_test_user(settings)
    changed = configured_test_user(settings, new_identities=True)
    streamed = list(iter_burst_messages(settings, Action.IDENTITY_CHANGE, 3, timestamp=9))
    built = [
        message
        for n in (1, 2, 3)
        for message in build_messages(
            Action.IDENTITY_CHANGE,
            context,
            synthetic_user(base, n),
            timestamp=9,
            new_user=synthetic_user(changed, n),
        )
    ]
    assert [(m.data_bytes, m.dropped, m.skip_reason) for m in streamed] == [
        (m.data_bytes, m.dropped, m.skip_reason) for m in built
    ]
    assert [m.follows for m in streamed[1::2]] == [m.message_id for m in streamed[::2]]
    assert burst_size(settings, Action.IDENTITY_CHANGE, 3) == 6


def test_a_burst_is_built_lazily() -> None:
    messages = iter_burst_messages(Settings(), Action.ADD, 10_000_000, timestamp=1)
    first = next(messages)  # ten million are not built to get the first
    assert json.loads(first.data_bytes)["UserIdentities"]["CustomerId"] == "p.fogg138-1"


# -- streaming through the session ------------------------------------------------------------


class OutboxCheckingSender:
    """At every call, reads the outbox file: every record of the call must be there already."""

    def __init__(self, outbox_path: Path) -> None:
        self.outbox_path = outbox_path
        self.journaled_at_first_call: int | None = None
        self.journaled: set[bytes] = set()
        self.offset = 0
        self.calls = 0
        self.lock = threading.Lock()

    def _check(self, records: Sequence[bytes]) -> None:
        with self.lock:
            self.calls += 1
            with self.outbox_path.open("rb") as journal:  # read on from where it was left
                journal.seek(self.offset)
                added = journal.read()
            complete = added[: added.rfind(b"\n") + 1]
            self.offset += len(complete)
            for line in complete.splitlines():
                document = json.loads(line)
                if "data_base64" in document:
                    self.journaled.add(base64.b64decode(document["data_base64"]))
            if self.journaled_at_first_call is None:
                self.journaled_at_first_call = len(self.journaled)
            missing = [data for data in records if data not in self.journaled]
        assert not missing, "a record was sent before the outbox had it"

    def put_record(self, stream_name: str, data: bytes) -> str:
        self._check([data])
        return "id"

    def put_record_batch(
        self, stream_name: str, records: Sequence[bytes]
    ) -> list[BatchEntryResult]:
        self._check(records)
        return [BatchEntryResult(f"id-{n}") for n in range(len(records))]


def session_with(sender, tmp_path: Path, concurrency: int = 4, sink=None) -> ConsoleSession:
    path = tmp_path / "settings.toml"
    path.write_text(
        '[connections.live]\ndelivery_stream_name = "s"\n'
        f'[delivery]\nconcurrency = {concurrency}\nstate_dir = "{tmp_path / "state"}"\n'
    )
    session = ConsoleSession(
        load_settings(path), sleep=lambda s: None, sink=sink or (lambda event: None)
    )
    session.gateway = lambda: sender  # type: ignore[method-assign]  # a fake Firehose
    return session


def test_a_burst_is_journaled_chunk_by_chunk_each_before_any_of_it_is_sent(
    tmp_path: Path,
) -> None:
    sender = OutboxCheckingSender(tmp_path / "state" / "outbox" / "live.jsonl")
    session = session_with(sender, tmp_path)
    seen: list[DeliveryOutcome] = []
    try:
        report = session.send(Action.ADD, count=25_000, batch=True, on_outcome=seen.append)
    finally:
        session.close()
    assert (report.requested, report.delivered, report.failed, report.not_sent) == (
        25_000,
        25_000,
        0,
        0,
    )
    assert len(seen) == 25_000 and len({o.message.message_id for o in seen}) == 25_000
    assert [json.loads(o.message.data_bytes)["UserIdentities"]["CustomerId"] for o in seen[:3]] == [
        "p.fogg138-1",
        "p.fogg138-2",
        "p.fogg138-3",
    ]
    # The first chunk (1,000), or two (the next, 2,000, is journaled while the first is sent;
    # the first call may read its lines while they are being appended): never the whole burst.
    assert sender.journaled_at_first_call is not None
    assert 1_000 <= sender.journaled_at_first_call <= 3_000
    assert len(report.outcomes) == OUTCOMES_KEPT and not report.outcomes_complete
    assert report.document()["delivered"] == 25_000


# -- cancellation -----------------------------------------------------------------------------


class CancellingSender(JitterySender):
    """Sets ``cancel`` during its ``after``-th call; counts calls that start after that."""

    def __init__(self, cancel: threading.Event, after: int) -> None:
        super().__init__(failure_rate=0.0)
        self.cancel = cancel
        self.after = after
        self.started_after_cancel = 0

    def _enter(self, records):
        if self.cancel.is_set():
            self.started_after_cancel += 1
        entered = super()._enter(records)
        if self.calls == self.after:
            self.cancel.set()
        return entered


@pytest.mark.parametrize("batch", [False, True], ids=["one-per-call", "batches"])
def test_a_cancelled_send_starts_no_new_call_and_accounts_for_every_message(
    tmp_path: Path, batch: bool
) -> None:
    cancel = threading.Event()
    sender = CancellingSender(cancel, after=1 if batch else 5)  # batch: during the removes' call
    session = session_with(sender, tmp_path, concurrency=3)
    try:
        report = session.send(Action.IDENTITY_CHANGE, count=200, batch=batch, cancel=cancel)
        letters = session.dead_letter_journal().entries()
    finally:
        session.close()
    assert sender.started_after_cancel <= 2  # at most the other workers' calls already going
    assert report.requested == 400
    assert report.delivered + report.not_sent == 400 and report.failed == 0
    assert report.not_sent >= 200 and not report.ok
    sent = {data for what, data in sender.log if what == "sent"}
    never_sent = [o for o in report.outcomes if o.not_sent]
    assert never_sent and all(o.message.data_bytes not in sent for o in never_sent)
    assert len(letters) == report.not_sent
    assert {letter.failure_class for letter in letters} == {INTERRUPTED_UNSENT}
    readds = [letter for letter in letters if letter.kind == "add"]
    assert readds and all(letter.follows for letter in readds)  # a replay keeps the order


def test_a_send_cancelled_before_it_starts_sends_nothing(tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    sender = JitterySender(failure_rate=0.0)
    session = session_with(sender, tmp_path)
    try:
        report = session.send(Action.ADD, count=30, cancel=cancel)
    finally:
        session.close()
    assert sender.calls == 0
    assert (report.requested, report.not_sent, report.delivered, report.failed) == (30, 30, 0, 0)


def test_a_message_that_failed_once_is_not_retried_after_a_cancel(tmp_path: Path) -> None:
    cancel = threading.Event()

    class ThrottlesThenCancels(JitterySender):
        def put_record(self, stream_name, data):
            self._enter([data])
            cancel.set()
            raise error("ServiceUnavailableException", 503)

    sender = ThrottlesThenCancels()
    (outcome,) = send_messages(deliverer(sender, tmp_path), identity_changes(1)[:1], cancel=cancel)
    assert sender.calls == 1
    assert not outcome.not_sent and outcome.failure is not None and outcome.dead_lettered


def test_a_single_record_without_a_rate_goes_without_pacing(tmp_path: Path) -> None:
    for count, paced in ((1, False), (2, True)):
        events: list = []
        sender = JitterySender(failure_rate=0.0)
        (tmp_path / str(count)).mkdir()
        session = session_with(sender, tmp_path / str(count), sink=events.append)
        try:
            assert session.send(Action.ADD, count=count).delivered == count
        finally:
            session.close()
        assert any(type(event).__name__ == "RateAdjusted" for event in events) is paced


# -- send --json, written as the send goes --------------------------------------------------


def outcome(number: int) -> DeliveryOutcome:
    (message,) = burst_messages(Settings(), Action.ADD, 1, timestamp=number)
    return DeliveryOutcome(message, f"record-{number}", 1)


def test_send_json_is_one_document_whether_the_send_ends_or_fails_midway() -> None:
    from console.cli_output import JsonSendWriter
    from engine.session import SendReport

    finished = io.StringIO()
    writer = JsonSendWriter(finished)
    outcomes = [outcome(n) for n in (1, 2, 3)]
    for each in outcomes:
        writer.record(each)
    writer.finish(SendReport(requested=3, outcomes=tuple(outcomes)))
    document = json.loads(finished.getvalue())
    assert [r["record_id"] for r in document["records"]] == ["record-1", "record-2", "record-3"]
    assert (document["requested"], document["delivered"], document["not_sent"]) == (3, 3, 0)

    failed = io.StringIO()
    writer = JsonSendWriter(failed)
    writer.record(outcomes[0])
    writer.abort("OSError: No space left on device")
    document = json.loads(failed.getvalue())
    assert len(document["records"]) == 1 and document["error"].startswith("OSError")

    untouched = io.StringIO()
    JsonSendWriter(untouched).abort("could not start")
    assert untouched.getvalue() == ""  # nothing was begun: the error line says it all


def test_follows_survives_the_outbox_and_the_dead_letter_journal(tmp_path: Path) -> None:
    remove, readd = identity_changes(1)
    outbox = Outbox(tmp_path / "outbox.jsonl", "test")
    outbox.queue([remove, readd], "now")
    (left_remove, left_readd) = outbox.unsettled()
    letter = DeadLetter.interrupted(left_readd.entry, "later", sent=False)
    assert letter.follows == remove.message_id and left_remove.entry.follows is None
    journal = DeadLetterJournal(tmp_path / "dead-letters.jsonl")
    journal.add(letter)
    (again,) = journal.entries()
    assert again.to_message().follows == remove.message_id


@pytest.mark.parametrize(
    "value",
    ['quote"d', "back\\slash", "new\nline", "été ✓", "a@b@c", "tab\there", "\u2028sep", "x"],
)
def test_a_burst_record_filled_from_its_template_is_exactly_the_encoded_record(value: str) -> None:
    settings = Settings(
        test_user={
            "mpid": 'm"1',
            "identities": {"CustomerId": value, "Email": f"{value}@example.com"},
            "new_identities": {"Other": value},
        }
    )
    context = RecordContext.from_settings(settings)
    base = configured_test_user(settings)
    changed = configured_test_user(settings, new_identities=True)
    streamed = list(iter_burst_messages(settings, Action.IDENTITY_CHANGE, 12, timestamp=5))
    for n in (1, 7, 12):
        remove, readd = build_messages(
            Action.IDENTITY_CHANGE,
            context,
            synthetic_user(base, n),
            timestamp=5,
            new_user=synthetic_user(changed, n),
        )
        assert streamed[2 * n - 2].data_bytes == remove.data_bytes
        assert streamed[2 * n - 1].data_bytes == readd.data_bytes
        assert json.loads(streamed[2 * n - 1].data_bytes) == streamed[2 * n - 1].data


def test_a_chunk_never_cuts_an_identity_change_in_two(tmp_path: Path) -> None:
    chunks: list[list[str]] = []
    sender = JitterySender(failure_rate=0.2)
    outcomes: list[DeliveryOutcome] = []
    stream_messages(
        deliverer(sender, tmp_path),
        iter(identity_changes(5)),
        outcomes.append,
        before_chunk=lambda chunk: chunks.append([m.kind.value for m in chunk]),
        chunk_size=3,
        concurrency=3,
    )
    assert chunks == [["remove", "add"] * 2, ["remove", "add"] * 2, ["remove", "add"]]
    assert len(outcomes) == 10 and all(o.delivered for o in outcomes)
    for events in order_by_user(sender.log).values():
        assert "remove acked" in events[: events.index("add sent")]


class ChunkOrderSender:
    """Answers at once, and records, at every call, whether a record of an earlier chunk was
    still unanswered (a later chunk overtook it) and how many chunks were journaled then."""

    def __init__(self, chunk_of: dict[bytes, int], journaled: list[int]) -> None:
        self.chunk_of = chunk_of
        self.journaled = journaled
        self.lock = threading.Lock()
        self.unanswered: dict[int, int] = {}  # chunk -> records sent, not answered yet
        self.overtaken = 0
        self.journaled_during_first_chunk = 0

    def put_record_batch(
        self, stream_name: str, records: Sequence[bytes]
    ) -> list[BatchEntryResult]:
        chunk = self.chunk_of[records[0]]
        with self.lock:
            if any(n < chunk and left for n, left in self.unanswered.items()):
                self.overtaken += 1
            self.unanswered[chunk] = self.unanswered.get(chunk, 0) + len(records)
        if chunk == 0:  # the next chunk is built and journaled while this one is sent
            deadline = time.monotonic() + 10  # fails, rather than hangs, without the overlap
            while len(self.journaled) < 2 and time.monotonic() < deadline:
                time.sleep(0.001)
            self.journaled_during_first_chunk = max(
                self.journaled_during_first_chunk, len(self.journaled)
            )
        with self.lock:
            self.unanswered[chunk] -= len(records)
        return [BatchEntryResult(f"id-{n}") for n in range(len(records))]


def test_the_next_chunk_is_journaled_while_one_is_sent_and_never_overtakes_it(
    tmp_path: Path,
) -> None:
    messages = identity_changes(30)  # 60 messages, in chunks of 10: 6 chunks
    chunk_of = {m.data_bytes: n // 10 for n, m in enumerate(messages)}
    journaled: list[int] = []
    sender = ChunkOrderSender(chunk_of, journaled)
    outcomes: list[DeliveryOutcome] = []
    consumed = stream_messages(
        deliverer(sender, tmp_path),
        iter(messages),
        outcomes.append,
        before_chunk=lambda chunk: journaled.append(len(chunk)),
        chunk_size=10,
        concurrency=3,
        batch=True,
        batch_size=4,
    )
    assert sender.journaled_during_first_chunk == 2  # overlapped, and only one chunk ahead
    assert sender.overtaken == 0  # no call of a chunk before the one before it was answered
    assert consumed == 60 and journaled == [10] * 6
    assert [o.message.message_id for o in outcomes] == [m.message_id for m in messages]
    assert all(o.delivered for o in outcomes)


def test_a_burst_leaves_the_newest_acknowledged_records_in_the_landed_journal(
    tmp_path: Path,
) -> None:
    sender = OutboxCheckingSender(tmp_path / "state" / "outbox" / "live.jsonl")
    session = session_with(sender, tmp_path)
    seen: list[DeliveryOutcome] = []
    try:
        session.send(Action.ADD, count=25_000, batch=True, on_outcome=seen.append)
        entries = session.landed_journal().entries()
    finally:
        session.close()
    newest = seen[-len(entries) :]
    assert len(entries) == session.landed_journal().max_entries
    assert [e.message_id for e in entries] == [o.message.message_id for o in newest]
    assert [e.record_id for e in entries] == [o.record_id for o in newest]


class InstantSender:
    def put_record_batch(
        self, stream_name: str, records: Sequence[bytes]
    ) -> list[BatchEntryResult]:
        return [BatchEntryResult(f"id-{n}") for n in range(len(records))]


def test_a_burst_starts_with_a_small_chunk_and_doubles_up_to_the_chunk_size(
    tmp_path: Path,
) -> None:
    sizes: list[int] = []
    outcomes: list[DeliveryOutcome] = []
    consumed = stream_messages(
        deliverer(InstantSender(), tmp_path),
        iter_burst_messages(Settings(), Action.ADD, 40_000, timestamp=1),
        outcomes.append,
        before_chunk=lambda chunk: sizes.append(len(chunk)),
        concurrency=4,
        batch=True,
    )
    assert sizes == [1_000, 2_000, 4_000, 8_000, 10_000, 10_000, 5_000]
    assert consumed == len(outcomes) == 40_000 and all(o.delivered for o in outcomes)


class GatedSender(InstantSender):
    """Every call waits until ``gate`` is set; ``in_flight`` is set once ``calls`` calls are
    waiting. Logs what it sent."""

    def __init__(self, gate: threading.Event, calls: int) -> None:
        self.gate = gate
        self.calls = calls
        self.in_flight = threading.Event()
        self.lock = threading.Lock()
        self.sent: list[bytes] = []

    def put_record_batch(
        self, stream_name: str, records: Sequence[bytes]
    ) -> list[BatchEntryResult]:
        with self.lock:
            self.calls -= 1
            if self.calls == 0:
                self.in_flight.set()
        assert self.gate.wait(10), "the next chunk was never journaled"
        with self.lock:
            self.sent.extend(records)
        return super().put_record_batch(stream_name, records)


def test_a_cancel_sets_the_chunk_built_ahead_aside_unsent_and_builds_no_more(
    tmp_path: Path,
) -> None:
    cancel, gate = threading.Event(), threading.Event()
    journaled: list[list[OutgoingMessage]] = []

    def journal(chunk: Sequence[OutgoingMessage]) -> None:
        journaled.append(list(chunk))
        if len(journaled) == 2:  # the second chunk is on record while the first is sent
            assert sender.in_flight.wait(10)  # both calls of the first chunk
            cancel.set()
            gate.set()

    sender = GatedSender(gate, calls=2)
    outcomes: list[DeliveryOutcome] = []
    messages = burst_messages(Settings(), Action.ADD, 30, timestamp=1)
    consumed = stream_messages(
        deliverer(sender, tmp_path),
        iter(messages),
        outcomes.append,
        before_chunk=journal,
        chunk_size=10,
        concurrency=2,
        batch=True,
        batch_size=5,
        cancel=cancel,
    )
    assert consumed == 20 and [len(chunk) for chunk in journaled] == [10, 10]
    assert [o.message.message_id for o in outcomes] == [m.message_id for m in messages[:20]]
    assert all(o.delivered for o in outcomes[:10])
    assert all(o.not_sent and not o.delivered for o in outcomes[10:])
    assert sorted(sender.sent) == sorted(m.data_bytes for m in messages[:10])
    letters = DeadLetterJournal(tmp_path / "dead-letters.jsonl").entries()
    assert [letter.message_id for letter in letters] == [m.message_id for m in messages[10:20]]
    assert {letter.failure_class for letter in letters} == {INTERRUPTED_UNSENT}
