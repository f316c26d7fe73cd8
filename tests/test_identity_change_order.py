"""An identity change's remove reaches Firehose before its re-add (README: "Message formats"),
through the CLI against the stand-in Firehose (tests/standin_firehose.py), which answers
concurrent calls out of order, throttles some and fails records inside batches.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from standin_firehose import Misbehaviour, StandinFirehose

from console.cli import main

StartStandin = Callable[..., StandinFirehose]
USERS = 40


def arrival_order(firehose: StandinFirehose) -> dict[str, list[bool]]:
    """Per user (by MPID), the IsMember of each record, in the order Firehose accepted them."""
    arrivals: dict[str, list[bool]] = {}
    for data in firehose.accepted_data():
        record: dict[str, Any] = json.loads(data)
        arrivals.setdefault(record["UserIdentities"]["MPID"], []).append(record["IsMember"])
    return arrivals


@pytest.mark.parametrize("batch", [False, True], ids=["PutRecord", "PutRecordBatch"])
def test_each_users_remove_arrives_before_its_readd_though_calls_are_reordered(
    batch: bool,
    standin_firehose: StartStandin,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    firehose = standin_firehose(
        jitter_seconds=0.025, throttle_rate=0.15, partial_failure_rate=0.2, seed=11
    )
    settings = firehose.settings_file(
        tmp_path / "settings.toml",
        state_dir=tmp_path / "state",
        delivery={"max_attempts": 10, "concurrency": 8, "batch_size": 10},
    )
    options = ["--batch"] if batch else []
    command = ["send", "identity-change", "--count", str(USERS), "--json", *options]
    status = main(["--settings", str(settings), *command])
    report = json.loads(capsys.readouterr().out)

    assert status == 0, report.get("alerts")
    assert report["requested"] == report["delivered"] == 2 * USERS
    arrivals = arrival_order(firehose)
    assert len(arrivals) == USERS
    # Each user's records arrived exactly once each, the remove (IsMember false) first.
    assert all(order == [False, True] for order in arrivals.values()), arrivals
    # The stand-in did misbehave: some calls were refused or partly failed, then retried.
    retried = [record for record in report["records"] if record["attempts"] > 1]
    assert retried


def test_a_remove_that_cannot_be_delivered_holds_back_its_readd_and_replay_sends_both_in_order(
    standin_firehose: StartStandin,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    firehose = standin_firehose(throttle_rate=1.0, seed=3)  # nothing gets through at first
    settings = firehose.settings_file(tmp_path / "settings.toml", state_dir=tmp_path / "state")
    status = main(["--settings", str(settings), "send", "identity-change", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert status == 1 and report["delivered"] == 0 and not firehose.accepted
    assert main(["--settings", str(settings), "dead-letters", "list", "--json"]) == 0
    letters = json.loads(capsys.readouterr().out)["dead_letters"]
    by_class = {letter["failure_class"]: letter for letter in letters}
    assert set(by_class) == {"THROTTLED", "WAITING_FOR_PREDECESSOR"}
    readd = by_class["WAITING_FOR_PREDECESSOR"]
    assert readd["follows"] == by_class["THROTTLED"]["message_id"]
    assert "was not delivered" in readd["detail"]

    firehose.misbehaviour = Misbehaviour(jitter_seconds=0.02, seed=3)  # the stream recovers
    assert main(["--settings", str(settings), "dead-letters", "replay", "--json"]) == 0
    replay = json.loads(capsys.readouterr().out)
    assert replay["delivered"] == 2
    assert list(arrival_order(firehose).values()) == [[False, True]]
