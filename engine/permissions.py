"""What the platform's [account] keys may really do on the stream, asked of IAM's policy
simulation (``iam:SimulatePrincipalPolicy``) as the operator (README "Verification").

A check passes only when the simulation ran and allowed the action; when it cannot run (the
operator may not simulate, the endpoint does not offer it, no operator credentials) the check
says "not checked" and why.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Protocol

from engine.verification import Check, CheckStatus

# What the console's sends need: PutRecord (and PutRecordBatch for --batch) and Describe.
NEEDED_ACTIONS = ("firehose:PutRecord", "firehose:DescribeDeliveryStream")
BATCH_ACTION = "firehose:PutRecordBatch"
CHECK_NAME = "keys' permissions"
_ASSUMED_ROLE = re.compile(r"^arn:([\w-]+):sts::(\d{12}):assumed-role/([^/]+)/.+$")


class PolicySimulator(Protocol):
    def simulate_principal_policy(self, **arguments: Any) -> dict[str, Any]: ...


def principal_arn(caller_arn: str) -> str:
    """The IAM principal behind an STS caller ARN (an assumed role's session → the role)."""
    match = _ASSUMED_ROLE.match(caller_arn)
    if match is None:
        return caller_arn
    partition, account, role = match.groups()
    return f"arn:{partition}:iam::{account}:role/{role}"


ALLOW_SIMULATION_FIX = (
    "allow the operator iam:SimulatePrincipalPolicy on the keys' user to check this"
)
UNAVAILABLE_FIX = "verify against AWS itself: emulators (moto included) lack the simulation"


def not_checked(why: str, fix: str = ALLOW_SIMULATION_FIX) -> Check:
    return Check(CHECK_NAME, CheckStatus.WARN, f"not checked: {why}", fix)


def check_stream_permissions(simulator: PolicySimulator, caller_arn: str, stream_arn: str) -> Check:
    """Whether the keys (``caller_arn`` from STS) may put records and describe ``stream_arn``."""
    from botocore.exceptions import ClientError

    actions = [*NEEDED_ACTIONS, BATCH_ACTION]
    try:
        answer = simulator.simulate_principal_policy(
            PolicySourceArn=principal_arn(caller_arn),
            ActionNames=actions,
            ResourceArns=[stream_arn],
        )
    except ClientError as error:
        details = error.response.get("Error", {})
        code = details.get("Code", "")
        if code in ("AccessDenied", "AccessDeniedException"):
            return not_checked("the operator may not run iam:SimulatePrincipalPolicy")
        return not_checked(
            f"IAM's policy simulation is not available here ({code or error})", UNAVAILABLE_FIX
        )
    except Exception as error:  # unparsable answers too: an emulator without the simulation
        return not_checked(
            f"IAM's policy simulation is not available here ({type(error).__name__})",
            UNAVAILABLE_FIX,
        )
    decisions = {
        result.get("EvalActionName", ""): result.get("EvalDecision", "")
        for result in answer.get("EvaluationResults", [])
    }
    if set(decisions) != set(actions):
        return not_checked("IAM's policy simulation did not answer for every action")
    denied = [action for action in NEEDED_ACTIONS if decisions[action] != "allowed"]
    principal = principal_arn(caller_arn)
    if denied:
        return Check(
            CHECK_NAME,
            CheckStatus.FAIL,
            f"{principal} may not {', '.join(denied)} on the stream "
            f"({', '.join(decisions[action] for action in denied)}; IAM policy simulation)",
            "attach the IAM policy below to the keys' user",
        )
    if decisions[BATCH_ACTION] != "allowed":
        return Check(
            CHECK_NAME,
            CheckStatus.WARN,
            f"{principal} may PutRecord and DescribeDeliveryStream, not PutRecordBatch "
            "(IAM policy simulation): `send --batch` will be refused",
            "add firehose:PutRecordBatch to the policy below to send in batches",
        )
    return Check(
        CHECK_NAME,
        CheckStatus.PASS,
        f"{principal} may PutRecord, PutRecordBatch and DescribeDeliveryStream on the stream "
        "(IAM policy simulation)",
    )


def operator_checks(
    client: Callable[[str], Any], who: str, keys_arn: str | None, stream_arn: str
) -> list[Check]:
    """The operator's lines of the checklist: who it is (STS), then the keys' permissions as
    IAM's policy simulation sees them. ``client(service)`` builds the operator's clients."""
    from engine.failures import classify

    try:
        identity = client("sts").get_caller_identity()
    except Exception as error:
        problem = classify(error).describe()
        return [
            Check(
                "operator",
                CheckStatus.WARN,
                f"{who}: no usable identity ({problem})",
                "set [operator] profile (or role_arn) to an identity that may read the bucket",
            ),
            not_checked("the operator has no usable identity"),
        ]
    operator = Check(
        "operator",
        CheckStatus.PASS,
        f"{identity['Arn']} ({who}): reads the destination and runs the permission check; "
        "never sends",
    )
    if keys_arn is None:
        return [operator, not_checked("the keys' identity is unknown (their credentials failed)")]
    try:
        iam = client("iam")
    except Exception as error:
        return [operator, not_checked(f"no IAM client for the operator ({error})")]
    return [operator, check_stream_permissions(iam, keys_arn, stream_arn)]
