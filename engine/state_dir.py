"""Where the journals live, and the failure classes an interrupted run leaves in them."""

from __future__ import annotations

import os
from pathlib import Path

from engine.settings import DeliverySettings

APP_DIR_NAME = "firehose-console"
# The failure class of a message a run was sending when it was interrupted (see engine.outbox).
UNKNOWN_FATE = "UNKNOWN_FATE"
UNKNOWN_FATE_DETAIL = "interrupted before Firehose answered: may already be delivered"
# ... and of one it was interrupted with before sending it: certainly not delivered.
INTERRUPTED_UNSENT = "INTERRUPTED_UNSENT"
INTERRUPTED_UNSENT_DETAIL = "interrupted before it was sent: not delivered"


def state_directory(delivery: DeliverySettings) -> Path:
    """Where journals live: ``delivery.state_dir``, else $XDG_STATE_HOME, else ~/.local/state."""
    if delivery.state_dir:
        return Path(delivery.state_dir).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / APP_DIR_NAME
