"""The landed journal: what was sent and acknowledged, kept so ``landed`` can look for it at the
destination later (README "Where records land").

One JSON Lines file per connection in the state directory, bounded to the newest entries. It
holds digests of the bytes, never the bytes or anything secret.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.jsonl import (
    JournalWriteFailed,
    append_json_lines,
    read_json_lines,
    update_json_lines,
)
from engine.settings import DeliverySettings
from engine.state_dir import state_directory

if TYPE_CHECKING:  # named only: the landed reader needs no send path
    from engine.delivery import DeliveryOutcome

# The newest entries kept: `landed` checks each one, so the journal stays a recent window.
MAX_LANDED_ENTRIES = 1_000


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def bare_record(data: bytes) -> bytes:
    """The record's JSON without the delimiter after it (the bytes when they are no JSON)."""
    text = data.decode("utf-8", errors="surrogateescape")
    try:
        _, end = json.JSONDecoder().raw_decode(text)
    except ValueError:
        return data.rstrip()
    return text[:end].encode("utf-8", errors="surrogateescape")


@dataclass(frozen=True)
class LandedEntry:
    """One acknowledged record: how to recognise it at the destination, and whose it was."""

    message_id: str
    record_id: str
    sha256: str  # of the exact bytes sent, delimiter included
    sha256_bare: str  # of the record's JSON alone: found also when the delimiter was dropped
    size_bytes: int
    acked_at: str  # ISO 8601, UTC: when the send that carried it ended
    connection: str
    stream_name: str
    audience: str
    kind: str
    sent_at: str = ""  # ISO 8601, UTC: when that send began (a burst can take minutes)

    @property
    def acked_time(self) -> datetime:
        return datetime.fromisoformat(self.acked_at)

    @property
    def sent_time(self) -> datetime:
        return datetime.fromisoformat(self.sent_at) if self.sent_at else self.acked_time

    def document(self) -> dict[str, Any]:
        return dict(vars(self))  # every field is a str or an int: no deep copy (asdict) needed


def entries_from_outcomes(
    outcomes: Sequence[DeliveryOutcome],
    connection: str,
    acked_at: datetime,
    sent_at: datetime | None = None,
) -> list[LandedEntry]:
    """A journal entry for each outcome Firehose acknowledged (a RecordId came back)."""
    acked = acked_at.astimezone(UTC).isoformat()  # once for the whole send, not per record
    sent = (sent_at or acked_at).astimezone(UTC).isoformat()
    entries = []
    for outcome in outcomes:
        if outcome.record_id is None:
            continue
        message = outcome.message
        audience = message.data.get("AudienceName") if isinstance(message.data, dict) else None
        entries.append(
            LandedEntry(
                message_id=message.message_id,
                record_id=outcome.record_id,
                sha256=sha256_hex(message.data_bytes),
                sha256_bare=sha256_hex(bare_record(message.data_bytes)),
                size_bytes=len(message.data_bytes),
                acked_at=acked,
                connection=connection,
                stream_name=message.stream_name,
                audience=str(audience or ""),
                kind=message.kind.value,
                sent_at=sent,
            )
        )
    return entries


class LandedJournal:
    """The JSON Lines journal of acknowledged records for one connection."""

    def __init__(self, path: Path, *, max_entries: int = MAX_LANDED_ENTRIES) -> None:
        self.path = path
        self.max_entries = max_entries

    @classmethod
    def for_connection(cls, delivery: DeliverySettings, journal_name: str) -> LandedJournal:
        return cls(state_directory(delivery) / "landed" / f"{journal_name}.jsonl")

    def record(
        self,
        outcomes: Sequence[DeliveryOutcome],
        connection: str,
        *,
        acked_at: datetime | None = None,
        sent_at: datetime | None = None,
    ) -> bool:
        """Journal every acknowledged outcome of a send (one write), keeping the newest
        ``max_entries``: of more than that, only the newest are built at all (a burst's older
        ones would be trimmed at once). Returns False when the journal could not be written:
        the records were delivered all the same, only ``landed`` will not know them."""
        acked = acked_at or datetime.now(UTC)
        newest = [outcome for outcome in outcomes if outcome.record_id is not None]
        entries = entries_from_outcomes(newest[-self.max_entries :], connection, acked, sent_at)
        if not entries:
            return True
        try:
            # Not fsynced: a crash loses only what `landed` would look for, never a record.
            append_json_lines(self.path, [entry.document() for entry in entries], sync=False)
            if self._line_count() > 2 * self.max_entries:  # trimmed now and then
                update_json_lines(self.path, lambda documents: documents[-self.max_entries :])
        except (OSError, JournalWriteFailed):
            return False
        return True

    def _line_count(self) -> int:
        try:
            with self.path.open("rb") as handle:
                return sum(1 for _ in handle)
        except FileNotFoundError:
            return 0

    def entries(self, *, last: int | None = None) -> list[LandedEntry]:
        """The journaled records, oldest first (only the ``last`` newest when given)."""
        known = {field.name for field in fields(LandedEntry)}
        found: list[LandedEntry] = []
        for document in read_json_lines(self.path):
            try:  # keys a newer version added are ignored rather than losing the entry
                found.append(LandedEntry(**{k: v for k, v in document.items() if k in known}))
            except TypeError:
                continue
        found = found[-self.max_entries :]
        return found[-last:] if last else found
