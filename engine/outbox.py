"""The outbox: every message of a send, kept until Firehose answered for it.

Lines of ``outbox/<connection>[.sandbox].jsonl`` in the state directory, appended only:

- an entry per message, with its bytes: a burst's messages are journaled a chunk at a time,
  each chunk before any of it is sent (one fsync per chunk; see ``engine.burst``);
- ``{"sending": [ids]}`` before each PutRecord / PutRecordBatch call (one fsync per call, not
  per record), so a crash tells "never sent" apart from "may have arrived";
- a tombstone ``{"done": id, "record_id": …}`` or ``{"done": id, "dead_lettered": true}`` once
  Firehose returned the RecordId or the message moved to the dead letters; the messages of one
  call that Firehose acknowledged share one line, ``{"done": [ids], "record_ids": [ids]}``
  (a burst writes one line per call, not per message). Tombstones are not
  fsynced: losing one to a power cut (a killed process loses none) only makes a settled
  message look interrupted, reported as a possible duplicate; it never loses one.

After a crash or a kill, the next console to open the outbox while no other console uses it
(an ``flock`` on ``<name>.lock`` tells) moves what is left into the dead-letter journal: sent
but unanswered → ``UNKNOWN_FATE``, a possible duplicate; never sent → ``INTERRUPTED_UNSENT``
(left as it was if it is a dead letter being replayed). Then it compacts the file; so does the
last console to close. POSIX only (``fcntl``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from engine.dead_letters import (
    DeadLetter,
    DeadLetterJournal,
    QuarantineReport,
    ignore_quarantine,
)
from engine.journaled import DamagedEntry, JournaledMessage
from engine.jsonl import (
    EncodedLine,
    JournalWriteFailed,
    append_json_lines,
    iter_lines,
    quarantine_lines,
    replace_json_lines,
    rewrite_json_lines,
)
from engine.records import OutgoingMessage
from engine.settings import DeliverySettings
from engine.state_dir import state_directory


@dataclass(frozen=True)
class UnsettledMessage:
    entry: JournaledMessage
    sent: bool  # a call carrying it was started: it may have reached Firehose


class Settlement(NamedTuple):
    """How a journaled message left the outbox: its RecordId, or dead-lettered (or given up).
    A named tuple: a burst settles one per record."""

    message_id: str
    record_id: str | None = None
    dead_lettered: bool = False

    def document(self) -> dict[str, Any]:
        if self.record_id is not None:
            return {"done": self.message_id, "record_id": self.record_id}
        return {"done": self.message_id, "dead_lettered": self.dead_lettered}


def _is_marker(document: dict[str, Any]) -> bool:
    """A well-formed ``done`` tombstone or ``sending`` marker (not an entry)."""
    if "done" in document:
        done = document["done"]
        return isinstance(done, str) or (
            isinstance(done, list) and all(isinstance(i, str) for i in done)
        )
    if "sending" in document:
        ids = document["sending"]
        return isinstance(ids, list) and all(isinstance(i, str) for i in ids)
    return False


def _tombstones(settlements: Sequence[Settlement]) -> list[dict[str, Any]]:
    """The tombstone lines of one call's settlements: those acknowledged share one line."""
    acknowledged = [s for s in settlements if s.record_id is not None]
    documents = [s.document() for s in settlements if s.record_id is None]
    if len(acknowledged) == 1:
        documents.append(acknowledged[0].document())
    elif acknowledged:
        documents.append(
            {
                "done": [s.message_id for s in acknowledged],
                "record_ids": [s.record_id for s in acknowledged],
            }
        )
    return documents


