"""The embedded sandbox for benchmarks, in a process of its own (or in this one).

moto's server is pure Python: in the process being measured it would share the GIL with the
client, and a benchmark would mostly measure moto. In a child process it stands where Firehose
stands, on the other end of a (loopback) connection. ``set_latency`` adds an emulated network
round trip to every request, server side, to see what concurrency does against a real network.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the worktree's engine, not an installed one
    sys.path.insert(0, str(ROOT))

# The settings file a bench points the CLI or a session at (format with stream, region,
# endpoint and state); the keys are AWS's documented example, never real.
SETTINGS = """
[account]
access_key_id = "AKIAIOSFODNN7EXAMPLE"
secret_access_key = "bench-secret-not-a-real-key"

[connections.bench]
delivery_stream_name = "{stream}"
region = "{region}"
endpoint_url = "{endpoint}"

[delivery]
state_dir = "{state}"
"""


class _DelayedApp:
    """WSGI middleware: waits ``delay`` seconds before each request (time.sleep frees the GIL,
    so concurrent requests wait in parallel, as on a network)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.delay = 0.0

    def __call__(self, environ: Any, start_response: Any) -> Any:
        if self.delay > 0:
            time.sleep(self.delay)
        return self.app(environ, start_response)


def _start(stream_names: list[str], region: str) -> tuple[Any, _DelayedApp]:
    from engine.sandbox import EmbeddedSandbox

    sandbox = EmbeddedSandbox(stream_names[0], region)
    sandbox.start()
    for name in stream_names[1:]:
        sandbox.ensure_stream(name)
    wsgi_server = sandbox._server._server  # moto's werkzeug server (as engine.sandbox does)
    delayed = _DelayedApp(wsgi_server.app)
    wsgi_server.app = delayed
    return sandbox, delayed


def _serve(connection: Connection, stream_names: list[str], region: str) -> None:
    sandbox, delayed = _start(stream_names, region)
    connection.send(sandbox.endpoint_url)
    while True:
        command, value = connection.recv()
        if command == "latency":
            delayed.delay = value
            connection.send(True)
        elif command == "cpu":
            connection.send(time.process_time())
        elif command == "stop":
            sandbox.stop()
            connection.send(True)
            return


class BenchSandbox:
    """One EmbeddedSandbox with the given streams, in a child process unless ``in_process``."""

    def __init__(self, stream_names: list[str], region: str, *, in_process: bool = False):
        self.stream_names = stream_names
        self.region = region
        self.in_process = in_process
        self.endpoint_url = ""
        self._connection: Connection | None = None
        self._process: Any = None
        self._local: tuple[Any, _DelayedApp] | None = None

    def __enter__(self) -> BenchSandbox:
        if self.in_process:
            self._local = _start(self.stream_names, self.region)
            self.endpoint_url = self._local[0].endpoint_url
            return self
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(theirs, self.stream_names, self.region), daemon=True
        )
        self._process.start()
        self._connection = ours
        self.endpoint_url = ours.recv()
        return self

    def set_latency(self, seconds: float) -> None:
        if self._local is not None:
            self._local[1].delay = seconds
        else:
            assert self._connection is not None
            self._connection.send(("latency", seconds))
            self._connection.recv()

    def cpu_seconds(self) -> float | None:
        """CPU seconds the sandbox's process has used (None when it is this process)."""
        if self._connection is None:
            return None
        self._connection.send(("cpu", None))
        seconds: float = self._connection.recv()
        return seconds

    def __exit__(self, *_: object) -> None:
        if self._local is not None:
            self._local[0].stop()
        elif self._connection is not None:
            self._connection.send(("stop", None))
            self._connection.recv()
            self._process.join(10)


def load_average() -> str:
    """The 1-minute load average: other work on the machine skews every figure."""
    import os

    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "unknown"


def machine() -> str:
    """nproc, the CPU model and the Python version, for the figures' context."""
    import os
    import platform

    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPU(s), {model}, Python {platform.python_version()}"
