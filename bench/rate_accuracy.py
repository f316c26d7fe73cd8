"""Rate accuracy: ``send --rate R`` for 10 seconds holds R within 5 %.

Runs the CLI itself (``python -m console … send add --count 10·R --rate R --json``) on the
embedded sandbox, one record per call and then with ``--batch``, and prints the achieved rate:
records delivered (a RecordId came back) over the send's elapsed time, as the JSON reports it.

    python bench/rate_accuracy.py [--single-rate 50] [--batch-rate 1000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

from _sandbox_host import load_average, machine  # noqa: E402

TOLERANCE = 0.05


def send_at_rate(settings: Path, rate: float, seconds: float, batch: bool) -> tuple[dict, int]:
    count = round(rate * seconds)
    command = [
        sys.executable,
        "-m",
        "console",
        "--settings",
        str(settings),
        "--sandbox",
        "send",
        "add",
        "--count",
        str(count),
        "--rate",
        f"{rate:g}",
        "--json",
    ]
    if batch:
        command.append("--batch")
    # cwd first on sys.path: this checkout's console and engine, whatever is installed.
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=seconds * 6 + 60
    )
    if result.returncode not in (0, 1):
        raise SystemExit(f"send failed ({result.returncode}): {result.stderr.strip()}")
    return json.loads(result.stdout), count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--single-rate", type=float, default=50.0)
    parser.add_argument("--batch-rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    arguments = parser.parse_args()
    print(f"machine: {machine()}; load average {load_average()}")
    failures = 0
    with tempfile.TemporaryDirectory() as state:
        settings = Path(state) / "settings.toml"
        settings.write_text(
            '[connections.bench]\ndelivery_stream_name = "bench-rate"\n'
            f'[delivery]\nstate_dir = "{state}"\n'
        )
        for label, rate, batch in (
            ("one record per call", arguments.single_rate, False),
            ("--batch", arguments.batch_rate, True),
        ):
            document, count = send_at_rate(settings, rate, arguments.seconds, batch)
            elapsed = document["elapsed_seconds"]
            achieved = document["delivered"] / elapsed
            error = achieved / rate - 1
            within = abs(error) <= TOLERANCE
            failures += not within
            print(
                f"--rate {rate:g} ({label}): {document['delivered']:,} of {count:,} delivered "
                f"in {elapsed:.2f} s = {achieved:,.1f} records/s, {error:+.1%} "
                f"({'within' if within else 'OUTSIDE'} ±{TOLERANCE:.0%})"
            )
    print(f"load average after: {load_average()}")
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    os.environ.pop("FIREHOSE_CONSOLE_SANDBOX__FAILURE_RATE", None)  # no chaos in this figure
    main()
