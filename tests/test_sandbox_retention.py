"""The embedded sandbox's bucket keeps only its newest objects (README: "The embedded sandbox"):
a long burst no longer grows the console's memory with every record, and every record the
landed journal still knows stays findable (README: "Where records land")."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

import pytest

import engine.sandbox
from engine.landed import LandedStatus
from engine.landed_journal import MAX_LANDED_ENTRIES
from engine.records import Action
from engine.sandbox import EmbeddedSandbox
from engine.session import ConsoleSession
from engine.settings_file import load_settings

SETTINGS = """
[connections.travel]
delivery_stream_name = "{stream}"

[delivery]
concurrency = 1
"""
SENT = 4_000  # batched: eight objects of 500 records, a few hundred bytes each
# One call at a time, so the objects are written in the order the records were sent; the
# sandbox keeps the newest records the landed journal knows and one call's more.
KEPT_AT_LEAST = MAX_LANDED_ENTRIES + 500


def customer_number(decoded: dict[str, object] | None) -> int:
    assert decoded is not None
    identities = decoded["UserIdentities"]
    assert isinstance(identities, dict)
    return int(str(identities["CustomerId"]).rsplit("-", 1)[1])


@pytest.mark.parametrize("budget_bytes", [300_000, 1_000_000])
def test_a_burst_past_the_budget_keeps_the_newest_objects_and_the_journal_finds_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, budget_bytes: int
) -> None:
    monkeypatch.setattr(engine.sandbox, "SANDBOX_BUCKET_BUDGET_BYTES", budget_bytes)
    path = tmp_path / "settings.toml"
    path.write_text(SETTINGS.format(stream=f"kept-{uuid.uuid4().hex[:8]}"))
    session = ConsoleSession(load_settings(path), use_sandbox=True, sleep=lambda seconds: None)
    try:
        report = session.send(Action.ADD, count=SENT, batch=True)
        in_bucket = session.delivered_records()
        landed = session.landed()
        assert session.sandbox().bucket_keep_records == KEPT_AT_LEAST
    finally:
        session.close()

    assert report.delivered == SENT
    numbers = sorted(customer_number(record.decoded) for record in in_bucket)
    # Oldest deleted first: what is left is the burst's newest records, each once.
    assert numbers == list(range(SENT - len(numbers) + 1, SENT + 1))
    assert KEPT_AT_LEAST <= len(numbers) < SENT
    # Within the budget, unless the objects holding the newest records kept exceed it alone.
    per_object = Counter(record.object_key for record in in_bucket)
    oldest = min(in_bucket, key=lambda record: record.last_modified).object_key
    kept_bytes = sum(len(record.data) for record in in_bucket)
    assert kept_bytes <= budget_bytes or len(numbers) - per_object[oldest] < KEPT_AT_LEAST
    # Every record the landed journal keeps is found in the bucket.
    assert len(landed.records) == MAX_LANDED_ENTRIES
    assert landed.count(LandedStatus.LANDED) == MAX_LANDED_ENTRIES


def test_a_stopped_sandbox_stops_trimming_and_other_buckets_are_never_trimmed(
    tmp_path: Path,
) -> None:
    name = f"trim-{uuid.uuid4().hex[:8]}"
    with EmbeddedSandbox(name, bucket_budget_bytes=1, bucket_keep_records=3) as sandbox:
        sandbox.client("s3").create_bucket(Bucket="elsewhere")
        firehose, s3 = sandbox.client("firehose"), sandbox.client("s3")
        for number in range(3):
            firehose.put_record(DeliveryStreamName=name, Record={"Data": b'{"n": %d}\n' % number})
            s3.put_object(Bucket="elsewhere", Key=f"other-{number}", Body=b"x" * 1000)
        # One record per object: the newest three records are all of them, none deleted.
        assert len(sandbox.delivered_records(name)) == 3
        firehose.put_record(DeliveryStreamName=name, Record={"Data": b'{"n": 3}\n'})
        kept = [record.decoded for record in sandbox.delivered_records(name)]
        assert kept == [{"n": 3}, {"n": 2}, {"n": 1}]  # the oldest went
        listed = s3.list_objects_v2(Bucket="elsewhere")["Contents"]
        assert [item["Key"] for item in listed] == ["other-0", "other-1", "other-2"]
    with EmbeddedSandbox(f"{name}-next", bucket_budget_bytes=1 << 30) as later:
        later.client("firehose").put_record(DeliveryStreamName=name, Record={"Data": b'{"n": 4}\n'})
        assert len(later.delivered_records(name)) == 4  # the first sandbox trims no more
