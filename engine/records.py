"""Building the records that go to Firehose: pure functions, settings → bytes.

README: "Message formats".

A membership record's ``Data`` is the seed's JSON (key order as the seed shows it); an audience
deletion is our own ``AudienceDeleted`` message (the seed says one is sent but shows none).
"""

from __future__ import annotations

import base64
import json
import os
import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from engine.identities import MPID_KEY, identity_by_key
from engine.settings import RECORD_SIZE_LIMIT_BYTES, ConnectionSettings, Settings

# The most messages one burst may ask for: a burst streams (memory does not grow with it), so
# this only stops a typo from sending for days.
MAX_BURST_COUNT = 10_000_000


class Action(StrEnum):
    """What the user asks to preview or send."""

    ADD = "add"
    REMOVE = "remove"
    DELETE = "delete"
    IDENTITY_CHANGE = "identity-change"


class MessageKind(StrEnum):
    """What one record says downstream."""

    ADD = "add"
    REMOVE = "remove"
    DELETE = "delete"


DELETE_MESSAGE_TYPE = "AudienceDeleted"


@dataclass(frozen=True)
class AudienceUser:
    """A user as the platform knows them: the MPID and identities by JSON key."""

    mpid: str
    identities: Mapping[str, str]

    def all_identities(self) -> dict[str, str]:
        """The identities with the MPID among them (sent as ``MPID``), empty values left out."""
        found = {key: value for key, value in self.identities.items() if value}
        if self.mpid:
            found[MPID_KEY] = self.mpid
        return found

    @property
    def is_anonymous(self) -> bool:
        """Identified by the MPID alone."""
        return bool(self.mpid) and not any(self.identities.values())


@dataclass(frozen=True)
class DroppedIdentity:
    identity: str
    reason: str


# Message ids: 128 random bits, as uuid4 but drawn without a system call per id (uuid4 reads
# os.urandom, which lets go of the interpreter lock: in a burst every id then waited its turn
# behind the sending threads). Seeded from os.urandom, and again in a forked child.
_MESSAGE_IDS = random.Random()
os.register_at_fork(after_in_child=_MESSAGE_IDS.seed)


def new_message_id() -> str:
    """A fresh message id: 32 random hex digits (unique for any practical purpose)."""
    return f"{_MESSAGE_IDS.getrandbits(128):032x}"


@dataclass(frozen=True)
class OutgoingMessage:
    """One record as it would be sent, with everything a preview shows about it."""

    kind: MessageKind
    action: Action
    stream_name: str
    data: dict[str, Any]
    data_bytes: bytes
    dropped: tuple[DroppedIdentity, ...] = ()
    skip_reason: str | None = None
    message_id: str = field(default_factory=lambda: new_message_id())
    # The message_id of the message that must be acknowledged (RecordId back) before this one
    # is sent: an identity change's re-add follows its remove.
    follows: str | None = None

    @property
    def will_send(self) -> bool:
        return self.skip_reason is None

    @property
    def size_bytes(self) -> int:
        return len(self.data_bytes)

    @property
    def data_base64(self) -> str:
        return base64.b64encode(self.data_bytes).decode("ascii")

    def request(self) -> dict[str, Any]:
        """The PutRecord request exactly as sent: Data base64-encoded, as in the HTTP body."""
        return {"DeliveryStreamName": self.stream_name, "Record": {"Data": self.data_base64}}

    if not TYPE_CHECKING:  # mypy would otherwise accept any attribute name on a message

        def __getattr__(self, name: str) -> Any:
            # Reached only for an attribute the message lacks: the ``data`` of a synthetic
            # user's message (``_synthetic_message``), decoded from its bytes when first read
            # (a preview or the landed journal reads it; sending a burst never does).
            if name != "data":
                raise AttributeError(f"'OutgoingMessage' object has no attribute {name!r}")
            data = _JSON_DECODER.raw_decode(self.data_bytes.decode("utf-8"))[0]
            object.__setattr__(self, "data", data)
            return data


_JSON_DECODER = json.JSONDecoder()


def _synthetic_message(fields: dict[str, Any]) -> OutgoingMessage:
    """An OutgoingMessage with these ``fields``, every one but ``data``, which is decoded from
    ``data_bytes`` when first read: the bytes are the compact JSON of exactly that data (a
    filled template) and the delimiter. Built without the frozen dataclass's ``__init__``
    (one ``object.__setattr__`` per field): a burst builds one per record, three times faster
    (README: "Bursts: count, rate, batches and quotas")."""
    message = object.__new__(OutgoingMessage)
    vars(message).update(fields)
    return message


