"""The fault matrix (README: "Delivery, retries and alerts"): each failure class, driven
through the CLI, is retried or not, raises its alerts with their severity, ends as a dead letter
(or says why not) and sets the exit status, in bounded time, never with a traceback.

The failures come from where a user would meet them: the embedded sandbox's chaos (throttling,
InternalFailure, timeouts, access denied, partial batches), a stopped endpoint (connection
refused), a name that does not resolve, a server that accepts and never answers, a proxy
answering 502, a stand-in endpoint answering as Firehose does for what chaos cannot produce
(expired token, invalid argument, KMS), moto without the stream (not found), and a record over
the size limit.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from console.cli import main
from engine.sandbox import EmbeddedSandbox

CHAOS = """
[connections.matrix]
delivery_stream_name = "fault-matrix"

[delivery]
state_dir = "{state}"
max_attempts = 3
backoff_base_seconds = 0.01
backoff_cap_seconds = 0.02
batch_size = 10

[sandbox]
failure_rate = 1.0
failures = ["{kind}"]
seed = 7
"""
ENDPOINT = """
[connections.matrix]
delivery_stream_name = "{stream}"
endpoint_url = "{endpoint}"

[delivery]
state_dir = "{state}"
max_attempts = 3
backoff_base_seconds = 0.01
backoff_cap_seconds = 0.02
connect_timeout_seconds = 0.5
read_timeout_seconds = 0.3
"""
TOO_LARGE_USER = '\n[test_user]\nidentities = {{ CustomerId = "{value}" }}\n'

SERVER_ERROR_500 = "500 - Internal Server Error"
RETRY_LIMIT = "Retry Limit Exceeded"
FATAL, WARNING = "fatal", "warning"


# -- endpoints that fail ------------------------------------------------------------------


class ScriptedFirehose(ThreadingHTTPServer):
    """Answers every request with one status and body, as Firehose (or a proxy) would."""

    daemon_threads = True

    def __init__(self, status: int, body: bytes, content_type: str) -> None:
        super().__init__(("127.0.0.1", 0), _ScriptedHandler)
        self.answer = (status, body, content_type)
        self.requests = 0
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ScriptedHandler(BaseHTTPRequestHandler):
    server: ScriptedFirehose

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.requests += 1
        status, body, content_type = self.server.answer
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", "matrix")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:  # keep the terminal clean
        pass


def firehose_error(status: int, code: str, message: str) -> ScriptedFirehose:
    body = json.dumps({"__type": code, "message": message}).encode()
    return ScriptedFirehose(status, body, "application/x-amz-json-1.1")


class HangingServer:
    """Accepts connections, reads the request, and never answers."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.held.append(connection)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def shutdown(self) -> None:
        self.listener.close()
        for connection in self.held:
            connection.close()


def closed_port_url() -> str:
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there any more: connection refused
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def moto_destination() -> Iterator[EmbeddedSandbox]:
    with EmbeddedSandbox("fault-matrix-exists") as sandbox:
        yield sandbox


@pytest.fixture
def unresolvable(monkeypatch: pytest.MonkeyPatch) -> str:
    """A host name the resolver does not know (test-only: no network is ever asked)."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host == "firehose.matrix.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return "http://firehose.matrix.invalid"


# -- the matrix -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One failure class: how it is produced and what the user must see."""

    via: str  # "chaos:<kind>" (the sandbox) or "endpoint:<name>"
    retried: bool
    alerts: dict[str, str]  # alert type -> severity at the end
    dead_letter: str | None  # its failure class; None: not dead-lettered (refused up front)
    argv: tuple[str, ...] = ("send", "add")
    exit_status: int = 1
    extra: str = field(default="")
    # The request went out and its answer never came: Firehose may hold the record already.
    possible_duplicate: bool = False


