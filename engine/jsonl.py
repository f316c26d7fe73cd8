"""Append-only JSON Lines journals that survive a crash and a full disk.

- Appends are fsynced (unless the caller says otherwise) and written whole: a short
  ``os.write`` is continued, and a write or fsync that fails raises ``JournalWriteFailed`` —
  the caller must then treat the lines as not on record.
- Appends take a shared ``flock`` on ``FILE.lock`` and rewrites an exclusive one, so a rewrite
  (read, change, rename) never loses a line appended meanwhile by another thread or process.
- A damaged line (torn by a crash, zeroed by the disk, not a journal entry) is never skipped
  silently nor erased: ``quarantine_lines`` moves it to ``FILE.quarantine`` beside the journal
  and returns a ``Quarantined`` for the caller to report (README "Reliability").
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.atomic_files import replace_atomically

_LOCK = threading.Lock()
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # one, reused: bursts
QUARANTINE_SUFFIX = ".quarantine"


class JournalWriteFailed(Exception):
    """A journal write failed or was cut short (disk full, I/O error): the ``at_risk``
    messages it carried are not safely on record, and the command must stop."""

    def __init__(self, path: Path, at_risk: int, cause: str) -> None:
        self.path = path
        self.at_risk = at_risk
        self.cause = cause
        noun = "message" if at_risk == 1 else "messages"
        risk = f"{at_risk} {noun} at risk" if at_risk else "no message lost"
        super().__init__(
            f"could not write the journal {path} ({cause}): {risk}, the command stopped; "
            "free space (or fix the disk), then run `firehose-console dead-letters list`: "
            "every message already journaled is recovered"
        )


@dataclass(frozen=True)
class Quarantined:
    """Damaged lines moved out of a journal into its quarantine file."""

    journal: Path
    quarantine: Path
    lines: int

    def describe(self) -> str:
        noun = "line" if self.lines == 1 else "lines"
        return (
            f"{self.lines} damaged {noun} of {self.journal} moved to {self.quarantine} "
            "(kept, not deleted: inspect or repair it by hand)"
        )


@dataclass(frozen=True)
class JournalLine:
    """One line as read: its raw bytes (without the newline) and its document, or None when
    the line is not a JSON object."""

    raw: bytes
    document: dict[str, Any] | None


def quarantine_path(path: Path) -> Path:
    return path.with_name(path.name + QUARANTINE_SUFFIX)


class EncodedLine(str):
    """A document already encoded as one line of compact JSON (no newline), for callers that
    encode faster than a generic encoder can (a burst journals a line per message). Accepted
    wherever documents are written."""


def _line(document: dict[str, Any] | EncodedLine) -> str:
    if type(document) is EncodedLine:
        return document + "\n"
    return _encode(document) + "\n"


def _text_of(documents: Sequence[dict[str, Any] | EncodedLine]) -> str:
    """The documents as lines; lines already encoded are joined as they are (a burst's chunk
    is ten thousand of them: no copy of each with its newline first)."""
    if all(type(document) is EncodedLine for document in documents):
        return "\n".join([*documents, ""])  # type: ignore[list-item]  # all EncodedLine
    return "".join(map(_line, documents))


def _encoder_of(encoder: json.JSONEncoder) -> Callable[[Any], str]:
    """``encoder.encode``, made once instead of per call (a burst encodes a line per message):
    the C encoder ``json`` would build for every document, without the circular check (a
    journal document is a tree)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None or encoder.indent is not None:  # as json itself: the plain encoder
        return encoder.encode
    one_shot = make(
        None,
        encoder.default,
        json.encoder.encode_basestring
        if not encoder.ensure_ascii
        else json.encoder.encode_basestring_ascii,
        encoder.indent,
        encoder.key_separator,
        encoder.item_separator,
        encoder.sort_keys,
        encoder.skipkeys,
        encoder.allow_nan,
    )

    def encode(document: Any) -> str:
        return "".join(one_shot(document, 0))

    return encode


_encode = _encoder_of(_ENCODER)


@contextlib.contextmanager
def _file_lock(path: Path, *, exclusive: bool) -> Iterator[None]:
    """Shared (appends) or exclusive (rewrites) use of ``path``; each call opens its own
    descriptor, so threads exclude each other as processes do."""
    descriptor = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def _ends_torn(descriptor: int) -> bool:
    """True when the file's last byte is not a newline: a line torn by a crash."""
    size = os.fstat(descriptor).st_size
    return size > 0 and os.pread(descriptor, 1, size - 1) != b"\n"


