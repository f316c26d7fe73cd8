"""The ``firehose-console`` script: put the folder that holds ``engine`` and ``console`` first on
``sys.path``, then run the CLI (README: "Development", packaging).

Installed from a wheel, that folder is this package's own directory (``engine`` and ``console``
are carried inside it); installed editable, it is the repository, where they live at the top.
Either way the code imports them as ``engine.…`` and ``console.…``.
"""

from __future__ import annotations

import gc
import sys
from importlib.util import find_spec
from pathlib import Path


def folder_holding_the_packages() -> Path:
    """The directory whose ``engine/`` and ``console/`` this installation runs."""
    spec = find_spec("firehose_console.engine")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("firehose-console is installed without its engine package")
    return Path(spec.origin).resolve().parent.parent


def main() -> int:
    """Entry point of the installed ``firehose-console`` script; returns the exit status."""
    # Importing the CLI (pydantic, the engine) makes objects that live as long as the process:
    # collecting garbage meanwhile finds none and costs a tenth of the start-up. Collected
    # again once they are imported, and frozen out of every later collection's way.
    gc.disable()
    try:
        folder = str(folder_holding_the_packages())
        if folder not in sys.path:
            sys.path.insert(0, folder)
        from console.cli import main as run_cli
    finally:
        gc.freeze()
        gc.enable()
    return run_cli()
