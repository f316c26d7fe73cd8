"""Shared fixtures: every test keeps AWS and the user's home out of reach."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from standin_firehose import Misbehaviour, StandinFirehose

from engine.sandbox import EmbeddedSandbox


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No real credentials, no user state, no FIREHOSE_CONSOLE_ overrides leak into a test."""
    import os

    for name in list(os.environ):
        if name.startswith(("FIREHOSE_CONSOLE_", "AWS_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


@pytest.fixture(scope="module")
def sandbox(request: pytest.FixtureRequest) -> Iterator[EmbeddedSandbox]:
    """One embedded sandbox for a test module (moto's state is per process: keep it short)."""
    name = request.module.__name__.rsplit(".", 1)[-1].replace("_", "-")
    with EmbeddedSandbox(name) as running:
        yield running


@pytest.fixture
def stream(sandbox: EmbeddedSandbox) -> Iterator[str]:
    """A fresh stream per test, deleted after (moto allows 50 per region and process)."""
    name = f"stream-{uuid.uuid4().hex[:8]}"
    sandbox.ensure_stream(name)
    yield name
    sandbox.client("firehose").delete_delivery_stream(DeliveryStreamName=name)


@pytest.fixture
def standin_firehose() -> Iterator[Callable[..., StandinFirehose]]:
    """Start stand-in Firehoses (tests/standin_firehose.py): call with ``Misbehaviour``'s keyword
    arguments (and ``streams=``); each is stopped after the test."""
    started: list[StandinFirehose] = []

    def start(*, streams: set[str] | None = None, **misbehaviour: Any) -> StandinFirehose:
        server = StandinFirehose(Misbehaviour(**misbehaviour), streams=streams)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
