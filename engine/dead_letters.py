"""The dead-letter journal: every message that could not be delivered, kept for replay.

Lines of ``dead-letters/<connection>[.sandbox].jsonl`` in the state directory, appended:

- a letter per failure (the latest line of a message wins; once a possible duplicate, always
  one: its first send may have arrived);
- ``{"delivered": id, "record_id": …}`` as soon as a replayed letter is acknowledged (fsynced),
  so an interrupted replay never leaves a delivered letter looking undelivered;
- ``{"dropped": id}`` when the operator drops a letter.

``compact`` rewrites it with one line per letter left (every replay ends with it, so failed
replays do not grow the file). A damaged line moves to ``<file>.quarantine`` with a warning.
One replay or drop at a time per journal: ``exclusive`` (README "Reliability").
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from engine.failures import Failure
from engine.journaled import DamagedEntry, JournaledMessage
from engine.jsonl import (
    JournalLine,
    Quarantined,
    append_json_lines,
    quarantine_lines,
    read_lines,
    update_json_lines,
)
from engine.records import OutgoingMessage
from engine.settings import DeliverySettings
from engine.state_dir import (
    INTERRUPTED_UNSENT,
    INTERRUPTED_UNSENT_DETAIL,
    UNKNOWN_FATE,
    UNKNOWN_FATE_DETAIL,
    state_directory,
)

QuarantineReport = Callable[[Quarantined], None]


def ignore_quarantine(quarantined: Quarantined) -> None:
    """The default report: callers that show warnings pass their own."""


@dataclass(frozen=True, kw_only=True)
class DeadLetter(JournaledMessage):
    """One undelivered message: the exact bytes, where it was going, and why it failed."""

    failure_class: str
    alert_type: str
    detail: str
    attempts: int
    # True when the message may have reached Firehose already (its fate is unknown): a replay
    # can then deliver it twice.
    possible_duplicate: bool = False
    # The message_id of the message that must be acknowledged before this one is sent (an
    # identity change's re-add follows its remove): a replay keeps the pair in order.
    follows: str | None = None

    @classmethod
    def from_failure(
        cls,
        message: OutgoingMessage,
        connection: str,
        failure: Failure,
        attempts: int,
        at: str,
    ) -> DeadLetter:
        alert_type = failure.failure_class.alert_type
        return cls(
            **JournaledMessage.document_of(message, connection, at),
            failure_class=failure.failure_class.name,
            alert_type=alert_type.value if alert_type else "",
            detail=failure.describe(),
            attempts=attempts,
        )

    @classmethod
    def interrupted(cls, entry: JournaledMessage, at: str, *, sent: bool) -> DeadLetter:
        """The letter of a message a run was interrupted with: ``sent`` (Firehose may have it:
        fate unknown, a possible duplicate) or never sent."""
        return cls(
            **{**JournaledMessage.document(entry), "at": at},
            failure_class=UNKNOWN_FATE if sent else INTERRUPTED_UNSENT,
            alert_type="",
            detail=UNKNOWN_FATE_DETAIL if sent else INTERRUPTED_UNSENT_DETAIL,
            attempts=0,  # attempts are not journaled
            possible_duplicate=sent,
        )

    def retargeted(self, stream_name: str, connection: str) -> DeadLetter:
        """The same bytes bound for another stream (``dead-letters replay --to-current``)."""
        return replace(self, stream_name=stream_name, connection=connection)


class ReplayInProgress(Exception):
    """Another replay (or drop) holds this journal: running a second would send letters twice."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(
            f"another replay or drop is using {path}; wait for it to finish, then run the "
            "command again"
        )


class UnknownDeadLetters(Exception):
    """Ids that match no single letter of the journal: nothing was dropped."""

    def __init__(self, message_ids: Sequence[str], journal: Path) -> None:
        self.message_ids = list(message_ids)
        super().__init__(
            f"no single dead letter matches {', '.join(message_ids)} in {journal}; nothing "
            "was dropped (`firehose-console dead-letters list` shows the ids)"
        )


def _tombstoned_id(document: dict[str, Any]) -> str | None:
    for key in ("delivered", "dropped"):
        if key in document:
            value = document[key]
            if not isinstance(value, str):
                raise DamagedEntry(f"{key} is {type(value).__name__}, not str")
            return value
    return None


