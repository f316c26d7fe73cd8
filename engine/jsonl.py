"""Append-only JSON Lines files that survive a crash: fsynced appends, torn tails tolerated.

Appends take a shared ``flock`` on ``FILE.lock`` and rewrites an exclusive one, so a rewrite
(read, change, rename) never loses a line appended meanwhile by another thread or process.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from engine.atomic_files import replace_atomically

_LOCK = threading.Lock()
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # one, reused: bursts


def _line(document: dict[str, Any]) -> str:
    return _ENCODER.encode(document) + "\n"


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


def append_json_lines(
    path: Path, documents: Sequence[dict[str, Any]], *, sync: bool = True
) -> None:
    """Append documents as lines in one write; with ``sync``, flushed to disk before returning.

    A torn last line left by a crash is closed with a newline first, so it stays one unreadable
    line instead of swallowing the first document appended after it.
    """
    if not documents:
        return
    data = "".join(_line(document) for document in documents).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(path, exclusive=False):
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            with _LOCK:
                if _ends_torn(descriptor):
                    data = b"\n" + data
                os.write(descriptor, data)
            if sync:  # outside _LOCK: concurrent writers' fsyncs share the disk's commits
                os.fsync(descriptor)
        finally:
            os.close(descriptor)


def append_json_line(path: Path, document: dict[str, Any]) -> None:
    """Append one document as a line, flushed to disk before returning."""
    append_json_lines(path, [document])


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    """Every whole document in the file; a line torn by a crash (or otherwise unreadable) is
    skipped rather than fatal."""
    return list(iter_json_lines(path))


def iter_json_lines(path: Path) -> Iterator[dict[str, Any]]:
    """``read_json_lines`` one document at a time: a big journal is never held whole."""
    if not path.exists():
        return
    with path.open("rb") as handle:
        for raw in handle:
            try:
                document = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError):
                continue
            if isinstance(document, dict):
                yield document


def rewrite_json_lines(path: Path, documents: Iterable[dict[str, Any]]) -> None:
    """Replace the file's content atomically (temp file, fsync, rename)."""
    update_json_lines(path, lambda _: documents)


def update_json_lines(
    path: Path, change: Callable[[list[dict[str, Any]]], Iterable[dict[str, Any]]]
) -> None:
    """Replace the file's documents with ``change(documents)`` atomically (temp file, fsync,
    rename), with appends held off from the read to the rename so none is lost."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(path, exclusive=True):
        documents = change(read_json_lines(path))
        with _LOCK:
            replace_atomically(path, "".join(_line(document) for document in documents))
