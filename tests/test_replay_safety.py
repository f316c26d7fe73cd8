"""Replays that can be interrupted or run twice: each letter leaves the journal as soon as
Firehose acknowledges it, one replay at a time per journal, and the operator's tools for
letters that can never succeed (show, drop, replay --to-current). README "Reliability"."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_crash_recovery import ROOT, console, environment, user_index

from console.cli import main
from engine.dead_letters import DeadLetterJournal
from engine.sandbox import EmbeddedSandbox

LETTERS = 300
SETTINGS = """
[account]
access_key_id = "AKIAIOSFODNN7EXAMPLE"

[connections.replay]
delivery_stream_name = "{stream}"
endpoint_url = "{endpoint}"

[delivery]
state_dir = "{state}"
max_attempts = 1
concurrency = {concurrency}
batch_size = 100
"""


@pytest.fixture(scope="module")
def destination() -> Iterator[EmbeddedSandbox]:
    with EmbeddedSandbox("replay-tests") as sandbox:
        yield sandbox


def letters_for_a_missing_stream(
    tmp_path: Path, destination: EmbeddedSandbox, count: int, concurrency: int = 1
) -> tuple[Path, str, Path]:
    """``count`` dead letters, made by a send to a stream that does not exist yet, which then
    is created: the settings, the stream and the journal."""
    stream = f"replay-{uuid.uuid4().hex[:8]}"
    settings = tmp_path / "settings.toml"
    settings.write_text(
        SETTINGS.format(
            stream=stream,
            endpoint=destination.endpoint_url,
            state=tmp_path / "state",
            concurrency=concurrency,
        )
    )
    sent = console(settings, "send", "add", "--count", str(count), "--batch", "--json")
    assert sent.returncode == 1 and json.loads(sent.stdout)["dead_lettered"] == count
    destination.ensure_stream(stream)
    return settings, stream, tmp_path / "state" / "dead-letters" / "replay.jsonl"


def arrivals(destination: EmbeddedSandbox, stream: str) -> dict[int, int]:
    counts: dict[int, int] = {}
    for record in destination.delivered_records(stream):
        index = user_index(record.data)
        counts[index] = counts.get(index, 0) + 1
    return counts


def acknowledged(journal: Path) -> int:
    try:
        return journal.read_text().count('"delivered"')
    except FileNotFoundError:
        return 0


@pytest.mark.parametrize(
    "stop", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=["kill", "term", "ctrl-c"]
)
def test_an_interrupted_replay_never_leaves_delivered_letters_looking_undelivered(
    tmp_path: Path, destination: EmbeddedSandbox, stop: signal.Signals
) -> None:
    settings, stream, journal = letters_for_a_missing_stream(tmp_path, destination, LETTERS)
    replay = subprocess.Popen(
        [sys.executable, "-m", "console", "--settings", str(settings), "dead-letters", "replay"],
        cwd=ROOT,
        env=environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while acknowledged(journal) < 20:
        assert replay.poll() is None, "the replay ended before it could be interrupted"
        assert time.monotonic() < deadline, "timed out waiting for the replay"
        time.sleep(0.005)
    replay.send_signal(stop)
    replay.wait(30)
    first = arrivals(destination, stream)
    assert 20 <= sum(first.values()) < LETTERS  # stopped mid-way

    listed = console(settings, "dead-letters", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    left = json.loads(listed.stdout)["dead_letters"]
    flagged = {x["message_id"] for x in left if x["possible_duplicate"]}
    # Every delivered letter is off the list, except one whose answer the stop cut off
    # (flagged as a possible duplicate): at most the one call in flight (concurrency 1).
    assert len(left) >= LETTERS - sum(first.values()) and len(flagged) <= 1

    again = console(settings, "dead-letters", "replay", "--json")
    assert again.returncode == 0, again.stderr
    final = arrivals(destination, stream)
    assert set(final) == set(range(1, LETTERS + 1))
    duplicates = sum(times - 1 for times in final.values())
    assert duplicates <= len(flagged)  # none that was not flagged
    assert json.loads(console(settings, "dead-letters", "list", "--json").stdout) == {
        "journal": str(journal),
        "dead_letters": [],
    }


def test_a_second_replay_refuses_while_one_runs(
    tmp_path: Path, destination: EmbeddedSandbox
) -> None:
    settings, stream, journal = letters_for_a_missing_stream(tmp_path, destination, 5)
    with DeadLetterJournal(journal).exclusive():  # a replay (or drop) under way
        refused = console(settings, "dead-letters", "replay")
        dropping = console(settings, "dead-letters", "drop", "--all", "--yes")
    for done in (refused, dropping):
        assert done.returncode == 1 and "Traceback" not in done.stderr
        (line,) = done.stderr.strip().splitlines()
        assert line == (
            f"firehose-console: another replay or drop is using {journal}; wait for it to "
            "finish, then run the command again"
        )
    assert arrivals(destination, stream) == {}


def test_two_replays_at_once_send_each_letter_once(
    tmp_path: Path, destination: EmbeddedSandbox
) -> None:
    settings, stream, _ = letters_for_a_missing_stream(tmp_path, destination, 200, 2)
    command = [sys.executable, "-m", "console", "--settings", str(settings)]
    replays = [
        subprocess.Popen(
            [*command, "dead-letters", "replay", "--json"],
            cwd=ROOT,
            env=environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    statuses = [replay.wait(120) for replay in replays]
    assert set(statuses) <= {0, 1}
    final = arrivals(destination, stream)
    assert set(final) == set(range(1, 201)) and max(final.values()) == 1


# -- show, drop, replay --to-current ----------------------------------------------------------

OLD_STREAM = """
[connections.travel]
delivery_stream_name = "{stream}"