@dataclass(frozen=True)
class RecordContext:
    """What a record depends on besides the user: the connection, audience and delimiter."""

    stream_name: str
    connection: ConnectionSettings
    audience_id: int
    audience_name: str
    record_delimiter: str
    send_remove_on_identity_change: bool

    @classmethod
    def from_settings(cls, settings: Settings, connection_name: str | None = None) -> RecordContext:
        connection = settings.connections[settings.connection_name(connection_name)]
        return cls(
            stream_name=connection.delivery_stream_name,
            connection=connection,
            audience_id=settings.audience.id,
            audience_name=settings.audience.audience_name,
            record_delimiter=settings.delivery.record_delimiter,
            send_remove_on_identity_change=settings.account.send_remove_on_identity_change,
        )


def configured_test_user(settings: Settings, *, new_identities: bool = False) -> AudienceUser:
    """The configured test user (with its identities after a change, if asked)."""
    user = settings.test_user
    return AudienceUser(user.mpid, user.new_identities if new_identities else user.identities)


def forwarded_identities(
    user: AudienceUser, connection: ConnectionSettings
) -> tuple[dict[str, str], tuple[DroppedIdentity, ...]]:
    """The identities sent for ``user`` under ``connection``, and each one dropped with why."""
    excluded = connection.excluded_keys()
    kept: dict[str, str] = {}
    dropped: list[DroppedIdentity] = []
    for key, value in user.all_identities().items():
        flag = identity_by_key(key).forward_flag
        if flag and not getattr(connection, flag):
            dropped.append(DroppedIdentity(key, f"{flag} is off"))
        elif key in excluded:
            dropped.append(DroppedIdentity(key, "listed in identities_to_exclude"))
        else:
            kept[key] = value
    return kept, tuple(dropped)


# One encoder for every record: json.dumps with options would build a new one per call.
_COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def encode_data(data: Mapping[str, Any], delimiter: str) -> bytes:
    """The record's bytes: compact UTF-8 JSON followed by the delimiter."""
    return (_COMPACT_JSON.encode(data) + delimiter).encode("utf-8")


def _size_problem(data_bytes: bytes) -> str | None:
    if len(data_bytes) > RECORD_SIZE_LIMIT_BYTES:
        return (
            f"the record is {len(data_bytes):,} bytes, over Firehose's "
            f"{RECORD_SIZE_LIMIT_BYTES:,}-byte limit"
        )
    return None


class _SharedIdentities:
    """What a user and every synthetic user derived from it share under one connection: the
    identity keys kept (in sending order), those dropped and why, and whether the record is
    skipped. Worked out once per burst, not once per message."""

    __slots__ = ("_numbered", "_parts", "dropped", "kept", "skip_reason")

    def __init__(self, user: AudienceUser, context: RecordContext) -> None:
        self._parts: dict[tuple[bool, str], list[str] | None] = {}
        kept, self.dropped = forwarded_identities(user, context.connection)
        self.kept = tuple(kept.items())
        self.skip_reason: str | None = None
        if user.is_anonymous and not context.connection.send_anonymous_users:
            self.skip_reason = (
                "anonymous user (identified only by the MPID) and send_anonymous_users is off"
            )
        elif not kept:
            self.skip_reason = "no identity left to send once the exclusions are applied"
        # Each identity cut where a synthetic user's number goes (``_vary``), worked out once.
        self._numbered = tuple(
            (key, value, "") if key == MPID_KEY else (key, *_numbered(value))
            for key, value in self.kept
        )

    def identities(self, index: int | str | None) -> dict[str, str]:
        """The identities sent: the user's own (``index`` None) or synthetic user ``index``'s
        (as ``synthetic_user`` derives them)."""
        if index is None:
            return dict(self.kept)
        return {key: f"{before}{index}{after}" for key, before, after in self._numbered}

    def record_parts(
        self, context: RecordContext, *, is_member: bool, timestamp: str
    ) -> list[str] | None:
        """The record's JSON text (delimiter included) for any synthetic user, cut where the
        user's number goes: ``str(index).join(parts)`` is the text ``encode_data`` gives for
        user ``index`` (JSON escapes character by character, so the cuts never split an
        escape). None if the marker standing for the number occurs in the record already."""
        key = (is_member, timestamp)
        if key not in self._parts:
            data = _membership_data(context, self, _NUMBER_MARKER, is_member, timestamp)
            text = _COMPACT_JSON.encode(data) + context.record_delimiter
            plain = _COMPACT_JSON.encode(_membership_data(context, self, 0, is_member, timestamp))
            clean = _NUMBER_MARKER not in plain + context.record_delimiter
            self._parts[key] = text.split(_NUMBER_MARKER) if clean else None
        return self._parts[key]


