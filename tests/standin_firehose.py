"""A stand-in Amazon Kinesis Data Firehose for the tests: an HTTP server on 127.0.0.1 that
speaks Firehose's JSON 1.1 protocol as botocore sends it, keeps AWS's limits and misbehaves on
purpose — where moto enforces none of those.

Use
---
    # tests/ is on sys.path under pytest (as tests/tui is for its driving.py)
    from standin_firehose import Misbehaviour, StandinFirehose

    misbehaviour = Misbehaviour(throttle_rate=0.15, jitter_seconds=0.025, seed=7)
    with StandinFirehose(misbehaviour) as firehose:
        settings = firehose.settings_file(tmp_path / "s.toml", state_dir=tmp_path / "state")
        main(["--settings", str(settings), "send", "add", "--count", "20", "--json"])
        firehose.accepted          # [AcceptedRecord(stream, data, record_id, at)], arrival order
        firehose.accepted_data()   # just the decoded bytes, in arrival order
        firehose.calls             # Counter: operation name -> calls answered

or the ``standin_firehose`` fixture of ``tests/conftest.py``: a function taking the same keyword
arguments as ``Misbehaviour`` that starts one (stopped after the test).

What it answers (``X-Amz-Target: Firehose_20150804.<Operation>``):

- ``PutRecord`` and ``PutRecordBatch``: a RecordId per accepted record (and ``FailedPutCount`` /
  ``RequestResponses`` for a batch). Firehose's limits are kept: more than 500 records in a batch
  or a record over 1,024,000 bytes is ``ValidationException``, a batch over 4 MiB is
  ``InvalidArgumentException``, an unknown stream is ``ResourceNotFoundException``; all HTTP 400
  with the JSON 1.1 error body (``__type`` and ``message``), as AWS answers.
- ``DescribeDeliveryStream``: an ACTIVE DirectPut stream.
- STS ``GetCallerIdentity`` (query protocol, XML), since a connection's ``endpoint_url`` serves
  STS too: ``verify`` runs against the stand-in.

What it does wrong on purpose (``Misbehaviour``; every random choice comes from one seeded
``random.Random``, so a run is repeatable up to thread scheduling):

- ``throttle_rate``: that share of put calls is answered ``ServiceUnavailableException``
  ("Slow down.", HTTP 400, as AWS throttles); nothing of the call is accepted.
- ``partial_failure_rate``: that share of a batch's records fails with the entry's
  ``ErrorCode`` ``ServiceUnavailableException`` (and ``FailedPutCount`` counts them).
- ``jitter_seconds``: each call waits a random time up to this before it is answered, so
  concurrent calls are accepted and answered out of order.
- ``malformed`` (one of ``MALFORMED_ANSWERS``) at ``malformed_rate``: the records are accepted but
  the answer is wrong — a RecordId ``""`` or ``0`` (PutRecord and every batch entry), or a batch's
  ``RequestResponses`` one entry shorter, one longer, or missing.
- ``oversized_body_bytes``: the records are accepted, then the 200 answer streams a body this
  large (no Content-Length, 64 KiB at a time): the right answer padded with a long string, so a
  reader that takes it all sees a success. A huge number is an endless body.
- ``trickle_seconds``: the records are accepted, then the answer's body is sent one byte at a
  time, this long apart.

Accepted records are kept in arrival order — the order Firehose would deliver them — including
those whose answer was then mangled: that is what "fate unknown" means at the real service.
"""

from __future__ import annotations

import base64
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

BATCH_MAX_RECORDS = 500
BATCH_MAX_BYTES = 4 * 1024 * 1024
RECORD_MAX_BYTES = 1_024_000
TARGET_PREFIX = "Firehose_20150804."
MALFORMED_ANSWERS = ("empty-record-id", "zero-record-id", "short", "long", "missing")
_JSON = "application/x-amz-json-1.1"


@dataclass(frozen=True)
class Misbehaviour:
    """How the stand-in departs from a healthy Firehose (all off by default)."""

    throttle_rate: float = 0.0
    partial_failure_rate: float = 0.0
    jitter_seconds: float = 0.0
    malformed: str | None = None
    malformed_rate: float = 1.0
    oversized_body_bytes: int = 0
    trickle_seconds: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.malformed is not None and self.malformed not in MALFORMED_ANSWERS:
            raise ValueError(f"malformed must be one of {MALFORMED_ANSWERS}, not {self.malformed}")


@dataclass(frozen=True)
class AcceptedRecord:
    """One record the stand-in accepted: where, its bytes, the RecordId given, when."""

    stream: str
    data: bytes
    record_id: str
    at: float


@dataclass
class _Answer:
    status: int
    document: dict[str, Any]
    accepted: list[tuple[str, bytes]] = field(default_factory=list)


