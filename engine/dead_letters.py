"""The dead-letter journal: every message that could not be delivered, kept for replay."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from engine.failures import Failure
from engine.jsonl import append_json_lines, read_json_lines, update_json_lines
from engine.records import Action, MessageKind, OutgoingMessage
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


@dataclass(frozen=True)
class DeadLetter:
    """One undelivered message: the exact bytes, where it was going, and why it failed."""

    message_id: str
    connection: str
    stream_name: str
    kind: str
    action: str
    data_base64: str
    failure_class: str
    alert_type: str
    detail: str
    attempts: int
    at: str
    # True when the message may have reached Firehose already (its fate is unknown): a replay
    # can then deliver it twice.
    possible_duplicate: bool = False
    # The message_id of the message that must be acknowledged before this one is sent (an
    # identity change's re-add follows its remove): a replay keeps the pair in order.
    follows: str | None = None

    @classmethod
    def from_failure(
        cls,
        message: OutgoingMessage,
        connection: str,
        failure: Failure,
        attempts: int,
        at: str,
    ) -> DeadLetter:
        alert_type = failure.failure_class.alert_type
        return cls(
            message_id=message.message_id,
            connection=connection,
            stream_name=message.stream_name,
            kind=message.kind.value,
            action=message.action.value,
            data_base64=message.data_base64,
            failure_class=failure.failure_class.name,
            alert_type=alert_type.value if alert_type else "",
            detail=failure.describe(),
            attempts=attempts,
            at=at,
            follows=message.follows,
        )

    def to_message(self) -> OutgoingMessage:
        """The message again, byte for byte, ready to re-send."""
        data_bytes = base64.b64decode(self.data_base64)
        try:
            data = json.loads(data_bytes)
        except (UnicodeDecodeError, json.JSONDecodeError):
            data = {}
        return OutgoingMessage(
            kind=MessageKind(self.kind),
            action=Action(self.action),
            stream_name=self.stream_name,
            data=data,
            data_bytes=data_bytes,
            message_id=self.message_id,
            follows=self.follows,
        )

    def document(self) -> dict[str, Any]:
        return asdict(self)


class DeadLetterJournal:
    """A JSON Lines file of dead letters for one connection."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def for_connection(cls, delivery: DeliverySettings, connection: str) -> DeadLetterJournal:
        return cls(state_directory(delivery) / "dead-letters" / f"{connection}.jsonl")

    def add(self, letter: DeadLetter) -> None:
        self.add_many([letter])

    def add_many(self, letters: Sequence[DeadLetter]) -> None:
        """Append letters in one fsynced write."""
        append_json_lines(self.path, [letter.document() for letter in letters])

    def entries(self) -> list[DeadLetter]:
        """Every dead letter, oldest first; the latest word on a message wins."""
        by_id: dict[str, DeadLetter] = {}
        known = {field.name for field in fields(DeadLetter)}
        for document in read_json_lines(self.path):
            try:  # keys a newer version added are ignored rather than losing the letter
                letter = DeadLetter(**{k: v for k, v in document.items() if k in known})
            except TypeError:
                continue
            by_id.pop(letter.message_id, None)
            by_id[letter.message_id] = letter
        return list(by_id.values())

    def remove(self, message_ids: set[str]) -> None:
        """Drop the given messages (once delivered) from the journal."""
        if not message_ids:
            return
        # Read and rewritten under one lock: a letter appended meanwhile (another console, a
        # send in another thread) is kept.
        update_json_lines(
            self.path,
            lambda documents: [d for d in documents if d.get("message_id") not in message_ids],
        )
