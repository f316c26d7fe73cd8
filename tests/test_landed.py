"""Where each acknowledged record landed (README "Where records land"): the journal, the
destination reader against moto's S3 with objects laid out and compressed as Firehose writes
them, the error prefix, an operator denied the bucket, and the CLI's `landed`."""

from __future__ import annotations

import base64
import gzip
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from console.cli import main
from engine.delivery import DeliveryOutcome
from engine.destination import listing_prefixes, read_destination, render_timestamp
from engine.landed import LandedReader, LandedStatus
from engine.landed_journal import LandedEntry, LandedJournal
from engine.operator import S3ObjectStore
from engine.records import Action, MessageKind, OutgoingMessage, encode_data
from engine.sandbox import EmbeddedSandbox

BUCKET = "landed-tests"
PREFIX = "audiences/!{timestamp:'year='yyyy}/!{timestamp:MM/dd/HH}/"
ERROR_PREFIX = "failed/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/"
ACKED = datetime(2026, 11, 30, 9, 58, 30, tzinfo=UTC)


def message(user: str, delimiter: str = "\n") -> OutgoingMessage:
    data = {"AudienceId": 1, "AudienceName": "LowEngagement", "UserIdentities": {"Email": user}}
    return OutgoingMessage(
        kind=MessageKind.ADD,
        action=Action.ADD,
        stream_name="s",
        data=data,
        data_bytes=encode_data(data, delimiter),
    )


def acked(*messages: OutgoingMessage) -> list[DeliveryOutcome]:
    return [DeliveryOutcome(m, record_id=f"rid-{m.message_id[:6]}", attempts=1) for m in messages]


def journal_of(tmp_path: Path, outcomes: list[DeliveryOutcome]) -> list[LandedEntry]:
    journal = LandedJournal(tmp_path / "landed.jsonl")
    journal.record(outcomes, "travel", acked_at=ACKED, sent_at=ACKED - timedelta(seconds=2))
    return journal.entries()


# -- the journal ---------------------------------------------------------------------------


def test_journal_keeps_only_acknowledged_records_and_no_bytes(tmp_path: Path) -> None:
    delivered, failed = message("a@example.com"), message("b@example.com")
    outcomes = [*acked(delivered), DeliveryOutcome(failed, record_id=None, attempts=3)]
    journal = LandedJournal(tmp_path / "landed.jsonl")
    journal.record(outcomes, "travel")
    (entry,) = journal.entries()
    assert entry.message_id == delivered.message_id
    assert entry.audience == "LowEngagement"
    assert (entry.connection, entry.kind) == ("travel", "add")
    text = journal.path.read_text()
    assert "a@example.com" not in text and delivered.data_base64 not in text


def test_journal_is_bounded_to_the_newest_entries(tmp_path: Path) -> None:
    journal = LandedJournal(tmp_path / "landed.jsonl", max_entries=3)
    messages = [message(f"u{i}@example.com") for i in range(8)]
    for sent in messages:
        journal.record(acked(sent), "travel")
    assert [e.message_id for e in journal.entries()] == [m.message_id for m in messages[-3:]]
    assert len(journal.path.read_text().splitlines()) <= 6


# -- the destination, from DescribeDeliveryStream --------------------------------------------


def s3_body(**extra: Any) -> dict[str, Any]:
    return {
        "BucketARN": f"arn:aws:s3:::{BUCKET}",
        "Prefix": PREFIX,
        "ErrorOutputPrefix": ERROR_PREFIX,
        "CompressionFormat": "GZIP",
        "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 120},
        **extra,
    }


def test_extended_s3_destination_is_read_with_its_prefixes_and_hints() -> None:
    found = read_destination({"Destinations": [{"ExtendedS3DestinationDescription": s3_body()}]})
    assert (found.type, found.bucket, found.prefix) == ("ExtendedS3", BUCKET, PREFIX)
    assert (found.compression, found.readable) == ("GZIP", True)
    assert (found.buffering_interval_seconds, found.buffering_size_mib) == (120, 64)


@pytest.mark.parametrize("compression", ["Snappy", "HADOOP_SNAPPY", "ZIP"])
def test_compressions_that_cannot_be_read_back_are_named(compression: str) -> None:
    body = s3_body(CompressionFormat=compression)
    found = read_destination({"Destinations": [{"ExtendedS3DestinationDescription": body}]})
    assert not found.readable and compression in found.note