class _FirehoseError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class StandinFirehose(ThreadingHTTPServer):
    """The stand-in server; starts serving on a free port at once. Use as a context manager
    (or call ``stop``)."""

    daemon_threads = True

    def __init__(
        self, misbehaviour: Misbehaviour | None = None, *, streams: set[str] | None = None
    ) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.misbehaviour = misbehaviour or Misbehaviour()
        self.streams = streams  # None: every stream name exists
        self.accepted: list[AcceptedRecord] = []
        self.calls: Counter[str] = Counter()
        self._rng = random.Random(self.misbehaviour.seed)
        self._lock = threading.Lock()
        self._next_id = 0
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The endpoint_url to put in a connection."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    def accepted_data(self, stream: str | None = None) -> list[bytes]:
        """The bytes of every accepted record (of ``stream``, if given), in arrival order."""
        with self._lock:
            return [r.data for r in self.accepted if stream is None or r.stream == stream]

    def settings_file(
        self,
        path: Path,
        *,
        state_dir: Path,
        stream: str = "standin-stream",
        connection: str = "standin",
        delivery: Mapping[str, object] | None = None,
    ) -> Path:
        """Write a settings file whose one connection points at this stand-in; ``delivery``
        overrides the short retry/timeout settings chosen for tests."""
        values: dict[str, object] = {
            "state_dir": str(state_dir),
            "max_attempts": 3,
            "backoff_base_seconds": 0.01,
            "backoff_cap_seconds": 0.02,
            "connect_timeout_seconds": 1.0,
            "read_timeout_seconds": 1.0,
            **(delivery or {}),
        }
        lines = [
            f"[connections.{connection}]",
            f"delivery_stream_name = {json.dumps(stream)}",
            f"endpoint_url = {json.dumps(self.url)}",
            "",
            "[delivery]",
            *(f"{key} = {json.dumps(value)}" for key, value in values.items()),
            "",
        ]
        path.write_text("\n".join(lines))
        return path

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self.shutdown()
        self.server_close()

    def __enter__(self) -> StandinFirehose:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- decisions (under the lock: one seeded generator for every thread) -----------------

    def _chance(self, rate: float) -> bool:
        with self._lock:
            return rate > 0 and self._rng.random() < rate

    def _jitter(self) -> float:
        with self._lock:
            return self._rng.uniform(0, self.misbehaviour.jitter_seconds)

    def _accept(self, records: list[tuple[str, bytes]]) -> list[str]:
        """Record these as arrived, now, in this order; their RecordIds."""
        ids: list[str] = []
        with self._lock:
            now = time.monotonic()
            for stream, data in records:
                self._next_id += 1
                record_id = f"{self._next_id:08d}{self._rng.getrandbits(96):024x}"
                self.accepted.append(AcceptedRecord(stream, data, record_id, now))
                ids.append(record_id)
        return ids

    # -- operations ------------------------------------------------------------------------

    def answer(self, operation: str, request: dict[str, Any]) -> _Answer:
        """The answer to one call (records are accepted here, just before answering)."""
        self.calls[operation] += 1
        if operation == "DescribeDeliveryStream":
            stream = self._known_stream(request)
            return _Answer(200, {"DeliveryStreamDescription": _description(stream)})
        if operation not in ("PutRecord", "PutRecordBatch"):
            raise _FirehoseError("UnknownOperationException", f"unknown operation {operation}")
        stream = self._known_stream(request)
        datas = self._validated_records(operation, request)
        time.sleep(self._jitter())
        if self._chance(self.misbehaviour.throttle_rate):
            raise _FirehoseError("ServiceUnavailableException", "Slow down.")
        if operation == "PutRecord":
            record_id = self._accept([(stream, datas[0])])[0]
            return _Answer(200, {"RecordId": self._mangled_id(record_id), "Encrypted": False})
        failing = [self._chance(self.misbehaviour.partial_failure_rate) for _ in datas]
        kept = [(stream, data) for data, fails in zip(datas, failing, strict=True) if not fails]
        ids = iter(self._accept(kept))
        entries: list[dict[str, Any]] = [
            _THROTTLED_ENTRY if fails else {"RecordId": self._mangled_id(next(ids))}
            for fails in failing
        ]
        document: dict[str, Any] = {"FailedPutCount": sum(failing), "Encrypted": False}
        document["RequestResponses"] = entries
        return _Answer(200, self._mangled_batch(document))

    def _known_stream(self, request: dict[str, Any]) -> str:
        stream = str(request.get("DeliveryStreamName", ""))
        if self.streams is not None and stream not in self.streams:
            raise _FirehoseError(
                "ResourceNotFoundException",
                f"Firehose {stream} under account 123456789012 not found.",
            )
        return stream

    @staticmethod
    def _validated_records(operation: str, request: dict[str, Any]) -> list[bytes]:
        raw = [request.get("Record") or {}] if operation == "PutRecord" else request["Records"]
        datas = [base64.b64decode(record.get("Data", "")) for record in raw]
        if len(datas) > BATCH_MAX_RECORDS:
            raise _FirehoseError(
                "ValidationException",
                "1 validation error detected: Value at 'records' failed to satisfy constraint: "
                f"Member must have length less than or equal to {BATCH_MAX_RECORDS}",
            )
        for data in datas:
            if len(data) > RECORD_MAX_BYTES:
                raise _FirehoseError(
                    "ValidationException",
                    "1 validation error detected: Value at 'record.data' failed to satisfy "
                    f"constraint: Member must have length less than or equal to {RECORD_MAX_BYTES}",
                )
        if sum(len(data) for data in datas) > BATCH_MAX_BYTES:
            raise _FirehoseError(
                "InvalidArgumentException", "Records size exceeds 4 MB limit for the request."
            )
        return datas

    def _mangled_id(self, record_id: str) -> object:
        kind = self.misbehaviour.malformed
        if kind not in ("empty-record-id", "zero-record-id"):
            return record_id
        if not self._chance(self.misbehaviour.malformed_rate):
            return record_id
        return "" if kind == "empty-record-id" else 0

    def _mangled_batch(self, document: dict[str, Any]) -> dict[str, Any]:
        kind = self.misbehaviour.malformed
        if kind not in ("short", "long", "missing"):
            return document
        if not self._chance(self.misbehaviour.malformed_rate):
            return document
        entries = document["RequestResponses"]
        if kind == "short":
            document["RequestResponses"] = entries[:-1]
        elif kind == "long":
            document["RequestResponses"] = [*entries, {"RecordId": "one-too-many"}]
        else:
            del document["RequestResponses"]
        return document


