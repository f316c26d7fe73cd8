"""Journals never drop a line: whole writes or a clear stop, damaged lines quarantined (never
skipped, never erased), bad letters set aside, bounded growth, and one journaled message type
(README "Reliability")."""

from __future__ import annotations

import base64
import contextlib
import errno
import json
import os
import subprocess
import tracemalloc
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

import engine.dead_letters as dead_letters_module
import engine.jsonl
import engine.outbox
from console.cli import main
from engine.dead_letters import DeadLetter, DeadLetterJournal, UnknownDeadLetters
from engine.failures import Failure, FailureClass
from engine.gateway import BatchEntryResult
from engine.journaled import DamagedEntry, JournaledMessage
from engine.jsonl import JournalWriteFailed, append_json_lines, read_json_lines
from engine.outbox import Outbox, Settlement
from engine.records import Action, AudienceUser, RecordContext, build_messages
from engine.session import ConsoleSession
from engine.settings import ConnectionSettings, DeliverySettings, Settings
from engine.settings_file import LoadedSettings

ROOT = Path(__file__).resolve().parents[1]
DENIED = ClientError({"Error": {"Code": "AccessDeniedException"}}, "PutRecord")


def messages(count: int, stream: str = "stream") -> list:
    context = RecordContext(
        stream, ConnectionSettings(delivery_stream_name=stream), 1, "A", "\n", True
    )
    return [
        build_messages(
            Action.ADD, context, AudienceUser(str(n), {"Email": f"{n}@x.y"}), timestamp=1
        )[0]
        for n in range(count)
    ]


def letter_of(message, detail: str = "denied") -> DeadLetter:
    failure = Failure(FailureClass.ACCESS_DENIED, "AccessDeniedException", detail)
    return DeadLetter.from_failure(message, "travel", failure, 1, "t")


