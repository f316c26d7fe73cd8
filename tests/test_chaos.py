"""Chaos in the sandbox: put calls fail on purpose, exactly as Firehose fails, against moto."""

from __future__ import annotations

import json
import random
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError

from engine.chaos import CHAOS_KINDS, ChaosPlan, install_chaos
from engine.sandbox import EmbeddedSandbox

ONE_ATTEMPT = Config(retries={"total_max_attempts": 1})
THROTTLED = {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."}


def chaotic_client(
    sandbox: EmbeddedSandbox, plan: ChaosPlan, rng: random.Random | None = None
) -> BaseClient:
    client = sandbox.client("firehose", ONE_ATTEMPT)
    install_chaos(client, plan, rng)
    return client


def payloads(count: int) -> list[dict[str, Any]]:
    return [{"Data": json.dumps({"n": n}).encode() + b"\n"} for n in range(count)]


def put(client: BaseClient, stream: str, operation: str, count: int = 3) -> dict[str, Any]:
    if operation == "PutRecord":
        return client.put_record(DeliveryStreamName=stream, Record=payloads(1)[0])
    return client.put_record_batch(DeliveryStreamName=stream, Records=payloads(count))


def delivered_numbers(sandbox: EmbeddedSandbox, stream: str) -> list[int]:
    """The "n" of every record in S3 for the stream (newest object first, each in written order)."""
    return [r.decoded["n"] for r in sandbox.delivered_records(stream) if r.decoded]


class ScriptedRandom(random.Random):
    """Dice whose random() answers follow a script; choice() and randrange() use real bits."""

    def __init__(self, script: list[float]) -> None:
        super().__init__(0)
        self._script = iter(script)

    def random(self) -> float:
        return next(self._script)

    def getrandbits(self, k: int) -> int:
        # Overriding random() alone makes choice() draw from it too (random.Random's rule).
        return super().getrandbits(k)


# -- call-level failures ------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["PutRecord", "PutRecordBatch"])
@pytest.mark.parametrize(
    ("kind", "status", "code", "message"),
    [
        ("throttling", 503, "ServiceUnavailableException", "Slow down."),
        ("server-error", 500, "InternalFailure", "internal error"),
        ("access-denied", 400, "AccessDeniedException", "is not authorized to perform"),
    ],
)
def test_each_call_level_kind_fails_as_firehose_does_and_writes_nothing(
    sandbox: EmbeddedSandbox,
    stream: str,
    operation: str,
    kind: str,
    status: int,
    code: str,
    message: str,
) -> None:
    client = chaotic_client(sandbox, ChaosPlan(1.0, (kind,)))
    with pytest.raises(ClientError) as raised:
        put(client, stream, operation)
    response = raised.value.response
    assert response["Error"]["Code"] == code
    assert message in response["Error"]["Message"]
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert response["ResponseMetadata"]["RetryAttempts"] == 0
    assert raised.value.operation_name == operation
    assert sandbox.delivered_records(stream) == []


def test_access_denied_names_the_action_and_the_stream(
    sandbox: EmbeddedSandbox, stream: str
) -> None:
    client = chaotic_client(sandbox, ChaosPlan(1.0, ("access-denied",)))
    with pytest.raises(client.exceptions.ClientError) as raised:
        put(client, stream, "PutRecordBatch")
    assert raised.value.response["Error"]["Message"].startswith(
        "User: arn:aws:iam::123456789012:user/sandbox is not authorized to perform: "
        f"firehose:PutRecordBatch on resource: "
        f"arn:aws:firehose:us-east-1:123456789012:deliverystream/{stream}"
    )


def test_throttling_is_the_modeled_service_unavailable_exception(
    sandbox: EmbeddedSandbox, stream: str
) -> None:
    client = chaotic_client(sandbox, ChaosPlan(1.0, ("throttling",)))
    with pytest.raises(client.exceptions.ServiceUnavailableException):
        put(client, stream, "PutRecord")


@pytest.mark.parametrize("operation", ["PutRecord", "PutRecordBatch"])
def test_timeout_raises_a_read_timeout_and_writes_nothing(
    sandbox: EmbeddedSandbox, stream: str, operation: str
) -> None:
    client = chaotic_client(sandbox, ChaosPlan(1.0, ("timeout",)))
    with pytest.raises(ReadTimeoutError) as raised:
        put(client, stream, operation)
    assert sandbox.endpoint_url in str(raised.value)
    assert sandbox.delivered_records(stream) == []


def test_botocore_retries_cannot_dodge_a_failed_call(sandbox: EmbeddedSandbox, stream: str) -> None:
    # The dice roll once per call; every attempt of that call meets the same failure.
    client = sandbox.client(
        "firehose", Config(retries={"total_max_attempts": 2, "mode": "standard"})
    )
    install_chaos(client, ChaosPlan(1.0, ("server-error",)))
    with pytest.raises(ClientError) as raised:
        put(client, stream, "PutRecord")
    assert raised.value.response["ResponseMetadata"]["RetryAttempts"] == 1
    assert sandbox.delivered_records(stream) == []


# -- no failure, and what chaos never touches ---------------------------------------------


def test_failure_rate_zero_never_fails(sandbox: EmbeddedSandbox, stream: str) -> None:
    client = chaotic_client(sandbox, ChaosPlan(0.0, CHAOS_KINDS, seed=1))
    for _ in range(10):
        put(client, stream, "PutRecord")
        response = put(client, stream, "PutRecordBatch", count=4)
        assert response["FailedPutCount"] == 0
    assert len(sandbox.delivered_records(stream)) == 10 * (1 + 4)


def test_put_record_with_only_partial_batch_never_fails(
    sandbox: EmbeddedSandbox, stream: str
) -> None:
    client = chaotic_client(sandbox, ChaosPlan(1.0, ("partial-batch",)))
    for _ in range(5):
        assert put(client, stream, "PutRecord")["RecordId"]
    assert len(sandbox.delivered_records(stream)) == 5


def test_describe_delivery_stream_is_never_affected(sandbox: EmbeddedSandbox, stream: str) -> None:
    client = chaotic_client(sandbox, ChaosPlan(1.0, CHAOS_KINDS))
    for _ in range(10):
        description = client.describe_delivery_stream(DeliveryStreamName=stream)
        assert description["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "ACTIVE"


def test_other_clients_of_the_same_sandbox_are_not_affected(
    sandbox: EmbeddedSandbox, stream: str
) -> None:
    chaotic_client(sandbox, ChaosPlan(1.0, ("throttling",)))
    calm = sandbox.client("firehose", ONE_ATTEMPT)
    assert put(calm, stream, "PutRecord")["RecordId"]


def test_installing_again_replaces_the_plan(sandbox: EmbeddedSandbox, stream: str) -> None:
    client = chaotic_client(sandbox, ChaosPlan(1.0, ("throttling",)))
    install_chaos(client, ChaosPlan(0.0, ("throttling",)))
    assert put(client, stream, "PutRecord")["RecordId"]


def test_chaos_is_for_firehose_clients_only(sandbox: EmbeddedSandbox) -> None:
    with pytest.raises(ValueError, match="firehose clients only"):
        install_chaos(sandbox.client("s3"), ChaosPlan(1.0, ("throttling",)))
    with pytest.raises(ValueError, match="firehose clients only"):
        install_chaos(sandbox.client("sts"), ChaosPlan(1.0, ("throttling",)))


def test_chaos_never_applies_outside_the_sandbox() -> None:
    real = boto3.session.Session(
        aws_access_key_id="unused", aws_secret_access_key="unused", region_name="us-east-1"
    ).client("firehose")  # never called: nothing leaves the machine
    with pytest.raises(ValueError, match="outside the embedded sandbox"):
        install_chaos(real, ChaosPlan(1.0, ("throttling",)))


@pytest.mark.parametrize(
    ("rate", "failures"),
    [(1.5, ("throttling",)), (-0.1, ()), (float("nan"), ()), (0.5, ("meteor",))],
)
def test_a_plan_out_of_bounds_is_refused(rate: float, failures: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        ChaosPlan(rate, failures)


# -- partial batches ----------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_partial_batch_fails_records_in_place_and_writes_exactly_the_others(
    sandbox: EmbeddedSandbox, stream: str, seed: int
) -> None:
    client = chaotic_client(sandbox, ChaosPlan(1.0, ("partial-batch",), seed=seed))
    response = put(client, stream, "PutRecordBatch", count=12)

    answers = response["RequestResponses"]
    assert len(answers) == 12
    failed = [n for n, answer in enumerate(answers) if "ErrorCode" in answer]
    succeeded = [n for n, answer in enumerate(answers) if "RecordId" in answer]
    assert failed, "a partial batch fails at least one record"
    assert sorted(failed + succeeded) == list(range(12))
    assert response["FailedPutCount"] == len(failed)
    assert all(answers[n] == THROTTLED for n in failed)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    # Record by record: what is in S3 is exactly what got a RecordId, in the sent order.
    assert delivered_numbers(sandbox, stream) == succeeded


def test_a_batch_whose_records_all_fail_never_reaches_the_server(
    sandbox: EmbeddedSandbox, stream: str
) -> None:
    dice = ScriptedRandom([0.0] + [0.1] * 5)  # the call fails; every record's coin says fail
    client = chaotic_client(sandbox, ChaosPlan(1.0, ("partial-batch",)), dice)
    response = put(client, stream, "PutRecordBatch", count=5)
    assert response["FailedPutCount"] == 5
    assert response["RequestResponses"] == [THROTTLED] * 5
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert sandbox.delivered_records(stream) == []


def test_a_partial_batch_always_fails_at_least_one_record(
    sandbox: EmbeddedSandbox, stream: str
) -> None:
    dice = ScriptedRandom([0.0] + [0.9] * 4)  # every record's coin says deliver
    client = chaotic_client(sandbox, ChaosPlan(1.0, ("partial-batch",)), dice)
    response = put(client, stream, "PutRecordBatch", count=4)
    assert response["FailedPutCount"] == 1
    failed = [n for n, answer in enumerate(response["RequestResponses"]) if "ErrorCode" in answer]
    assert len(failed) == 1
    assert delivered_numbers(sandbox, stream) == [n for n in range(4) if n not in failed]


def test_the_callers_records_are_left_untouched(sandbox: EmbeddedSandbox, stream: str) -> None:
    client = chaotic_client(sandbox, ChaosPlan(1.0, ("partial-batch",), seed=3))
    records = payloads(8)
    sent = [dict(record) for record in records]
    client.put_record_batch(DeliveryStreamName=stream, Records=records)
    assert records == sent


# -- the dice -----------------------------------------------------------------------------


def outcomes(client: BaseClient, stream: str, calls: int) -> list[Any]:
    """What each call of a fixed sequence came to: ok, an error, or the per-record pattern."""
    seen: list[Any] = []
    for call in range(calls):
        operation = "PutRecordBatch" if call % 2 else "PutRecord"
        try:
            response = put(client, stream, operation, count=6)
        except ClientError as error:
            seen.append(error.response["Error"]["Code"])
        except ReadTimeoutError:
            seen.append("timeout")
        else:
            answers = response.get("RequestResponses", [response])
            seen.append(tuple("ErrorCode" in answer for answer in answers))
    return seen


def test_seeded_runs_are_reproducible(sandbox: EmbeddedSandbox, stream: str) -> None:
    plan = ChaosPlan(0.6, CHAOS_KINDS, seed=42)
    first = outcomes(chaotic_client(sandbox, plan), stream, 30)
    second = outcomes(chaotic_client(sandbox, plan), stream, 30)
    assert first == second
    kinds_seen = {o if isinstance(o, str) else ("partial" if any(o) else "ok") for o in first}
    assert {"ok", "partial", "timeout", "ServiceUnavailableException"} <= kinds_seen
    other = outcomes(chaotic_client(sandbox, ChaosPlan(0.6, CHAOS_KINDS, seed=7)), stream, 30)
    assert other != first


def test_a_given_rng_is_used_instead_of_the_seed(sandbox: EmbeddedSandbox, stream: str) -> None:
    plan = ChaosPlan(0.6, CHAOS_KINDS, seed=42)
    seeded = outcomes(chaotic_client(sandbox, plan), stream, 20)
    given = outcomes(chaotic_client(sandbox, plan, random.Random(42)), stream, 20)
    other = outcomes(chaotic_client(sandbox, plan, random.Random(9)), stream, 20)
    assert given == seeded
    assert other != seeded


def test_the_failure_rate_is_the_share_of_calls_that_fail(
    sandbox: EmbeddedSandbox, stream: str
) -> None:
    client = chaotic_client(sandbox, ChaosPlan(0.25, ("throttling",), seed=5))
    results = outcomes(client, stream, 200)
    failed = sum(1 for result in results if result == "ServiceUnavailableException")
    assert 30 <= failed <= 70  # 50 expected; seeded, so this never flickers
