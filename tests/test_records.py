"""The record rules of the README's "Message formats", case by case, and hypothesis properties
of the builder."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.identities import IDENTITIES, MPID_KEY
from engine.records import (
    DELETE_MESSAGE_TYPE,
    Action,
    AudienceUser,
    MessageKind,
    RecordContext,
    build_membership_message,
    build_messages,
    burst_messages,
    configured_test_user,
    messages_for_test_user,
    new_message_id,
    preview_document,
    synthetic_user,
)
from engine.settings import RECORD_SIZE_LIMIT_BYTES, ConnectionSettings, Settings

SEED_USER = AudienceUser(
    "",
    {
        "CustomerId": "p.fogg138",
        "Email": "phileas@travelers.com",
        "Other": "balloondude83",
        "Other3": "balloongal89",
        "FacebookId": "phileas83",
        "GoogleAdvertisingIdentifier": "phileas83",
    },
)


def context(**connection: object) -> RecordContext:
    return RecordContext(
        stream_name="mPTravelAudiences",
        connection=ConnectionSettings(delivery_stream_name="mPTravelAudiences", **connection),
        audience_id=123123,
        audience_name="LowEngagement",
        record_delimiter="\n",
        send_remove_on_identity_change=True,
    )


def only(action: Action, ctx: RecordContext, user: AudienceUser = SEED_USER):
    (message,) = build_messages(action, ctx, user, timestamp=1234565788)
    return message


def test_add_matches_the_seed_example_in_content_and_key_order() -> None:
    message = only(Action.ADD, context())
    assert list(message.data) == [
        "MembershipChangedTimestamp",
        "AudienceId",
        "AudienceName",
        "IsMember",
        "UserIdentities",
    ]
    assert message.data["MembershipChangedTimestamp"] == "1234565788"
    assert message.data["AudienceId"] == 123123
    assert message.data["IsMember"] is True
    assert message.data["UserIdentities"] == SEED_USER.identities
    assert message.will_send and message.kind is MessageKind.ADD


def test_remove_sets_is_member_false() -> None:
    message = only(Action.REMOVE, context())
    assert message.data["IsMember"] is False and message.kind is MessageKind.REMOVE


def test_request_carries_data_base64_and_ends_with_newline() -> None:
    message = only(Action.ADD, context())
    request = message.request()
    assert request["DeliveryStreamName"] == "mPTravelAudiences"
    raw = base64.b64decode(request["Record"]["Data"])
    assert raw.endswith(b"\n")
    assert json.loads(raw) == message.data


def test_empty_delimiter_sends_json_alone() -> None:
    ctx = context()
    ctx = RecordContext(**{**ctx.__dict__, "record_delimiter": ""})
    assert only(Action.ADD, ctx).data_bytes.endswith(b"}")


def test_forward_flags_drop_their_identity_with_a_reason() -> None:
    message = only(
        Action.ADD,
        context(forward_email_addresses=False, forward_google_advertising_ids=False),
    )
    identities = message.data["UserIdentities"]
    assert "Email" not in identities and "GoogleAdvertisingIdentifier" not in identities
    reasons = {d.identity: d.reason for d in message.dropped}
    assert reasons == {
        "Email": "forward_email_addresses is off",
        "GoogleAdvertisingIdentifier": "forward_google_advertising_ids is off",
    }


def test_customer_id_and_idfa_flags() -> None:
    user = AudienceUser("", {"CustomerId": "c", "AppleAdvertisingIdentifier": "idfa", "Other": "o"})
    message = only(Action.ADD, context(forward_customer_ids=False, forward_idfas=False), user)
    assert message.data["UserIdentities"] == {"Other": "o"}


def test_exclusions_by_name_or_key_case_insensitive() -> None:
    message = only(Action.ADD, context(identities_to_exclude=["other3", "Facebook ID"]))
    identities = message.data["UserIdentities"]
    assert "Other3" not in identities and "FacebookId" not in identities
    assert {d.identity for d in message.dropped} == {"Other3", "FacebookId"}


def test_anonymous_user_sent_with_mpid_when_allowed() -> None:
    anonymous = AudienceUser("8675309", {})
    message = only(Action.ADD, context(), anonymous)
    assert message.will_send
    assert message.data["UserIdentities"] == {MPID_KEY: "8675309"}


def test_anonymous_user_not_sent_when_turned_off() -> None:
    message = only(Action.ADD, context(send_anonymous_users=False), AudienceUser("8675309", {}))
    assert not message.will_send
    assert "anonymous" in (message.skip_reason or "")


def test_user_left_with_no_identity_is_not_sent() -> None:
    user = AudienceUser("", {"Email": "a@b.c"})
    message = only(Action.ADD, context(forward_email_addresses=False), user)
    assert not message.will_send
    assert "no identity left" in (message.skip_reason or "")


def test_audience_name_falls_back_to_internal_name() -> None:
    settings = Settings(audience={"id": 7, "internal_name": "inner", "external_name": ""})
    (message,) = messages_for_test_user(settings, Action.ADD, timestamp=1)
    assert message.data["AudienceName"] == "inner"
    settings = Settings(audience={"id": 7, "internal_name": "inner", "external_name": "Outer"})
    (message,) = messages_for_test_user(settings, Action.ADD, timestamp=1)
    assert message.data["AudienceName"] == "Outer"


def test_identity_change_sends_remove_then_add_by_default() -> None:
    settings = Settings()
    remove, add = messages_for_test_user(settings, Action.IDENTITY_CHANGE, timestamp=1)
    assert remove.data["IsMember"] is False and add.data["IsMember"] is True
    assert remove.data["UserIdentities"]["Email"] == "phileas@travelers.com"
    assert add.data["UserIdentities"]["Email"] == "fogg@reform.club"


def test_identity_change_without_remove_sends_only_add() -> None:
    settings = Settings(account={"send_remove_on_identity_change": False})
    (add,) = messages_for_test_user(settings, Action.IDENTITY_CHANGE, timestamp=1)
    assert add.data["IsMember"] is True
    assert add.data["UserIdentities"]["Email"] == "fogg@reform.club"


def test_delete_message_is_distinguishable_and_carries_no_identities() -> None:
    message = only(Action.DELETE, context())
    assert message.kind is MessageKind.DELETE
    assert message.data["MessageType"] == DELETE_MESSAGE_TYPE
    assert "UserIdentities" not in message.data and "IsMember" not in message.data
    assert message.data["AudienceId"] == 123123
    assert message.data["AudienceDeletedTimestamp"] == "1234565788"


def test_record_over_the_limit_is_refused_before_sending() -> None:
    user = AudienceUser("", {"Other": "x" * RECORD_SIZE_LIMIT_BYTES})
    message = only(Action.ADD, context(), user)
    assert not message.will_send
    assert "1,024,000-byte limit" in (message.skip_reason or "")


def test_record_exactly_at_the_limit_is_sent() -> None:
    probe = only(Action.ADD, context(), AudienceUser("", {"Other": "" + "x"}))
    padding = RECORD_SIZE_LIMIT_BYTES - probe.size_bytes + 1
    message = only(Action.ADD, context(), AudienceUser("", {"Other": "x" * padding}))
    assert message.size_bytes == RECORD_SIZE_LIMIT_BYTES
    assert message.will_send


def test_synthetic_users_are_distinct() -> None:
    users = [synthetic_user(AudienceUser("1", {"Email": "a@b.c", "Other": "o"}), i) for i in (1, 2)]
    assert users[0].identities["Email"] == "a+1@b.c"
    assert users[0].all_identities() != users[1].all_identities()


def test_preview_document_fields() -> None:
    document = preview_document(only(Action.ADD, context(forward_email_addresses=False)))
    assert set(document) >= {
        "kind",
        "data",
        "request",
        "size_bytes",
        "dropped",
        "will_send",
        "skip_reason",
    }
    assert document["dropped"] == [
        {"identity": "Email", "reason": "forward_email_addresses is off"}
    ]


# -- properties ---------------------------------------------------------------------------

identity_keys = st.sampled_from([i.json_key for i in IDENTITIES if i.json_key != MPID_KEY])
identity_values = st.text(min_size=1, max_size=40)
users = st.builds(
    AudienceUser,
    st.one_of(st.just(""), st.text(alphabet="0123456789", min_size=1, max_size=19)),
    st.dictionaries(identity_keys, identity_values, max_size=8),
)
all_names = [i.json_key for i in IDENTITIES] + [i.name for i in IDENTITIES]
connections = st.fixed_dictionaries(
    {
        "send_anonymous_users": st.booleans(),
        "forward_email_addresses": st.booleans(),
        "forward_customer_ids": st.booleans(),
        "forward_idfas": st.booleans(),
        "forward_google_advertising_ids": st.booleans(),
        "identities_to_exclude": st.lists(
            st.sampled_from(all_names).map(lambda s: s.swapcase()), max_size=5
        ),
    }
)


@settings(max_examples=150, deadline=None)
@given(user=users, connection=connections, action=st.sampled_from(list(Action)))
def test_encoded_data_decodes_to_the_preview(user, connection, action) -> None:
    for message in build_messages(action, context(**connection), user, timestamp=42):
        raw = base64.b64decode(message.request()["Record"]["Data"])
        assert raw == message.data_bytes
        assert json.loads(raw.decode("utf-8")) == message.data
        assert message.size_bytes == len(raw)


@settings(max_examples=150, deadline=None)
@given(user=users, connection=connections)
def test_excluded_or_turned_off_identities_never_appear(user, connection) -> None:
    ctx = context(**connection)
    (message,) = build_messages(Action.ADD, ctx, user, timestamp=42)
    sent = set(message.data["UserIdentities"])
    assert not sent & ctx.connection.excluded_keys()
    for identity in IDENTITIES:
        if identity.forward_flag and not connection[identity.forward_flag]:
            assert identity.json_key not in sent
    assert sent | {d.identity for d in message.dropped} == set(user.all_identities())


def test_burst_of_one_is_the_test_user_and_of_n_is_n_distinct_users() -> None:
    settings = Settings()
    (single,) = burst_messages(settings, Action.ADD, 1, timestamp=1)
    assert single.data["UserIdentities"]["CustomerId"] == "p.fogg138"
    burst = burst_messages(settings, Action.IDENTITY_CHANGE, 3, timestamp=1)
    assert [m.kind for m in burst] == [MessageKind.REMOVE, MessageKind.ADD] * 3
    customer_ids = {m.data["UserIdentities"]["CustomerId"] for m in burst}
    assert customer_ids == {"p.fogg138-1", "p.fogg138-2", "p.fogg138-3"}


def test_message_ids_are_32_hex_digits_unique_and_differ_in_a_forked_child() -> None:
    ids = {new_message_id() for _ in range(100_000)}
    assert len(ids) == 100_000 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # the child's first id must not be the parent's next one
        os.write(writing, new_message_id().encode())
        os._exit(0)
    os.close(writing)
    os.waitpid(child, 0)
    with os.fdopen(reading) as pipe:
        in_child = pipe.read()
    assert re.fullmatch(r"[0-9a-f]{32}", in_child) and in_child != new_message_id()


def test_a_burst_message_is_the_message_built_for_its_synthetic_user() -> None:
    """A burst builds its messages without the dataclass's constructor and without their data
    (decoded when read): each is still the message built the usual way for that user."""
    settings = Settings()
    context = RecordContext.from_settings(settings)
    user = configured_test_user(settings)
    burst = burst_messages(settings, Action.IDENTITY_CHANGE, 3, timestamp=7)
    assert len(burst) == 6
    for number, (remove, readd) in enumerate(zip(burst[::2], burst[1::2], strict=True), 1):
        assert readd.follows == remove.message_id
        for message, is_member in ((remove, False), (readd, True)):
            base = configured_test_user(settings, new_identities=True) if is_member else user
            built = build_membership_message(
                context,
                synthetic_user(base, number),
                is_member=is_member,
                timestamp=7,
                action=Action.IDENTITY_CHANGE,
                follows=message.follows,
            )
            assert message == dataclasses.replace(built, message_id=message.message_id)
            assert json.dumps(message.data) == json.dumps(built.data)  # key order too
