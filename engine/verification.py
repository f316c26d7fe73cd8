"""Verification: a checklist of pass / warn / fail lines, each with a one-line fix.

README: "Verification".

It only reads: STS GetCallerIdentity and DescribeDeliveryStream. Nothing is sent to the stream.
It checks what emulators do not enforce: the stream must be ACTIVE and fed by Direct PUT.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from engine.atomic_files import replace_atomically
from engine.failures import FailureClass, classify

ACCOUNT_PLACEHOLDER = "{account-id}"

# The seed's policy, verbatim in shape; filled in by ``filled_policy``.
SEED_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["firehose:DescribeDeliveryStream", "firehose:PutRecord"],
            "Resource": ["arn:aws:firehose:{region}:{account-id}:deliverystream/{stream-name}"],
        }
    ],
}
BATCH_PERMISSION_NOTE = (
    "Batch sends (a burst's batch option, `send --batch`) use PutRecordBatch, which needs "
    "firehose:PutRecordBatch: the filled-in policy grants only PutRecord; add it to the Action "
    "list to send in batches."
)


class CheckStatus(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Check:
    name: str
    status: CheckStatus
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class VerificationReport:
    checks: tuple[Check, ...]
    policy: dict[str, Any]
    notes: tuple[str, ...] = field(default=(BATCH_PERMISSION_NOTE,))
    # The AWS account the credentials belong to (STS), when they resolved.
    account_id: str | None = None

    @property
    def ok(self) -> bool:
        return all(check.status is not CheckStatus.FAIL for check in self.checks)

    def document(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checks": [
                {"name": c.name, "status": c.status.value, "detail": c.detail, "fix": c.fix}
                for c in self.checks
            ],
            "policy": self.policy,
            "notes": list(self.notes),
        }


class StreamInspector(Protocol):
    def caller_identity(self) -> dict[str, str]: ...

    def describe_stream(self, stream_name: str) -> dict[str, Any]: ...


def filled_policy(region: str, account_id: str | None, stream_name: str) -> dict[str, Any]:
    """The seed's IAM policy with region, account id and stream name filled in, in the
    region's partition (``arn:aws-cn:`` in China, ``arn:aws-us-gov:`` in GovCloud)."""
    from engine.regions import partition_of

    policy = copy.deepcopy(SEED_POLICY)
    resource = (
        policy["Statement"][0]["Resource"][0]
        .replace("arn:aws:", f"arn:{partition_of(region)}:")
        .replace("{region}", region)
        .replace("{account-id}", account_id or ACCOUNT_PLACEHOLDER)
        .replace("{stream-name}", stream_name)
    )
    policy["Statement"][0]["Resource"] = [resource]
    return policy


def policy_text(policy: dict[str, Any]) -> str:
    return json.dumps(policy, indent=2)


def policy_file_path(settings_path: Path, connection_name: str) -> Path:
    """Where the console writes a connection's filled-in policy: beside the settings file."""
    return settings_path.parent / f"iam-policy-{connection_name}.json"


def write_policy_file(policy: dict[str, Any], path: Path) -> Path:
    """Write the policy as JSON, whole or not at all (a temporary file and a rename), for
    a terminal that cannot copy (README "Verification"); returns the absolute path."""
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_atomically(path, policy_text(policy) + "\n", mode=0o644)
    return path


def _destination_summary(description: dict[str, Any]) -> tuple[CheckStatus, str, str]:
    destinations = description.get("Destinations") or []
    if not destinations:
        return CheckStatus.WARN, "the stream reports no destination", "check the stream in AWS"
    destination = destinations[0]
    for key in (
        "ExtendedS3DestinationDescription",
        "S3DestinationDescription",
        "HttpEndpointDestinationDescription",
        "RedshiftDestinationDescription",
        "ElasticsearchDestinationDescription",
        "AmazonopensearchserviceDestinationDescription",
        "SplunkDestinationDescription",
        "SnowflakeDestinationDescription",
    ):
        if key in destination:
            body = destination[key]
            kind = key.removesuffix("DestinationDescription")
            target = body.get("BucketARN") or body.get("EndpointConfiguration", {}).get("Url", "")
            hints = body.get("BufferingHints") or {}
            size, interval = hints.get("SizeInMBs"), hints.get("IntervalInSeconds")
            buffering = (
                f"; buffering {size} MiB / {interval} s: records show up only after that delay"
                if size or interval
                else ""
            )
            return CheckStatus.PASS, f"{kind} → {target}{buffering}".strip(), ""
    return CheckStatus.PASS, f"destination {', '.join(destination)}", ""