# Stands for a synthetic user's number in a record template (a private-use character, which
# JSON leaves as it is).
_NUMBER_MARKER = "\ue000"


def _membership_data(
    context: RecordContext,
    shared: _SharedIdentities,
    index: int | str | None,
    is_member: bool,
    timestamp: str,
) -> dict[str, Any]:
    return {
        "MembershipChangedTimestamp": timestamp,
        "AudienceId": context.audience_id,
        "AudienceName": context.audience_name,
        "IsMember": is_member,
        "UserIdentities": shared.identities(index),
    }


def _vary(value: str, index: int | str) -> str:
    """An identity of synthetic user ``index``: ``-N`` appended (``+N`` before an email's ``@``)."""
    before, after = _numbered(value)
    return f"{before}{index}{after}"


def _numbered(value: str) -> tuple[str, str]:
    """What goes before and after a synthetic user's number in identity ``value``."""
    if "@" in value:
        local, _, domain = value.partition("@")
        return f"{local}+", f"@{domain}"
    return f"{value}-", ""


def _membership_message(
    context: RecordContext,
    shared: _SharedIdentities,
    index: int | None,
    *,
    is_member: bool,
    timestamp: str,
    action: Action,
    follows: str | None = None,
) -> OutgoingMessage:
    kind = MessageKind.ADD if is_member else MessageKind.REMOVE
    parts = None
    if index is not None:  # a burst: fill the template instead of encoding each record
        parts = shared.record_parts(context, is_member=is_member, timestamp=timestamp)
    if parts is not None:
        data_bytes = str(index).join(parts).encode("utf-8")
        return _synthetic_message(
            {
                "kind": kind,
                "action": action,
                "stream_name": context.stream_name,
                "data_bytes": data_bytes,
                "dropped": shared.dropped,
                "skip_reason": shared.skip_reason or _size_problem(data_bytes),
                "message_id": new_message_id(),
                "follows": follows,
            }
        )
    data = _membership_data(context, shared, index, is_member, timestamp)
    data_bytes = encode_data(data, context.record_delimiter)
    return OutgoingMessage(
        kind=kind,
        action=action,
        stream_name=context.stream_name,
        data=data,
        data_bytes=data_bytes,
        dropped=shared.dropped,
        skip_reason=shared.skip_reason or _size_problem(data_bytes),
        follows=follows,
    )


def build_membership_message(
    context: RecordContext,
    user: AudienceUser,
    *,
    is_member: bool,
    timestamp: int,
    action: Action,
    follows: str | None = None,
) -> OutgoingMessage:
    """A membership change record: the user added (``is_member``) or removed; ``follows`` is
    the message_id of a message that must be acknowledged before this one is sent."""
    return _membership_message(
        context,
        _SharedIdentities(user, context),
        None,
        is_member=is_member,
        timestamp=str(timestamp),
        action=action,
        follows=follows,
    )


def build_delete_message(context: RecordContext, *, timestamp: int) -> OutgoingMessage:
    """The audience-deleted record: no identities, told apart by ``MessageType``."""
    data = {
        "MessageType": DELETE_MESSAGE_TYPE,
        "AudienceDeletedTimestamp": str(timestamp),
        "AudienceId": context.audience_id,
        "AudienceName": context.audience_name,
    }
    data_bytes = encode_data(data, context.record_delimiter)
    return OutgoingMessage(
        kind=MessageKind.DELETE,
        action=Action.DELETE,
        stream_name=context.stream_name,
        data=data,
        data_bytes=data_bytes,
        skip_reason=_size_problem(data_bytes),
    )


