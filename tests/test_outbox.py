"""The outbox: journaled before sending, tombstoned once answered, recovered after a crash; only
when no other console is using it; one fsync per call, not per record."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

import engine.jsonl
from engine.alerts import AlertBoard
from engine.dead_letters import DeadLetter, DeadLetterJournal
from engine.delivery import Deliverer, RetryPolicy
from engine.events import InterruptedRunRecovered
from engine.gateway import BatchEntryResult
from engine.journaled import JournaledMessage
from engine.jsonl import append_json_lines, read_json_lines
from engine.outbox import Outbox
from engine.records import Action, AudienceUser, RecordContext, build_messages
from engine.session import ConsoleSession
from engine.settings import ConnectionSettings, DeliverySettings, Settings
from engine.settings_file import LoadedSettings
from engine.state_dir import INTERRUPTED_UNSENT, UNKNOWN_FATE, UNKNOWN_FATE_DETAIL

ROOT = Path(__file__).resolve().parents[1]


def messages(count: int) -> list:
    context = RecordContext(
        "stream", ConnectionSettings(delivery_stream_name="stream"), 1, "A", "\n", True
    )
    return [
        build_messages(
            Action.ADD, context, AudienceUser(str(n), {"Email": f"{n}@x.y"}), timestamp=1
        )[0]
        for n in range(count)
    ]


class Sender:
    """Answers with RecordIds; raises ``error`` instead when given (once per call)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error

    def put_record(self, stream_name: str, data: bytes) -> str:
        if self.error:
            raise self.error
        return "rid-" + data.decode()[:8]

    def put_record_batch(
        self, stream_name: str, records: Sequence[bytes]
    ) -> list[BatchEntryResult]:
        if self.error:
            raise self.error
        return [BatchEntryResult(f"rid-{i}") for i in range(len(records))]


def deliverer(sender, tmp_path: Path, outbox: Outbox) -> Deliverer:
    return Deliverer(
        sender,
        RetryPolicy(2, 0.001, 0.001),
        connection_name="travel",
        alerts=AlertBoard(),
        sink=lambda event: None,
        dead_letters=DeadLetterJournal(tmp_path / "dead.jsonl"),
        outbox=outbox,
        sleep=lambda seconds: None,
        rng=random.Random(1),
    )


