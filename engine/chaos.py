"""Chaos for the embedded sandbox: put calls that fail on purpose, as Firehose fails.

README: "The embedded sandbox".

Failures are injected through a firehose client's botocore event hooks, so everything above the
client (retries, alerts, the dead-letter journal) runs its real path:

- ``provide-client-params`` rolls the dice once per PutRecord / PutRecordBatch call and, for a
  partial batch, drops the records that "fail" so moto really never writes them;
- ``before-send`` answers call-level failures (and all-failed batches) without reaching the
  server, on every attempt of that call, so botocore's own retries cannot dodge them;
- ``after-call`` puts the failed records back into the batch response, in their original place.

Chaos only ever applies to a client talking to a loopback endpoint (the sandbox).
"""

from __future__ import annotations

import ipaddress
import json
import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.client import BaseClient
from botocore.exceptions import ReadTimeoutError
from botocore.model import OperationModel

from engine.bounded_answers import ReadBody
from engine.settings import SANDBOX_FAILURES

CHAOS_KINDS: tuple[str, ...] = SANDBOX_FAILURES
BATCH_ONLY_KINDS = ("partial-batch",)
PARTIAL_BATCH_RECORD_FAILURE_RATE = 0.5

# moto's default account, the one the sandbox files everything under.
_SANDBOX_ACCOUNT_ID = "123456789012"
_PUT_OPERATIONS = ("PutRecord", "PutRecordBatch")
_CONTEXT_KEY = "firehose_console_chaos"
_HANDLER_ID = "firehose-console-chaos"
_JSON_CONTENT_TYPE = "application/x-amz-json-1.1"