class Outbox:
    """The outbox journal of one connection (sandbox runs have their own)."""

    def __init__(
        self, path: Path, connection: str, *, on_quarantine: QuarantineReport = ignore_quarantine
    ) -> None:
        self.path = path
        self.connection = connection
        self.on_quarantine = on_quarantine
        self._opened = False
        self._dead_letters: DeadLetterJournal | None = None
        self._lock = threading.Lock()
        self._queued: set[str] = set()  # journaled by this outbox, not yet marked sending
        # What this outbox journaled and is not settled yet, and which of it was sent: the
        # last console to close rewrites the file from these instead of reading it back.
        self._unsettled: dict[str, EncodedLine] = {}
        self._sent: set[str] = set()
        self._replaying: set[str] = set()  # dead letters being replayed through this outbox
        self._appended = 0  # bytes this outbox appended since it opened
        self._alone_at_open = False  # the file was empty when it opened: all of it is ours

    @classmethod
    def for_connection(
        cls,
        delivery: DeliverySettings,
        journal_name: str,
        connection: str,
        *,
        on_quarantine: QuarantineReport = ignore_quarantine,
    ) -> Outbox:
        """``outbox/<journal_name>.jsonl`` in the state directory."""
        return cls(
            state_directory(delivery) / "outbox" / f"{journal_name}.jsonl",
            connection,
            on_quarantine=on_quarantine,
        )

    @property
    def lock_path(self) -> Path:
        """Held shared by every console using the outbox (absolute: one key per file)."""
        return self.path.absolute().with_name(self.path.name.removesuffix(".jsonl") + ".lock")

    # -- while sending ---------------------------------------------------------------------

    def _append(
        self, documents: Sequence[dict[str, Any] | EncodedLine], *, sync: bool, at_risk: int
    ) -> None:
        written = append_json_lines(self.path, documents, sync=sync, at_risk=at_risk)
        with self._lock:
            self._appended += written

    def queue(self, messages: Sequence[OutgoingMessage], at: str) -> None:
        """Journal every message a send is about to make (one write, fsynced), before any is
        sent: an interrupted burst then leaves even its unsent messages on record."""
        lines = JournaledMessage.lines_of(messages, self.connection, at)
        self._append(lines, sync=True, at_risk=len(lines))
        with self._lock:
            self._queued.update(m.message_id for m in messages)
            self._unsettled.update(zip((m.message_id for m in messages), lines, strict=True))

    def sending(self, messages: Sequence[OutgoingMessage], at: str) -> None:
        """Mark the messages of one call as sent, journaling any not queued yet: one write,
        fsynced, before the call (``JournalWriteFailed`` if it fails: the call is not made)."""
        with self._lock:
            fresh = [m for m in messages if m.message_id not in self._queued]
            self._queued.difference_update(m.message_id for m in messages)
        lines = JournaledMessage.lines_of(fresh, self.connection, at)
        ids = [m.message_id for m in messages]
        self._append([*lines, {"sending": ids}], sync=True, at_risk=len(messages))
        with self._lock:
            self._unsettled.update(zip((m.message_id for m in fresh), lines, strict=True))
            self._sent.update(ids)

    def replaying(self, letters: Sequence[DeadLetter]) -> None:
        """These dead letters are about to be re-sent: each one Firehose acknowledges leaves
        the dead-letter journal at once (before its tombstone here)."""
        with self._lock:
            self._replaying.update(letter.message_id for letter in letters)

    def settle(self, settlements: Sequence[Settlement]) -> None:
        """Tombstone messages Firehose answered for (one write, not fsynced: see the module);
        replayed letters that were delivered leave the dead-letter journal first."""
        with self._lock:
            replayed = [
                (s.message_id, s.record_id)
                for s in settlements
                if s.record_id is not None and s.message_id in self._replaying
            ]
            self._replaying.difference_update(mid for mid, _ in replayed)
        if replayed and self._dead_letters is not None:
            # If this fails the letters would look undelivered: JournalWriteFailed stops the
            # replay (they are then the messages at risk of a duplicate).
            self._dead_letters.acknowledge(replayed)
        with contextlib.suppress(JournalWriteFailed):
            # A lost tombstone only makes a settled message look interrupted at the next
            # start (reported as a possible duplicate): never worth stopping a send for.
            self._append(_tombstones(settlements), sync=False, at_risk=0)
        with self._lock:
            for settlement in settlements:
                self._unsettled.pop(settlement.message_id, None)
                self._sent.discard(settlement.message_id)

    def unsettled(self) -> list[UnsettledMessage]:
        """Journaled messages without a tombstone, oldest first, and whether each was sent.
        Damaged lines move to the quarantine file (reported through ``on_quarantine``)."""
        entries: dict[str, JournaledMessage] = {}
        sent: set[str] = set()
        damaged: list[bytes] = []
        for line in iter_lines(self.path):  # a whole burst's journal is never held at once
            document = line.document
            if document is None:
                damaged.append(line.raw)
            elif _is_marker(document):
                if "done" in document:
                    done = document["done"]
                    for message_id in [done] if isinstance(done, str) else done:
                        entries.pop(message_id, None)
                else:
                    sent.update(i for i in document["sending"] if i in entries)
            else:
                try:
                    entry = JournaledMessage.from_document(document)
                except DamagedEntry:
                    damaged.append(line.raw)
                    continue
                entries.pop(entry.message_id, None)  # a replay journals the same id again
                sent.discard(entry.message_id)
                entries[entry.message_id] = entry
        if damaged:
            quarantined = quarantine_lines(self.path, damaged)
            if quarantined is not None:
                self.on_quarantine(quarantined)
        return [UnsettledMessage(entry, entry.message_id in sent) for entry in entries.values()]

    # -- life cycle ------------------------------------------------------------------------

    def open(self, dead_letters: DeadLetterJournal, at: str) -> list[DeadLetter]:
        """Start using the outbox (a session does, before its first send). When no other
        console uses it, what an interrupted run left there moves into ``dead_letters`` (sent:
        fate unknown, possible duplicates; never sent: INTERRUPTED_UNSENT) and is returned;
        otherwise those messages may still be in flight there, so they are left alone ([])."""
        if self._opened:
            return []
        self._dead_letters = dead_letters
        recovered = _USERS.join(self.lock_path, lambda: self._recover(dead_letters, at))
        self._opened = True
        return recovered

    def close(self) -> None:
        """Stop using the outbox; the last console to leave it compacts the file."""
        if self._opened:
            self._opened = False
            _USERS.leave(self.lock_path, self._compact_on_close)

    def _compact_on_close(self) -> None:
        """Compaction by the last console out. When the file holds only what this outbox
        wrote, it is rebuilt from memory (no read back: a 100,000-message burst closes at
        once); otherwise it is read and compacted."""
        with self._lock:
            size = self.path.stat().st_size if self.path.exists() else 0
            only_mine = self._alone_at_open and size == self._appended
            documents = list(self._unsettled.values())
            sent = [message_id for message_id in self._unsettled if message_id in self._sent]
        if not only_mine:
            self.compact()
            return
        if not documents:
            self.path.unlink(missing_ok=True)
            return
        replace_json_lines(self.path, documents + ([{"sending": sent}] if sent else []))

    def compact(self) -> None:
        """Rewrite the file with only its unsettled entries (removed when there are none).
        Only safe while no other console appends to it."""
        remaining = self.unsettled()
        if not remaining:
            self.path.unlink(missing_ok=True)
            return
        documents = [left.entry.document() for left in remaining]
        sent = [left.entry.message_id for left in remaining if left.sent]
        rewrite_json_lines(self.path, documents + ([{"sending": sent}] if sent else []))

    def _recover(self, dead_letters: DeadLetterJournal, at: str) -> list[DeadLetter]:
        remaining = self.unsettled()
        self._alone_at_open = True
        if not remaining:
            self.path.unlink(missing_ok=True)
            return []
        # An unsent message that is a dead letter being replayed keeps the letter it has.
        already = {letter.message_id for letter in dead_letters.entries()}
        letters = [
            DeadLetter.interrupted(left.entry, at, sent=left.sent)
            for left in remaining
            if left.sent or left.entry.message_id not in already
        ]
        if letters:
            dead_letters.add_many(letters)  # durable before they leave the outbox
        self.path.unlink(missing_ok=True)
        return letters


