"""No answer is trusted blindly (README, Reliability): a record is delivered only with a
non-empty string RecordId for it; an answer that cannot say what became of the records leaves
their fate unknown (retried, marked possible duplicate); answers are read within 1 MiB and an
attempt deadline; and ``send --json`` always prints one document accounting for every message.

Everything runs through the CLI against the stand-in Firehose (tests/standin_firehose.py).
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from hypothesis import given, settings
from hypothesis import strategies as st
from standin_firehose import StandinFirehose

from console.cli import main
from engine.alerts import AlertBoard
from engine.delivery import Deliverer, RetryPolicy
from engine.gateway import BatchEntryResult
from engine.records import Action, AudienceUser, RecordContext, build_messages
from engine.settings import ConnectionSettings

StartStandin = Callable[..., StandinFirehose]


def send(
    capsys: pytest.CaptureFixture[str],
    firehose: StandinFirehose,
    tmp_path: Path,
    *options: str,
    count: int = 3,
    delivery: Mapping[str, object] | None = None,
) -> tuple[int, dict[str, Any], list[dict[str, Any]]]:
    """``send add --count N --json`` against the stand-in: exit status, the report, and the
    dead letters then listed."""
    settings = firehose.settings_file(
        tmp_path / "settings.toml", state_dir=tmp_path / "state", delivery=delivery
    )
    status = main(["--settings", str(settings), "send", "add", "--count", str(count), *options])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    report = json.loads(captured.out)  # one valid document, whatever happened
    assert main(["--settings", str(settings), "dead-letters", "list", "--json"]) == 0
    letters = json.loads(capsys.readouterr().out)["dead_letters"]
    return status, report, letters


def assert_every_message_accounted_for(report: dict[str, Any], letters: list[dict]) -> None:
    records = report["records"]
    assert len(records) == report["requested"]
    assert report["delivered"] + report["failed"] + report["skipped"] == report["requested"]
    for record in records:
        if record["record_id"] is not None:
            assert isinstance(record["record_id"], str) and record["record_id"]
        else:
            assert record["error"]
    undelivered = {r["message_id"] for r in records if r["record_id"] is None}
    assert {letter["message_id"] for letter in letters} == undelivered
    assert report["dead_lettered"] == len(letters) == report["failed"]


def assert_no_silent_duplicates(
    firehose: StandinFirehose, report: dict[str, Any], letters: list[dict]
) -> int:
    """Every record that reached the stand-in more than once is reported as a possible
    duplicate (in the send's records or its dead letter); the number that did."""
    arrivals = Counter(firehose.accepted_data())
    by_record_id = {record.record_id: record.data for record in firehose.accepted}
    flagged: dict[bytes, bool] = {}
    for record in report["records"]:
        if record["record_id"] is not None:
            flagged[by_record_id[record["record_id"]]] = record["possible_duplicate"]
    for letter in letters:
        flagged[base64.b64decode(letter["data_base64"])] = letter["possible_duplicate"]
    assert len(flagged) == report["requested"], "each message has its own bytes"
    twice = [data for data, count in arrivals.items() if count > 1]
    assert all(flagged[data] for data in twice), "a duplicate arrived without a word"
    return len(twice)


# -- a RecordId is a non-empty string --------------------------------------------------------


@pytest.mark.parametrize("batch", [False, True], ids=["PutRecord", "PutRecordBatch"])
@pytest.mark.parametrize("malformed", ["empty-record-id", "zero-record-id"])
def test_a_record_id_that_is_empty_or_not_a_string_acknowledges_nothing(
    malformed: str,
    batch: bool,
    standin_firehose: StartStandin,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    firehose = standin_firehose(malformed=malformed)
    options = ["--json", "--batch"] if batch else ["--json"]
    status, report, letters = send(capsys, firehose, tmp_path, *options)

    assert status == 1 and report["delivered"] == 0
    assert_every_message_accounted_for(report, letters)
    assert {letter["failure_class"] for letter in letters} == {"MALFORMED_ANSWER"}
    # Firehose took the records each time (only its answer was wrong): every letter says so.
    assert all(letter["possible_duplicate"] for letter in letters)
    assert all(record["attempts"] == 3 for record in report["records"])  # retried, then given up
    assert len(firehose.accepted) == 3 * 3
    assert {alert["type"] for alert in report["alerts"]} == {
        "500 - Internal Server Error",
        "Retry Limit Exceeded",
    }


# -- a batch answer of the wrong length --------------------------------------------------------


@pytest.mark.parametrize("malformed", ["short", "long", "missing"])
def test_a_batch_answer_of_the_wrong_length_leaves_every_record_of_the_call_fate_unknown(
    malformed: str,
    standin_firehose: StartStandin,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    firehose = standin_firehose(malformed=malformed)
    status, report, letters = send(capsys, firehose, tmp_path, "--batch", "--json", count=4)

    assert status == 1 and report["delivered"] == 0
    assert_every_message_accounted_for(report, letters)
    assert {letter["failure_class"] for letter in letters} == {"MALFORMED_ANSWER"}
    assert all(letter["possible_duplicate"] for letter in letters)
    assert "AnswerMismatch" in letters[0]["detail"]


def test_a_record_delivered_after_an_unusable_answer_is_reported_as_a_possible_duplicate(
    standin_firehose: StartStandin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    firehose = standin_firehose(malformed="short", malformed_rate=0.5, seed=6)
    status, report, letters = send(
        capsys, firehose, tmp_path, "--batch", "--json", count=6, delivery={"max_attempts": 6}
    )

    assert status == 0 and report["delivered"] == 6
    assert_every_message_accounted_for(report, letters)
    duplicates = assert_no_silent_duplicates(firehose, report, letters)
    assert duplicates == 6  # the short answer's call was taken whole, then re-sent whole
    assert all(record["possible_duplicate"] for record in report["records"])


def test_the_text_report_marks_a_delivered_possible_duplicate(
    standin_firehose: StartStandin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    firehose = standin_firehose(malformed="zero-record-id", malformed_rate=0.5, seed=6)
    settings = firehose.settings_file(
        tmp_path / "settings.toml", state_dir=tmp_path / "state", delivery={"max_attempts": 8}
    )
    assert main(["--settings", str(settings), "send", "add", "--count", "4", "--batch"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "  RecordId " in line]
    marked = [line for line in lines if line.endswith("[possible duplicate]")]
    # Those delivered after an answer without a usable RecordId are marked; the others not.
    assert len(lines) == 4 and 0 < len(marked) < 4
    assert all("attempts 1 " not in line for line in marked)


def test_clean_answers_report_no_possible_duplicate(
    standin_firehose: StartStandin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    firehose = standin_firehose()
    status, report, letters = send(capsys, firehose, tmp_path, "--batch", "--json", count=5)

    assert status == 0 and report["delivered"] == 5 and letters == []
    assert not any(record["possible_duplicate"] for record in report["records"])
    assert len(firehose.accepted) == 5


# -- any batch answer at all: never a crash, never a false acknowledgement --------------------

RECORD_IDS = st.one_of(
    st.none(),
    st.just(""),
    st.just(0),
    st.integers(),
    st.text(max_size=4),
    st.lists(st.integers(), max_size=1),
)
ENTRIES = st.builds(
    BatchEntryResult,
    record_id=RECORD_IDS,
    error_code=st.sampled_from([None, "", "ServiceUnavailableException", "InternalFailure"]),
)


class AnswersInTurn:
    """A sender answering each PutRecordBatch with the next of the given answers (the last one
    again when they run out), remembering what each call carried."""

    def __init__(self, answers: list[list[BatchEntryResult]]) -> None:
        self.answers = answers
        self.calls: list[tuple[list[bytes], list[BatchEntryResult]]] = []

    def put_record(self, stream_name: str, data: bytes) -> str:
        raise AssertionError("batches only")

    def put_record_batch(self, stream_name: str, records: Any) -> list[BatchEntryResult]:
        answer = self.answers[min(len(self.calls), len(self.answers) - 1)]
        self.calls.append((list(records), answer))
        return answer


def distinct_messages(count: int) -> list[Any]:
    context = RecordContext(
        "stream", ConnectionSettings(delivery_stream_name="stream"), 1, "A", "\n", True
    )
    return [
        build_messages(
            Action.ADD, context, AudienceUser(str(n), {"Email": f"{n}@b.c"}), timestamp=5
        )[0]
        for n in range(count)
    ]


@settings(max_examples=150, deadline=None)
@given(
    answers=st.lists(st.lists(ENTRIES, max_size=5), min_size=1, max_size=4), count=st.integers(1, 4)
)
def test_any_batch_answer_is_read_without_a_crash_or_a_false_acknowledgement(
    answers: list[list[BatchEntryResult]], count: int
) -> None:
    sender = AnswersInTurn(answers)
    deliverer = Deliverer(
        sender,
        RetryPolicy(4, 0.0, 0.0),
        connection_name="c",
        alerts=AlertBoard(),
        sink=lambda event: None,
        sleep=lambda seconds: None,
    )
    messages = distinct_messages(count)
    outcomes = deliverer.deliver_batch(messages)

    assert [outcome.message for outcome in outcomes] == messages
    by_data = {outcome.message.data_bytes: outcome for outcome in outcomes}
    for outcome in outcomes:
        if outcome.delivered:
            assert isinstance(outcome.record_id, str) and outcome.record_id
        else:
            assert outcome.failure is not None
    for records, answer in sender.calls:
        if len(answer) != len(records):  # nothing matched: every record's fate is unknown
            assert all(by_data[data].possible_duplicate for data in records)
            continue
        for data, entry in zip(records, answer, strict=True):
            unusable = not (isinstance(entry.record_id, str) and entry.record_id)
            if not entry.error_code and unusable:
                assert by_data[data].possible_duplicate


# -- answers read within bounds ---------------------------------------------------------------


@pytest.mark.parametrize("batch", [False, True], ids=["PutRecord", "PutRecordBatch"])
def test_an_oversized_answer_body_is_not_read_past_one_mebibyte(
    batch: bool,
    standin_firehose: StartStandin,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A valid answer padded to 8 MiB: read whole, it would count as a success. A far larger
    # number makes the stand-in's body endless; the bound is the same 1 MiB.
    firehose = standin_firehose(oversized_body_bytes=8 * 1024 * 1024)
    options = ["--json", "--batch"] if batch else ["--json"]
    status, report, letters = send(capsys, firehose, tmp_path, *options, count=2)

    assert status == 1 and report["delivered"] == 0
    assert_every_message_accounted_for(report, letters)
    assert {letter["failure_class"] for letter in letters} == {"MALFORMED_ANSWER"}
    assert all(letter["possible_duplicate"] for letter in letters)
    assert "over 1,048,576 bytes" in letters[0]["detail"]


def test_a_trickling_answer_fails_the_attempt_at_its_deadline(
    standin_firehose: StartStandin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # One byte every 50 ms: each read is well inside the 0.3 s read timeout, but the whole
    # answer (~60 bytes) would take 3 s against an attempt deadline of 0.2 + 0.3 s.
    firehose = standin_firehose(trickle_seconds=0.05)
    delivery = {"connect_timeout_seconds": 0.2, "read_timeout_seconds": 0.3}
    status, report, letters = send(capsys, firehose, tmp_path, "--json", delivery=delivery)

    assert status == 1 and report["delivered"] == 0
    assert_every_message_accounted_for(report, letters)
    assert {letter["failure_class"] for letter in letters} == {"TIMEOUT"}
    assert all(letter["possible_duplicate"] for letter in letters)  # it was sent, unanswered
    assert "took longer than 0.5 s" in letters[0]["detail"]


# -- each misbehaviour alone, then everything at once: every message accounted for ----------

MISBEHAVIOURS: dict[str, dict[str, Any]] = {
    "throttling": {"throttle_rate": 0.4},
    "partial batch failures": {"partial_failure_rate": 0.4},
    "jitter": {"jitter_seconds": 0.03},
    "RecordId empty": {"malformed": "empty-record-id", "malformed_rate": 0.4},
    "RecordId 0": {"malformed": "zero-record-id", "malformed_rate": 0.4},
    "answer short": {"malformed": "short", "malformed_rate": 0.4},
    "answer long": {"malformed": "long", "malformed_rate": 0.4},
    "answer missing": {"malformed": "missing", "malformed_rate": 0.4},
    "endless body": {"oversized_body_bytes": 10**12},
    "trickled body": {"trickle_seconds": 0.05},
}


@pytest.mark.parametrize("batch", [False, True], ids=["PutRecord", "PutRecordBatch"])
@pytest.mark.parametrize("name", list(MISBEHAVIOURS))
def test_send_json_accounts_for_every_message_under_each_misbehaviour(
    name: str,
    batch: bool,
    standin_firehose: StartStandin,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    firehose = standin_firehose(seed=2, **MISBEHAVIOURS[name])
    options = ["--json", "--batch"] if batch else ["--json"]
    delivery = {"connect_timeout_seconds": 0.2, "read_timeout_seconds": 0.3, "batch_size": 3}
    status, report, letters = send(capsys, firehose, tmp_path, *options, count=6, delivery=delivery)

    assert status == (0 if report["failed"] == 0 else 1)
    assert_every_message_accounted_for(report, letters)
    assert_no_silent_duplicates(firehose, report, letters)


# -- everything at once: every message accounted for ------------------------------------------


@pytest.mark.parametrize("batch", [False, True], ids=["PutRecord", "PutRecordBatch"])
def test_under_throttling_partial_failures_jitter_and_bad_answers_every_message_is_accounted_for(
    batch: bool,
    standin_firehose: StartStandin,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    firehose = standin_firehose(
        throttle_rate=0.15,
        partial_failure_rate=0.2,
        jitter_seconds=0.025,
        malformed="short" if batch else "empty-record-id",
        malformed_rate=0.2,
        seed=11,
    )
    options = ["--json", "--batch"] if batch else ["--json"]
    status, report, letters = send(
        capsys, firehose, tmp_path, *options, count=20, delivery={"batch_size": 7}
    )

    assert status == (0 if report["failed"] == 0 else 1)
    assert_every_message_accounted_for(report, letters)
    assert_no_silent_duplicates(firehose, report, letters)
    delivered = {r["record_id"] for r in report["records"] if r["record_id"]}
    assert delivered <= {record.record_id for record in firehose.accepted}


# -- the stand-in keeps AWS's rules -----------------------------------------------------------


def raw_client(firehose: StandinFirehose) -> Any:
    """A boto3 client that does not check parameters itself, so the stand-in must."""
    config = Config(retries={"total_max_attempts": 1}, parameter_validation=False)
    return boto3.client(
        "firehose", region_name="us-east-1", endpoint_url=firehose.url, config=config
    )


@pytest.mark.parametrize(
    ("records", "code"),
    [
        ([b"x"] * 501, "ValidationException"),
        ([b"x" * 1_024_001], "ValidationException"),
        ([b"x" * 1_000_000] * 5, "InvalidArgumentException"),  # over 4 MiB in all
    ],
    ids=["501 records", "a record over 1,000 KiB", "a batch over 4 MiB"],
)
def test_the_standin_refuses_what_firehose_refuses(
    records: list[bytes], code: str, standin_firehose: StartStandin
) -> None:
    firehose = standin_firehose()
    with pytest.raises(ClientError) as raised:
        raw_client(firehose).put_record_batch(
            DeliveryStreamName="s", Records=[{"Data": data} for data in records]
        )
    assert raised.value.response["Error"]["Code"] == code
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert firehose.accepted == []


def test_the_standin_throttles_as_firehose_does_and_knows_its_streams(
    standin_firehose: StartStandin,
) -> None:
    throttling = standin_firehose(throttle_rate=1.0)
    with pytest.raises(ClientError) as raised:
        raw_client(throttling).put_record(DeliveryStreamName="s", Record={"Data": b"x"})
    assert raised.value.response["Error"]["Code"] == "ServiceUnavailableException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    known = standin_firehose(streams={"known"})
    client = raw_client(known)
    with pytest.raises(ClientError) as raised:
        client.put_record(DeliveryStreamName="unknown", Record={"Data": b"x"})
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
    described = client.describe_delivery_stream(DeliveryStreamName="known")
    assert described["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "ACTIVE"


def test_verify_runs_against_the_standin(
    standin_firehose: StartStandin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    firehose = standin_firehose(streams={"standin-stream"})
    settings = firehose.settings_file(tmp_path / "settings.toml", state_dir=tmp_path / "state")
    main(["--settings", str(settings), "verify", "--json"])
    checks = {check["name"]: check for check in json.loads(capsys.readouterr().out)["checks"]}
    assert checks["credentials resolve"]["status"] == "pass"
    assert checks["stream found"]["status"] == "pass"


def test_the_standins_jitter_answers_concurrent_calls_out_of_order(
    standin_firehose: StartStandin,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    firehose = standin_firehose(jitter_seconds=0.05, seed=5)
    client = raw_client(firehose)
    sent = [str(n).encode() for n in range(16)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(
            pool.map(lambda d: client.put_record(DeliveryStreamName="s", Record={"Data": d}), sent)
        )
    arrived = firehose.accepted_data()
    assert sorted(arrived) == sorted(sent) and arrived != sent
