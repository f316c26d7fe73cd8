"""The embedded sandbox: moto's server in this process, standing in for Firehose and S3.

README: "The embedded sandbox".

Without a settings file or AWS access the console still does its whole job against it. moto
writes every PutRecord / PutRecordBatch synchronously into the destination bucket, one S3 object
per call, so what arrived can be read back at once (a real stream buffers for minutes).

moto is imported only when a sandbox starts, so the engine stays quick to import.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

from engine.landed_journal import MAX_LANDED_ENTRIES
from engine.sandbox_answers import answer_put_record_batch_straight
from engine.sandbox_retention import (
    SANDBOX_BUCKET_BUDGET_BYTES,
    BucketRetention,
    in_place,
    keep_within_budget,
    release,
)

if TYPE_CHECKING:
    import boto3
    from botocore.client import BaseClient
    from botocore.config import Config

MOTO_DEFAULT_ACCOUNT_ID = "123456789012"
SANDBOX_ROLE_NAME = "firehose-console-sandbox"
# As a fresh console stream would be set up; verification shows them as the delivery delay.
SANDBOX_BUFFERING_HINTS = {"SizeInMBs": 5, "IntervalInSeconds": 300}
# Laid out like a real stream's: records under a prefix (moto appends YYYY/MM/DD/HH/, as
# Firehose does to a prefix without expressions), failures under their own prefix.
SANDBOX_PREFIX = "audiences/"
SANDBOX_ERROR_OUTPUT_PREFIX = (
    "audiences-failed/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/"
)

# moto's own start() waits without a limit, forever if its server thread fails to bind.
SANDBOX_START_TIMEOUT_SECONDS = 30.0

# The loggers moto's server writes to: werkzeug logs every request, and Flask hangs a stderr
# handler on "moto" (its app's name) unless one is there already.
_SERVER_LOGGERS = ("werkzeug", "moto")


@dataclass(frozen=True)
class DeliveredRecord:
    """One record as it landed in the sandbox's bucket."""

    object_key: str  # the S3 object it was found in
    last_modified: datetime  # of that object (UTC)
    data: bytes  # the record's bytes as written, trailing delimiter included
    decoded: dict[str, Any] | None  # the record's JSON object; None when it is not one


class SandboxStartError(RuntimeError):
    """The embedded sandbox's server could not start (in time)."""