def test_parquet_conversion_reads_the_source_backup_or_says_it_cannot() -> None:
    converted = s3_body(DataFormatConversionConfiguration={"Enabled": True})
    alone = read_destination({"Destinations": [{"ExtendedS3DestinationDescription": converted}]})
    assert not alone.readable and "Parquet/ORC" in alone.note
    backup = {**s3_body(), "BucketARN": "arn:aws:s3:::raw-copy", "Prefix": "raw/"}
    with_backup = {**converted, "S3BackupMode": "Enabled", "S3BackupDescription": backup}
    found = read_destination({"Destinations": [{"ExtendedS3DestinationDescription": with_backup}]})
    assert found.readable and (found.bucket, found.prefix) == ("raw-copy", "raw/")


def test_destinations_without_an_s3_copy_say_what_can_be_confirmed() -> None:
    http = {"EndpointConfiguration": {"Url": "https://x"}, "S3BackupMode": "FailedDataOnly"}
    found = read_destination({"Destinations": [{"HttpEndpointDestinationDescription": http}]})
    assert found.type == "HttpEndpoint" and not found.readable
    assert "FailedDataOnly" in found.note and "acknowledgement" in found.note
    all_data = {**http, "S3BackupMode": "AllData", "S3DestinationDescription": s3_body()}
    backed = read_destination({"Destinations": [{"HttpEndpointDestinationDescription": all_data}]})
    assert backed.readable and backed.bucket == BUCKET and "backup" in backed.note


def test_prefixes_follow_firehose_default_layout_and_timestamp_expressions() -> None:
    start, end = ACKED, ACKED + timedelta(hours=1)
    assert listing_prefixes("", start, end) == ["2026/11/30/09/", "2026/11/30/10/"]
    assert listing_prefixes(PREFIX, start, end) == [
        "audiences/year=2026/11/30/09/",
        "audiences/year=2026/11/30/10/",
    ]
    # Whatever comes after an expression that is not the hour's is left to the listing.
    assert listing_prefixes("a/!{timestamp:yyyy}/!{firehose:random-string}/", start, end) == [
        "a/2026/"
    ]
    assert listing_prefixes("a/!{timestamp:HH-mm}/", start, end) == ["a/"]
    assert render_timestamp("yyyy-MM-dd'T'HH", ACKED) == "2026-11-30T09"


# -- reading the bucket (moto's S3, objects written as Firehose writes them) ------------------


@pytest.fixture
def bucket(sandbox: EmbeddedSandbox) -> Iterator[Any]:
    s3 = sandbox.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    yield s3
    for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        s3.delete_object(Bucket=BUCKET, Key=item["Key"])
    s3.delete_bucket(Bucket=BUCKET)


@pytest.fixture
def stream_to_bucket(sandbox: EmbeddedSandbox, bucket: Any) -> Iterator[str]:
    """A stream as a real one is set up: custom prefix, error prefix, GZIP, buffering."""
    name = f"landed-{uuid.uuid4().hex[:8]}"
    sandbox.client("firehose").create_delivery_stream(
        DeliveryStreamName=name,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": f"arn:aws:iam::{sandbox.account_id}:role/r",
            **s3_body(),
        },
    )
    yield name
    sandbox.client("firehose").delete_delivery_stream(DeliveryStreamName=name)


def firehose_key(prefix: str, stream: str) -> str:
    return f"{prefix}{stream}-1-2026-11-30-09-59-00-{uuid.uuid4()}.gz"


def reader_at(sandbox: EmbeddedSandbox, now: datetime) -> LandedReader:
    return LandedReader(S3ObjectStore(sandbox.client("s3")), clock=lambda: now)