def build_messages(
    action: Action,
    context: RecordContext,
    user: AudienceUser,
    *,
    timestamp: int,
    new_user: AudienceUser | None = None,
) -> list[OutgoingMessage]:
    """Every record one action produces: one, or two for an identity change with removal on
    (the re-add then ``follows`` the remove)."""
    if action is Action.DELETE:
        return [build_delete_message(context, timestamp=timestamp)]
    if action is Action.IDENTITY_CHANGE:
        changed = new_user or user
        if not context.send_remove_on_identity_change:
            return [
                build_membership_message(
                    context, changed, is_member=True, timestamp=timestamp, action=action
                )
            ]
        remove = build_membership_message(
            context, user, is_member=False, timestamp=timestamp, action=action
        )
        # The re-add is sent only once the remove is acknowledged (README, Reliability).
        readd = build_membership_message(
            context,
            changed,
            is_member=True,
            timestamp=timestamp,
            action=action,
            follows=remove.message_id,
        )
        return [remove, readd]
    return [
        build_membership_message(
            context, user, is_member=action is Action.ADD, timestamp=timestamp, action=action
        )
    ]


def synthetic_user(base: AudienceUser, index: int) -> AudienceUser:
    """A distinct user derived from ``base``, so a burst's records can be told apart downstream.

    Each identity gets the suffix ``-N`` (an email gets ``+N`` before the ``@``); the MPID gets
    ``N`` appended.
    """

    identities = {key: _vary(value, index) for key, value in base.identities.items() if value}
    return AudienceUser(f"{base.mpid}{index}" if base.mpid else "", identities)


def messages_for_test_user(
    settings: Settings, action: Action, *, timestamp: int, connection_name: str | None = None
) -> list[OutgoingMessage]:
    """The records ``action`` produces for the configured test user and audience."""
    return burst_messages(settings, action, 1, timestamp=timestamp, connection_name=connection_name)


def burst_size(settings: Settings, action: Action, count: int) -> int:
    """How many records ``count`` repetitions of ``action`` make (two per identity change when
    the remove is sent too)."""
    pair = action is Action.IDENTITY_CHANGE and settings.account.send_remove_on_identity_change
    return count * (2 if pair else 1)


def iter_burst_messages(
    settings: Settings,
    action: Action,
    count: int,
    *,
    timestamp: int,
    connection_name: str | None = None,
) -> Iterator[OutgoingMessage]:
    """The records of ``count`` repetitions of ``action``, built one at a time as they are
    consumed (a burst of millions never sits in memory): the test user itself once, or
    ``count`` distinct synthetic users derived from it (so each record can be found
    downstream). An identity change's re-add comes right after its remove and ``follows`` it.

    The identities kept and dropped are worked out once per burst; each record is encoded once.
    """
    context = RecordContext.from_settings(settings, connection_name)
    stamp = str(timestamp)
    if action is Action.DELETE:
        for _ in range(max(count, 1)):
            yield build_delete_message(context, timestamp=timestamp)
        return
    indexes: Iterable[int | None] = [None] if count <= 1 else range(1, count + 1)
    user = _SharedIdentities(configured_test_user(settings), context)
    if action is not Action.IDENTITY_CHANGE:
        is_member = action is Action.ADD
        for index in indexes:
            yield _membership_message(
                context, user, index, is_member=is_member, timestamp=stamp, action=action
            )
        return
    changed = _SharedIdentities(configured_test_user(settings, new_identities=True), context)
    for index in indexes:
        follows: str | None = None
        if context.send_remove_on_identity_change:
            remove = _membership_message(
                context, user, index, is_member=False, timestamp=stamp, action=action
            )
            follows = remove.message_id
            yield remove
        yield _membership_message(
            context, changed, index, is_member=True, timestamp=stamp, action=action, follows=follows
        )


def burst_messages(
    settings: Settings,
    action: Action,
    count: int,
    *,
    timestamp: int,
    connection_name: str | None = None,
) -> list[OutgoingMessage]:
    """Every record of ``count`` repetitions of ``action`` at once (see
    ``iter_burst_messages``; a send streams them instead)."""
    return list(
        iter_burst_messages(
            settings, action, count, timestamp=timestamp, connection_name=connection_name
        )
    )


def preview_document(message: OutgoingMessage) -> dict[str, Any]:
    """What a preview shows of one record, as JSON-ready data (README: "Message formats"; the
    fields are listed under "CLI")."""
    return {
        "kind": message.kind.value,
        "action": message.action.value,
        "data": message.data,
        "request": message.request(),
        "size_bytes": message.size_bytes,
        "limit_bytes": RECORD_SIZE_LIMIT_BYTES,
        "dropped": [{"identity": d.identity, "reason": d.reason} for d in message.dropped],
        "will_send": message.will_send,
        "skip_reason": message.skip_reason,
    }