class Sender:
    """Answers with RecordIds (or raises ``error``); remembers what it acknowledged."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error
        self.acknowledged: list[bytes] = []

    def put_record(self, stream_name: str, data: bytes) -> str:
        if self.error:
            raise self.error
        self.acknowledged.append(data)
        return f"rid-{len(self.acknowledged)}"

    def put_record_batch(
        self, stream_name: str, records: Sequence[bytes]
    ) -> list[BatchEntryResult]:
        return [BatchEntryResult(self.put_record(stream_name, data)) for data in records]


def session_at(tmp_path: Path, sender: Sender, **delivery: object) -> ConsoleSession:
    settings = Settings(
        delivery=DeliverySettings(state_dir=str(tmp_path / "state"), **delivery)  # type: ignore[arg-type]
    )
    loaded = LoadedSettings(
        settings, tmp_path / "s.toml", True, False, settings.account.secret_access_key, None
    )
    session = ConsoleSession(loaded, sleep=lambda seconds: None)
    session._gateway = sender  # type: ignore[assignment]
    return session


# -- one journaled message type ---------------------------------------------------------------


def test_a_journaled_message_carries_follows_and_ignores_keys_a_newer_version_added() -> None:
    remove, add = messages(2)
    add = type(add)(**{**add.__dict__, "follows": remove.message_id})
    entry = JournaledMessage.from_message(add, "travel", "t")
    document = {**entry.document(), "added_in_a_later_version": [1, 2]}
    again = JournaledMessage.from_document(document)
    assert again == entry and again.follows == remove.message_id
    resent = again.to_message()
    assert (resent.data_bytes, resent.message_id, resent.follows) == (
        add.data_bytes,
        add.message_id,
        remove.message_id,
    )
    letter = DeadLetter.from_document({**letter_of(add).document(), "new_key": 1})
    assert letter.follows == remove.message_id and letter.to_message().follows == remove.message_id
    assert DeadLetter.interrupted(entry, "t2", sent=True).document() == {
        **entry.document(),
        "at": "t2",
        "failure_class": "UNKNOWN_FATE",
        "alert_type": "",
        "detail": "interrupted before Firehose answered: may already be delivered",
        "attempts": 0,
        "possible_duplicate": True,
    }


@pytest.mark.parametrize(
    "damage",
    [
        {"kind": "bogus"},
        {"data_base64": "eyJhIjo"},  # cut base64
        {"stream_name": ["a", "list"]},
        {"attempts": "3"},
        {"possible_duplicate": 1},
        {"follows": 7},
    ],
    ids=["unknown-kind", "cut-base64", "list-for-string", "text-attempts", "int-flag", "follows"],
)
def test_a_bad_letter_is_a_damaged_entry(damage: dict) -> None:
    document = {**letter_of(messages(1)[0]).document(), **damage}
    with pytest.raises(DamagedEntry):
        DeadLetter.from_document(document)


# -- whole writes or a clear stop ---------------------------------------------------------------


def test_a_short_write_is_continued_until_every_byte_is_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = os.write
    monkeypatch.setattr(engine.jsonl.os, "write", lambda fd, data: real_write(fd, data[:7]))
    path = tmp_path / "j.jsonl"
    documents = [{"n": n, "text": "x" * 50} for n in range(20)]
    append_json_lines(path, documents)
    assert read_json_lines(path) == documents


def test_a_full_disk_raises_naming_the_journal_and_the_messages_at_risk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = os.write

    def nearly_full(fd: int, data: bytes) -> int:
        if len(data) > 10:
            return real_write(fd, bytes(data)[:10])  # the disk takes 10 bytes, then is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(engine.jsonl.os, "write", nearly_full)
    path = tmp_path / "outbox.jsonl"
    with pytest.raises(JournalWriteFailed) as raised:
        append_json_lines(path, [{"n": 1}, {"n": 2}, {"n": 3}])
    assert raised.value.at_risk == 3 and raised.value.path == path
    assert str(path) in str(raised.value) and "3 messages at risk" in str(raised.value)
    assert "No space left on device" in str(raised.value)


def test_a_dead_letter_that_cannot_be_written_stops_the_send_and_stays_recoverable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outbox is written, then the disk fills: the message refused by Firehose cannot
    become a dead letter. The send stops with JournalWriteFailed, and once space is freed the
    next start recovers the message from the outbox: it is in neither journal only never."""
    session = session_at(tmp_path, Sender(DENIED), concurrency=1, max_attempts=1)
    dead_path = session.dead_letter_journal().path
    real_append = engine.jsonl.append_json_lines

    def full_for_dead_letters(path: Path, documents, **options):  # type: ignore[no-untyped-def]
        if path == dead_path:
            raise JournalWriteFailed(path, len(documents), "No space left on device")
        return real_append(path, documents, **options)

    monkeypatch.setattr(dead_letters_module, "append_json_lines", full_for_dead_letters)
    sent = messages(3)
    try:
        with pytest.raises(JournalWriteFailed, match="1 message at risk"):
            session.send_messages(sent)
    finally:
        session.close()
    monkeypatch.setattr(dead_letters_module, "append_json_lines", real_append)  # space freed
    again = session_at(tmp_path, Sender())
    try:
        recovered = again.recover_interrupted()
        listed = again.dead_letters()
    finally:
        again.close()
    assert {letter.message_id for letter in recovered} == {m.message_id for m in sent}
    assert {letter.message_id for letter in listed} == {m.message_id for m in sent}
    # The one Firehose refused had been sent: may have arrived as far as the journal knows.
    assert [letter.possible_duplicate for letter in listed] == [True, False, False]


