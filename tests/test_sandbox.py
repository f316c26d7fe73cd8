"""The embedded sandbox: moto's server in-process, its stream, and reading back what arrived."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import uuid
from datetime import UTC
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.sandbox import EmbeddedSandbox, split_records
from engine.sandbox_answers import moto_own

ROOT = Path(__file__).resolve().parents[1]


def put(sandbox: EmbeddedSandbox, stream: str, *payloads: dict, delimiter: str = "\n") -> None:
    """One PutRecord for one payload, one PutRecordBatch for several."""
    firehose = sandbox.client("firehose")
    records = [{"Data": (json.dumps(p) + delimiter).encode()} for p in payloads]
    if len(records) == 1:
        firehose.put_record(DeliveryStreamName=stream, Record=records[0])
    else:
        response = firehose.put_record_batch(DeliveryStreamName=stream, Records=records)
        assert response["FailedPutCount"] == 0


# -- the server ---------------------------------------------------------------------------


def test_start_gives_a_loopback_endpoint_that_answers(sandbox: EmbeddedSandbox) -> None:
    assert sandbox.endpoint_url.startswith("http://127.0.0.1:")
    assert int(sandbox.endpoint_url.rsplit(":", 1)[1]) > 0
    identity = sandbox.client("sts").get_caller_identity()
    assert identity["Account"] == sandbox.account_id == "123456789012"


def test_start_again_keeps_the_same_server(sandbox: EmbeddedSandbox) -> None:
    assert sandbox.start() == sandbox.endpoint_url


def test_clients_use_the_sandbox_credentials_and_region(sandbox: EmbeddedSandbox) -> None:
    client = sandbox.client("firehose")
    credentials = client._request_signer._credentials  # what each request is signed with
    assert credentials.access_key == EmbeddedSandbox.ACCESS_KEY_ID
    assert credentials.secret_key == EmbeddedSandbox.SECRET_ACCESS_KEY
    assert client.meta.region_name == "us-east-1"
    assert client.meta.endpoint_url == sandbox.endpoint_url


def test_the_sandbox_stream_is_an_active_direct_put_stream_into_the_bucket(
    sandbox: EmbeddedSandbox,
) -> None:
    description = sandbox.client("firehose").describe_delivery_stream(
        DeliveryStreamName=sandbox.stream_name
    )["DeliveryStreamDescription"]
    assert description["DeliveryStreamType"] == "DirectPut"
    assert description["DeliveryStreamStatus"] == "ACTIVE"
    destination = description["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert destination["BucketARN"] == "arn:aws:s3:::firehose-console-sandbox"
    assert destination["RoleARN"] == "arn:aws:iam::123456789012:role/firehose-console-sandbox"
    assert destination["BufferingHints"] == {"SizeInMBs": 5, "IntervalInSeconds": 300}
    buckets = sandbox.client("s3").list_buckets()["Buckets"]
    assert "firehose-console-sandbox" in [bucket["Name"] for bucket in buckets]


def test_ensure_stream_adds_a_stream_once(sandbox: EmbeddedSandbox) -> None:
    name = f"sandbox-extra-{uuid.uuid4().hex[:8]}"
    firehose = sandbox.client("firehose")
    try:
        sandbox.ensure_stream(name)
        sandbox.ensure_stream(name)  # already there: no error
        assert name in firehose.list_delivery_streams(Limit=100)["DeliveryStreamNames"]
        description = firehose.describe_delivery_stream(DeliveryStreamName=name)
        assert description["DeliveryStreamDescription"]["DeliveryStreamType"] == "DirectPut"
    finally:
        firehose.delete_delivery_stream(DeliveryStreamName=name)


def test_a_stopped_sandbox_has_no_endpoint() -> None:
    sandbox = EmbeddedSandbox("never-started")
    with pytest.raises(RuntimeError, match="not running"):
        _ = sandbox.endpoint_url
    sandbox.stop()  # stopping what never ran is harmless


@pytest.fixture
def logging_as_in_a_fresh_process(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Undo what earlier sandboxes (and pytest's own log capture) did to the loggers, and log to
    stderr from the root as a front may: otherwise a missing silencer would go unnoticed.

    Uses capfd so that the root handler below writes to the stderr capfd captures."""
    import werkzeug._internal

    monkeypatch.setattr(werkzeug._internal, "_logger", None)
    for name in ("werkzeug", "moto"):
        logger = logging.getLogger(name)
        monkeypatch.setattr(logger, "handlers", [])
        monkeypatch.setattr(logger, "propagate", True)
        monkeypatch.setattr(logger, "level", logging.NOTSET)
    monkeypatch.setattr(logging.root, "handlers", [logging.StreamHandler()])
    logging.Logger.manager._clear_cache()  # type: ignore[attr-defined]  # private, not in typeshed


