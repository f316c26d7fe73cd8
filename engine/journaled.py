"""One journaled message: what the outbox records before a send and a dead letter keeps after
a failure — enough to send the message again byte for byte, in its order."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from json.encoder import encode_basestring as _quoted  # a JSON string, as the journals write it
from typing import Any, Self

from engine.jsonl import EncodedLine
from engine.records import Action, MessageKind, OutgoingMessage

_KINDS = frozenset(kind.value for kind in MessageKind)
_ACTIONS = frozenset(action.value for action in Action)


class DamagedEntry(ValueError):
    """A journal line that is JSON but not a usable entry (a field missing or of the wrong
    type, an unknown kind, cut base64): set aside, never sent, never silently dropped."""


@dataclass(frozen=True)
class JournaledMessage:
    """One message as a journal keeps it; extra keys written by a newer version are ignored."""

    message_id: str
    connection: str
    stream_name: str
    kind: str
    action: str
    data_base64: str
    at: str
    follows: str | None = None

    @staticmethod
    def document_of(message: OutgoingMessage, connection: str, at: str) -> dict[str, Any]:
        """The journal line of ``message`` (built directly as a dict: a burst writes thousands)."""
        return {
            "message_id": message.message_id,
            "connection": connection,
            "stream_name": message.stream_name,
            "kind": message.kind.value,
            "action": message.action.value,
            "data_base64": message.data_base64,
            "at": at,
            "follows": message.follows,
        }

    @staticmethod
    def line_of(message: OutgoingMessage, connection: str, at: str) -> EncodedLine:
        """``document_of`` as its journal line (see ``lines_of``)."""
        return JournaledMessage.lines_of([message], connection, at)[0]

    @staticmethod
    def lines_of(
        messages: Sequence[OutgoingMessage], connection: str, at: str
    ) -> list[EncodedLine]:
        """The journal line of each message, formatted directly: the generic JSON encoder
        spends more on a record's base64 than on the rest together, and base64 (A-Z, a-z,
        0-9, +, /, =) never needs escaping in JSON. The other strings are escaped as usual,
        those the messages share (connection, time, stream, kind, action) once for all."""
        after_id = f',"connection":{_quoted(connection)},"stream_name":'
        tail = f'","at":{_quoted(at)},"follows":'
        middles: dict[tuple[str, str, str], str] = {}
        lines = []
        for message in messages:
            shared = (message.stream_name, message.kind, message.action)
            middle = middles.get(shared)
            if middle is None:
                middle = middles[shared] = (
                    f'{_quoted(message.stream_name)},"kind":{_quoted(message.kind.value)},'
                    f'"action":{_quoted(message.action.value)},"data_base64":"'
                )
            follows = "null" if message.follows is None else _quoted(message.follows)
            data_base64 = binascii.b2a_base64(message.data_bytes, newline=False).decode("ascii")
            lines.append(
                EncodedLine(
                    f'{{"message_id":{_quoted(message.message_id)}{after_id}{middle}'
                    f"{data_base64}{tail}{follows}}}"
                )
            )
        return lines

    @classmethod
    def from_message(cls, message: OutgoingMessage, connection: str, at: str) -> Self:
        return cls.from_document(cls.document_of(message, connection, at))

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Self:
        """The entry a journal line holds; ``DamagedEntry`` when it holds none."""
        values: dict[str, Any] = {}
        for field in fields(cls):
            if field.name in document:
                values[field.name] = document[field.name]
        try:
            entry = cls(**values)
        except TypeError as error:  # a required field is missing
            raise DamagedEntry(str(error)) from None
        entry.check()
        return entry

    def check(self) -> None:
        """Raise ``DamagedEntry`` unless every field has its type and the bytes decode."""
        for field in fields(self):
            value = getattr(self, field.name)
            expected = _EXPECTED_TYPES.get(field.name, str)
            if isinstance(value, bool) and expected is not bool or not isinstance(value, expected):
                raise DamagedEntry(f"{field.name} is {type(value).__name__}, not {field.type}")
        if self.kind not in _KINDS:
            raise DamagedEntry(f"unknown kind {self.kind!r}")
        if self.action not in _ACTIONS:
            raise DamagedEntry(f"unknown action {self.action!r}")
        try:
            base64.b64decode(self.data_base64, validate=True)
        except (binascii.Error, ValueError):
            raise DamagedEntry("data_base64 is not valid base64 (cut?)") from None

    def document(self) -> dict[str, Any]:
        return {field.name: getattr(self, field.name) for field in fields(self)}

    @property
    def data_bytes(self) -> bytes:
        return base64.b64decode(self.data_base64)

    def to_message(self) -> OutgoingMessage:
        """The message again, byte for byte, ready to re-send."""
        data_bytes = self.data_bytes
        try:
            data = json.loads(data_bytes)
        except (UnicodeDecodeError, json.JSONDecodeError):
            data = {}
        return OutgoingMessage(
            kind=MessageKind(self.kind),
            action=Action(self.action),
            stream_name=self.stream_name,
            data=data if isinstance(data, dict) else {},
            data_bytes=data_bytes,
            message_id=self.message_id,
            follows=self.follows,
        )


# Fields that are not plain strings (the rest are).
_EXPECTED_TYPES: dict[str, type | tuple[type, ...]] = {
    "follows": (str, type(None)),
    "attempts": int,
    "possible_duplicate": bool,
}
