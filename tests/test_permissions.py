"""Verify's permission check (README "Verification"): IAM's policy simulation run as the
operator, answered here by botocore's Stubber (moto does not implement the simulation), and the
policy in the stream's partition."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from engine.permissions import check_stream_permissions, operator_checks, principal_arn
from engine.verification import CheckStatus, filled_policy

KEYS = "arn:aws:iam::123456789012:user/platform"
STREAM = "arn:aws:firehose:eu-west-1:123456789012:deliverystream/travel"
ACTIONS = ["firehose:PutRecord", "firehose:DescribeDeliveryStream", "firehose:PutRecordBatch"]


def iam_answering(decisions: dict[str, str] | None = None, error: str = "") -> Any:
    iam = boto3.session.Session(region_name="us-east-1").client("iam")
    stubber = Stubber(iam)
    expected = {"PolicySourceArn": KEYS, "ActionNames": ACTIONS, "ResourceArns": [STREAM]}
    if error:
        stubber.add_client_error(
            "simulate_principal_policy", error, "no", 403, expected_params=expected
        )
    else:
        results = [
            {"EvalActionName": action, "EvalDecision": decision}
            for action, decision in (decisions or {}).items()
        ]
        stubber.add_response("simulate_principal_policy", {"EvaluationResults": results}, expected)
    stubber.activate()
    return iam


def test_allowed_actions_pass_only_when_the_simulation_allowed_them() -> None:
    check = check_stream_permissions(iam_answering(dict.fromkeys(ACTIONS, "allowed")), KEYS, STREAM)
    assert check.status is CheckStatus.PASS and "IAM policy simulation" in check.detail


def test_a_denied_put_record_fails_and_a_denied_batch_warns() -> None:
    denied = {**dict.fromkeys(ACTIONS, "allowed"), "firehose:PutRecord": "implicitDeny"}
    check = check_stream_permissions(iam_answering(denied), KEYS, STREAM)
    assert check.status is CheckStatus.FAIL and "firehose:PutRecord" in check.detail
    no_batch = {**dict.fromkeys(ACTIONS, "allowed"), "firehose:PutRecordBatch": "explicitDeny"}
    check = check_stream_permissions(iam_answering(no_batch), KEYS, STREAM)
    assert check.status is CheckStatus.WARN and "--batch" in check.detail


def test_a_simulation_the_operator_may_not_run_is_not_checked_never_passed() -> None:
    check = check_stream_permissions(iam_answering(error="AccessDenied"), KEYS, STREAM)
    assert check.status is CheckStatus.WARN
    assert check.detail == "not checked: the operator may not run iam:SimulatePrincipalPolicy"


def test_an_assumed_role_is_simulated_as_its_role() -> None:
    session = "arn:aws-cn:sts::123456789012:assumed-role/uploader/session-1"
    assert principal_arn(session) == "arn:aws-cn:iam::123456789012:role/uploader"
    assert principal_arn(KEYS) == KEYS


def test_an_emulator_without_the_simulation_is_not_checked(sandbox: Any) -> None:
    from botocore.config import Config

    def client(service: str) -> Any:
        return sandbox.client(service, Config(retries={"total_max_attempts": 1}))

    checks = operator_checks(client, "the sandbox", KEYS, STREAM)
    operator, permissions = checks
    assert operator.status is CheckStatus.PASS and "never sends" in operator.detail
    assert permissions.status is CheckStatus.WARN and "not checked" in permissions.detail


@pytest.mark.parametrize(
    ("region", "partition"),
    [("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov"), ("eu-west-1", "aws")],
)
def test_the_policy_uses_the_stream_partition(region: str, partition: str) -> None:
    (resource,) = filled_policy(region, "123456789012", "s")["Statement"][0]["Resource"]
    assert resource == f"arn:{partition}:firehose:{region}:123456789012:deliverystream/s"
