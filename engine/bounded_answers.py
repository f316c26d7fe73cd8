"""Answers read within bounds: at most 1 MiB, and within the attempt's deadline.

botocore reads a whole answer body into memory, one socket read at a time, each bounded only by
the read timeout: an endless body would exhaust memory, and a server trickling a byte just
inside each timeout stretches one attempt without limit. ``BoundedAnswers`` wraps a client's
HTTP session: the session stops at the headers (the request is marked as streaming for the
call), and the body is then read here, one socket read at a time, checking its size and
waiting no longer than what is left of the deadline (README, Reliability: "Answers are
bounded").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError
from urllib3.exceptions import ProtocolError
from urllib3.exceptions import ReadTimeoutError as SocketReadTimeout

from engine.failures import MalformedAnswer

ANSWER_BODY_LIMIT_BYTES = 1024 * 1024  # Firehose's answers are a few KiB at most (500 entries)
_READ_SIZE = 64 * 1024


class AttemptDeadlineExceeded(ReadTimeoutError):
    """The answer was still arriving when the attempt's deadline passed (a read timeout)."""

    fmt = (
        'Read timeout on endpoint URL: "{endpoint_url}": the answer took longer than {seconds:g} s'
    )


class BoundedAnswers:
    """A botocore HTTP session whose answers are read within a size and a time bound.

    ``attempt_seconds`` counts from the moment the request is sent; each read of the body
    waits at most what is left of it (and at most the read timeout). Everything else is
    delegated to the wrapped session.
    """

    def __init__(
        self,
        session: Any,
        *,
        attempt_seconds: float,
        limit_bytes: int = ANSWER_BODY_LIMIT_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session = session
        self.attempt_seconds = attempt_seconds
        self.limit_bytes = limit_bytes
        self._clock = clock

    def send(self, request: AWSPreparedRequest) -> AWSResponse:
        """Send as the wrapped session does; read the body here, within the bounds."""
        deadline = self._clock() + self.attempt_seconds
        caller_streams = request.stream_output
        request.stream_output = True  # the session returns at the headers: the body is ours
        try:
            response: AWSResponse = self.session.send(request)
        finally:
            request.stream_output = caller_streams
        if caller_streams:
            return response
        body = self._read_body(response.raw, request.url, deadline)
        return AWSResponse(response.url, response.status_code, response.headers, ReadBody(body))

    def _read_body(self, raw: Any, url: str, deadline: float) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                left = deadline - self._clock()
                if left <= 0:
                    raise AttemptDeadlineExceeded(endpoint_url=url, seconds=self.attempt_seconds)
                _wait_at_most(raw, left)
                chunk = raw.read1(_READ_SIZE)  # one socket read at most
                if not chunk:
                    break
                size += len(chunk)
                if size > self.limit_bytes:
                    raise MalformedAnswer(
                        f"the answer's body is over {self.limit_bytes:,} bytes: not read further"
                    )
                chunks.append(chunk)
        except SocketReadTimeout as error:
            _drop_connection(raw)
            if self._clock() >= deadline:
                raise AttemptDeadlineExceeded(
                    endpoint_url=url, seconds=self.attempt_seconds
                ) from error
            raise ReadTimeoutError(endpoint_url=url, error=error) from error
        except ProtocolError as error:
            _drop_connection(raw)
            raise ConnectionClosedError(endpoint_url=url, error=error) from error
        except BaseException:
            _drop_connection(raw)  # a half-read answer must not be reused for the next call
            raise
        raw.release_conn()
        return b"".join(chunks)

    def close(self) -> None:
        """Close the wrapped session's connections."""
        self.session.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session, name)


def bound_answers(client: Any, attempt_seconds: float) -> None:
    """Make a botocore client read its answers through ``BoundedAnswers`` (once)."""
    endpoint: Any = getattr(client, "_endpoint", None)  # botocore has no public seam for this
    session = getattr(endpoint, "http_session", None)
    if session is None or isinstance(session, BoundedAnswers):
        return
    endpoint.http_session = BoundedAnswers(session, attempt_seconds=attempt_seconds)


def _wait_at_most(raw: Any, seconds: float) -> None:
    """Shorten the socket's wait for the next read to ``seconds`` (urllib3 sets it again for
    the connection's next request)."""
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    if sock is None:
        return
    current = sock.gettimeout()
    if current is None or seconds < current:
        sock.settimeout(seconds)


def _drop_connection(raw: Any) -> None:
    raw.close()
    raw.release_conn()


class ReadBody:
    """An answer body already read (or made up, as the sandbox's chaos does): what
    AWSResponse.content expects of ``raw``, which botocore reads via stream()."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body

    def read(self, *_: Any, **__: Any) -> bytes:
        return self._body