def _encryption_summary(description: dict[str, Any]) -> Check:
    encryption = description.get("DeliveryStreamEncryptionConfiguration") or {}
    status = encryption.get("Status", "DISABLED")
    key_type = encryption.get("KeyType", "")
    if status == "ENABLED":
        detail = f"server-side encryption on ({key_type or 'AWS owned key'})"
        return Check("encryption", CheckStatus.PASS, detail)
    if status in ("ENABLING_FAILED", "DISABLING_FAILED"):
        failure = encryption.get("FailureDescription", {}).get("Details", "")
        return Check(
            "encryption",
            CheckStatus.FAIL,
            f"encryption {status}: {failure}".strip(": "),
            "fix the KMS key (enabled, and Firehose allowed to use it)",
        )
    return Check(
        "encryption",
        CheckStatus.WARN if status == "DISABLED" else CheckStatus.PASS,
        f"server-side encryption {status.lower()}",
        "optional: enable SSE on the stream to encrypt data at rest"
        if status == "DISABLED"
        else "",
    )


def verify_connection(
    inspector: StreamInspector,
    *,
    stream_name: str,
    region: str,
    settings_detail: str,
    operator_checks: Callable[[str | None, str], list[Check]] | None = None,
) -> VerificationReport:
    """Run the checklist against one stream; every failing line says how to fix it.

    ``operator_checks(keys_arn, stream_arn)`` adds the operator's lines (who it is, what IAM's
    policy simulation says the keys may do) once the stream is found.
    """
    checks = [Check("settings valid", CheckStatus.PASS, settings_detail)]
    account_id: str | None = None
    keys_arn: str | None = None
    try:
        identity = inspector.caller_identity()
    except Exception as error:
        failure = classify(error)
        checks.append(
            Check(
                "credentials resolve",
                CheckStatus.FAIL,
                failure.describe(),
                failure.failure_class.fix,
            )
        )
    else:
        account_id = identity["Account"]
        keys_arn = identity["Arn"]
        checks.append(
            Check(
                "credentials resolve", CheckStatus.PASS, f"account {account_id}, {identity['Arn']}"
            )
        )

    policy = filled_policy(region, account_id, stream_name)
    try:
        description = inspector.describe_stream(stream_name)
    except Exception as error:
        failure = classify(error)
        fix = failure.failure_class.fix
        if failure.failure_class is FailureClass.NOT_FOUND:
            fix = f"create stream {stream_name!r} in {region}, or fix delivery_stream_name / region"
        elif failure.failure_class is FailureClass.ACCESS_DENIED:
            fix = "allow firehose:DescribeDeliveryStream on the stream (policy below)"
        checks.append(Check("stream found", CheckStatus.FAIL, failure.describe(), fix))
        return VerificationReport(tuple(checks), policy, account_id=account_id)

    checks.append(
        Check(
            "stream found",
            CheckStatus.PASS,
            f"{stream_name} in {region} ({description.get('DeliveryStreamARN', '')})",
        )
    )
    status = description.get("DeliveryStreamStatus", "UNKNOWN")
    if status == "ACTIVE":
        checks.append(Check("stream active", CheckStatus.PASS, "status ACTIVE"))
    else:
        failure_text = description.get("FailureDescription", {}) or {}
        reason = failure_text.get("Details") or failure_text.get("Type") or ""
        transient = status in ("CREATING", "UPDATING")
        checks.append(
            Check(
                "stream active",
                CheckStatus.WARN if transient else CheckStatus.FAIL,
                f"status {status}" + (f": {reason}" if reason else ""),
                "wait until the stream is ACTIVE"
                if transient
                else "fix the cause above in the Firehose console, or recreate the stream",
            )
        )
    stream_type = description.get("DeliveryStreamType", "DirectPut")
    if stream_type == "DirectPut":
        checks.append(Check("direct put", CheckStatus.PASS, "type DirectPut: PutRecord allowed"))
    else:
        checks.append(
            Check(
                "direct put",
                CheckStatus.FAIL,
                f"type {stream_type}: Firehose refuses PutRecord on a stream fed by "
                "a Kinesis data stream or MSK",
                "create a stream with source 'Direct PUT' and point the connection at it",
            )
        )
    if operator_checks is not None:
        checks.extend(operator_checks(keys_arn, description.get("DeliveryStreamARN", "")))
    checks.append(_encryption_summary(description))
    status_, detail, fix = _destination_summary(description)
    checks.append(Check("destination", status_, detail, fix))
    return VerificationReport(tuple(checks), policy, account_id=account_id)
