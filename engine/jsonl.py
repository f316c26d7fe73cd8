"""Append-only JSON Lines files that survive a crash: fsynced appends, torn tails tolerated."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_LOCK = threading.Lock()


def append_json_line(path: Path, document: dict[str, Any]) -> None:
    """Append one document as a line, flushed to disk before returning."""
    line = json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with _LOCK:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(descriptor, line.encode("utf-8"))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    """Every whole document in the file; a line torn by a crash (or otherwise unreadable) is
    skipped rather than fatal."""
    if not path.exists():
        return []
    documents = []
    with path.open("rb") as handle:
        for raw in handle:
            try:
                document = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError):
                continue
            if isinstance(document, dict):
                documents.append(document)
    return documents


def rewrite_json_lines(path: Path, documents: Iterable[dict[str, Any]]) -> None:
    """Replace the file's content atomically (temp file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _LOCK:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                for document in documents:
                    handle.write(json.dumps(document, ensure_ascii=False, separators=(",", ":")))
                    handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