def test_records_are_found_landed_failed_waiting_and_missing(
    sandbox: EmbeddedSandbox, bucket: Any, stream_to_bucket: str, tmp_path: Path
) -> None:
    with_delimiter, bare, failed, late = (message(f"u{i}@example.com") for i in range(4))
    entries = journal_of(tmp_path, acked(with_delimiter, bare, failed, late))
    stranger = message("not-ours@example.com")
    # Firehose concatenates records; this object lost the delimiter of the second one.
    body = with_delimiter.data_bytes + stranger.data_bytes + bare.data_bytes.rstrip(b"\n")
    landed_key = firehose_key("audiences/year=2026/11/30/09/", stream_to_bucket)
    bucket.put_object(Bucket=BUCKET, Key=landed_key, Body=gzip.compress(body))
    error_line = {
        "attemptsMade": 4,
        "arrivalTimestamp": 1,
        "errorCode": "Lambda.FunctionError",
        "errorMessage": "the transform rejected it",
        "rawData": base64.b64encode(failed.data_bytes).decode(),
    }
    error_key = firehose_key("failed/processing-failed/2026/11/30/", stream_to_bucket)
    bucket.put_object(
        Bucket=BUCKET, Key=error_key, Body=gzip.compress(json.dumps(error_line).encode() + b"\n")
    )
    destination = read_destination(
        sandbox.client("firehose").describe_delivery_stream(DeliveryStreamName=stream_to_bucket)[
            "DeliveryStreamDescription"
        ]
    )

    soon = reader_at(sandbox, ACKED + timedelta(seconds=60)).check(destination, entries)
    by_id = {record.entry.message_id: record for record in soon.records}
    for found in (with_delimiter, bare):
        landing = by_id[found.message_id]
        assert landing.status is LandedStatus.LANDED
        assert landing.location == f"s3://{BUCKET}/{landed_key}"
        assert landing.landed_at is not None and landing.latency_seconds is not None
    failure = by_id[failed.message_id]
    assert failure.status is LandedStatus.FAILED
    assert failure.error == "Lambda.FunctionError: the transform rejected it"
    waiting = by_id[late.message_id]
    assert waiting.status is LandedStatus.WAITING
    assert waiting.expected_by == ACKED + timedelta(seconds=120)
    assert not soon.all_landed

    later = reader_at(sandbox, ACKED + timedelta(hours=1)).check(destination, entries)
    assert later.count(LandedStatus.MISSING) == 1 and later.count(LandedStatus.LANDED) == 2


def test_identical_records_are_each_found_once(
    sandbox: EmbeddedSandbox, bucket: Any, stream_to_bucket: str, tmp_path: Path
) -> None:
    first = message("same@example.com")
    second = OutgoingMessage(**{**first.__dict__, "message_id": "second"})
    entries = journal_of(tmp_path, acked(first, second))
    key = firehose_key("audiences/year=2026/11/30/09/", stream_to_bucket)
    bucket.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(first.data_bytes))
    destination = read_destination(
        {"Destinations": [{"ExtendedS3DestinationDescription": s3_body()}]}
    )
    report = reader_at(sandbox, ACKED + timedelta(hours=1)).check(destination, entries)
    assert [r.status for r in report.records] == [LandedStatus.LANDED, LandedStatus.MISSING]


def test_another_stream_objects_in_the_same_bucket_are_not_claimed(
    sandbox: EmbeddedSandbox, bucket: Any, stream_to_bucket: str, tmp_path: Path
) -> None:
    sent = message("shared@example.com")
    entries = journal_of(tmp_path, acked(sent))
    hour = "audiences/year=2026/11/30/09/"
    neighbour = firehose_key(hour, f"{stream_to_bucket}-eu")  # "orders" vs "orders-eu"
    bucket.put_object(Bucket=BUCKET, Key=neighbour, Body=gzip.compress(sent.data_bytes))
    bucket.put_object(Bucket=BUCKET, Key=f"{hour}{stream_to_bucket}-1-cut.gz", Body=b"\x1f\x8bno")
    described = sandbox.client("firehose").describe_delivery_stream(
        DeliveryStreamName=stream_to_bucket
    )
    destination = read_destination(described["DeliveryStreamDescription"])
    assert destination.stream_name == stream_to_bucket
    report = reader_at(sandbox, ACKED + timedelta(hours=1)).check(destination, entries)
    assert [r.status for r in report.records] == [LandedStatus.MISSING]


def test_an_operator_denied_the_bucket_is_told_the_policy_it_needs(
    sandbox: EmbeddedSandbox, tmp_path: Path
) -> None:
    # moto's S3 does not enforce IAM here: botocore's Stubber answers as S3 does to a denial.
    s3 = sandbox.client("s3")
    stubber = Stubber(s3)
    stubber.add_client_error("list_objects_v2", "AccessDenied", "Access Denied", 403)
    stubber.activate()
    kms = {"KMSEncryptionConfig": {"AWSKMSKeyARN": "arn:aws:kms:us-east-1:1:key/k"}}
    destination = read_destination(
        {
            "Destinations": [
                {"ExtendedS3DestinationDescription": s3_body(EncryptionConfiguration=kms)}
            ]
        }
    )
    entries = journal_of(tmp_path, acked(message("a@example.com")))
    report = LandedReader(S3ObjectStore(s3), partition="aws-cn").check(destination, entries)
    assert [r.status for r in report.records] == [LandedStatus.UNCONFIRMED]
    assert "may not read s3://landed-tests" in report.problem
    assert report.policy is not None
    statements = {s["Action"][0]: s["Resource"] for s in report.policy["Statement"]}
    assert statements["s3:ListBucket"] == ["arn:aws-cn:s3:::landed-tests"]
    assert statements["s3:GetObject"] == [
        "arn:aws-cn:s3:::landed-tests/audiences/*",
        "arn:aws-cn:s3:::landed-tests/failed/*",
    ]
    assert statements["kms:Decrypt"] == ["arn:aws:kms:us-east-1:1:key/k"]


# -- end to end: send, then `landed`, through the CLI on a real (moto) endpoint ---------------