_CALLER_IDENTITY = """<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>arn:aws:iam::123456789012:user/standin</Arn>
    <UserId>AIDASTANDINUSER</UserId>
    <Account>123456789012</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata><RequestId>standin</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>
"""
_THROTTLED_ENTRY = {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."}


def _description(stream: str) -> dict[str, Any]:
    return {
        "DeliveryStreamName": stream,
        "DeliveryStreamARN": f"arn:aws:firehose:us-east-1:123456789012:deliverystream/{stream}",
        "DeliveryStreamStatus": "ACTIVE",
        "DeliveryStreamType": "DirectPut",
        "VersionId": "1",
        "Destinations": [],
        "HasMoreDestinations": False,
    }


class _Handler(BaseHTTPRequestHandler):
    server: StandinFirehose

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        target = self.headers.get("X-Amz-Target")
        if target is None and b"Action=GetCallerIdentity" in body:
            self._send_caller_identity()
            return
        operation = (target or "").removeprefix(TARGET_PREFIX)
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            self._send_json(400, {"__type": "SerializationException", "message": "not JSON"})
            return
        try:
            answer = self.server.answer(operation, request)
        except _FirehoseError as error:
            self._send_json(400, {"__type": error.code, "message": error.message})
            return
        misbehaviour = self.server.misbehaviour
        is_put = operation.startswith("Put")
        if is_put and misbehaviour.oversized_body_bytes:
            self._send_endless(answer, misbehaviour.oversized_body_bytes)
        elif is_put and misbehaviour.trickle_seconds:
            self._send_trickled(answer, misbehaviour.trickle_seconds)
        else:
            self._send_json(answer.status, answer.document)

    def _headers(self, status: int, length: int | None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", _JSON)
        self.send_header("x-amzn-RequestId", "standin")
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def _send_json(self, status: int, document: dict[str, Any]) -> None:
        payload = json.dumps(document).encode()
        self._headers(status, len(payload))
        self.wfile.write(payload)

    def _send_caller_identity(self) -> None:
        payload = _CALLER_IDENTITY.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _send_endless(self, answer: _Answer, total: int) -> None:
        self._headers(answer.status, None)  # HTTP/1.0, no length: the body ends at the close
        opening = json.dumps(answer.document)[:-1].encode() + b', "Padding": "'
        chunk = b"x" * 65536
        try:
            self.wfile.write(opening)
            for _ in range(max(0, total - len(opening)) // len(chunk)):
                self.wfile.write(chunk)
            self.wfile.write(b'"}')
        except OSError:
            return  # the client hung up: what a bounded reader does

    def _send_trickled(self, answer: _Answer, seconds: float) -> None:
        payload = json.dumps(answer.document).encode()
        self._headers(answer.status, len(payload))
        try:
            for index in range(len(payload)):
                self.wfile.write(payload[index : index + 1])
                self.wfile.flush()
                time.sleep(seconds)
        except OSError:
            return

    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass
