"""The one way files are replaced here: a temporary file beside the target, written and fsynced,
then renamed over it — a reader (or a crash) sees the old content or the new, never a mix."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_temporary(directory: Path, prefix: str, text: str, mode: int) -> str:
    """Write ``text`` to a new temporary file in ``directory``, flushed to disk, with ``mode``;
    returns its path, for the caller to rename into place. Removed again on any failure."""
    descriptor, temporary = tempfile.mkstemp(prefix=prefix, dir=directory)  # created 0600
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return temporary


def replace_atomically(path: Path, text: str, mode: int = 0o600) -> None:
    """Replace ``path``'s content with ``text`` through a temporary file and a rename."""
    temporary = write_temporary(path.parent, f".{path.name}.", text, mode)
    try:
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
