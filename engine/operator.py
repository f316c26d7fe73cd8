"""The operator identity (README "Where records land"): who reads the destination bucket and
runs IAM's policy simulation. Never used to send: the platform's keys in [account] do that.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine.landed import StoredObject
from engine.settings import OperatorSettings

if TYPE_CHECKING:
    import boto3
    from botocore.client import BaseClient

OPERATOR_SESSION_NAME = "firehose-console-operator"


def describe_operator(settings: OperatorSettings) -> str:
    """Who the operator is, as configured (the resolved ARN comes from STS)."""
    if settings.role_arn:
        via = f"profile {settings.profile}" if settings.profile else "the credential chain"
        return f"role {settings.role_arn} (assumed from {via})"
    if settings.profile:
        return f"profile {settings.profile}"
    return "the standard AWS credential chain"


class OperatorClients:
    """boto3 clients as the operator: the profile (or chain), then the role when one is set."""

    def __init__(self, settings: OperatorSettings, *, region: str, endpoint_url: str = "") -> None:
        self.settings = settings
        self.region = region
        self.endpoint_url = endpoint_url
        self._session: boto3.session.Session | None = None

    def client(self, service: str) -> BaseClient:
        from botocore.config import Config

        client: BaseClient = self._boto_session().client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint_url or None,
            config=Config(retries={"total_max_attempts": 3, "mode": "standard"}),
        )
        return client

    def _boto_session(self) -> boto3.session.Session:
        if self._session is None:
            import boto3

            base = boto3.session.Session(
                profile_name=self.settings.profile or None, region_name=self.region
            )
            if self.settings.role_arn:
                base = self._assumed(base)
            self._session = base
        return self._session

    def _assumed(self, base: boto3.session.Session) -> boto3.session.Session:
        import boto3

        arguments: dict[str, Any] = {
            "RoleArn": self.settings.role_arn,
            "RoleSessionName": OPERATOR_SESSION_NAME,
        }
        if self.settings.external_id:
            arguments["ExternalId"] = self.settings.external_id
        sts = base.client("sts", endpoint_url=self.endpoint_url or None)
        credentials = sts.assume_role(**arguments)["Credentials"]
        return boto3.session.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=self.region,
        )


class S3ObjectStore:
    """The reader's S3 calls through a botocore S3 client."""

    def __init__(self, s3: BaseClient) -> None:
        self.s3 = s3

    def list_objects(self, bucket: str, prefix: str) -> Iterable[StoredObject]:
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                modified: datetime = item["LastModified"]
                yield StoredObject(str(item["Key"]), modified)

    def get_object(self, bucket: str, key: str) -> bytes:
        body: bytes = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body
