"""The embedded sandbox's bucket keeps only its newest objects, as an S3 lifecycle rule would.

README: "The embedded sandbox". moto keeps every object in the console's own memory, one per
PutRecord / PutRecordBatch call, so an unbounded bucket made the console's memory grow with every
record of a burst. The bucket keeps its newest objects up to a byte budget, the oldest deleted
first, and never the objects holding the newest ``keep_records`` records (what the landed journal
can still ask about, README: "Where records land", with a margin for the calls a burst has in
flight at once, whose objects may be written in another order than their records were sent).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from engine.landed_journal import MAX_LANDED_ENTRIES

# Some 20,000 records of a few hundred bytes: far more than the Delivered tab shows (its newest
# 500) and than the landed journal keeps (1,000); reading them back stays quick.
SANDBOX_BUCKET_BUDGET_BYTES = 8 * 1024 * 1024

# On a moto S3 backend whose put_object goes through a retention: (its own put_object, retention).
_WRAPPED_MARK = "_firehose_console_retention"


class BucketRetention:
    """Keeps one moto bucket within ``budget_bytes``: the objects written through ``put``
    are remembered in order, and once they outgrow the budget the oldest are deleted, except
    those holding the newest ``keep_records`` records.

    ``count_records`` says how many records an object's bytes hold; it runs only for the
    newest objects, once each.
    """

    def __init__(
        self,
        backend: Any,
        bucket_name: str,
        count_records: Callable[[bytes], int],
        *,
        budget_bytes: int = SANDBOX_BUCKET_BUDGET_BYTES,
        keep_records: int = MAX_LANDED_ENTRIES,
    ) -> None:
        self.backend = backend  # moto's S3 backend of the sandbox's account and partition
        self.bucket_name = bucket_name
        self.budget_bytes = budget_bytes
        self.keep_records = keep_records
        self._count_records = count_records
        self._lock = threading.Lock()  # moto's server handles each request in a thread
        self._sizes: OrderedDict[str, int] = OrderedDict()  # key -> bytes, oldest first
        self._record_counts: dict[str, int] = {}
        self._total_bytes = 0
        # A trim that the newest records stopped is not tried again before another eighth of
        # the budget is written: it walks the newest objects, which may be many small ones.
        self._next_trim_bytes = budget_bytes
        self.deleted_objects = 0

    def written(self, key_name: str, size: int) -> None:
        """An object of ``size`` bytes was just written: remember it, trim if over budget."""
        with self._lock:
            self._total_bytes -= self._sizes.pop(key_name, 0)  # an object written again
            self._record_counts.pop(key_name, None)
            self._sizes[key_name] = size
            self._total_bytes += size
            if self._total_bytes > max(self.budget_bytes, self._next_trim_bytes):
                self._trim()
                self._next_trim_bytes = self._total_bytes + max(1, self.budget_bytes // 8)

    def _trim(self) -> None:
        """Delete the oldest objects while over budget, past the newest ``keep_records``."""
        protected = self._protected_keys()
        while self._total_bytes > self.budget_bytes and self._sizes:
            oldest = next(iter(self._sizes))
            if oldest in protected:
                return
            self._total_bytes -= self._sizes.pop(oldest)
            self._record_counts.pop(oldest, None)
            self._delete(oldest)

    def _protected_keys(self) -> set[str]:
        """The newest objects that together hold at least ``keep_records`` records."""
        protected: set[str] = set()
        records = 0
        for key_name in reversed(self._sizes):
            if records >= self.keep_records:
                break
            protected.add(key_name)
            records += self._records_in(key_name)
        return protected

    def _records_in(self, key_name: str) -> int:
        if key_name not in self._record_counts:
            stored = self._bucket_keys().get(key_name)
            body = getattr(stored, "value", None)
            self._record_counts[key_name] = (
                self._count_records(body) if isinstance(body, bytes) else 0
            )
        return self._record_counts[key_name]

    def _bucket_keys(self) -> Any:
        bucket = self.backend.buckets.get(self.bucket_name)
        return bucket.keys if bucket is not None else {}

    def _delete(self, key_name: str) -> None:
        stored = self._bucket_keys().get(key_name)
        if stored is None:  # deleted by someone else already
            return
        self.backend.delete_object(self.bucket_name, key_name)
        dispose = getattr(stored, "dispose", None)
        if dispose is not None:  # closes its buffer now rather than when collected
            dispose()
        self.deleted_objects += 1


def keep_within_budget(retention: BucketRetention) -> None:
    """Route the backend's writes to ``retention.bucket_name`` through ``retention``.

    moto's Firehose writes each put with the S3 backend's ``put_object``; it is wrapped on
    this backend instance only (another account's, or a backend reset by a ``mock_aws``
    elsewhere in the process, is left alone). A later retention replaces an earlier one.
    """
    backend = retention.backend
    original = _original_put_object(backend)

    def put_object(bucket_name: str, key_name: str, value: bytes, *args: Any, **kwargs: Any) -> Any:
        stored = original(bucket_name, key_name, value, *args, **kwargs)
        if bucket_name == retention.bucket_name and isinstance(value, bytes | bytearray):
            retention.written(key_name, len(value))
        return stored

    backend.put_object = put_object
    setattr(backend, _WRAPPED_MARK, (original, retention))


def in_place(retention: BucketRetention) -> bool:
    """Whether the backend's writes go through ``retention`` (and not a later one)."""
    wrapped = getattr(retention.backend, _WRAPPED_MARK, None)
    return wrapped is not None and wrapped[1] is retention


def release(retention: BucketRetention) -> None:
    """Give the backend its own ``put_object`` back, unless a later retention took over."""
    if in_place(retention):
        original, _ = getattr(retention.backend, _WRAPPED_MARK)
        retention.backend.put_object = original
        delattr(retention.backend, _WRAPPED_MARK)


def _original_put_object(backend: Any) -> Callable[..., Any]:
    wrapped = getattr(backend, _WRAPPED_MARK, None)
    original: Callable[..., Any] = wrapped[0] if wrapped is not None else backend.put_object
    return original