class EmbeddedSandbox:
    """moto's server in-process on 127.0.0.1 (a free port), with a bucket and a DirectPut stream."""

    bind_address = "127.0.0.1"
    start_timeout_seconds = SANDBOX_START_TIMEOUT_SECONDS

    # Credentials that cannot reach AWS; moto accepts any.
    ACCESS_KEY_ID = "sandbox-key-id"
    SECRET_ACCESS_KEY = "sandbox-secret"

    def __init__(
        self,
        stream_name: str,
        region: str = "us-east-1",
        bucket_name: str = "firehose-console-sandbox",
        bucket_budget_bytes: int | None = None,
        bucket_keep_records: int = MAX_LANDED_ENTRIES,
    ) -> None:
        self.stream_name = stream_name
        self.region = region
        self.bucket_name = bucket_name
        # README: "The embedded sandbox": the bucket keeps its newest objects only.
        self.bucket_budget_bytes = (
            SANDBOX_BUCKET_BUDGET_BYTES if bucket_budget_bytes is None else bucket_budget_bytes
        )
        self.bucket_keep_records = bucket_keep_records
        self.retention: BucketRetention | None = None  # once started
        self._lock = threading.RLock()
        self._server: Any = None  # moto.server.ThreadedMotoServer once started
        self._endpoint_url: str | None = None
        self._boto_session: boto3.session.Session | None = None

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> str:
        """Start the server (once) and make sure the bucket and the stream exist.

        Calling it again is cheap and recreates the bucket or stream if something removed them
        (moto's state is process-wide: a ``mock_aws`` elsewhere in the process resets it).
        """
        with self._lock:
            if self._server is None:
                self._start_server()
            self._ensure_bucket()
            self._keep_bucket_within_budget()
            self.ensure_stream(self.stream_name)
            return self.endpoint_url

    def stop(self) -> None:
        """Stop the server; what was delivered stays readable until the process ends."""
        with self._lock:
            server, self._server = self._server, None
            endpoint, self._endpoint_url = self._endpoint_url, None
        if server is not None and endpoint is not None:
            _stop_moto_server(server, endpoint, self.start_timeout_seconds)
        if self.retention is not None:  # what is in the bucket stays: nothing trims it any more
            release(self.retention)
            self.retention = None

    def __enter__(self) -> EmbeddedSandbox:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _start_server(self) -> None:
        _silence_server_logs()
        from moto.firehose.responses import FirehoseResponse

        server = _start_moto_server(self.bind_address, self.start_timeout_seconds)
        answer_put_record_batch_straight(FirehoseResponse)
        _keep_tracebacks_off_terminal(server)
        host, port = server.get_host_and_port()
        self._server = server
        self._endpoint_url = f"http://{host}:{port}"

    # -- what clients need -------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        """Where the running server listens, ``http://127.0.0.1:PORT``."""
        if self._endpoint_url is None:
            raise RuntimeError("the embedded sandbox is not running: call start() first")
        return self._endpoint_url

    @property
    def account_id(self) -> str:
        """The account moto files everything under (its default, as moto itself decides)."""
        return os.environ.get("MOTO_ACCOUNT_ID", MOTO_DEFAULT_ACCOUNT_ID)

    @property
    def running(self) -> bool:
        return self._server is not None

    def client(self, service: str, config: Config | None = None) -> BaseClient:
        """A botocore client for ``service`` at the sandbox, with its credentials and region.

        The client ignores proxies and the user's AWS profile and config files, so a corporate
        HTTP_PROXY or a stray AWS_PROFILE cannot break or reroute the sandbox.
        """
        from botocore.config import Config

        no_proxy = Config(proxies={})
        with self._lock:
            client: BaseClient = self._session().client(
                service,  # type: ignore[call-overload]
                endpoint_url=self.endpoint_url,
                config=no_proxy.merge(config) if config is not None else no_proxy,
            )
        return client

    def _session(self) -> boto3.session.Session:
        # One session, reused: creating one reloads botocore's service data every time.
        if self._boto_session is None:
            import boto3

            self._boto_session = boto3.session.Session(
                aws_access_key_id=self.ACCESS_KEY_ID,
                aws_secret_access_key=self.SECRET_ACCESS_KEY,
                region_name=self.region,
                botocore_session=_isolated_botocore_session(),
            )
        return self._boto_session

    # -- bucket and streams ----------------------------------------------------------------

    def ensure_stream(self, stream_name: str) -> None:
        """Create a DirectPut stream delivering to the sandbox bucket, unless it exists."""
        from botocore.exceptions import ClientError

        firehose = self.client("firehose")
        try:
            firehose.create_delivery_stream(
                DeliveryStreamName=stream_name,
                DeliveryStreamType="DirectPut",
                ExtendedS3DestinationConfiguration={
                    "RoleARN": f"arn:{self._partition()}:iam::{self.account_id}:role/"
                    + SANDBOX_ROLE_NAME,
                    "BucketARN": f"arn:{self._partition()}:s3:::{self.bucket_name}",
                    "Prefix": SANDBOX_PREFIX,
                    "ErrorOutputPrefix": SANDBOX_ERROR_OUTPUT_PREFIX,
                    "BufferingHints": dict(SANDBOX_BUFFERING_HINTS),
                    "CompressionFormat": "UNCOMPRESSED",
                },
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceInUseException":
                raise

    def _ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        s3 = self.client("s3")
        arguments: dict[str, Any] = {"Bucket": self.bucket_name}
        if self.region != "us-east-1":  # S3 refuses a LocationConstraint of us-east-1
            arguments["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            s3.create_bucket(**arguments)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def _keep_bucket_within_budget(self) -> None:
        """The bucket keeps its newest objects only (README: "The embedded sandbox"): moto
        holds them in this process's memory, and a burst would otherwise grow it per record."""
        from moto.s3.models import s3_backends

        backend = s3_backends[self.account_id][self._partition()]
        current = self.retention
        if current is not None and current.backend is backend and in_place(current):
            return
        # else a first start, a backend reset by a mock_aws elsewhere (a new object), or
        # another sandbox of this process that took the bucket over since: wrap it anew
        self.retention = BucketRetention(
            backend,
            self.bucket_name,
            lambda body: len(split_records(body)),
            budget_bytes=self.bucket_budget_bytes,
            keep_records=self.bucket_keep_records,
        )
        keep_within_budget(self.retention)

    def _partition(self) -> str:
        from moto.utilities.utils import get_partition

        return str(get_partition(self.region))

    # -- what arrived ------------------------------------------------------------------------

    def delivered_records(self, stream_name: str | None = None) -> list[DeliveredRecord]:
        """Every record in the bucket, newest object first (records of one object in written
        order); only those of ``stream_name``'s objects when given.

        Reads moto's in-process store rather than the S3 API: S3 reports LastModified to the
        second only, too coarse to order a burst, and one GetObject per object is slow.
        """
        records, _ = self.newest_delivered_records(stream_name)
        return records

    def newest_delivered_records(
        self, stream_name: str | None = None, newest: int | None = None
    ) -> tuple[list[DeliveredRecord], int]:
        """(the ``newest`` records of ``delivered_records``, all of them when None; how many
        records the bucket holds). Only the newest are kept decoded: the others are split one
        object at a time and counted, so a full bucket (some 20,000 records) never sits in
        memory decoded at once (README: "The embedded sandbox")."""
        objects = [
            stored
            for stored in _stored_objects(self.account_id, self._partition(), self.bucket_name)
            if stream_name is None or _written_by_stream(stored[0], stream_name)
        ]
        # Store order breaks ties between objects written in the same microsecond.
        ordered = sorted(enumerate(objects), key=lambda item: (item[1][1], item[0]), reverse=True)
        kept: list[DeliveredRecord] = []
        total = 0
        for _, (key, modified, body) in ordered:
            split = split_records(body)
            total += len(split)
            room = len(split) if newest is None else max(0, newest - len(kept))
            kept.extend(
                DeliveredRecord(object_key=key, last_modified=modified, data=data, decoded=decoded)
                for data, decoded in split[:room]
            )
        return kept, total


def split_records(blob: bytes) -> list[tuple[bytes, dict[str, Any] | None]]:
    """Split an S3 object's bytes into records: JSON objects, each followed by an optional
    whitespace delimiter (Firehose concatenates records without a separator of its own).

    Each record keeps its exact bytes, delimiter included. Bytes that are not a JSON object
    become records of their own (up to the next newline or JSON object), decoded as None.
    """
    # surrogateescape keeps invalid UTF-8 round-tripping to the exact original bytes.
    text = blob.decode("utf-8", errors="surrogateescape")
    decoder = json.JSONDecoder()
    records: list[tuple[bytes, dict[str, Any] | None]] = []
    position = 0
    while position < len(text):
        start = position
        document_start = _skip_whitespace(text, position)
        if document_start == len(text):  # trailing whitespace: part of the last record
            end, value = len(text), None
        else:
            parsed = _json_object_at(decoder, text, document_start)
            if parsed is None:
                end, value = _end_of_garbage(decoder, text, document_start), None
            else:
                value, end = parsed
                end = _end_of_delimiter(text, end)
        chunk = text[start:end].encode("utf-8", errors="surrogateescape")
        if records and value is None and not chunk.strip():
            previous, decoded = records[-1]
            records[-1] = (previous + chunk, decoded)
        else:
            records.append((chunk, value if _is_utf8(chunk) else None))
        position = end
    return records


def _skip_whitespace(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


def _json_object_at(
    decoder: json.JSONDecoder, text: str, position: int
) -> tuple[dict[str, Any], int] | None:
    if text[position] != "{":
        return None
    try:
        value, end = decoder.raw_decode(text, position)
    except ValueError:
        return None
    return value, end


def _end_of_delimiter(text: str, position: int) -> int:
    """Past the whitespace after a record, up to and including its first newline."""
    while position < len(text) and text[position].isspace():
        position += 1
        if text[position - 1] == "\n":
            break
    return position


def _end_of_garbage(decoder: json.JSONDecoder, text: str, position: int) -> int:
    """Where a chunk that is not JSON ends: after the next newline, or where a JSON object
    starts, whichever comes first."""
    newline = text.find("\n", position)
    limit = len(text) if newline < 0 else newline + 1
    brace = text.find("{", position + 1, limit)
    while brace >= 0:
        if _json_object_at(decoder, text, brace) is not None:
            return brace
        brace = text.find("{", brace + 1, limit)
    return limit


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _written_by_stream(object_key: str, stream_name: str) -> bool:
    """Firehose names objects ``<prefix>YYYY/MM/DD/HH/<stream>-<version>-<timestamp>-<uuid>``;
    matching the whole name keeps stream "orders" from claiming "orders-eu"'s objects."""
    name = object_key.rsplit("/", 1)[-1]
    pattern = rf"{re.escape(stream_name)}-\d+-\d{{4}}(-\d{{2}}){{5}}-[0-9a-fA-F-]+"
    return re.fullmatch(pattern, name) is not None


def _stored_objects(
    account_id: str, partition: str, bucket_name: str
) -> list[tuple[str, datetime, bytes]]:
    """(key, last modified in UTC, bytes) of the bucket's current objects, in store order."""
    from moto.s3.models import s3_backends

    bucket = s3_backends[account_id][partition].buckets.get(bucket_name)
    if bucket is None:
        return []
    stored = []
    for key in list(bucket.keys.values()):  # moto iterates over a copy: safe while it writes
        body = getattr(key, "value", None)
        if not isinstance(body, bytes):  # e.g. a delete marker
            continue
        modified: datetime = key.last_modified
        if modified.tzinfo is None:  # moto keeps naive UTC
            modified = modified.replace(tzinfo=UTC)
        stored.append((str(key.name), modified, body))
    return stored


def _start_moto_server(address: str, timeout_seconds: float) -> Any:
    """moto's ThreadedMotoServer on ``address`` (a free port), started within a time limit.

    moto's ``start`` waits for its server thread without a limit, and a thread that fails (say,
    the address cannot be bound) would print a traceback and never signal: here the failure is
    kept and raised as SandboxStartError, and the wait is bounded.
    """
    import socket

    from moto.server import ThreadedMotoServer

    try:  # werkzeug prints a bind failure to stderr and exits its thread: find out first
        socket.create_server((address, 0)).close()
    except OSError as error:
        raise SandboxStartError(
            f"the embedded sandbox cannot listen on {address}: {error.strerror or error}"
        ) from None

    class BoundedServer(ThreadedMotoServer):
        failure: BaseException | None = None

        def _server_entry(self) -> None:
            try:
                super()._server_entry()
            except BaseException as error:  # reported by the caller, not as a thread traceback
                self.failure = error
                ready = getattr(self, "_server_ready_event", None)
                if ready is not None:
                    ready.set()  # wakes moto's start() so the starter thread ends

    server = BoundedServer(ip_address=address, port=0, verbose=False)
    starter = threading.Thread(target=server.start, daemon=True, name="sandbox-start")
    starter.start()
    deadline = time.monotonic() + timeout_seconds
    while starter.is_alive() and server.failure is None and time.monotonic() < deadline:
        starter.join(0.05)
    if server.failure is not None:
        raise SandboxStartError(
            f"the embedded sandbox could not start on {address}: {server.failure}"
        ) from None
    if starter.is_alive():
        raise SandboxStartError(f"the embedded sandbox did not start within {timeout_seconds:g} s")
    return server


def _stop_moto_server(server: Any, endpoint_url: str, timeout_seconds: float) -> None:
    """Stop the server without waiting out its 0.5 s poll: connections wake it up at once.
    Bounded: a server that will not stop is left to die with the process (a daemon thread)."""
    import socket

    host, _, port = endpoint_url.removeprefix("http://").rpartition(":")
    stopper = threading.Thread(target=server.stop, daemon=True, name="sandbox-stop")
    stopper.start()
    deadline = time.monotonic() + timeout_seconds
    while stopper.is_alive() and time.monotonic() < deadline:
        with contextlib.suppress(OSError):  # refused: the server is going already
            socket.create_connection((host, int(port)), timeout=0.2).close()
        stopper.join(0.02)


def _silence_server_logs() -> None:
    """Keep moto's server logs off the terminal (README: "The embedded sandbox").

    Each logger gets a NullHandler and stops propagating, so neither werkzeug nor Flask adds its
    own stderr handler, and a root handler set up by a front cannot print them either.
    """
    for name in _SERVER_LOGGERS:
        logger = logging.getLogger(name)
        logger.propagate = False
        for handler in list(logger.handlers):
            if isinstance(handler, logging.StreamHandler) and not isinstance(
                handler, logging.FileHandler
            ):
                logger.removeHandler(handler)
        if not any(isinstance(handler, logging.NullHandler) for handler in logger.handlers):
            logger.addHandler(logging.NullHandler())


def _keep_tracebacks_off_terminal(server: Any) -> None:
    """socketserver prints a traceback to stderr when a request handler fails outright (a
    client gone mid-request); send it to the silenced log instead."""
    wsgi_server = getattr(server, "_server", None)
    if wsgi_server is None:
        return

    def handle_error(request: Any, client_address: Any) -> None:
        logging.getLogger("werkzeug").debug(
            "sandbox request from %s failed", client_address, exc_info=True
        )

    wsgi_server.handle_error = handle_error


def _isolated_botocore_session() -> Any:
    """A botocore session blind to AWS_* variables and ~/.aws files, so every machine gets the
    same sandbox (a stray AWS_PROFILE would otherwise raise ProfileNotFound)."""
    import botocore.session
    from botocore.configprovider import BOTOCORE_DEFAUT_SESSION_VARIABLES

    session_vars = {
        name: (None, None, default, convert)
        for name, (_, _, default, convert) in BOTOCORE_DEFAUT_SESSION_VARIABLES.items()
    }
    session_vars["config_file"] = (None, None, os.devnull, None)
    session_vars["credentials_file"] = (None, None, os.devnull, None)
    return botocore.session.Session(session_vars=session_vars)