def test_a_torn_tail_is_skipped_and_does_not_swallow_the_next_line(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    append_json_lines(path, [{"n": 1}])
    with path.open("a") as handle:
        handle.write('{"n": 2, "torn')  # a crash mid-write
    append_json_lines(path, [{"n": 3}])
    assert read_json_lines(path) == [{"n": 1}, {"n": 3}]


def test_delivered_and_dead_lettered_messages_leave_with_a_tombstone(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.jsonl", "travel")
    good, bad = messages(2)
    deliverer(Sender(), tmp_path, outbox).deliver(good)
    denied = ClientError({"Error": {"Code": "AccessDeniedException"}}, "PutRecord")
    outcome = deliverer(Sender(denied), tmp_path, outbox).deliver(bad)
    assert outcome.dead_lettered
    lines = read_json_lines(outbox.path)
    assert lines[0]["message_id"] == good.message_id
    assert lines[1] == {"sending": [good.message_id]}
    assert lines[2]["done"] == good.message_id and lines[2]["record_id"].startswith("rid-")
    assert lines[3]["message_id"] == bad.message_id
    assert lines[5] == {"done": bad.message_id, "dead_lettered": True}
    assert outbox.unsettled() == []


@pytest.mark.parametrize(
    ("message_id", "follows", "connection"),
    [
        ("0" * 32, None, "travel"),
        ('a "quoted" id\\ with\ttabs\nand é, \u2028 and \x00', "b" * 32, 'c"onn\u00e9'),
    ],
)
def test_a_journal_line_formatted_directly_is_the_encoders_line(
    message_id: str, follows: str | None, connection: str
) -> None:
    (message,) = messages(1)
    message = dataclasses.replace(message, message_id=message_id, follows=follows)
    document = JournaledMessage.document_of(message, connection, "2026-01-01T00:00:00+00:00")
    line = JournaledMessage.line_of(message, connection, "2026-01-01T00:00:00+00:00")
    assert line == engine.jsonl._ENCODER.encode(document)
    # Formatted among others (their shared parts quoted once), it is the same line.
    (other,) = messages(1)
    lines = JournaledMessage.lines_of([other, message], connection, "2026-01-01T00:00:00+00:00")
    assert lines[1] == line
    assert JournaledMessage.from_document(json.loads(line)).to_message() == message


class HalfSender(Sender):
    """Acknowledges the first half of each batch; the rest fail for good (dead-lettered)."""

    def put_record_batch(
        self, stream_name: str, records: Sequence[bytes]
    ) -> list[BatchEntryResult]:
        half = len(records) // 2
        return [BatchEntryResult(f"rid-{i}") for i in range(half)] + [
            BatchEntryResult(None, "AccessDeniedException", "no") for _ in records[half:]
        ]


def test_a_calls_acknowledged_messages_share_one_tombstone_and_still_leave(
    tmp_path: Path,
) -> None:
    outbox = Outbox(tmp_path / "outbox.jsonl", "travel")
    sent = messages(6)
    left_over = messages(2)  # journaled, never sent: what a crash would leave
    outbox.queue(left_over, "2026-01-01T00:00:00+00:00")
    outcomes = deliverer(HalfSender(), tmp_path, outbox).deliver_batch(sent)
    assert [o.delivered for o in outcomes] == [True] * 3 + [False] * 3
    tombstones = [d for d in read_json_lines(outbox.path) if "done" in d]
    assert tombstones[-1] == {
        "done": [m.message_id for m in sent[:3]],
        "record_ids": ["rid-0", "rid-1", "rid-2"],
    }
    assert [t["done"] for t in tombstones[:-1]] == [m.message_id for m in sent[3:]]
    assert all(t["dead_lettered"] for t in tombstones[:-1])
    left = outbox.unsettled()  # read back from the file, as after a crash
    assert [u.entry.message_id for u in left] == [m.message_id for m in left_over]
    assert not any(u.sent for u in left)


def test_a_batch_costs_one_fsync_and_a_burst_of_single_records_one_per_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(engine.jsonl.os, "fsync", counting_fsync)
    outbox = Outbox(tmp_path / "outbox.jsonl", "travel")
    outcomes = deliverer(Sender(), tmp_path, outbox).deliver_batch(messages(200))
    assert all(o.delivered for o in outcomes)
    assert len(synced) == 1  # entries and mark; tombstones are not fsynced (see engine.outbox)
    synced.clear()
    burst = messages(5)
    outbox.queue(burst, "t")  # what a session does before a burst
    for message in burst:
        deliverer(Sender(), tmp_path, outbox).deliver(message)
    assert len(synced) == 1 + 5  # the burst's entries, then one mark per PutRecord call
    assert outbox.unsettled() == []


def test_an_interrupted_burst_is_recovered_at_the_next_open(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    burst = messages(4)
    outbox = Outbox(path, "travel")
    outbox.queue(burst, "t")
    deliverer(Sender(), tmp_path, outbox).deliver(burst[0])
    with pytest.raises(KeyboardInterrupt):  # the process stops while a call is in flight
        deliverer(Sender(KeyboardInterrupt()), tmp_path, outbox).deliver_batch(burst[1:3])
    with path.open("a") as handle:
        handle.write('{"message_id": "torn-by-the-crash", "conn')
    journal = DeadLetterJournal(tmp_path / "dead.jsonl")
    outbox = Outbox(path, "travel")
    recovered = outbox.open(journal, "2024-01-01T00:00:00+00:00")
    try:
        by_id = {letter.message_id: letter for letter in recovered}
        assert list(by_id) == [m.message_id for m in burst[1:]]  # burst[0] was delivered
        for message in burst[1:3]:  # in flight: may have arrived
            letter = by_id[message.message_id]
            assert letter.failure_class == UNKNOWN_FATE and letter.possible_duplicate
            assert letter.detail == UNKNOWN_FATE_DETAIL
            assert letter.to_message().data_bytes == message.data_bytes
        never_sent = by_id[burst[3].message_id]
        assert never_sent.failure_class == INTERRUPTED_UNSENT
        assert not never_sent.possible_duplicate
        assert journal.entries() == recovered
        assert not path.exists()  # compacted
        second = Outbox(path, "travel")
        assert second.open(journal, "later") == []  # same process: not alone
        second.close()
    finally:
        outbox.close()


def test_an_interrupted_replay_keeps_unsent_letters_and_marks_sent_ones(tmp_path: Path) -> None:
    journal = DeadLetterJournal(tmp_path / "dead.jsonl")
    path = tmp_path / "outbox.jsonl"
    denied = ClientError({"Error": {"Code": "AccessDeniedException"}}, "PutRecord")
    first, second = messages(2)
    for message in (first, second):
        deliverer(Sender(denied), tmp_path, Outbox(path, "travel")).deliver(message)
    before = journal.entries()
    outbox = Outbox(path, "travel")  # a replay: both queued, the first sent, then a kill
    outbox.queue([first, second], "t")
    outbox.sending([first], "t")
    reopened = Outbox(path, "travel")
    recovered = reopened.open(journal, "t")
    reopened.close()
    assert [(r.message_id, r.failure_class) for r in recovered] == [
        (first.message_id, UNKNOWN_FATE)
    ]
    after = {letter.message_id: letter for letter in journal.entries()}
    assert after[second.message_id] == before[1]  # never re-sent: its letter stands
    assert after[first.message_id].possible_duplicate


HOLDER = """
import sys, time
from pathlib import Path
from engine.dead_letters import DeadLetterJournal
from engine.outbox import Outbox
outbox = Outbox(Path(sys.argv[1]), "travel")
outbox.open(DeadLetterJournal(Path(sys.argv[2])), "t")
print("holding", flush=True)
time.sleep(60)
"""


def test_messages_in_flight_in_another_console_are_left_alone(tmp_path: Path) -> None:
    path, dead = tmp_path / "outbox.jsonl", tmp_path / "dead.jsonl"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), str(dead)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
        in_flight = messages(2)
        Outbox(path, "travel").sending(in_flight, "t")  # as the other console would
        outbox = Outbox(path, "travel")
        assert outbox.open(DeadLetterJournal(dead), "t") == []
        outbox.close()  # not alone: no compaction either
        assert len(Outbox(path, "travel").unsettled()) == 2
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    outbox = Outbox(path, "travel")
    try:  # the other console died: its messages now have unknown fate
        assert len(outbox.open(DeadLetterJournal(dead), "t")) == 2
    finally:
        outbox.close()


def test_a_clean_run_leaves_no_outbox_file(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    outbox = Outbox(path, "travel")
    outbox.open(DeadLetterJournal(tmp_path / "dead.jsonl"), "t")
    deliverer(Sender(), tmp_path, outbox).deliver_batch(messages(3))
    assert path.exists()
    outbox.close()
    assert not path.exists()


def test_session_recovers_once_tells_the_sink_and_names_its_files(tmp_path: Path) -> None:
    settings = Settings(delivery=DeliverySettings(state_dir=str(tmp_path / "state")))
    loaded = LoadedSettings(
        settings, tmp_path / "s.toml", True, False, settings.account.secret_access_key, None
    )
    outbox_path = tmp_path / "state" / "outbox" / "travel.jsonl"
    Outbox(outbox_path, "travel").sending(messages(2), "t")  # left by a killed run
    events: list = []
    session = ConsoleSession(loaded, sink=events.append)
    try:
        first = session.recover_interrupted()
        assert len(first) == 2 and session.recover_interrupted() == first
        (event,) = events
        assert isinstance(event, InterruptedRunRecovered) and list(event.letters) == first
        assert event.journal_path == str(tmp_path / "state" / "dead-letters" / "travel.jsonl")
        assert [letter.message_id for letter in session.dead_letters()] == [
            letter.message_id for letter in first
        ]
    finally:
        session.close()
    sandbox = ConsoleSession(loaded, use_sandbox=True)
    try:
        assert sandbox.outbox().path == tmp_path / "state" / "outbox" / "travel.sandbox.jsonl"
        assert sandbox.recover_interrupted() == []
    finally:
        sandbox.close()


def test_outbox_lines_are_json_documents_with_the_bytes_to_resend(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.jsonl", "travel")
    (message,) = messages(1)
    outbox.sending([message], "2024-01-01T00:00:00+00:00")
    line, _ = (tmp_path / "o.jsonl").read_text().splitlines()
    document = json.loads(line)
    assert document["data_base64"] == message.data_base64
    assert document["connection"] == "travel" and document["stream_name"] == "stream"


def test_listing_dead_letters_first_still_includes_an_interrupted_runs_leftovers(
    tmp_path: Path,
) -> None:
    settings = Settings(delivery=DeliverySettings(state_dir=str(tmp_path / "state")))
    loaded = LoadedSettings(
        settings, tmp_path / "s.toml", True, False, settings.account.secret_access_key, None
    )
    left = messages(3)
    Outbox(tmp_path / "state" / "outbox" / "travel.jsonl", "travel").queue(left, "t")
    session = ConsoleSession(loaded)
    try:
        listed = session.dead_letters()
        assert [letter.message_id for letter in listed] == [m.message_id for m in left]
        assert session.recover_interrupted() == listed
    finally:
        session.close()


def test_removing_delivered_dead_letters_never_loses_one_appended_meanwhile(
    tmp_path: Path,
) -> None:
    import threading

    from engine.journaled import JournaledMessage

    journal = DeadLetterJournal(tmp_path / "dead.jsonl")
    letters = [
        DeadLetter.interrupted(JournaledMessage.from_message(m, "travel", "t"), "t", sent=False)
        for m in messages(300)
    ]
    doomed = letters[:50]
    journal.add_many(doomed)

    def append_the_rest() -> None:
        for letter in letters[50:]:
            journal.add(letter)

    appender = threading.Thread(target=append_the_rest)
    appender.start()
    while appender.is_alive():  # a replay removing what it delivered, again and again
        journal.remove({letter.message_id for letter in doomed})
    appender.join()
    assert [letter.message_id for letter in journal.entries()] == [
        letter.message_id for letter in letters[50:]
    ]


def test_a_possible_duplicate_that_fails_again_stays_one(tmp_path: Path) -> None:
    settings = Settings(
        delivery=DeliverySettings(state_dir=str(tmp_path / "state"), max_attempts=1)
    )
    loaded = LoadedSettings(
        settings, tmp_path / "s.toml", True, False, settings.account.secret_access_key, None
    )
    Outbox(tmp_path / "state" / "outbox" / "travel.jsonl", "travel").sending(messages(1), "t")
    session = ConsoleSession(loaded)
    denied = ClientError({"Error": {"Code": "AccessDeniedException"}}, "PutRecord")
    session._gateway = Sender(denied)  # type: ignore[assignment]  # the stream refuses it
    try:
        (interrupted,) = session.recover_interrupted()
        report = session.replay_dead_letters()
        (letter,) = session.dead_letters()
    finally:
        session.close()
    assert report.failed == 1
    assert letter.message_id == interrupted.message_id
    assert letter.failure_class == "ACCESS_DENIED" and letter.possible_duplicate
