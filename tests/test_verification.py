"""Verification: the checklist catches what moto does not enforce, each failure with a fix."""

from __future__ import annotations

import boto3
from botocore.exceptions import ClientError
from moto import mock_aws

from engine.gateway import FirehoseGateway, GatewayConfig
from engine.verification import CheckStatus, filled_policy, verify_connection

REGION = "eu-west-1"
ROLE = "arn:aws:iam::123456789012:role/firehose"


def gateway() -> FirehoseGateway:
    return FirehoseGateway(GatewayConfig(region=REGION))


def make_direct_put_stream(name: str) -> None:
    boto3.client("s3", region_name=REGION).create_bucket(
        Bucket="dest", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    boto3.client("firehose", region_name=REGION).create_delivery_stream(
        DeliveryStreamName=name,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": ROLE,
            "BucketARN": "arn:aws:s3:::dest",
            "BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 300},
        },
    )


def checks_by_name(report) -> dict:
    return {check.name: check for check in report.checks}


@mock_aws
def test_a_good_direct_put_stream_passes_and_the_policy_is_filled_in() -> None:
    make_direct_put_stream("good")
    report = verify_connection(gateway(), stream_name="good", region=REGION, settings_detail="ok")
    assert report.ok
    checks = checks_by_name(report)
    assert checks["credentials resolve"].detail.startswith("account 123456789012")
    assert checks["stream active"].status is CheckStatus.PASS
    assert checks["direct put"].status is CheckStatus.PASS
    assert (
        "300 s" in checks["destination"].detail
        and "arn:aws:s3:::dest" in checks["destination"].detail
    )
    assert report.policy["Statement"][0]["Resource"] == [
        "arn:aws:firehose:eu-west-1:123456789012:deliverystream/good"
    ]
    assert report.policy["Statement"][0]["Action"] == [
        "firehose:DescribeDeliveryStream",
        "firehose:PutRecord",
    ]
    assert any("PutRecordBatch" in note for note in report.notes)


@mock_aws
def test_a_kinesis_fed_stream_fails_with_a_fix() -> None:
    kinesis = boto3.client("kinesis", region_name=REGION)
    kinesis.create_stream(StreamName="source", ShardCount=1)
    arn = kinesis.describe_stream(StreamName="source")["StreamDescription"]["StreamARN"]
    boto3.client("s3", region_name=REGION).create_bucket(
        Bucket="dest", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    boto3.client("firehose", region_name=REGION).create_delivery_stream(
        DeliveryStreamName="fed",
        DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": arn, "RoleARN": ROLE},
        ExtendedS3DestinationConfiguration={"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::dest"},
    )
    report = verify_connection(gateway(), stream_name="fed", region=REGION, settings_detail="ok")
    assert not report.ok
    check = checks_by_name(report)["direct put"]
    assert check.status is CheckStatus.FAIL
    assert "KinesisStreamAsSource" in check.detail and "Direct PUT" in check.fix


@mock_aws
def test_a_missing_stream_fails_with_a_fix() -> None:
    report = verify_connection(gateway(), stream_name="absent", region=REGION, settings_detail="ok")
    assert not report.ok
    check = checks_by_name(report)["stream found"]
    assert check.status is CheckStatus.FAIL
    assert "absent" in check.fix and REGION in check.fix


class FakeInspector:
    def __init__(self, description=None, describe_error=None, identity_error=None) -> None:
        self.description, self.describe_error, self.identity_error = (
            description,
            describe_error,
            identity_error,
        )

    def caller_identity(self):
        if self.identity_error:
            raise self.identity_error
        return {"Account": "111122223333", "Arn": "arn:aws:iam::111122223333:user/u", "UserId": "U"}

    def describe_stream(self, stream_name):
        if self.describe_error:
            raise self.describe_error
        return self.description


def test_a_stream_that_is_not_active_fails_with_its_failure_description() -> None:
    inspector = FakeInspector(
        {
            "DeliveryStreamStatus": "CREATING_FAILED",
            "FailureDescription": {"Type": "RETIRE_KMS_GRANT_FAILED", "Details": "grant gone"},
            "DeliveryStreamType": "DirectPut",
            "Destinations": [],
        }
    )
    report = verify_connection(inspector, stream_name="s", region=REGION, settings_detail="ok")
    check = checks_by_name(report)["stream active"]
    assert check.status is CheckStatus.FAIL and "CREATING_FAILED: grant gone" in check.detail
    assert check.fix


def test_denied_describe_and_bad_credentials_each_fail_with_a_fix() -> None:
    denied = ClientError(
        {
            "Error": {"Code": "AccessDeniedException", "Message": "no"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        "DescribeDeliveryStream",
    )
    bad_keys = ClientError(
        {
            "Error": {"Code": "InvalidClientTokenId", "Message": "bad"},
            "ResponseMetadata": {"HTTPStatusCode": 403},
        },
        "GetCallerIdentity",
    )
    report = verify_connection(
        FakeInspector(describe_error=denied, identity_error=bad_keys),
        stream_name="s",
        region=REGION,
        settings_detail="ok",
    )
    checks = checks_by_name(report)
    assert checks["credentials resolve"].status is CheckStatus.FAIL
    assert "access_key_id" in checks["credentials resolve"].fix
    assert "firehose:DescribeDeliveryStream" in checks["stream found"].fix
    assert "{account-id}" in report.policy["Statement"][0]["Resource"][0]


def test_filled_policy_leaves_the_seed_untouched() -> None:
    first = filled_policy("us-east-1", "1", "a")
    second = filled_policy("us-east-1", None, "b")
    assert first["Statement"][0]["Resource"] != second["Statement"][0]["Resource"]


def test_texts_a_user_reads_carry_no_internal_jargon() -> None:
    """The verify note and the example settings file speak of the policy and an example,
    not of "the seed" (the document the project was built from)."""
    from engine.settings_template import render_example_settings
    from engine.verification import BATCH_PERMISSION_NOTE

    for text in (BATCH_PERMISSION_NOTE, render_example_settings()):
        assert "seed's" not in text.lower()