def real_stream_settings(tmp_path: Path, sandbox: EmbeddedSandbox, stream: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(
        f"""
[connections.travel]
delivery_stream_name = "{stream}"
endpoint_url = "{sandbox.endpoint_url}"

[audiences.churn]
id = 7
external_name = "ChurnRisk"

[audiences.vip]
id = 8
external_name = "Vip"
"""
    )
    return path


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    status = main(list(argv))
    return status, json.loads(capsys.readouterr().out)


def test_cli_landed_follows_each_sent_record_to_the_bucket(
    capsys: pytest.CaptureFixture[str], sandbox: EmbeddedSandbox, stream: str, tmp_path: Path
) -> None:
    settings = ["--settings", str(real_stream_settings(tmp_path, sandbox, stream))]
    status, sent = run_json(
        capsys, *settings, "send", "add", "--count", "4", "--audience", "all", "--json"
    )
    assert status == 0 and sent["delivered"] == 4

    status, document = run_json(capsys, *settings, "landed", "--json", "--wait", "5")
    assert status == 0
    assert document["destination"]["type"] == "ExtendedS3"
    assert document["destination"]["prefix"] == "audiences/"
    assert document["destination"]["buffering_interval_seconds"] == 300
    assert (document["landed"], document["waiting"], document["missing"]) == (4, 0, 0)
    record_ids = {record["record_id"] for record in sent["records"]}
    assert {record["record_id"] for record in document["records"]} == record_ids
    assert sorted(record["audience"] for record in document["records"]) == [
        "ChurnRisk",
        "ChurnRisk",
        "Vip",
        "Vip",
    ]
    for record in document["records"]:
        assert record["location"].startswith(f"s3://{sandbox.bucket_name}/audiences/")
        assert record["landed_at"] and record["latency_seconds"] is not None


def test_cli_landed_exits_1_while_records_wait(
    capsys: pytest.CaptureFixture[str], sandbox: EmbeddedSandbox, stream: str, tmp_path: Path
) -> None:
    settings = ["--settings", str(real_stream_settings(tmp_path, sandbox, stream))]
    assert main([*settings, "send", "delete", "--json"]) == 0
    capsys.readouterr()
    # The record is acknowledged but the object is gone, as if Firehose still buffered it.
    s3 = sandbox.client("s3")
    for item in s3.list_objects_v2(Bucket=sandbox.bucket_name).get("Contents", []):
        if stream in item["Key"]:
            s3.delete_object(Bucket=sandbox.bucket_name, Key=item["Key"])
    status, document = run_json(capsys, *settings, "landed", "--json")
    assert status == 1
    (record,) = document["records"]
    assert record["status"] == "waiting" and record["expected_by"]
    status = main([*settings, "landed"])
    assert status == 1
    assert "[WAITING] delete" in capsys.readouterr().out


def test_unknown_audience_is_refused_with_the_known_ones(
    capsys: pytest.CaptureFixture[str], sandbox: EmbeddedSandbox, stream: str, tmp_path: Path
) -> None:
    settings = ["--settings", str(real_stream_settings(tmp_path, sandbox, stream))]
    assert main([*settings, "preview", "add", "--audience", "gold"]) == 2
    assert "known: churn, vip (or all)" in capsys.readouterr().err


def test_the_console_opens_on_the_audience_given(
    monkeypatch: pytest.MonkeyPatch, sandbox: EmbeddedSandbox, stream: str, tmp_path: Path
) -> None:
    import console.app

    opened: list[str | None] = []

    def run_console(loaded: object, **options: Any) -> int:
        opened.append(options["audience_name"])
        return 0

    monkeypatch.setattr(console.app, "run_console", run_console)
    settings = ["--settings", str(real_stream_settings(tmp_path, sandbox, stream))]
    assert main([*settings, "--audience", "vip"]) == 0
    assert main(settings) == 0
    assert opened == ["vip", None]


def test_preview_builds_the_chosen_audience_records(
    capsys: pytest.CaptureFixture[str], sandbox: EmbeddedSandbox, stream: str, tmp_path: Path
) -> None:
    settings = ["--settings", str(real_stream_settings(tmp_path, sandbox, stream))]
    status, one = run_json(capsys, *settings, "preview", "delete", "--audience", "churn", "--json")
    assert status == 0
    assert [(m["data"]["AudienceId"], m["data"]["AudienceName"]) for m in one["messages"]] == [
        (7, "ChurnRisk")
    ]
    status, every = run_json(capsys, *settings, "preview", "delete", "--audience", "all", "--json")
    assert [m["data"]["AudienceName"] for m in every["messages"]] == ["ChurnRisk", "Vip"]
    status, default = run_json(capsys, *settings, "preview", "delete", "--json")
    assert [m["data"]["AudienceName"] for m in default["messages"]] == ["LowEngagement"]


def test_a_stream_that_cannot_be_described_leaves_records_unconfirmed_with_why(
    capsys: pytest.CaptureFixture[str], sandbox: EmbeddedSandbox, tmp_path: Path
) -> None:
    name = f"gone-{uuid.uuid4().hex[:8]}"
    sandbox.ensure_stream(name)
    settings = ["--settings", str(real_stream_settings(tmp_path, sandbox, name))]
    assert main([*settings, "send", "delete", "--json"]) == 0
    capsys.readouterr()
    sandbox.client("firehose").delete_delivery_stream(DeliveryStreamName=name)
    status, document = run_json(capsys, *settings, "landed", "--json")
    assert status == 1
    assert document["unconfirmed"] == 1
    assert "could not be described" in document["problem"]
    assert "ResourceNotFoundException" in document["problem"]


def test_records_sent_to_an_earlier_sandbox_are_not_checked_and_said_so(tmp_path: Path) -> None:
    from engine.session import ConsoleSession
    from engine.settings_file import load_settings

    path = tmp_path / "settings.toml"
    path.write_text(
        f'[connections.t]\ndelivery_stream_name = "s"\n[delivery]\nstate_dir = "{tmp_path}"\n'
    )
    first = ConsoleSession(load_settings(path), use_sandbox=True)
    try:
        assert first.send(Action.DELETE).delivered == 1
        assert first.landed().count(LandedStatus.LANDED) == 1
    finally:
        first.close()
    second = ConsoleSession(load_settings(path), use_sandbox=True)
    try:
        report = second.landed()
    finally:
        second.close()
    assert report.records == ()
    assert "1 record(s) sent to an earlier sandbox are not checked" in report.problem


def test_a_journal_that_cannot_be_written_never_fails_a_delivered_send(tmp_path: Path) -> None:
    journal = LandedJournal(tmp_path / "a-file" / "landed.jsonl")
    (tmp_path / "a-file").write_text("not a directory")
    assert journal.record(acked(message("a@example.com")), "travel") is False
    assert journal.entries() == []
