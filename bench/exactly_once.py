"""Delivered means delivered: a burst through partial-batch chaos lands each record in S3 once.

On one embedded sandbox whose chaos fails records inside PutRecordBatch calls (those records
are really not written, as with Firehose), it sends N messages with ``send --batch`` and reads
the S3 destination back record by record. For contrast, a forwarder that re-sends the whole
batch whenever any record in it failed runs through the same chaos into a stream of its own.

    python bench/exactly_once.py [--count 5000] [--failure-rate 0.5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH)]

from _sandbox_host import load_average, machine  # noqa: E402

SETTINGS = """
[connections.bench]
delivery_stream_name = "bench-exactly-once"

[delivery]
state_dir = "{state}"
max_attempts = 20
backoff_base_seconds = 0.01
backoff_cap_seconds = 0.1

[sandbox]
failure_rate = {rate}
failures = ["partial-batch"]
seed = 11
"""
WHOLE_BATCH_STREAM = "bench-whole-batch-resend"


def customer_ids(records) -> Counter[str]:
    return Counter(
        record.decoded["UserIdentities"]["CustomerId"] for record in records if record.decoded
    )


def whole_batch_resend(sandbox, payloads: list[bytes], rate: float) -> int:
    """Re-send every batch until a call of it has no failed record; returns calls made."""
    from botocore.config import Config

    from engine.chaos import ChaosPlan, install_chaos

    client = sandbox.client("firehose", Config(retries={"total_max_attempts": 1}))
    install_chaos(client, ChaosPlan(rate, ("partial-batch",), seed=11))
    calls = 0
    for start in range(0, len(payloads), 500):
        records = [{"Data": data} for data in payloads[start : start + 500]]
        while True:
            calls += 1
            response = client.put_record_batch(
                DeliveryStreamName=WHOLE_BATCH_STREAM, Records=records
            )
            if response["FailedPutCount"] == 0:
                break
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--failure-rate", type=float, default=0.5)
    arguments = parser.parse_args()

    from engine.records import Action
    from engine.session import ConsoleSession
    from engine.settings_file import load_settings

    print(f"machine: {machine()}; load average {load_average()}")
    with tempfile.TemporaryDirectory() as state:
        path = Path(state) / "settings.toml"
        path.write_text(SETTINGS.format(state=state, rate=arguments.failure_rate))
        session = ConsoleSession(load_settings(path), use_sandbox=True)
        try:
            messages = session.burst_messages(Action.ADD, arguments.count)
            started = time.perf_counter()
            report = session.send_messages(messages, batch=True)
            elapsed = time.perf_counter() - started
            landed = customer_ids(session.delivered_records())
            sends = sum(outcome.attempts for outcome in report.outcomes)
            resent = sum(1 for outcome in report.outcomes if outcome.attempts > 1)

            sandbox = session.sandbox()
            sandbox.ensure_stream(WHOLE_BATCH_STREAM)
            calls = whole_batch_resend(
                sandbox, [m.data_bytes for m in messages], arguments.failure_rate
            )
            naive = customer_ids(sandbox.delivered_records(WHOLE_BATCH_STREAM))
        finally:
            session.close()

    expected = {m.data["UserIdentities"]["CustomerId"] for m in messages}
    duplicates = sum(count - 1 for count in landed.values())
    missing = len(expected - set(landed))
    print(
        f"partial-batch chaos: {arguments.failure_rate:.0%} of PutRecordBatch calls fail "
        "about half of their records (not written)"
    )
    print(
        f"engine (send --batch): {report.requested:,} requested, {report.delivered:,} "
        f"delivered (RecordId back), {report.failed:,} failed, in {elapsed:.1f} s; "
        f"{resent:,} records needed more than one attempt, {sends:,} record-sends in all"
    )
    verdict = "exactly once" if not duplicates and not missing else "NOT exactly once"
    print(
        f"  S3 holds {len(landed):,} distinct records of {len(expected):,}: "
        f"{duplicates:,} duplicates, {missing:,} missing — {verdict}"
    )
    naive_duplicates = sum(count - 1 for count in naive.values())
    print(
        f"whole-batch re-send: {calls:,} calls; S3 holds {sum(naive.values()):,} records for "
        f"{len(naive):,} distinct ones: {naive_duplicates:,} duplicates"
    )
    print(f"load average after: {load_average()}")
    if duplicates or missing:
        sys.exit(1)


if __name__ == "__main__":
    main()