TRANSIENT_GIVEN_UP = {SERVER_ERROR_500: FATAL, RETRY_LIMIT: FATAL}
MATRIX: dict[str, Case] = {
    "throttling": Case("chaos:throttling", True, TRANSIENT_GIVEN_UP, "THROTTLED"),
    "5xx from a proxy (502)": Case(
        "endpoint:bad-gateway", True, TRANSIENT_GIVEN_UP, "SERVER_ERROR"
    ),
    "InternalFailure": Case("chaos:server-error", True, TRANSIENT_GIVEN_UP, "SERVER_ERROR"),
    "timeout (chaos)": Case(
        "chaos:timeout",
        True,
        {"408 - Request Timeout": FATAL, RETRY_LIMIT: FATAL},
        "TIMEOUT",
        possible_duplicate=True,
    ),
    "timeout (a server that hangs)": Case(
        "endpoint:hanging",
        True,
        {"408 - Request Timeout": FATAL, RETRY_LIMIT: FATAL},
        "TIMEOUT",
        possible_duplicate=True,
    ),
    "connection refused": Case(
        "endpoint:closed-port",
        True,
        {"Connection Failed": FATAL, RETRY_LIMIT: FATAL},
        "CONNECTION",
    ),
    "DNS failure": Case(
        "endpoint:unresolvable",
        True,
        {"Connection Failed": FATAL, RETRY_LIMIT: FATAL},
        "CONNECTION",
    ),
    "access denied": Case(
        "chaos:access-denied", False, {"403 - Forbidden": FATAL}, "ACCESS_DENIED"
    ),
    "expired token": Case(
        "endpoint:expired-token", False, {"403 - Forbidden": FATAL}, "CREDENTIALS"
    ),
    "not found": Case("endpoint:missing-stream", False, {"404 - Not Found": FATAL}, "NOT_FOUND"),
    "invalid argument": Case(
        "endpoint:invalid-argument", False, {"400 - Bad Request": FATAL}, "INVALID_REQUEST"
    ),
    "KMS": Case("endpoint:kms", False, {"400 - Bad Request": FATAL}, "KMS"),
    "record too large": Case(
        "endpoint:closed-port",
        False,
        {"413 - Payload Too Large": FATAL},
        None,
        extra=TOO_LARGE_USER.format(value="x" * 1_100_000),
    ),
    "partial batch": Case(
        "chaos:partial-batch",
        True,
        TRANSIENT_GIVEN_UP,
        "THROTTLED",
        argv=("send", "add", "--count", "10", "--batch"),
    ),
}


@pytest.fixture
def endpoints(
    moto_destination: EmbeddedSandbox, unresolvable: str
) -> Iterator[dict[str, Callable[[], str]]]:
    servers: list = []

    def serving(server):
        servers.append(server)
        return server.url

    yield {
        "bad-gateway": lambda: serving(
            ScriptedFirehose(502, b"<html><body>502 Bad Gateway</body></html>", "text/html")
        ),
        "hanging": lambda: serving(HangingServer()),
        "closed-port": closed_port_url,
        "unresolvable": lambda: unresolvable,
        "expired-token": lambda: serving(
            firehose_error(
                400,
                "ExpiredTokenException",
                "The security token included in the request is expired",
            )
        ),
        "invalid-argument": lambda: serving(
            firehose_error(400, "InvalidArgumentException", "Record size exceeds the limit")
        ),
        "kms": lambda: serving(
            firehose_error(
                400,
                "InvalidKMSResourceException",
                "Firehose is unable to use the KMS key: KMS.DisabledException",
            )
        ),
        "missing-stream": lambda: moto_destination.endpoint_url,
    }
    for server in servers:
        server.shutdown()


def settings_for(case: Case, tmp_path: Path, endpoints: dict[str, Callable[[], str]]) -> list[str]:
    """The settings file (and global options) that produce the case's failure."""
    settings = tmp_path / "settings.toml"
    source, _, name = case.via.partition(":")
    state = tmp_path / "state"
    if source == "chaos":
        settings.write_text(CHAOS.format(state=state, kind=name) + case.extra)
        return ["--settings", str(settings), "--sandbox"]
    stream = "no-such-stream" if name == "missing-stream" else "fault-matrix"
    endpoint = endpoints[name]()
    settings.write_text(ENDPOINT.format(stream=stream, endpoint=endpoint, state=state) + case.extra)
    return ["--settings", str(settings)]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize("name", list(MATRIX))