[delivery]
max_attempts = 1
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def two_letters(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> tuple[Path, list[dict]]:
    """Two letters refused by the sandbox (their stream was renamed since): the settings now
    name the stream that exists."""
    settings = tmp_path / "settings.toml"
    settings.write_text(OLD_STREAM.format(stream="gone"))
    journal = tmp_path / "state" / "firehose-console" / "dead-letters" / "travel.sandbox.jsonl"
    from engine.records import Action
    from engine.session import ConsoleSession
    from engine.settings_file import load_settings

    session = ConsoleSession(load_settings(settings), use_sandbox=True)
    try:
        messages = session.burst_messages(Action.ADD, 2)
        session.sandbox().client("firehose").delete_delivery_stream(DeliveryStreamName="gone")
        report = session.send_messages(messages)
    finally:
        session.close()
    assert report.dead_lettered == 2
    settings.write_text(OLD_STREAM.format(stream="mPTravelAudiences"))
    letters = [letter.document() for letter in DeadLetterJournal(journal).entries()]
    return settings, letters


def test_show_prints_the_decoded_record_stream_reason_and_attempts(
    capsys: pytest.CaptureFixture[str], two_letters: tuple[Path, list[dict]]
) -> None:
    settings, letters = two_letters
    first = letters[0]
    args = ["--settings", str(settings), "--sandbox", "dead-letters"]
    status, out, _ = run(capsys, *args, "show", first["message_id"][:10])
    assert status == 0
    assert f"Dead letter {first['message_id']}" in out
    assert "stream:    gone (connection travel)" in out
    assert "reason:    NOT_FOUND — 404 - Not Found" in out and "attempts:  1" in out
    assert '"IsMember": true' in out  # the record, decoded
    status, out, _ = run(capsys, *args, "show", first["message_id"], "--json")
    document = json.loads(out)
    assert status == 0 and document["dead_letter"] == first
    assert document["record"]["IsMember"] is True and document["journal"].endswith(".jsonl")
    status, _, err = run(capsys, *args, "show", "no-such-id")
    assert status == 2 and "no single dead letter matches 'no-such-id'" in err


def test_drop_asks_first_refuses_without_a_terminal_and_drops_with_yes(
    capsys: pytest.CaptureFixture[str],
    two_letters: tuple[Path, list[dict]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings, letters = two_letters
    first, second = (letter["message_id"] for letter in letters)
    args = ["--settings", str(settings), "--sandbox", "dead-letters"]

    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # not a terminal
    status, _, err = run(capsys, *args, "drop", first)
    assert status == 2 and "cannot ask without a terminal: add --yes" in err

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    status, _, err = run(capsys, *args, "drop", first)
    assert status == 0 and "for good? [y/N]" in err and "Nothing dropped." in err
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    status, out, _ = run(capsys, *args, "drop", first)
    assert status == 0 and "Dropped 1 dead letter(s)" in out

    status, out, _ = run(capsys, *args, "list", "--json")
    assert [x["message_id"] for x in json.loads(out)["dead_letters"]] == [second]
    status, _, err = run(capsys, *args, "drop", "nope", "--yes")
    assert status == 2 and "nothing was dropped" in err
    status, out, _ = run(capsys, *args, "drop", "--all", "--yes", "--json")
    assert status == 0 and json.loads(out)["dropped"] == [second]
    status, out, _ = run(capsys, *args, "list", "--json")
    assert json.loads(out)["dead_letters"] == []


def test_replay_to_current_sends_letters_to_the_current_stream(
    capsys: pytest.CaptureFixture[str], two_letters: tuple[Path, list[dict]]
) -> None:
    settings, _ = two_letters
    args = ["--settings", str(settings), "--sandbox", "dead-letters"]
    status, out, _ = run(capsys, *args, "replay", "--json")
    assert status == 1 and json.loads(out)["failed"] == 2  # "gone" still does not exist
    status, out, _ = run(capsys, *args, "replay", "--to-current", "--json")
    assert status == 0 and json.loads(out)["delivered"] == 2
    status, out, _ = run(capsys, *args, "list", "--json")
    assert json.loads(out)["dead_letters"] == []
