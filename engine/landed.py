"""Did each acknowledged record land? (README "Where records land")

The journaled records (engine.landed_journal) are looked for at the destination by the digest of
their exact bytes, with or without the delimiter: in the objects written under the destination's
prefix (``landed``) and under its error prefix (``failed``, with Firehose's error). A record not
found is ``waiting`` until the buffering interval after its acknowledgement has passed, plus a
grace period, and ``missing`` after that. The listing is bounded by the acknowledgement window.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import Any, Protocol

from engine.destination import (
    Destination,
    error_listing_prefixes,
    listing_prefixes,
    read_policy,
)
from engine.landed_journal import LandedEntry, bare_record, sha256_hex
from engine.sandbox import split_records

# Past the buffering interval, how long a record may still be on its way before it is missing.
LANDED_GRACE_SECONDS = 120
# Objects written this long before the first acknowledgement are not looked at.
WINDOW_SLACK = timedelta(minutes=5)
GZIP_MAGIC = b"\x1f\x8b"
_DENIED_CODES = ("AccessDenied", "AccessDeniedException", "403", "KMS.AccessDeniedException")


class LandedStatus(StrEnum):
    LANDED = "landed"
    WAITING = "waiting"
    MISSING = "missing"
    FAILED = "failed"  # found under the error prefix: Firehose gave up on it
    UNCONFIRMED = "unconfirmed"  # the destination cannot be read (see the report's problem)


@dataclass(frozen=True)
class StoredObject:
    key: str
    last_modified: datetime


class ObjectStore(Protocol):
    """The S3 calls the reader makes (the operator's identity); tests may stand in for it."""

    def list_objects(self, bucket: str, prefix: str) -> Iterable[StoredObject]: ...

    def get_object(self, bucket: str, key: str) -> bytes: ...


class DestinationUnreadable(Exception):
    """The operator may not read the destination; ``policy`` is what it needs."""

    def __init__(self, problem: str, policy: dict[str, Any]) -> None:
        super().__init__(problem)
        self.problem = problem
        self.policy = policy


@dataclass(frozen=True)
class RecordLanding:
    """Where one acknowledged record is."""

    entry: LandedEntry
    status: LandedStatus
    location: str = ""  # s3://bucket/key
    landed_at: datetime | None = None
    expected_by: datetime | None = None  # when buffering says it should be there
    error: str = ""

    @property
    def latency_seconds(self) -> float | None:
        if self.landed_at is None:
            return None
        # S3 keeps LastModified to the second: an object can look older than the ack.
        return max(0.0, (self.landed_at - self.entry.acked_time).total_seconds())

    def document(self) -> dict[str, Any]:
        return {
            "message_id": self.entry.message_id,
            "record_id": self.entry.record_id,
            "audience": self.entry.audience,
            "kind": self.entry.kind,
            "status": self.status.value,
            "location": self.location or None,
            "acked_at": self.entry.acked_at,
            "landed_at": self.landed_at.isoformat() if self.landed_at else None,
            "latency_seconds": (
                round(self.latency_seconds, 3) if self.latency_seconds is not None else None
            ),
            "expected_by": self.expected_by.isoformat() if self.expected_by else None,
            "error": self.error or None,
        }


@dataclass(frozen=True)
class LandedReport:
    destination: Destination
    records: tuple[RecordLanding, ...]
    checked_at: datetime
    problem: str = ""  # why the destination could not be read, when it could not
    policy: dict[str, Any] | None = None  # what the operator needs, when it was denied
    reader: str = ""  # the identity that read the destination

    def count(self, status: LandedStatus) -> int:
        return sum(1 for record in self.records if record.status is status)

    @property
    def all_landed(self) -> bool:
        return all(record.status is LandedStatus.LANDED for record in self.records)

    @property
    def unreadable(self) -> bool:
        """The destination could not be read: polling again cannot change the answer."""
        return any(record.status is LandedStatus.UNCONFIRMED for record in self.records)

    def document(self) -> dict[str, Any]:
        return {
            "destination": self.destination.document(),
            "reader": self.reader,
            "checked_at": self.checked_at.isoformat(),
            **{status.value: self.count(status) for status in LandedStatus},
            "problem": self.problem or None,
            "policy": self.policy,
            "records": [record.document() for record in self.records],
        }


@dataclass
class _Found:
    location: str
    landed_at: datetime
    error: str = ""
    used: bool = False


@dataclass
class LandedReader:
    """Reads a destination for journaled records; keeps what it read between polls."""

    store: ObjectStore
    partition: str = "aws"
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    grace_seconds: float = LANDED_GRACE_SECONDS
    # (key, read as error output) -> (last modified, its records' digests and errors): an
    # object is read once.
    _read: dict[tuple[str, bool], tuple[datetime, list[tuple[frozenset[str], str]]]] = field(
        default_factory=dict
    )

    def check(self, destination: Destination, entries: Sequence[LandedEntry]) -> LandedReport:
        """Where each entry is now; never raises for a denied bucket (the report says so)."""
        now = self.clock()
        if not destination.readable or not entries:
            status = LandedStatus.UNCONFIRMED
            records = tuple(RecordLanding(entry, status) for entry in entries)
            return LandedReport(destination, records, now, problem=destination.note)
        try:
            outputs, failures = self._found(destination, entries, now)
        except DestinationUnreadable as denied:
            records = tuple(RecordLanding(e, LandedStatus.UNCONFIRMED) for e in entries)
            return LandedReport(destination, records, now, denied.problem, denied.policy)
        return LandedReport(
            destination,
            tuple(self._place(entry, destination, outputs, failures, now) for entry in entries),
            now,
            problem=destination.note,
        )

    def _place(
        self,
        entry: LandedEntry,
        destination: Destination,
        outputs: dict[str, list[_Found]],
        failures: dict[str, list[_Found]],
        now: datetime,
    ) -> RecordLanding:
        for index, status in ((outputs, LandedStatus.LANDED), (failures, LandedStatus.FAILED)):
            found = _claim(index, entry)
            if found is not None:
                return RecordLanding(
                    entry, status, found.location, found.landed_at, error=found.error
                )
        expected = entry.acked_time + timedelta(seconds=destination.buffering_interval_seconds)
        late = now > expected + timedelta(seconds=self.grace_seconds)
        return RecordLanding(
            entry, LandedStatus.MISSING if late else LandedStatus.WAITING, expected_by=expected
        )

    def _found(
        self, destination: Destination, entries: Sequence[LandedEntry], now: datetime
    ) -> tuple[dict[str, list[_Found]], dict[str, list[_Found]]]:
        start = min(entry.sent_time for entry in entries) - WINDOW_SLACK
        outputs = self._index(
            destination,
            listing_prefixes(destination.prefix, start, now, time_zone=destination.time_zone),
            start,
            errors=False,
        )
        failures = self._index(
            destination, error_listing_prefixes(destination, start, now), start, errors=True
        )
        return outputs, failures

    def _index(
        self, destination: Destination, prefixes: Sequence[str], start: datetime, *, errors: bool
    ) -> dict[str, list[_Found]]:
        index: dict[str, list[_Found]] = defaultdict(list)
        seen: set[str] = set()
        for prefix in prefixes:
            listed: list[StoredObject] = self._call(
                destination, partial(_listed, self.store, destination.bucket, prefix)
            )
            for stored in listed:
                if stored.key in seen or stored.last_modified < start:
                    continue
                if not destination.written_by_stream(stored.key):
                    continue
                seen.add(stored.key)
                location = f"s3://{destination.bucket}/{stored.key}"
                for digests, error in self._records_of(destination, stored, errors=errors):
                    found = _Found(location, stored.last_modified, error)
                    for digest in digests:
                        index[digest].append(found)
        return index

    def _records_of(
        self, destination: Destination, stored: StoredObject, *, errors: bool
    ) -> list[tuple[frozenset[str], str]]:
        cached = self._read.get((stored.key, errors))
        if cached is not None and cached[0] == stored.last_modified:
            return cached[1]
        body = self._call(
            destination, lambda: self.store.get_object(destination.bucket, stored.key)
        )
        if body.startswith(GZIP_MAGIC):
            # Not GZIP after all, or cut short: read as it is.
            with contextlib.suppress(OSError, EOFError):
                body = gzip.decompress(body)
        records = _error_records(body) if errors else _output_records(body)
        self._read[(stored.key, errors)] = (stored.last_modified, records)
        return records

    def _call(self, destination: Destination, call: Callable[[], Any]) -> Any:
        from botocore.exceptions import ClientError

        try:
            return call()
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in _DENIED_CODES:
                raise DestinationUnreadable(
                    f"the operator may not read s3://{destination.bucket} ({code}: "
                    f"{error.response.get('Error', {}).get('Message', '')})".rstrip(": )")
                    + ")",
                    read_policy(destination, self.partition),
                ) from None
            raise


def _listed(store: ObjectStore, bucket: str, prefix: str) -> list[StoredObject]:
    return list(store.list_objects(bucket, prefix))


def _digests(data: bytes) -> frozenset[str]:
    return frozenset({sha256_hex(data), sha256_hex(bare_record(data))})


def _output_records(body: bytes) -> list[tuple[frozenset[str], str]]:
    return [(_digests(data), "") for data, _ in split_records(body)]


def _error_records(body: bytes) -> list[tuple[frozenset[str], str]]:
    """Firehose's error objects: one JSON document a line, the record in ``rawData``."""
    records = []
    for _data, document in split_records(body):
        if not document or "rawData" not in document:
            continue
        try:
            raw = base64.b64decode(document["rawData"])
        except (ValueError, TypeError):
            continue
        lowered = {key.lower(): value for key, value in document.items()}
        error = ": ".join(
            str(lowered[key]) for key in ("errorcode", "errormessage") if lowered.get(key)
        )
        records.append((_digests(raw), error or "in the error output"))
    return records


def _claim(index: dict[str, list[_Found]], entry: LandedEntry) -> _Found | None:
    """The first unclaimed copy of ``entry``'s bytes (identical records land once each)."""
    for digest in (entry.sha256, entry.sha256_bare):
        for found in index.get(digest, ()):
            if not found.used:
                found.used = True
                return found
    return None