def _fold(documents: Iterable[dict[str, Any]]) -> tuple[dict[str, DeadLetter], list[Any]]:
    """The letters left after every line, oldest first (latest line of a message wins,
    possible duplicates stay so), and the documents that are not letters."""
    letters: dict[str, DeadLetter] = {}
    damaged: list[Any] = []
    for document in documents:
        try:
            gone = _tombstoned_id(document)
            if gone is not None:
                letters.pop(gone, None)
                continue
            letter = DeadLetter.from_document(document)
        except DamagedEntry:
            damaged.append(document)
            continue
        earlier = letters.pop(letter.message_id, None)
        if earlier is not None and earlier.possible_duplicate and not letter.possible_duplicate:
            letter = replace(letter, possible_duplicate=True)
        letters[letter.message_id] = letter
    return letters, damaged


class DeadLetterJournal:
    """A JSON Lines file of dead letters for one connection."""

    def __init__(self, path: Path, *, on_quarantine: QuarantineReport = ignore_quarantine) -> None:
        self.path = path
        self.on_quarantine = on_quarantine

    @classmethod
    def for_connection(
        cls,
        delivery: DeliverySettings,
        connection: str,
        *,
        on_quarantine: QuarantineReport = ignore_quarantine,
    ) -> DeadLetterJournal:
        return cls(
            state_directory(delivery) / "dead-letters" / f"{connection}.jsonl",
            on_quarantine=on_quarantine,
        )

    def add(self, letter: DeadLetter) -> None:
        self.add_many([letter])

    def add_many(self, letters: Sequence[DeadLetter]) -> None:
        """Append letters in one fsynced write (``JournalWriteFailed`` if it fails)."""
        append_json_lines(self.path, [letter.document() for letter in letters])

    def acknowledge(self, delivered: Sequence[tuple[str, str]]) -> None:
        """Mark replayed letters delivered, ``(message_id, record_id)`` each, fsynced: they
        leave the journal at once, whatever interrupts the replay afterwards."""
        append_json_lines(
            self.path, [{"delivered": mid, "record_id": rid} for mid, rid in delivered]
        )

    def entries(self) -> list[DeadLetter]:
        """Every dead letter, oldest first; damaged lines move to the quarantine file (reported
        through ``on_quarantine``), never skipped silently."""
        lines = read_lines(self.path)
        damaged = [line.raw for line in lines if not _is_journal_line(line)]
        if damaged:
            quarantined = quarantine_lines(self.path, damaged)
            if quarantined is not None:
                self.on_quarantine(quarantined)
        letters, _ = _fold(
            line.document for line in lines if line.document is not None and _is_journal_line(line)
        )
        return list(letters.values())

    def find(self, message_id: str) -> DeadLetter | None:
        """The letter of ``message_id`` (a unique prefix of it is enough), or None."""
        return find_letter(self.entries(), message_id)

    def compact(self, *, drop: Collection[str] = ()) -> None:
        """Rewrite the journal with one line per letter left, minus ``drop``; anything
        unreadable is kept as it was (the rewrite holds appends off, so none appended
        meanwhile is lost)."""
        self.entries()  # quarantines what is damaged now, with its report
        dropped = set(drop)

        def change(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
            letters, unreadable = _fold(documents)
            kept = [letter.document() for mid, letter in letters.items() if mid not in dropped]
            return unreadable + kept

        if self.path.exists():
            quarantined = update_json_lines(self.path, change)
            if quarantined is not None:
                self.on_quarantine(quarantined)

    def remove(self, message_ids: set[str]) -> None:
        """Drop the given messages from the journal."""
        if message_ids:
            self.compact(drop=message_ids)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Held by a replay or a drop: a second one, in this process or another, raises
        ``ReplayInProgress`` at once rather than sending the same letters twice."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.path.with_name(self.path.name + ".replaying")
        descriptor = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ReplayInProgress(self.path) from None
            yield
        finally:
            os.close(descriptor)  # releases the lock (the kernel does too if the process dies)


def find_letter(letters: Sequence[DeadLetter], message_id: str) -> DeadLetter | None:
    """The letter of ``message_id`` among ``letters`` (a unique prefix is enough), or None."""
    exact = [letter for letter in letters if letter.message_id == message_id]
    if exact:
        return exact[0]
    matches = [letter for letter in letters if letter.message_id.startswith(message_id)]
    return matches[0] if len(matches) == 1 else None


def _is_journal_line(line: JournalLine) -> bool:
    if line.document is None:
        return False
    try:
        if _tombstoned_id(line.document) is None:
            DeadLetter.from_document(line.document)
    except DamagedEntry:
        return False
    return True