@pytest.mark.usefixtures("logging_as_in_a_fresh_process")
def test_starting_serving_and_stopping_print_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    with EmbeddedSandbox("quiet-stream", region="eu-west-1", bucket_name="quiet-bucket") as quiet:
        firehose = quiet.client("firehose")
        firehose.put_record(DeliveryStreamName="quiet-stream", Record={"Data": b'{"a":1}\n'})
        firehose.describe_delivery_stream(DeliveryStreamName="quiet-stream")
        with pytest.raises(firehose.exceptions.ResourceNotFoundException):
            firehose.describe_delivery_stream(DeliveryStreamName="no-such-stream")
        assert [r.decoded for r in quiet.delivered_records("quiet-stream")] == [{"a": 1}]
        endpoint = quiet.endpoint_url
    assert not quiet.running
    assert endpoint != ""
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


@pytest.mark.parametrize("front_logging", ["", "logging.basicConfig()"])
def test_a_fresh_process_prints_nothing(front_logging: str) -> None:
    # The first start in a process: werkzeug adds its own stderr handler when nothing handles
    # its logs, and a front that logs to stderr (as a CLI may) would print them otherwise.
    script = textwrap.dedent(
        f"""
        import logging
        {front_logging}
        from engine.sandbox import EmbeddedSandbox
        with EmbeddedSandbox("fresh") as sandbox:
            firehose = sandbox.client("firehose")
            firehose.put_record(DeliveryStreamName="fresh", Record={{"Data": b"{{}}"}})
            sandbox.client("s3").list_objects_v2(Bucket=sandbox.bucket_name)
            try:
                firehose.describe_delivery_stream(DeliveryStreamName="missing")
            except firehose.exceptions.ResourceNotFoundException:
                pass
            from engine.chaos import CHAOS_KINDS, ChaosPlan, install_chaos
            install_chaos(firehose, ChaosPlan(0.8, CHAOS_KINDS, seed=1))
            for _ in range(10):
                try:
                    firehose.put_record_batch(
                        DeliveryStreamName="fresh", Records=[{{"Data": b"{{}}"}}] * 3
                    )
                except Exception:
                    pass
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == ("", "")


def test_clients_ignore_the_users_aws_profile_and_proxy(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "missing-config"))
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "not-a-number")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    with EmbeddedSandbox("isolated") as isolated:
        firehose = isolated.client("firehose")
        description = firehose.describe_delivery_stream(DeliveryStreamName="isolated")
        assert description["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "ACTIVE"


def test_a_batch_is_answered_as_motos_own_serializer_answers_it(
    sandbox: EmbeddedSandbox, stream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sandbox writes PutRecordBatch's answer as JSON itself (README: "The embedded
    sandbox"): the same body and headers as moto's serializer, its RecordIds aside."""
    from moto.firehose.responses import FirehoseResponse

    firehose = sandbox.client("firehose")
    records = [{"Data": f'{{"n": {n}}}\n'.encode()} for n in range(300)]

    def answer() -> tuple[dict, dict]:
        response = firehose.put_record_batch(DeliveryStreamName=stream, Records=records)
        headers = response.pop("ResponseMetadata")["HTTPHeaders"]
        kept = ("content-type", "content-length")  # the others name a date or a request
        return response, {name: headers[name] for name in kept}

    straight, straight_headers = answer()
    assert FirehoseResponse.put_record_batch is not moto_own["put_record_batch"]
    monkeypatch.setattr(FirehoseResponse, "put_record_batch", moto_own["put_record_batch"])
    serialized, serialized_headers = answer()

    def without_ids(response: dict) -> dict:
        entries = response["RequestResponses"]
        assert all(len(entry["RecordId"]) == 36 for entry in entries)
        return {**response, "RequestResponses": [{**e, "RecordId": ""} for e in entries]}

    assert without_ids(straight) == without_ids(serialized)
    assert straight["FailedPutCount"] == 0 and len(straight["RequestResponses"]) == 300
    assert straight_headers == serialized_headers
    assert len(sandbox.delivered_records(stream)) == 600


# -- what arrived -------------------------------------------------------------------------


def test_a_put_record_arrives_as_one_record(sandbox: EmbeddedSandbox, stream: str) -> None:
    put(sandbox, stream, {"AudienceId": 1, "IsMember": True})
    [record] = sandbox.delivered_records(stream)
    assert record.data == b'{"AudienceId": 1, "IsMember": true}\n'
    assert record.decoded == {"AudienceId": 1, "IsMember": True}
    assert f"/{stream}-1-" in record.object_key
    assert record.last_modified.tzinfo == UTC


def test_a_newline_delimited_batch_is_split_into_its_records(
    sandbox: EmbeddedSandbox, stream: str
) -> None:
    put(sandbox, stream, {"n": 1}, {"n": 2}, {"n": 3})
    records = sandbox.delivered_records(stream)
    assert [r.data for r in records] == [b'{"n": 1}\n', b'{"n": 2}\n', b'{"n": 3}\n']
    assert [r.decoded for r in records] == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert len({r.object_key for r in records}) == 1  # moto writes one object per call


def test_records_without_a_delimiter_are_split_too(sandbox: EmbeddedSandbox, stream: str) -> None:
    put(sandbox, stream, {"n": 1}, {"text": "a } { b"}, {"n": [3]}, delimiter="")
    records = sandbox.delivered_records(stream)
    assert [r.data for r in records] == [b'{"n": 1}', b'{"text": "a } { b"}', b'{"n": [3]}']
    assert [r.decoded for r in records] == [{"n": 1}, {"text": "a } { b"}, {"n": [3]}]


def put_three_objects(sandbox: EmbeddedSandbox, stream: str) -> None:
    """Three puts, one object each: "first", then "second-a" and "second-b", then "third"."""
    put(sandbox, stream, {"n": "first"})
    put(sandbox, stream, {"n": "second-a"}, {"n": "second-b"})
    put(sandbox, stream, {"n": "third"})


def test_newest_object_first_records_of_one_object_in_written_order(
    sandbox: EmbeddedSandbox, stream: str
) -> None:
    put_three_objects(sandbox, stream)
    records = sandbox.delivered_records(stream)
    assert [r.decoded["n"] for r in records if r.decoded] == [
        "third",
        "second-a",
        "second-b",
        "first",
    ]
    times = [r.last_modified for r in records]
    assert times == sorted(times, reverse=True)


def test_the_newest_records_are_read_and_all_of_them_counted(
    sandbox: EmbeddedSandbox, stream: str
) -> None:
    """What the console's Delivered tab reads (README: "The embedded sandbox")."""
    put_three_objects(sandbox, stream)
    every = sandbox.delivered_records(stream)
    for newest in (0, 1, 2, 3, 4, 10):
        records, total = sandbox.newest_delivered_records(stream, newest)
        assert records == every[:newest] and total == 4
    assert sandbox.newest_delivered_records(stream) == (every, 4)


def test_records_are_filtered_by_their_stream(sandbox: EmbeddedSandbox, stream: str) -> None:
    longer = f"{stream}-eu"  # its objects' names start with the other stream's name
    sandbox.ensure_stream(longer)
    try:
        put(sandbox, stream, {"to": "short"})
        put(sandbox, longer, {"to": "long"})
        assert [r.decoded for r in sandbox.delivered_records(stream)] == [{"to": "short"}]
        assert [r.decoded for r in sandbox.delivered_records(longer)] == [{"to": "long"}]
        everything = [r.decoded for r in sandbox.delivered_records()]
        assert {"to": "short"} in everything and {"to": "long"} in everything
    finally:
        sandbox.client("firehose").delete_delivery_stream(DeliveryStreamName=longer)


def test_data_that_is_not_json_is_a_record_of_its_own(
    sandbox: EmbeddedSandbox, stream: str
) -> None:
    firehose = sandbox.client("firehose")
    firehose.put_record_batch(
        DeliveryStreamName=stream,
        Records=[{"Data": b'{"n":1}\n'}, {"Data": b"plain text\n"}, {"Data": b'{"n":2}\n'}],
    )
    records = sandbox.delivered_records(stream)
    assert [(r.data, r.decoded) for r in records] == [
        (b'{"n":1}\n', {"n": 1}),
        (b"plain text\n", None),
        (b'{"n":2}\n', {"n": 2}),
    ]


# -- splitting an object's bytes ----------------------------------------------------------


@pytest.mark.parametrize(
    ("blob", "expected"),
    [
        (b"", []),
        (b'{"a":1}', [(b'{"a":1}', {"a": 1})]),
        (b'{"a":1}\r\n{"b":2}\r\n', [(b'{"a":1}\r\n', {"a": 1}), (b'{"b":2}\r\n', {"b": 2})]),
        (b'{"a":1}\n\n', [(b'{"a":1}\n\n', {"a": 1})]),
        (b'junk{"a":1}', [(b"junk", None), (b'{"a":1}', {"a": 1})]),
        (b'{"a":1}{"b":', [(b'{"a":1}', {"a": 1}), (b'{"b":', None)]),
        (b"[1, 2]\n7\n", [(b"[1, 2]\n", None), (b"7\n", None)]),
        (b'{"a":"\xff"}\n', [(b'{"a":"\xff"}\n', None)]),
        ('{"name":"Zoë"}\n'.encode(), [('{"name":"Zoë"}\n'.encode(), {"name": "Zoë"})]),
    ],
)
def test_split_records(blob: bytes, expected: list) -> None:
    assert split_records(blob) == expected


json_objects = st.dictionaries(
    st.text(max_size=8),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=12),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=6,
    ),
    max_size=4,
)


@given(
    documents=st.lists(json_objects, max_size=6),
    delimiter=st.sampled_from(["\n", "", "\r\n", " ", "\t\n"]),
    ensure_ascii=st.booleans(),
)
def test_split_records_recovers_every_record_as_written(
    documents: list[dict], delimiter: str, ensure_ascii: bool
) -> None:
    written = [(json.dumps(d, ensure_ascii=ensure_ascii) + delimiter).encode() for d in documents]
    assert split_records(b"".join(written)) == list(zip(written, documents, strict=True))


@given(st.binary(max_size=200))
def test_split_records_never_loses_or_invents_bytes(blob: bytes) -> None:
    records = split_records(blob)
    assert b"".join(data for data, _ in records) == blob
    for data, decoded in records:
        if decoded is not None:
            assert json.loads(data) == decoded
