"""The seam to AWS: boto3 clients for Firehose and STS built from the settings.

botocore's own retries are off (one HTTP call per attempt) so every attempt is the engine's to
count, show and back off from. Answers are read within bounds (``engine.bounded_answers``) and
returned as they came: whether they acknowledge a record is ``engine.delivery``'s to decide.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import SecretStr

from engine.secrets import redact

if TYPE_CHECKING:  # boto3 and botocore's client load in ~0.5 s: only when a call is made
    from botocore.client import BaseClient
    from botocore.config import Config

ClientHook = Callable[["BaseClient"], None]
# Builds a client for a service with the given botocore Config (the sandbox supplies its own).
ClientFactory = Callable[[str, "Config"], "BaseClient"]


class BatchEntryResult(NamedTuple):
    """One entry of a PutRecordBatch answer, as it came back.

    ``record_id`` is whatever the entry held (botocore does not check its type: a malformed
    answer may hold ``""`` or ``0``); the deliverer counts only a non-empty string. A named
    tuple, not a frozen dataclass: a burst builds one per record, four times faster.
    """

    record_id: str | None
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class GatewayConfig:
    region: str
    endpoint_url: str = ""
    access_key_id: str = ""
    secret_access_key: SecretStr = SecretStr("")
    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 10.0
    max_pool_connections: int = 10

    @property
    def attempt_seconds(self) -> float:
        """The deadline of one attempt, from sending to the answer's last byte."""
        return self.connect_timeout_seconds + self.read_timeout_seconds


class FirehoseGateway:
    """Firehose and STS calls for one connection; safe to share between threads."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        client_hooks: Sequence[ClientHook] = (),
        client_factory: ClientFactory | None = None,
    ) -> None:
        self.config = config
        self._client_hooks = tuple(client_hooks)
        self._client_factory = client_factory or self._aws_client
        self._clients: dict[str, BaseClient] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def _secret_kept_out(self) -> Iterator[None]:
        """Mask the secret in whatever a call raises, should anything ever quote it: errors end
        up in alerts, dead letters and on the terminal."""
        try:
            yield
        except Exception as error:
            _mask_secret(error, self.config.secret_access_key.get_secret_value())
            raise

    def _client(self, service: str) -> BaseClient:
        with self._lock, self._secret_kept_out():
            client = self._clients.get(service)
            if client is None:
                client = self._make_client(service)
                self._clients[service] = client
            return client

    def _make_client(self, service: str) -> BaseClient:
        from botocore.config import Config

        from engine.bounded_answers import bound_answers  # botocore's HTTP layer: lazily too

        config = self.config
        botocore_config = Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            # botocore would walk every record of every batch to check its type and size; the
            # engine builds each record itself and refuses one over Firehose's limit before
            # it is sent (README: "Bursts: count, rate, batches and quotas").
            parameter_validation=False,
            connect_timeout=config.connect_timeout_seconds,
            read_timeout=config.read_timeout_seconds,
            max_pool_connections=config.max_pool_connections,
        )
        client = self._client_factory(service, botocore_config)
        bound_answers(client, config.attempt_seconds)
        if service == "firehose":
            for hook in self._client_hooks:
                hook(client)
        return client

    def _aws_client(self, service: str, botocore_config: Config) -> BaseClient:
        """A client from the settings' keys, or the standard credential chain when none.
        botocore's own session, as boto3's would make it: boto3 (and s3transfer with it) adds
        a tenth of a second to every command's start and nothing to a client."""
        import botocore.session

        config = self.config
        client: BaseClient = botocore.session.get_session().create_client(
            service,
            region_name=config.region,
            endpoint_url=config.endpoint_url or None,
            aws_access_key_id=config.access_key_id or None,
            aws_secret_access_key=config.secret_access_key.get_secret_value() or None,
            config=botocore_config,
        )
        return client

    def put_record(self, stream_name: str, data: bytes) -> str:
        """PutRecord; returns the RecordId exactly as it came back (``None`` when missing, and
        any other JSON value a malformed answer holds: the deliverer checks it)."""
        client = self._client("firehose")
        with self._secret_kept_out():
            response = client.put_record(DeliveryStreamName=stream_name, Record={"Data": data})
        record_id: str = response.get("RecordId")  # typed as a sender's; not checked here
        return record_id

    def put_record_batch(
        self, stream_name: str, records: Sequence[bytes]
    ) -> list[BatchEntryResult]:
        """PutRecordBatch; the answer's entries as they came back, in order: as many as the
        answer held (none when ``RequestResponses`` is missing) — the deliverer matches them
        to the records sent."""
        client = self._client("firehose")
        with self._secret_kept_out():
            response = client.put_record_batch(
                DeliveryStreamName=stream_name, Records=[{"Data": data} for data in records]
            )
        entries = response.get("RequestResponses")
        if not isinstance(entries, list):
            return []
        return [_entry_result(entry) for entry in entries]

    def describe_stream(self, stream_name: str) -> dict[str, Any]:
        """DescribeDeliveryStream's ``DeliveryStreamDescription``."""
        client = self._client("firehose")
        with self._secret_kept_out():
            response = client.describe_delivery_stream(DeliveryStreamName=stream_name)
        return dict(response["DeliveryStreamDescription"])

    def caller_identity(self) -> dict[str, str]:
        """STS GetCallerIdentity: Account, Arn and UserId of the credentials in use."""
        client = self._client("sts")
        with self._secret_kept_out():
            response = client.get_caller_identity()
        return {key: str(response[key]) for key in ("Account", "Arn", "UserId")}


def _entry_result(entry: object) -> BatchEntryResult:
    if not isinstance(entry, dict):
        return BatchEntryResult(None)  # no RecordId: the deliverer reads it as fate unknown
    error_code = entry.get("ErrorCode")
    return BatchEntryResult(
        record_id=entry.get("RecordId") if not error_code else None,
        error_code=error_code,
        error_message=entry.get("ErrorMessage"),
    )


def _mask_secret(error: BaseException, secret: str) -> None:
    """Mask ``secret`` in an exception's message (and a ClientError's parsed error), in place."""
    from botocore.exceptions import ClientError

    if len(secret) < 4:
        return
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        for key, value in list(details.items()):
            if isinstance(value, str):
                details[key] = redact(value, [secret])
    error.args = tuple(redact(a, [secret]) if isinstance(a, str) else a for a in error.args)