TMPFS_FREE_BYTES = 8 * 1024


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of 64 KiB, all but 8 KiB taken by a filler file (skipped where mounting is not
    allowed; the seam tests above cover those machines)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        filler = mount / "filler"
        # The disk fills up before the write ends: that is the point.
        with filler.open("wb") as handle, contextlib.suppress(OSError):
            handle.write(b"\0" * (64 * 1024))
        size = filler.stat().st_size
        os.truncate(filler, size - TMPFS_FREE_BYTES)
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_send_onto_a_full_disk_stops_and_nothing_is_lost_once_space_is_freed(
    capsys: pytest.CaptureFixture[str], tiny_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tiny_disk))
    outbox = tiny_disk / "firehose-console" / "outbox" / "travel.sandbox.jsonl"
    status = main(["--sandbox", "send", "add", "--count", "40", "--json"])
    captured = capsys.readouterr()
    assert status == 1 and "Traceback" not in captured.err
    (line,) = [line for line in captured.err.splitlines() if "at risk" in line]
    assert f"could not write the journal {outbox}" in line, line
    assert "40 messages at risk" in line, line
    assert captured.out == ""  # nothing was sent, so nothing to report as sent

    (tiny_disk / "filler").unlink()  # space freed
    status = main(["--sandbox", "dead-letters", "list", "--json"])
    captured = capsys.readouterr()
    assert status == 0
    listed = json.loads(captured.out)["dead_letters"]
    assert listed and all(x["failure_class"] == "INTERRUPTED_UNSENT" for x in listed)
    quarantine = outbox.with_name(outbox.name + ".quarantine")
    warnings = [line for line in captured.err.splitlines() if "warning" in line]
    if quarantine.exists():  # the cut line is kept aside, and said so
        assert len(warnings) == 1 and str(quarantine) in warnings[0]
    assert not outbox.exists()


# -- damaged lines are quarantined, never skipped silently, never erased -----------------------


def zero_bytes_in_line(path: Path, line_number: int, count: int = 16) -> bytes:
    lines = path.read_bytes().splitlines(keepends=True)
    damaged = bytearray(lines[line_number - 1])
    damaged[20 : 20 + count] = b"\0" * count
    lines[line_number - 1] = bytes(damaged)
    path.write_bytes(b"".join(lines))
    return bytes(damaged).rstrip(b"\n")


