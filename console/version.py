"""`firehose-console --version`: the version written in the package metadata (pyproject.toml)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

DISTRIBUTION = "firehose-console"


def installed_version() -> str:
    """The installed distribution's version; "unknown" when run from a checkout never installed."""
    # Imported here: importlib.metadata (and the email package under it) costs every command
    # some 30 ms at start-up, and only --version needs it (README: "Performance").
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"


class VersionAction(argparse.Action):
    """Prints ``firehose-console VERSION`` and exits 0; the metadata is read only when asked,
    so parsing any other command line costs nothing."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        kwargs.setdefault("help", "print the version and exit")
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        sys.stdout.write(f"{DISTRIBUTION} {installed_version()}\n")
        parser.exit(0)