def test_fault_matrix(
    name: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    endpoints: dict[str, Callable[[], str]],
) -> None:
    case = MATRIX[name]
    # Credentials as a user would give them: in the environment, never on disk.
    monkeypatch.setenv("FIREHOSE_CONSOLE_ACCOUNT__ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("FIREHOSE_CONSOLE_ACCOUNT__SECRET_ACCESS_KEY", "matrix-secret-value")
    options = settings_for(case, tmp_path, endpoints)
    started = time.monotonic()
    status, out, err = run(capsys, *options, *case.argv, "--json")
    assert time.monotonic() - started < 20, "bounded time"
    assert status == case.exit_status, err
    assert "Traceback" not in err and "matrix-secret-value" not in out + err
    report = json.loads(out)
    assert report["delivered"] < report["requested"] and report["failed"] >= 1

    attempts = {record["attempts"] for record in report["records"] if not record["record_id"]}
    if case.dead_letter is None:
        assert attempts == {0}  # refused before sending
    elif case.retried:
        assert attempts == {3}  # max_attempts, then given up
    else:
        assert attempts == {1}
    alerts = {alert["type"]: alert["severity"] for alert in report["alerts"]}
    assert alerts == case.alerts

    status, out, err = run(capsys, *options, "dead-letters", "list", "--json")
    assert status == 0
    letters = json.loads(out)["dead_letters"]
    if case.dead_letter is None:
        assert letters == [] and report["dead_lettered"] == 0
    else:
        assert len(letters) == report["dead_lettered"] == report["failed"]
        assert {letter["failure_class"] for letter in letters} == {case.dead_letter}
        assert {letter["possible_duplicate"] for letter in letters} == {case.possible_duplicate}


def test_partial_batch_resends_only_the_failed_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text(
        CHAOS.format(state=tmp_path / "state", kind="partial-batch").replace(
            '"fault-matrix"', '"fault-matrix-batch"'
        )
    )
    status, out, _ = run(
        capsys, "--settings", str(settings), "--sandbox", "send", "remove", "--count", "20"
    )
    assert status == 0 and "delivered 20" in out  # partial-batch only applies to batches
    status, out, _ = run(
        capsys,
        "--settings",
        str(settings),
        "--sandbox",
        "send",
        "add",
        "--count",
        "20",
        "--batch",
        "--json",
    )
    report = json.loads(out)
    # What the CLI's sandbox wrote stays readable in this process.
    arrived = EmbeddedSandbox("fault-matrix-batch").delivered_records("fault-matrix-batch")
    additions = [r.decoded for r in arrived if r.decoded and r.decoded["IsMember"] is True]
    # Every delivered record arrived exactly once: a batch never re-sends its delivered records.
    identities = [record["UserIdentities"]["CustomerId"] for record in additions]
    assert len(identities) == len(set(identities)) == report["delivered"]
    assert report["delivered"] + report["dead_lettered"] == 20 and report["dead_lettered"] >= 1
    assert status == 1


def test_verify_against_a_dead_or_hanging_endpoint_fails_in_bounded_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], endpoints: dict[str, Callable[[], str]]
) -> None:
    for name, words in (("closed-port", "Could not connect"), ("hanging", "Read timeout")):
        settings = tmp_path / f"{name}.toml"
        settings.write_text(
            ENDPOINT.format(stream="s", endpoint=endpoints[name](), state=tmp_path / "state")
        )
        started = time.monotonic()
        status, out, err = run(capsys, "--settings", str(settings), "verify", "--json")
        assert time.monotonic() - started < 10 and status == 1 and err == ""
        checks = {check["name"]: check for check in json.loads(out)["checks"]}
        assert checks["credentials resolve"]["status"] == "fail"
        assert words in checks["stream found"]["detail"] and checks["stream found"]["fix"]