def _flock(descriptor: int, *, exclusive: bool, wait: bool) -> bool:
    flags = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    try:
        fcntl.flock(descriptor, flags if wait else flags | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class _OutboxUsers:
    """This process's use of each outbox: one locked descriptor per lock file, counted.

    Every console using an outbox holds a shared flock on its lock file (the kernel drops it
    when the process dies, however it dies). Whoever can take it exclusively is alone: what is
    left unsettled then belongs to no running console.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[Path, list[int]] = {}  # lock path -> [descriptor, users]

    def join(self, lock_path: Path, recover: Callable[[], list[DeadLetter]]) -> list[DeadLetter]:
        with self._lock:
            held = self._held.get(lock_path)
            if held is not None:  # another session of this process uses it: not alone
                held[1] += 1
                return []
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                recovered: list[DeadLetter] = []
                if _flock(descriptor, exclusive=True, wait=False):
                    recovered = recover()
                # Shared from now on; waits only while another console recovers or compacts.
                _flock(descriptor, exclusive=False, wait=True)
            except BaseException:
                os.close(descriptor)
                raise
            self._held[lock_path] = [descriptor, 1]
            return recovered

    def leave(self, lock_path: Path, compact: Callable[[], None]) -> None:
        with self._lock:
            held = self._held.get(lock_path)
            if held is None:
                return
            held[1] -= 1
            if held[1] > 0:
                return
            del self._held[lock_path]
            try:
                if _flock(held[0], exclusive=True, wait=False):
                    compact()
            except (OSError, JournalWriteFailed):
                pass  # compaction is tidying only: the next start does it
            finally:
                os.close(held[0])  # releases the lock


_USERS = _OutboxUsers()
