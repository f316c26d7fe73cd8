"""The one way files are replaced here: a temporary file beside the target, written and fsynced,
renamed over it, then the directory fsynced — a reader (or a crash, or a power cut) sees the old
content or the new, never a mix (README "Reliability": settings saves cannot be torn).

A save killed mid-write leaves its temporary file behind. Those files carry a name no user file
would have (``.NAME.firehose-console-tmp-XXXXXXXX``), so the clean-up removes only what the
console itself created.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path

TEMPORARY_MARK = ".firehose-console-tmp-"
# A temporary file a killed save left behind is removed by a later save once this old (a save
# takes milliseconds; the margin keeps a concurrent save's own file safe).
STALE_TEMPORARY_SECONDS = 60.0


def temporary_prefix(path: Path) -> str:
    """The start of every temporary file made for ``path`` (mkstemp adds 8 random characters)."""
    return f".{path.name}{TEMPORARY_MARK}"


def write_temporary(path: Path, text: str, mode: int) -> str:
    """Write ``text`` to a new temporary file beside ``path``, flushed to disk, with ``mode``;
    returns its path, for the caller to rename into place. Removed again on any failure."""
    descriptor, temporary = tempfile.mkstemp(prefix=temporary_prefix(path), dir=path.parent)
    try:  # mkstemp creates it 0600: a secret is never readable while it is written
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return temporary


def _fsync_directory(directory: Path) -> None:
    # The rename is durable only once the directory entry itself is on disk.
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _keep_backup(path: Path, *, private: bool) -> None:
    """Copy ``path`` to ``PATH.bak``, itself replaced atomically."""
    copy = write_temporary(path, "", 0o600)
    try:
        shutil.copy2(path, copy)
        if private:
            os.chmod(copy, 0o600)
        os.replace(copy, path.with_name(path.name + ".bak"))
    except BaseException:
        Path(copy).unlink(missing_ok=True)
        raise


def replace_atomically(
    path: Path, text: str, mode: int = 0o600, *, keep_backup: bool = False
) -> None:
    """Replace ``path``'s content with ``text``: temporary file, fsync, rename, directory fsync.

    ``keep_backup`` first keeps the previous content as ``PATH.bak`` (mode 0600 when ``mode``
    is). Stale temporary files of ``path`` left by killed saves are removed afterwards.
    """
    temporary = write_temporary(path, text, mode)
    try:
        if keep_backup and path.exists():
            _keep_backup(path, private=mode == 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)
    remove_stale_temporaries(path)


def temporary_leftovers(path: Path) -> list[Path]:
    """Temporary files a save of ``path`` killed mid-write left beside it (never read)."""
    pattern = re.compile(re.escape(temporary_prefix(path)) + r"[a-z0-9_]{8}")
    try:
        return sorted(p for p in path.parent.iterdir() if pattern.fullmatch(p.name))
    except OSError:
        return []


def remove_stale_temporaries(path: Path) -> None:
    """Remove ``path``'s leftovers older than STALE_TEMPORARY_SECONDS (a concurrent save's
    own temporary file is younger)."""
    deadline = time.time() - STALE_TEMPORARY_SECONDS
    for leftover in temporary_leftovers(path):
        try:
            if leftover.stat().st_mtime < deadline:
                leftover.unlink()
        except OSError:
            pass  # gone already, or not ours to remove