def test_a_damaged_line_in_the_middle_moves_to_quarantine_with_a_warning(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text("[connections.travel]\ndelivery_stream_name = 's'\n")
    journal = tmp_path / "state" / "firehose-console" / "dead-letters" / "travel.sandbox.jsonl"
    sent = messages(5, "s")
    DeadLetterJournal(journal).add_many([letter_of(m) for m in sent])
    damaged = zero_bytes_in_line(journal, 3)

    status = main(["--settings", str(settings), "--sandbox", "dead-letters", "list", "--json"])
    captured = capsys.readouterr()
    assert status == 0
    listed = [x["message_id"] for x in json.loads(captured.out)["dead_letters"]]
    assert listed == [m.message_id for n, m in enumerate(sent) if n != 2]
    quarantine = journal.with_name("travel.sandbox.jsonl.quarantine")
    assert quarantine.read_bytes() == damaged + b"\n"  # kept byte for byte
    (warning,) = [line for line in captured.err.splitlines() if "warning" in line]
    assert f"1 damaged line of {journal} moved to {quarantine}" in warning

    # The replay delivers the four and erases nothing; the fifth is still beside the journal.
    status = main(["--settings", str(settings), "--sandbox", "dead-letters", "replay", "--json"])
    assert status == 0 and json.loads(capsys.readouterr().out)["delivered"] == 4
    assert quarantine.read_bytes() == damaged + b"\n"
    assert DeadLetterJournal(journal).entries() == []


def test_bad_letters_are_set_aside_and_the_rest_of_the_replay_goes_on(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text("[connections.travel]\ndelivery_stream_name = 's'\n")
    journal = tmp_path / "state" / "firehose-console" / "dead-letters" / "travel.sandbox.jsonl"
    good = messages(3, "s")
    bad = [
        {**letter_of(good[0]).document(), "message_id": "k", "kind": "bogus"},
        {**letter_of(good[0]).document(), "message_id": "b", "data_base64": "eyJhIjo"},
        {**letter_of(good[0]).document(), "message_id": "l", "stream_name": ["s"]},
    ]
    append_json_lines(journal, [bad[0], letter_of(good[0]).document(), bad[1]])
    append_json_lines(journal, [letter_of(m).document() for m in good[1:]] + [bad[2]])

    status = main(["--settings", str(settings), "--sandbox", "dead-letters", "replay", "--json"])
    captured = capsys.readouterr()
    assert status == 0 and json.loads(captured.out)["delivered"] == 3
    quarantine = journal.with_name(journal.name + ".quarantine")
    assert [json.loads(line)["message_id"] for line in quarantine.read_text().splitlines()] == [
        "k",
        "b",
        "l",
    ]
    assert "3 damaged lines" in captured.err and str(quarantine) in captured.err


def test_a_damaged_outbox_line_is_quarantined_at_recovery_and_the_rest_recovered(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.jsonl"
    left = messages(10)
    Outbox(path, "travel").queue(left, "t")
    damaged = zero_bytes_in_line(path, 4)
    warnings: list = []
    outbox = Outbox(path, "travel", on_quarantine=warnings.append)
    recovered = outbox.open(DeadLetterJournal(tmp_path / "dead.jsonl"), "t")
    outbox.close()
    assert [x.message_id for x in recovered] == [m.message_id for n, m in enumerate(left) if n != 3]
    (warning,) = warnings
    assert warning.lines == 1 and warning.quarantine.read_bytes() == damaged + b"\n"


# -- bounded growth, and the outbox closes without reading itself back ------------------------


def test_repeated_failed_replays_do_not_grow_the_journal(tmp_path: Path) -> None:
    session = session_at(tmp_path, Sender(DENIED), max_attempts=1)
    try:
        session.send_messages(messages(100))
        journal = session.dead_letter_journal().path
        for _ in range(5):
            assert session.replay_dead_letters().failed == 100
    finally:
        session.close()
    assert len(journal.read_text().splitlines()) == 100


def test_closing_the_outbox_after_a_burst_does_not_read_the_journal_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = session_at(tmp_path, Sender(), concurrency=2)
    try:
        report = session.send_messages(messages(300), batch=True)
        outbox = session.outbox().path
        assert outbox.exists()
        reads: list[Path] = []

        def spy(path: Path) -> list:
            reads.append(path)
            return []

        monkeypatch.setattr(engine.outbox, "iter_lines", spy)
        monkeypatch.setattr(engine.jsonl, "iter_lines", spy)
        monkeypatch.setattr(engine.jsonl, "read_lines", spy)
    finally:
        session.close()
    assert report.delivered == 300 and reads == [] and not outbox.exists()


def test_closing_keeps_what_is_unsettled_without_reading_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "outbox.jsonl"
    outbox = Outbox(path, "travel")
    outbox.open(DeadLetterJournal(tmp_path / "dead.jsonl"), "t")
    sent = messages(4)
    outbox.queue(sent, "t")
    outbox.sending(sent[:2], "t")
    outbox.settle([Settlement(sent[0].message_id, "rid")])
    for module, reader in (
        (engine.outbox, "iter_lines"),
        (engine.jsonl, "iter_lines"),
        (engine.jsonl, "read_lines"),
    ):
        monkeypatch.setattr(module, reader, lambda path: pytest.fail("read back"))
    outbox.close()
    monkeypatch.undo()
    left = Outbox(path, "travel").unsettled()
    assert [(x.entry.message_id, x.sent) for x in left] == [
        (sent[1].message_id, True),
        (sent[2].message_id, False),
        (sent[3].message_id, False),
    ]


def test_a_possible_duplicate_stays_one_whatever_line_comes_after(tmp_path: Path) -> None:
    journal = DeadLetterJournal(tmp_path / "dead.jsonl")
    (message,) = messages(1)
    entry = JournaledMessage.from_message(message, "travel", "t")
    journal.add(DeadLetter.interrupted(entry, "t", sent=True))
    journal.add(letter_of(message, "denied again"))  # a later replay failed: no flag of its own
    (letter,) = journal.entries()
    assert letter.detail.endswith("denied again") and letter.possible_duplicate
    journal.compact()
    (line,) = journal.path.read_text().splitlines()
    assert json.loads(line)["possible_duplicate"] is True


def test_data_of_a_dead_letter_is_its_bytes_exactly() -> None:
    (message,) = messages(1)
    letter = letter_of(message)
    assert base64.b64decode(letter.data_base64) == letter.data_bytes == message.data_bytes


def test_a_replay_whose_acknowledgement_cannot_be_written_stops_and_flags_the_letter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Firehose took the letter but the disk is full: the replay stops instead of going on with
    a delivered letter still looking undelivered, and the next start flags it a possible
    duplicate (never a silent one)."""
    sender = Sender()
    session = session_at(tmp_path, sender, concurrency=1)
    letters = [letter_of(m) for m in messages(3)]
    session.dead_letter_journal().add_many(letters)
    real_append = dead_letters_module.append_json_lines

    def full_for_acknowledgements(path: Path, documents, **options):  # type: ignore[no-untyped-def]
        if any("delivered" in document for document in documents):
            raise JournalWriteFailed(path, len(documents), "No space left on device")
        return real_append(path, documents, **options)

    monkeypatch.setattr(dead_letters_module, "append_json_lines", full_for_acknowledgements)
    try:
        with pytest.raises(JournalWriteFailed, match="1 message at risk"):
            session.replay_dead_letters()
    finally:
        session.close()
    assert len(sender.acknowledged) == 1  # stopped after the first: the rest never went out
    monkeypatch.setattr(dead_letters_module, "append_json_lines", real_append)  # space freed
    again = session_at(tmp_path, Sender())
    try:
        listed = again.dead_letters()
    finally:
        again.close()
    assert {x.message_id: x.possible_duplicate for x in listed} == {
        letters[0].message_id: True,
        letters[1].message_id: False,
        letters[2].message_id: False,
    }


def test_replaying_chosen_letters_sends_only_them_and_keeps_the_rest(tmp_path: Path) -> None:
    session = session_at(tmp_path, Sender(DENIED), max_attempts=1)
    try:
        sent = messages(3)
        session.send_messages(sent)
        session._gateway = Sender()  # type: ignore[assignment]
        with pytest.raises(UnknownDeadLetters):
            session.replay_dead_letters(message_ids=["no-such-letter"])
        report = session.replay_dead_letters(message_ids=[sent[1].message_id[:12]])
        left = [letter.message_id for letter in session.dead_letters()]
    finally:
        session.close()
    assert (report.requested, report.delivered) == (1, 1)
    assert sorted(left) == sorted([sent[0].message_id, sent[2].message_id])


def test_reading_an_outbox_back_holds_its_unsettled_entries_not_the_whole_journal(
    tmp_path: Path,
) -> None:
    """A console started after one was killed at the end of a burst reads that burst's whole
    journal back (README: "Reliability"): its memory follows what is still unsettled, chunk
    after chunk, not the journal's length."""

    def peak_reading_back(chunks: int) -> int:
        path = tmp_path / f"outbox-{chunks}.jsonl"
        outbox = Outbox(path, "travel")
        for _ in range(chunks):  # as a burst journals and settles them, chunk by chunk
            chunk = messages(500)
            outbox.queue(chunk, "t")
            outbox.settle([Settlement(m.message_id, "rid") for m in chunk])
        left = messages(3)
        outbox.queue(left, "t")
        tracemalloc.start()
        try:
            unsettled = Outbox(path, "travel").unsettled()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert [u.entry.message_id for u in unsettled] == [m.message_id for m in left]
        return peak

    assert peak_reading_back(40) < 2 * peak_reading_back(4)  # ten times the journal
