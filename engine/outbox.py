"""The outbox: every message of a send, kept until Firehose answered for it.

Lines of ``outbox/<connection>[.sandbox].jsonl`` in the state directory, appended only:

- an entry per message, with its bytes: a burst's messages are journaled a chunk at a time,
  each chunk before any of it is sent (one fsync per chunk; see ``engine.burst``);
- ``{"sending": [ids]}`` before each PutRecord / PutRecordBatch call (one fsync per call, not
  per record), so a crash tells "never sent" apart from "may have arrived";
- a tombstone ``{"done": id, "record_id": …}`` or ``{"done": id, "dead_lettered": true}`` once
  Firehose returned the RecordId or the message moved to the dead letters. Tombstones are not
  fsynced: losing one to a power cut (a killed process loses none) only makes a settled
  message look interrupted, reported as a possible duplicate; it never loses one.

After a crash or a kill, the next console to open the outbox while no other console uses it
(an ``flock`` on ``<name>.lock`` tells) moves what is left into the dead-letter journal: sent
but unanswered → ``UNKNOWN_FATE``, a possible duplicate; never sent → ``INTERRUPTED_UNSENT``
(left as it was if it is a dead letter being replayed). Then it compacts the file; so does the
last console to close. POSIX only (``fcntl``).
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from engine.dead_letters import (
    INTERRUPTED_UNSENT,
    INTERRUPTED_UNSENT_DETAIL,
    UNKNOWN_FATE,
    UNKNOWN_FATE_DETAIL,
    DeadLetter,
    DeadLetterJournal,
    state_directory,
)
from engine.jsonl import append_json_lines, iter_json_lines, rewrite_json_lines
from engine.records import OutgoingMessage
from engine.settings import DeliverySettings


@dataclass(frozen=True)
class OutboxEntry:
    """One message as journaled before it was sent: enough to send it again byte for byte."""

    message_id: str
    connection: str
    stream_name: str
    kind: str
    action: str
    data_base64: str
    at: str
    follows: str | None = None  # see OutgoingMessage.follows

    @staticmethod
    def document_of(message: OutgoingMessage, connection: str, at: str) -> dict[str, Any]:
        """The line journaling ``message`` (built directly: a burst writes thousands)."""
        document = {
            "message_id": message.message_id,
            "connection": connection,
            "stream_name": message.stream_name,
            "kind": message.kind.value,
            "action": message.action.value,
            "data_base64": message.data_base64,
            "at": at,
        }
        if message.follows is not None:
            document["follows"] = message.follows
        return document

    def document(self) -> dict[str, Any]:
        return {field: getattr(self, field) for field in _ENTRY_FIELD_ORDER}

    def interrupted(self, at: str, *, sent: bool) -> DeadLetter:
        """The dead letter of a message a run was interrupted with: ``sent`` (Firehose may have
        it: fate unknown, a possible duplicate) or never sent."""
        return DeadLetter(
            message_id=self.message_id,
            connection=self.connection,
            stream_name=self.stream_name,
            kind=self.kind,
            action=self.action,
            data_base64=self.data_base64,
            failure_class=UNKNOWN_FATE if sent else INTERRUPTED_UNSENT,
            alert_type="",
            detail=UNKNOWN_FATE_DETAIL if sent else INTERRUPTED_UNSENT_DETAIL,
            attempts=0,  # attempts are not journaled
            at=at,
            possible_duplicate=sent,
            follows=self.follows,
        )


@dataclass(frozen=True)
class UnsettledMessage:
    entry: OutboxEntry
    sent: bool  # a call carrying it was started: it may have reached Firehose


@dataclass(frozen=True)
class Settlement:
    """How a journaled message left the outbox: its RecordId, or dead-lettered (or given up)."""

    message_id: str
    record_id: str | None = None
    dead_lettered: bool = False

    def document(self) -> dict[str, Any]:
        if self.record_id is not None:
            return {"done": self.message_id, "record_id": self.record_id}
        return {"done": self.message_id, "dead_lettered": self.dead_lettered}


_ENTRY_FIELD_ORDER = tuple(field.name for field in fields(OutboxEntry))
_ENTRY_FIELDS = frozenset(_ENTRY_FIELD_ORDER)


class Outbox:
    """The outbox journal of one connection (sandbox runs have their own)."""

    def __init__(self, path: Path, connection: str) -> None:
        self.path = path
        self.connection = connection
        self._opened = False
        self._queued: set[str] = set()  # journaled by this outbox, not yet marked sending
        self._lock = threading.Lock()

    @classmethod
    def for_connection(
        cls, delivery: DeliverySettings, journal_name: str, connection: str
    ) -> Outbox:
        """``outbox/<journal_name>.jsonl`` in the state directory."""
        return cls(state_directory(delivery) / "outbox" / f"{journal_name}.jsonl", connection)

    @property
    def lock_path(self) -> Path:
        """Held shared by every console using the outbox (absolute: one key per file)."""
        return self.path.absolute().with_name(self.path.name.removesuffix(".jsonl") + ".lock")

    # -- while sending ---------------------------------------------------------------------

    def queue(self, messages: Sequence[OutgoingMessage], at: str) -> None:
        """Journal every message a send is about to make (one write, fsynced), before any is
        sent: an interrupted burst then leaves even its unsent messages on record."""
        documents = [OutboxEntry.document_of(m, self.connection, at) for m in messages]
        append_json_lines(self.path, documents, sync=True)
        with self._lock:
            self._queued.update(m.message_id for m in messages)

    def sending(self, messages: Sequence[OutgoingMessage], at: str) -> None:
        """Mark the messages of one call as sent, journaling any not queued yet: one write,
        fsynced, before the call."""
        with self._lock:
            fresh = [m for m in messages if m.message_id not in self._queued]
            self._queued.difference_update(m.message_id for m in messages)
        documents = [OutboxEntry.document_of(m, self.connection, at) for m in fresh]
        documents.append({"sending": [m.message_id for m in messages]})
        append_json_lines(self.path, documents, sync=True)

    def settle(self, settlements: Sequence[Settlement]) -> None:
        """Tombstone messages Firehose answered for (one write, not fsynced: see the module)."""
        append_json_lines(self.path, [s.document() for s in settlements], sync=False)

    def unsettled(self) -> list[UnsettledMessage]:
        """Journaled messages without a tombstone, oldest first, and whether each was sent."""
        entries: dict[str, OutboxEntry] = {}
        sent: set[str] = set()
        for document in iter_json_lines(self.path):  # a burst's journal is never held whole
            if "done" in document:
                entries.pop(str(document["done"]), None)
                sent.discard(str(document["done"]))
            elif "sending" in document:
                ids = document["sending"]
                if isinstance(ids, list):
                    sent.update(str(i) for i in ids if str(i) in entries)
            else:
                try:
                    entry = OutboxEntry(**{k: v for k, v in document.items() if k in _ENTRY_FIELDS})
                except TypeError:
                    continue
                entries.pop(entry.message_id, None)  # a replay journals the same id again
                sent.discard(entry.message_id)
                entries[entry.message_id] = entry
        return [UnsettledMessage(entry, entry.message_id in sent) for entry in entries.values()]

    # -- life cycle ------------------------------------------------------------------------

    def open(self, dead_letters: DeadLetterJournal, at: str) -> list[DeadLetter]:
        """Start using the outbox (a session does, before its first send). When no other
        console uses it, what an interrupted run left there moves into ``dead_letters`` (sent:
        fate unknown, possible duplicates; never sent: INTERRUPTED_UNSENT) and is returned;
        otherwise those messages may still be in flight there, so they are left alone ([])."""
        if self._opened:
            return []
        recovered = _USERS.join(self.lock_path, lambda: self._recover(dead_letters, at))
        self._opened = True
        return recovered

    def close(self) -> None:
        """Stop using the outbox; the last console to leave it compacts the file."""
        if self._opened:
            self._opened = False
            _USERS.leave(self.lock_path, self.compact)

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
        if not remaining:
            self.path.unlink(missing_ok=True)
            return []
        # An unsent message that is a dead letter being replayed keeps the letter it has.
        already = {letter.message_id for letter in dead_letters.entries()}
        letters = [
            left.entry.interrupted(at, sent=left.sent)
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
            except OSError:
                pass  # compaction is tidying only: the next start does it
            finally:
                os.close(held[0])  # releases the lock


_USERS = _OutboxUsers()