_THROTTLED_RECORD = {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."}
_LOST_RECORD = {"ErrorCode": "InternalFailure", "ErrorMessage": "No response for this record."}


@dataclass(frozen=True)
class ChaosPlan:
    """How often put calls fail on purpose, which ways, and the dice's seed."""

    failure_rate: float  # 0..1: share of PutRecord / PutRecordBatch calls that fail on purpose
    failures: tuple[str, ...]  # subset of CHAOS_KINDS
    seed: int | None = None

    def __post_init__(self) -> None:
        if not (0.0 <= self.failure_rate <= 1.0) or math.isnan(self.failure_rate):
            raise ValueError(f"failure_rate must be between 0 and 1, not {self.failure_rate!r}")
        object.__setattr__(self, "failures", tuple(self.failures))
        unknown = [kind for kind in self.failures if kind not in CHAOS_KINDS]
        if unknown:
            raise ValueError(
                f"unknown chaos kind(s) {', '.join(map(repr, unknown))}; "
                f"use any of {', '.join(CHAOS_KINDS)}"
            )


@dataclass(frozen=True)
class _CallFailure:
    """What the dice decided for one call; kept in botocore's request context."""

    kind: str
    message: str = ""
    failed_indexes: frozenset[int] = frozenset()  # partial-batch: records that fail
    record_count: int = 0  # partial-batch: records the caller sent

    @property
    def whole_batch_fails(self) -> bool:
        return self.kind == "partial-batch" and len(self.failed_indexes) == self.record_count


# kind -> (HTTP status, Firehose error code); the access-denied message is built per call.
_CALL_ERRORS = {
    "throttling": (503, "ServiceUnavailableException"),
    "server-error": (500, "InternalFailure"),
    "access-denied": (400, "AccessDeniedException"),
}


def install_chaos(client: BaseClient, plan: ChaosPlan, rng: random.Random | None = None) -> None:
    """Register hooks on a boto3 firehose client so a share of put calls fail as Firehose would.

    Only PutRecord and PutRecordBatch are touched. Installing again on the same client replaces
    the earlier plan. ``rng`` defaults to ``random.Random(plan.seed)``.
    """
    if client.meta.service_model.service_id != "Firehose":
        raise ValueError("chaos applies to firehose clients only")
    _require_sandbox_endpoint(client.meta.endpoint_url)
    chaos = _Chaos(plan, rng if rng is not None else random.Random(plan.seed), client)
    events = client.meta.events
    for operation in _PUT_OPERATIONS:
        for stage, handler in (
            ("provide-client-params", chaos.decide),
            ("before-send", chaos.answer_without_sending),
            ("after-call", chaos.restore_failed_records),
        ):
            event_name = f"{stage}.firehose.{operation}"
            unique_id = f"{_HANDLER_ID}-{stage}-{operation}"
            events.unregister(event_name, unique_id=unique_id)
            events.register(event_name, handler, unique_id=unique_id)


def _require_sandbox_endpoint(endpoint_url: str) -> None:
    host = urlsplit(endpoint_url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(
            f"chaos never applies outside the embedded sandbox (endpoint {endpoint_url})"
        )


class _Chaos:
    """The three hooks of one installed plan."""

    def __init__(self, plan: ChaosPlan, rng: random.Random, client: BaseClient) -> None:
        self._plan = plan
        self._rng = rng
        self._region = client.meta.region_name

    def decide(
        self, params: dict[str, Any], model: OperationModel, context: dict[str, Any], **_: Any
    ) -> dict[str, Any] | None:
        """provide-client-params: roll once per call; for a partial batch, return the params
        with the failing records left out (None keeps the caller's params)."""
        context.pop(_CONTEXT_KEY, None)
        if self._rng.random() >= self._plan.failure_rate:
            return None
        kinds = self._plan.failures
        if model.name != "PutRecordBatch":
            kinds = tuple(kind for kind in kinds if kind not in BATCH_ONLY_KINDS)
        if not kinds:
            return None
        kind = self._rng.choice(kinds)
        if kind != "partial-batch":
            context[_CONTEXT_KEY] = _CallFailure(kind, self._message(kind, model.name, params))
            return None
        records = params.get("Records")
        if not isinstance(records, list) or not records:
            return None  # botocore's validation will refuse the call as it is
        failed = {
            index
            for index in range(len(records))
            if self._rng.random() < PARTIAL_BATCH_RECORD_FAILURE_RATE
        } or {self._rng.randrange(len(records))}
        failure = _CallFailure(kind, failed_indexes=frozenset(failed), record_count=len(records))
        context[_CONTEXT_KEY] = failure
        if failure.whole_batch_fails:
            return None  # an empty batch would not validate; before-send answers instead
        survivors = [record for index, record in enumerate(records) if index not in failed]
        return {**params, "Records": survivors}

    def answer_without_sending(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        """before-send: the injected failure, or a batch's empty success when all its records
        fail; None lets the request go to the server."""
        failure = (request.context or {}).get(_CONTEXT_KEY)
        if not isinstance(failure, _CallFailure):
            return None
        if failure.kind == "timeout":
            raise ReadTimeoutError(endpoint_url=request.url)
        if failure.kind in _CALL_ERRORS:
            status, code = _CALL_ERRORS[failure.kind]
            return _json_response(request.url, status, {"__type": code, "message": failure.message})
        if failure.whole_batch_fails:
            body = {"FailedPutCount": 0, "Encrypted": False, "RequestResponses": []}
            return _json_response(request.url, 200, body)
        return None

    def restore_failed_records(
        self, http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        """after-call: rebuild a partial batch's response in the caller's record order."""
        failure = context.get(_CONTEXT_KEY)
        if not isinstance(failure, _CallFailure) or failure.kind != "partial-batch":
            return
        if http_response is None or http_response.status_code >= 300:
            return  # the call failed as a whole; nothing to put back
        delivered: Iterator[dict[str, Any]] = iter(parsed.get("RequestResponses") or [])
        responses = [
            dict(_THROTTLED_RECORD)
            if index in failure.failed_indexes
            else next(delivered, None) or dict(_LOST_RECORD)
            for index in range(failure.record_count)
        ]
        parsed["RequestResponses"] = responses
        parsed["FailedPutCount"] = sum(1 for response in responses if "ErrorCode" in response)

    def _message(self, kind: str, operation: str, params: dict[str, Any]) -> str:
        if kind == "throttling":
            return "Slow down."
        if kind == "access-denied":
            stream = params.get("DeliveryStreamName", "")
            resource = (
                f"arn:aws:firehose:{self._region}:{_SANDBOX_ACCOUNT_ID}:deliverystream/{stream}"
            )
            return (
                f"User: arn:aws:iam::{_SANDBOX_ACCOUNT_ID}:user/sandbox is not authorized to "
                f"perform: firehose:{operation} on resource: {resource} because no "
                "identity-based policy allows the firehose:" + operation + " action"
            )
        if kind == "server-error":
            return "We encountered an internal error. Please try again. (sandbox chaos)"
        return ""  # a timeout has no answer to carry a message


def _json_response(url: str, status: int, document: dict[str, Any]) -> AWSResponse:
    body = json.dumps(document).encode("utf-8")
    headers = {
        "Content-Type": _JSON_CONTENT_TYPE,
        "Content-Length": str(len(body)),
        "x-amzn-RequestId": str(uuid.uuid4()),
    }
    return AWSResponse(url, status, headers, ReadBody(body))
