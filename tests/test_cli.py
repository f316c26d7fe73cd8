"""The CLI end to end on the embedded sandbox: JSON fields, exit statuses, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from console.cli import main

ROOT = Path(__file__).resolve().parents[1]
CHAOS = """
[connections.travel]
delivery_stream_name = "mPTravelAudiences"

[delivery]
max_attempts = 2
backoff_base_seconds = 0.01
backoff_cap_seconds = 0.02

[sandbox]
failure_rate = {rate}
failures = ["throttling"]
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def run_json(capsys, *argv: str) -> tuple[int, dict]:
    status, out, _ = run(capsys, *argv)
    return status, json.loads(out)


@pytest.fixture()
def no_file(tmp_path: Path) -> list[str]:
    return ["--settings", str(tmp_path / "absent.toml"), "--sandbox"]


def test_preview_json_fields(capsys, no_file) -> None:
    status, document = run_json(capsys, *no_file, "preview", "identity-change", "--json")
    assert status == 0
    remove, add = document["messages"]
    assert (remove["kind"], add["kind"]) == ("remove", "add")
    for message in document["messages"]:
        assert set(message) >= {
            "kind",
            "data",
            "request",
            "size_bytes",
            "dropped",
            "will_send",
            "skip_reason",
        }
        assert message["request"]["DeliveryStreamName"] == "mPTravelAudiences"


def test_preview_human_output(capsys, no_file) -> None:
    status, out, _ = run(capsys, *no_file, "preview", "add")
    assert status == 0
    assert "Request as sent (Data base64)" in out and "of 1,024,000 bytes" in out


def test_verify_json_on_the_sandbox(capsys, no_file) -> None:
    status, document = run_json(capsys, *no_file, "verify", "--json")
    assert status == 0 and document["ok"] is True
    names = [check["name"] for check in document["checks"]]
    assert names[:5] == [
        "settings valid",
        "credentials resolve",
        "stream found",
        "stream active",
        "direct put",
    ]
    assert all(set(check) == {"name", "status", "detail", "fix"} for check in document["checks"])
    resource = document["policy"]["Statement"][0]["Resource"][0]
    assert resource == "arn:aws:firehose:us-east-1:123456789012:deliverystream/mPTravelAudiences"


def test_send_count_five_json(capsys, no_file) -> None:
    status, document = run_json(capsys, *no_file, "send", "add", "--count", "5", "--json")
    assert status == 0
    assert (document["requested"], document["delivered"], document["failed"]) == (5, 5, 0)
    assert document["dead_lettered"] == 0 and document["alerts"] == []
    assert all(record["record_id"] and record["attempts"] == 1 for record in document["records"])


def test_send_batch_json(capsys, no_file) -> None:
    status, document = run_json(
        capsys, *no_file, "send", "remove", "--count", "7", "--batch", "--json"
    )
    assert status == 0 and document["delivered"] == 7


def test_chaos_gives_alerts_and_a_dead_letter_that_replay_delivers(capsys, tmp_path: Path) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text(CHAOS.format(rate=1.0))
    args = ["--settings", str(settings), "--sandbox"]
    status, document = run_json(capsys, *args, "send", "add", "--json")
    assert status == 1
    assert (document["delivered"], document["failed"], document["dead_lettered"]) == (0, 1, 1)
    assert document["records"][0]["attempts"] == 2
    alerts = {alert["type"]: alert for alert in document["alerts"]}
    assert alerts["500 - Internal Server Error"]["count"] == 2
    assert alerts["500 - Internal Server Error"]["severity"] == "fatal"
    assert alerts["Retry Limit Exceeded"]["severity"] == "fatal"

    status, listed = run_json(capsys, *args, "dead-letters", "list", "--json")
    assert status == 0 and len(listed["dead_letters"]) == 1
    assert listed["dead_letters"][0]["alert_type"] == "500 - Internal Server Error"

    settings.write_text(CHAOS.format(rate=0.0))
    status, replayed = run_json(capsys, *args, "dead-letters", "replay", "--json")
    assert status == 0 and replayed["delivered"] == 1
    status, listed = run_json(capsys, *args, "dead-letters", "list", "--json")
    assert listed["dead_letters"] == []


def test_human_send_and_dead_letters_output(capsys, tmp_path: Path) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text(CHAOS.format(rate=1.0))
    status, out, _ = run(capsys, "--settings", str(settings), "send", "add")
    assert status == 1 and "dead-lettered 1" in out and "Retry Limit Exceeded" in out
    status, out, _ = run(capsys, "--settings", str(settings), "dead-letters", "list")
    assert status == 0 and "1 dead letter(s)" in out


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[account\n", "not valid TOML"),
        (
            '[connections.x]\ndelivery_stream_name = "a"\nregion = "mars-1"\n',
            "connections.x.region",
        ),
        ('[connections.x]\ndelivery_stream_name = "a"\nbogus = 1\n', "connections.x.bogus"),
    ],
)
def test_bad_settings_exit_2_with_one_clear_message(capsys, tmp_path: Path, text, needle) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text(text)
    status, out, err = run(capsys, "--settings", str(settings), "verify", "--json")
    assert status == 2 and out == ""
    assert needle in err and "Fix:" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["preview", "explode"],
        ["send", "add", "--count", "0"],
        ["send", "add", "--rate", "-1"],
        ["--connection", "nope", "preview", "add"],
        ["dead-letters", "burn"],
    ],
)
def test_bad_usage_exits_2_with_one_line(capsys, no_file, argv) -> None:
    status, out, err = run(capsys, *no_file, *argv)
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_init_writes_the_example_and_refuses_to_overwrite(capsys, tmp_path: Path) -> None:
    target = tmp_path / "mine.toml"
    status, out, _ = run(capsys, "init", str(target))
    assert status == 0 and target.read_text() == (ROOT / "settings.example.toml").read_text()
    status, _, err = run(capsys, "init", str(target))
    assert status == 2 and "already exists" in err


def test_script_end_to_end_in_a_subprocess(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "console",
            "--settings",
            str(tmp_path / "none.toml"),
            "--sandbox",
            "send",
            "add",
            "--count",
            "5",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "delivered 5" in result.stdout
    # The sandbox server's own logs never reach the terminal.
    assert result.stderr.strip() == "No settings file: running on the embedded sandbox."


def test_session_starts_one_sandbox_however_many_threads_ask(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from engine.session import ConsoleSession
    from engine.settings_file import load_settings

    session = ConsoleSession(load_settings(tmp_path / "absent.toml"))
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            gateways = list(pool.map(lambda _: session.gateway(), range(8)))
        assert len({id(gateway) for gateway in gateways}) == 1
        assert session.sandbox() is session.sandbox()
    finally:
        session.close()
