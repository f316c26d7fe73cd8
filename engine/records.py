"""Building the records that go to Firehose: pure functions, settings → bytes.

README: "Message formats".

A membership record's ``Data`` is the seed's JSON (key order as the seed shows it); an audience
deletion is our own ``AudienceDeleted`` message (the seed says one is sent but shows none).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from engine.identities import MPID_KEY, identity_by_key
from engine.settings import RECORD_SIZE_LIMIT_BYTES, ConnectionSettings, Settings


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
    message_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # The message_id of the message this one must follow (an identity change's re-add waits
    # for its remove); journaled with it so a replay keeps the order.
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


def test_user_from_settings(settings: Settings, *, new_identities: bool = False) -> AudienceUser:
    """The configured test user (with its identities after a change, if asked)."""
    user = settings.test_user
    return AudienceUser(user.mpid, user.new_identities if new_identities else user.identities)


test_user_from_settings.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


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


def encode_data(data: Mapping[str, Any], delimiter: str) -> bytes:
    """The record's bytes: compact UTF-8 JSON followed by the delimiter."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return (text + delimiter).encode("utf-8")


def _size_problem(data_bytes: bytes) -> str | None:
    if len(data_bytes) > RECORD_SIZE_LIMIT_BYTES:
        return (
            f"the record is {len(data_bytes):,} bytes, over Firehose's "
            f"{RECORD_SIZE_LIMIT_BYTES:,}-byte limit"
        )
    return None


def build_membership_message(
    context: RecordContext,
    user: AudienceUser,
    *,
    is_member: bool,
    timestamp: int,
    action: Action,
) -> OutgoingMessage:
    """A membership change record: the user added (``is_member``) or removed."""
    kept, dropped = forwarded_identities(user, context.connection)
    data = {
        "MembershipChangedTimestamp": str(timestamp),
        "AudienceId": context.audience_id,
        "AudienceName": context.audience_name,
        "IsMember": is_member,
        "UserIdentities": kept,
    }
    data_bytes = encode_data(data, context.record_delimiter)
    skip_reason: str | None = None
    if user.is_anonymous and not context.connection.send_anonymous_users:
        skip_reason = "anonymous user (identified only by the MPID) and send_anonymous_users is off"
    elif not kept:
        skip_reason = "no identity left to send once the exclusions are applied"
    else:
        skip_reason = _size_problem(data_bytes)
    return OutgoingMessage(
        kind=MessageKind.ADD if is_member else MessageKind.REMOVE,
        action=action,
        stream_name=context.stream_name,
        data=data,
        data_bytes=data_bytes,
        dropped=dropped,
        skip_reason=skip_reason,
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
    """Every record one action produces: one, or two for an identity change with removal on."""
    if action is Action.DELETE:
        return [build_delete_message(context, timestamp=timestamp)]
    if action is Action.IDENTITY_CHANGE:
        changed = new_user or user
        messages = []
        if context.send_remove_on_identity_change:
            messages.append(
                build_membership_message(
                    context, user, is_member=False, timestamp=timestamp, action=action
                )
            )
        messages.append(
            build_membership_message(
                context, changed, is_member=True, timestamp=timestamp, action=action
            )
        )
        return messages
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

    def vary(value: str) -> str:
        if "@" in value:
            local, _, domain = value.partition("@")
            return f"{local}+{index}@{domain}"
        return f"{value}-{index}"

    identities = {key: vary(value) for key, value in base.identities.items() if value}
    return AudienceUser(f"{base.mpid}{index}" if base.mpid else "", identities)


def test_user_messages(
    settings: Settings, action: Action, *, timestamp: int, connection_name: str | None = None
) -> list[OutgoingMessage]:
    """The records ``action`` produces for the configured test user and audience."""
    return burst_messages(settings, action, 1, timestamp=timestamp, connection_name=connection_name)


test_user_messages.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def burst_messages(
    settings: Settings,
    action: Action,
    count: int,
    *,
    timestamp: int,
    connection_name: str | None = None,
) -> list[OutgoingMessage]:
    """The records of ``count`` repetitions of ``action``: the test user itself once, or
    ``count`` distinct synthetic users derived from it (so each record can be found downstream)."""
    context = RecordContext.from_settings(settings, connection_name)
    base = test_user_from_settings(settings)
    changed = test_user_from_settings(settings, new_identities=True)
    users = (
        [(base, changed)]
        if count <= 1
        else [(synthetic_user(base, i), synthetic_user(changed, i)) for i in range(1, count + 1)]
    )
    messages: list[OutgoingMessage] = []
    for user, new_user in users:
        messages.extend(
            build_messages(action, context, user, timestamp=timestamp, new_user=new_user)
        )
    return messages


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
