"""Delivery: retries per error class, alerts as upstream names them, dead letters and replay."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from moto import mock_aws

from engine.alerts import AlertBoard, Severity
from engine.dead_letters import DeadLetterJournal
from engine.delivery import Deliverer, RetryPolicy
from engine.events import (
    AlertRaised,
    AttemptFailed,
    AttemptStarted,
    DeadLettered,
    DeliveryGaveUp,
    RecordDelivered,
)
from engine.failures import AlertType, FailureClass
from engine.gateway import BatchEntryResult, FirehoseGateway, GatewayConfig
from engine.records import Action, AudienceUser, RecordContext, build_messages
from engine.settings import ConnectionSettings


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"{code} happened"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "PutRecord",
    )


class ScriptedSender:
    """Fails with the scripted errors in turn, then succeeds."""

    def __init__(self, errors: Sequence[BaseException] = ()) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.batches: list[int] = []

    def put_record(self, stream_name: str, data: bytes) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return f"record-{self.calls}"

    def put_record_batch(
        self, stream_name: str, records: Sequence[bytes]
    ) -> list[BatchEntryResult]:
        self.calls += 1
        self.batches.append(len(records))
        return [BatchEntryResult(f"r{self.calls}-{i}") for i in range(len(records))]


def message(**connection: object):
    context = RecordContext(
        "stream",
        ConnectionSettings(delivery_stream_name="stream", **connection),
        1,
        "A",
        "\n",
        True,
    )
    (built,) = build_messages(
        Action.ADD, context, AudienceUser("1", {"Email": "a@b.c"}), timestamp=5
    )
    return built


def deliverer(sender, tmp_path: Path, events: list, attempts: int = 3) -> Deliverer:
    return Deliverer(
        sender,
        RetryPolicy(attempts, 0.1, 1.0),
        connection_name="travel",
        alerts=AlertBoard(),
        sink=events.append,
        dead_letters=DeadLetterJournal(tmp_path / "dead.jsonl"),
        sleep=lambda seconds: None,
        rng=random.Random(1),
    )


TRANSIENT = [
    client_error("ServiceUnavailableException", 503),
    client_error("InternalFailure", 500),
    client_error("SomethingNew", 502),
    ReadTimeoutError(endpoint_url="http://x"),
    EndpointConnectionError(endpoint_url="http://x"),
]
PERMANENT = [
    (client_error("AccessDeniedException", 400), AlertType.FORBIDDEN),
    (client_error("UnrecognizedClientException", 400), AlertType.FORBIDDEN),
    (client_error("ExpiredTokenException", 400), AlertType.FORBIDDEN),
    (NoCredentialsError(), AlertType.FORBIDDEN),
    (client_error("ResourceNotFoundException", 400), AlertType.NOT_FOUND),
    (client_error("InvalidArgumentException", 400), AlertType.BAD_REQUEST),
    (client_error("InvalidKMSResourceException", 400), AlertType.BAD_REQUEST),
]


@pytest.mark.parametrize(
    "error", TRANSIENT, ids=lambda e: type(e).__name__ + str(getattr(e, "response", ""))
)
def test_transient_errors_are_retried_then_delivered(error, tmp_path: Path) -> None:
    events: list = []
    sender = ScriptedSender([error, error])
    outcome = deliverer(sender, tmp_path, events).deliver(message())
    assert outcome.delivered and outcome.attempts == 3 and sender.calls == 3
    failed = [e for e in events if isinstance(e, AttemptFailed)]
    assert [e.will_retry for e in failed] == [True, True]
    assert sum(isinstance(e, AttemptStarted) for e in events) == 3
    assert isinstance(events[-1], RecordDelivered) and events[-1].record_id == "record-3"
    assert all(e.alert.severity is Severity.WARNING for e in events if isinstance(e, AlertRaised))


@pytest.mark.parametrize(("error", "alert_type"), PERMANENT, ids=lambda p: str(p)[:40])
def test_permanent_errors_are_not_retried(error, alert_type, tmp_path: Path) -> None:
    events: list = []
    sender = ScriptedSender([error])
    d = deliverer(sender, tmp_path, events)
    outcome = d.deliver(message())
    assert not outcome.delivered and sender.calls == 1 and outcome.dead_lettered
    (alert,) = d.alerts.alerts()
    assert alert.type is alert_type and alert.severity is Severity.FATAL
    assert alert.sample.sent["DeliveryStreamName"] == "stream"
    assert alert.sample.received["retryable"] is False


def test_exhausted_retries_raise_500_and_retry_limit_exceeded_and_dead_letter(
    tmp_path: Path,
) -> None:
    events: list = []
    throttled = client_error("ServiceUnavailableException", 503)
    d = deliverer(ScriptedSender([throttled] * 3), tmp_path, events, attempts=3)
    outcome = d.deliver(message())
    assert not outcome.delivered and outcome.attempts == 3
    alerts = {a.type: a for a in d.alerts.alerts()}
    assert set(alerts) == {AlertType.INTERNAL_SERVER_ERROR, AlertType.RETRY_LIMIT_EXCEEDED}
    assert alerts[AlertType.INTERNAL_SERVER_ERROR].count == 3
    assert alerts[AlertType.INTERNAL_SERVER_ERROR].severity is Severity.FATAL
    assert alerts[AlertType.RETRY_LIMIT_EXCEEDED].severity is Severity.FATAL
    assert (
        alerts[AlertType.INTERNAL_SERVER_ERROR].first_seen
        <= alerts[AlertType.INTERNAL_SERVER_ERROR].last_seen
    )
    assert any(isinstance(e, DeliveryGaveUp) for e in events)
    assert any(isinstance(e, DeadLettered) for e in events)
    (letter,) = DeadLetterJournal(tmp_path / "dead.jsonl").entries()
    assert letter.message_id == outcome.message.message_id
    assert letter.alert_type == "500 - Internal Server Error"
    assert letter.to_message().data_bytes == outcome.message.data_bytes


def test_backoff_is_exponential_with_full_jitter_under_the_cap() -> None:
    policy = RetryPolicy(10, 0.5, 3.0)
    rng = random.Random(7)
    for attempt in range(1, 10):
        ceiling = min(3.0, 0.5 * 2 ** (attempt - 1))
        delays = [policy.backoff_seconds(attempt, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8


def test_sleeps_between_attempts_are_the_backoff(tmp_path: Path) -> None:
    slept: list[float] = []
    d = deliverer(ScriptedSender([client_error("InternalFailure", 500)] * 2), tmp_path, [])
    d.sleep = slept.append
    d.deliver(message())
    assert len(slept) == 2 and slept[0] <= 0.1 and slept[1] <= 0.2


def test_skipped_message_is_neither_sent_nor_dead_lettered(tmp_path: Path) -> None:
    sender = ScriptedSender()
    context = RecordContext(
        "stream",
        ConnectionSettings(delivery_stream_name="stream", send_anonymous_users=False),
        1,
        "A",
        "\n",
        True,
    )
    (anonymous,) = build_messages(Action.ADD, context, AudienceUser("1", {}), timestamp=5)
    outcome = deliverer(sender, tmp_path, []).deliver(anonymous)
    assert outcome.skipped and sender.calls == 0 and not outcome.dead_lettered


class PartlyFailingBatchSender(ScriptedSender):
    """Fails the records at the given positions of the first call only."""

    def __init__(self, fail_first: set[int]) -> None:
        super().__init__()
        self.fail_first = fail_first
        self.sent: list[list[bytes]] = []

    def put_record_batch(self, stream_name, records):
        self.calls += 1
        self.sent.append(list(records))
        return [
            BatchEntryResult(None, "ServiceUnavailableException", "Slow down.")
            if self.calls == 1 and i in self.fail_first
            else BatchEntryResult(f"r{self.calls}-{i}")
            for i in range(len(records))
        ]


def test_batch_resends_only_the_failed_records(tmp_path: Path) -> None:
    context = RecordContext(
        "stream", ConnectionSettings(delivery_stream_name="stream"), 1, "A", "\n", True
    )
    messages = [
        build_messages(Action.ADD, context, AudienceUser(str(i), {}), timestamp=1)[0]
        for i in range(6)
    ]
    sender = PartlyFailingBatchSender({1, 4})
    outcomes = deliverer(sender, tmp_path, []).deliver_batch(messages)
    assert all(o.delivered for o in outcomes)
    assert [len(call) for call in sender.sent] == [6, 2]
    assert sender.sent[1] == [messages[1].data_bytes, messages[4].data_bytes]
    assert [o.attempts for o in outcomes] == [1, 2, 1, 1, 2, 1]


@mock_aws
def test_put_record_against_moto_returns_record_ids(tmp_path: Path) -> None:
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="dest")
    boto3.client("firehose", region_name="us-east-1").create_delivery_stream(
        DeliveryStreamName="stream",
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/r",
            "BucketARN": "arn:aws:s3:::dest",
        },
    )
    gateway = FirehoseGateway(GatewayConfig(region="us-east-1"))
    events: list = []
    outcome = deliverer(gateway, tmp_path, events).deliver(message())
    assert outcome.delivered and outcome.record_id and outcome.attempts == 1
    objects = boto3.client("s3", region_name="us-east-1").list_objects_v2(Bucket="dest")["Contents"]
    body = (
        boto3.client("s3", region_name="us-east-1")
        .get_object(Bucket="dest", Key=objects[0]["Key"])["Body"]
        .read()
    )
    assert body == outcome.message.data_bytes


@mock_aws
def test_missing_stream_in_moto_is_not_found_and_not_retried(tmp_path: Path) -> None:
    gateway = FirehoseGateway(GatewayConfig(region="us-east-1"))
    d = deliverer(gateway, tmp_path, [])
    outcome = d.deliver(message())
    assert outcome.failure and outcome.failure.failure_class is FailureClass.NOT_FOUND
    assert outcome.attempts == 1
    assert d.alerts.alerts()[0].type is AlertType.NOT_FOUND


def test_torn_last_line_of_the_journal_is_tolerated(tmp_path: Path) -> None:
    d = deliverer(ScriptedSender([client_error("AccessDeniedException", 400)]), tmp_path, [])
    d.deliver(message())
    journal = DeadLetterJournal(tmp_path / "dead.jsonl")
    with journal.path.open("a") as handle:
        handle.write('{"message_id": "torn", "conn')
    assert len(journal.entries()) == 1