def _write_all(descriptor: int, data: bytes) -> None:
    """Write every byte: ``os.write`` may write fewer than asked (a nearly full disk)."""
    view = memoryview(data)
    while view:
        written = os.write(descriptor, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


def append_json_lines(
    path: Path,
    documents: Sequence[dict[str, Any] | EncodedLine],
    *,
    sync: bool = True,
    at_risk: int | None = None,
) -> int:
    """Append documents as lines in one write; with ``sync``, flushed to disk before returning.
    Returns the bytes appended.

    A torn last line left by a crash is closed with a newline first, so it stays one unreadable
    line instead of swallowing the first document appended after it. Raises
    ``JournalWriteFailed`` (naming ``at_risk`` messages, by default one per document) when the
    write or the flush fails: what was written may be partial and will read as damaged.
    """
    if not documents:
        return 0
    data = _text_of(documents).encode("utf-8")
    try:
        if not path.parent.is_dir():  # a stat, cheaper than mkdir's raise and catch per call
            path.parent.mkdir(parents=True, exist_ok=True)
        with _file_lock(path, exclusive=False):
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                with _LOCK:
                    if _ends_torn(descriptor):
                        data = b"\n" + data
                    _write_all(descriptor, data)
                if sync:  # outside _LOCK: concurrent writers' fsyncs share the disk's commits
                    os.fsync(descriptor)
            finally:
                os.close(descriptor)
    except OSError as error:
        cause = error.strerror or type(error).__name__
        raise JournalWriteFailed(
            path, len(documents) if at_risk is None else at_risk, cause
        ) from error
    return len(data)


def read_lines(path: Path) -> list[JournalLine]:
    """Every non-blank line of the file with its document (None when it is not a JSON
    object: torn, zeroed, not JSON). Nothing is skipped: the caller decides what is damaged."""
    return list(iter_lines(path))


def iter_lines(path: Path) -> Iterator[JournalLine]:
    """``read_lines`` one line at a time, for a journal that may hold a whole burst: only
    what the caller keeps stays in memory."""
    if not path.exists():
        return
    with path.open("rb") as handle:
        for raw in handle:
            raw = raw.rstrip(b"\n")
            if not raw.strip():
                continue
            try:
                document = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError):
                document = None
            yield JournalLine(raw, document if isinstance(document, dict) else None)


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    """Every whole document in the file (damaged lines are left out: callers that must not
    skip them silently use ``read_lines`` and ``quarantine_lines``)."""
    return [line.document for line in read_lines(path) if line.document is not None]


def quarantine_lines(path: Path, damaged: Sequence[bytes]) -> Quarantined | None:
    """Move the ``damaged`` lines out of the journal into ``FILE.quarantine`` (appended and
    fsynced first, then the journal is rewritten without them), under the exclusive lock.

    Lines are matched by their bytes as they are now: one that was only torn because an append
    was under way when it was read is complete now and stays. None when nothing moved.
    """
    if not damaged:
        return None
    wanted = Counter(damaged)
    with _file_lock(path, exclusive=True):
        keep: list[bytes] = []
        moved: list[bytes] = []
        for line in read_lines(path):
            if wanted[line.raw] > 0:
                wanted[line.raw] -= 1
                moved.append(line.raw)
            else:
                keep.append(line.raw)
        if not moved:
            return None
        quarantined = _move_to_quarantine(path, moved)
        with _LOCK:  # kept lines parsed as JSON, so they are UTF-8
            replace_atomically(path, "".join(raw.decode() + "\n" for raw in keep))
    return quarantined


def _move_to_quarantine(path: Path, lines: Sequence[bytes]) -> Quarantined:
    """Append ``lines`` to the journal's quarantine file, fsynced: durable there before the
    caller rewrites the journal without them."""
    destination = quarantine_path(path)
    try:
        descriptor = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            _write_all(descriptor, b"".join(raw + b"\n" for raw in lines))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    except OSError as error:
        raise JournalWriteFailed(destination, 0, error.strerror or str(error)) from error
    return Quarantined(path, destination, len(lines))


def replace_json_lines(path: Path, documents: Iterable[dict[str, Any] | EncodedLine]) -> None:
    """Replace the file's content with ``documents`` without reading it (the caller knows
    every line it holds), atomically and with appends held off."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(path, exclusive=True), _LOCK:
        replace_atomically(path, "".join(_line(document) for document in documents))


def rewrite_json_lines(path: Path, documents: Iterable[dict[str, Any]]) -> Quarantined | None:
    """Replace the file's content atomically (temp file, fsync, rename)."""
    return update_json_lines(path, lambda _: documents)


def update_json_lines(
    path: Path, change: Callable[[list[dict[str, Any]]], Iterable[dict[str, Any]]]
) -> Quarantined | None:
    """Replace the file's documents with ``change(documents)`` atomically (temp file, fsync,
    rename), with appends held off from the read to the rename so none is lost. Lines that
    are not JSON objects move to the quarantine file first (returned), never dropped."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(path, exclusive=True):
        lines = read_lines(path)
        damaged = [line.raw for line in lines if line.document is None]
        quarantined = _move_to_quarantine(path, damaged) if damaged else None
        documents = change([line.document for line in lines if line.document is not None])
        with _LOCK:
            replace_atomically(path, "".join(_line(document) for document in documents))
    return quarantined
