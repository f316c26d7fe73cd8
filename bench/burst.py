"""The whole CLI command against a raw boto3 loop, each in its own process, on one moto server.

    (w) ``firehose-console send add --count N --batch --json`` — the whole command: start-up,
        settings, building, journaling, sending, events and the JSON document
    (r) a raw boto3 ``put_record_batch`` loop of 500 records per call, in its own process
    (q) the same loop keeping the stream's quota (5 MiB/s in us-east-1), as the CLI does

against the same sandbox (an EmbeddedSandbox in a child process, reached by the CLI through a
settings file's ``endpoint_url``, as a real stream would be), with the same records, byte for
byte. Prints records/s of each (wall time of the whole process), w/r (goal ≥ 1.0) and w/q, the peak
resident memory (``ru_maxrss``) of the CLI at N and 10·N and their ratio (goal ≤ 1.3), and,
with ``--million``, a run of 1,000,000 records. Prints the CPU each process and the sandbox
spent per record (what bounds each on a machine of two cores, and less sensitive to other
work than the rates), and the machine's load before and after.

N is 100,000 by default, as the issue measures it (start-up then weighs what it weighs there),
so the memory check's 10·N is the million.

    python bench/burst.py [--count 100000] [--reps 3] [--million]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]  # this checkout's engine, then the helpers

from _sandbox_host import SETTINGS, BenchSandbox, load_average, machine  # noqa: E402

STREAM = "bench-cli"
REGION = "us-east-1"

# The raw loop, as a user would write it: its records are the CLI's own, byte for byte (the
# engine's synthetic user n, every identity numbered n: ``template % n`` per record, checked
# against the engine's records before the runs). With a quota (bytes per second) it also keeps
# to it as a polite client would: before each call it sleeps until the bytes sent so far are
# within what the quota allows since the start, plus a tenth of a second's worth (the CLI's
# token buckets let no more through at once).
RAW_LOOP = """
import sys, time, boto3
from botocore.config import Config

endpoint, count, template = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
quota = float(sys.argv[4])  # bytes per second; 0: none
client = boto3.session.Session(
    aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
    aws_secret_access_key="bench-secret-not-a-real-key",
    region_name="us-east-1",
).client(
    "firehose",
    endpoint_url=endpoint,
    config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, max_pool_connections=10),
)
accepted = sent_bytes = 0
started = time.monotonic()
for start in range(1, count + 1, 500):
    records = [{"Data": template % ((n,) * 7)} for n in range(start, min(start + 500, count + 1))]
    if quota:
        size = sum(len(record["Data"]) for record in records)
        wait = (sent_bytes + size - quota / 10) / quota - (time.monotonic() - started)
        if wait > 0:
            time.sleep(wait)
        sent_bytes += size
    response = client.put_record_batch(DeliveryStreamName="STREAM_NAME", Records=records)
    accepted += len(records) - response["FailedPutCount"]
print(accepted)
"""


def record_template(records: dict[int, str]) -> str:
    """The engine's synthetic users' record as a ``%``-template of their number ``n``, checked
    to give exactly the engine's records (``records``: user number → its record, user 1 among
    them)."""
    template = (
        records[1]
        .replace("%", "%%")
        .replace('-1"', '-%d"')
        .replace("+1@", "+%d@")
        .replace('"86753091"', '"8675309%d"')
    )
    for number, expected in records.items():
        if template % ((number,) * 7) != expected:
            raise SystemExit(f"the raw loop's record {number} differs from the CLI's: {expected}")
    return template


# CPU seconds (user + system) of the last child run_child waited for.
LAST_CPU: list[float] = [0.0]


def run_child(argv: list[str], stdout) -> tuple[float, int, int]:
    """(wall seconds, exit status, peak resident KiB) of one child process (its CPU seconds
    in ``LAST_CPU``)."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE, cwd=ROOT)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    LAST_CPU[0] = usage.ru_utime + usage.ru_stime
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        assert process.stderr is not None
        raise SystemExit(f"{argv[:4]} failed: {process.stderr.read().decode()[-2000:]}")
    return elapsed, process.returncode, usage.ru_maxrss


def cli_run(settings: Path, count: int, out: Path) -> tuple[float, int, dict]:
    """The whole CLI command; checks the JSON accounts for every record, delivered."""
    argv = [sys.executable, "-m", "console", "--settings", str(settings), "send", "add"]
    argv += ["--count", str(count), "--batch", "--json"]
    with out.open("w") as stdout:
        elapsed, _, peak = run_child(argv, stdout)
    document = document_summary(out)
    if document["delivered"] != count or document["records"] != count:
        raise SystemExit(f"the CLI lost track: {document['delivered']} of {count} delivered")
    return elapsed, peak, document


# The CLI's document is read in a process of its own. Parsed here, a million records' document
# would grow this process by hundreds of MiB, and Linux counts the parent's resident memory at
# the fork into the next child's ru_maxrss (exec keeps the high-water mark): the next CLI's peak
# would then be this script's, not its own.
SUMMARY = """
import json, sys
document = json.load(open(sys.argv[1]))
print(json.dumps({"delivered": document["delivered"], "records": len(document["records"]),
                  "elapsed_seconds": document["elapsed_seconds"]}))
"""


def document_summary(out: Path) -> dict:
    """The delivered count, the number of records listed and the send's elapsed seconds of
    the CLI's ``send --json`` document in ``out``."""
    done = subprocess.run(
        [sys.executable, "-c", SUMMARY, str(out)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def raw_run(endpoint: str, count: int, template: str, quota: float = 0) -> tuple[float, int]:
    script = RAW_LOOP.replace("STREAM_NAME", STREAM)
    argv = [sys.executable, "-c", script, endpoint, str(count), template, str(quota)]
    with tempfile.TemporaryFile() as stdout:
        elapsed, _, peak = run_child(argv, stdout)
        stdout.seek(0)
        accepted = int(stdout.read())
    if accepted != count:
        raise SystemExit(f"the raw loop got {accepted} of {count} accepted")
    return elapsed, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="N records")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument(
        "--million", action="store_true", help="also send 1,000,000 (when 10·N is not that)"
    )
    arguments = parser.parse_args()
    count = arguments.count

    from engine.quotas import direct_put_quota
    from engine.records import Action, iter_burst_messages
    from engine.settings_file import load_settings

    with tempfile.TemporaryDirectory() as state, BenchSandbox([STREAM], REGION) as sandbox:
        settings = Path(state) / "settings.toml"
        settings.write_text(
            SETTINGS.format(
                stream=STREAM, region=REGION, endpoint=sandbox.endpoint_url, state=state
            )
        )
        settings_model = load_settings(settings).settings
        sizes: list[int] = []
        checked: dict[int, str] = {}  # the records the raw loop's template is checked against
        burst = iter_burst_messages(settings_model, Action.ADD, count, timestamp=1)
        for number, message in enumerate(burst, start=1):
            sizes.append(message.size_bytes)
            if number in (1, 2, 10, 999, 1_000, count):
                checked[number] = message.data_bytes.decode()
        template = record_template(checked)
        out = Path(state) / "send.json"
        print(f"machine: {machine()}")
        print(f"sandbox: one EmbeddedSandbox in a child process at {sandbox.endpoint_url}")
        mean_size = sum(sizes) / len(sizes)
        print(
            f"records: the CLI's, {min(sizes)}–{max(sizes)} bytes, {mean_size:.0f} on average "
            f"(every identity numbered); the raw loops send the same records; N = {count:,}"
        )
        # The CLI keeps to the stream's quota (5 MiB/s in us-east-1), the raw loop (r) does not:
        # whatever the CPU, the CLI's send cannot beat this many records/s. The loop (q) keeps it.
        quota = direct_put_quota(REGION)
        cap = quota.bytes_per_second / mean_size
        print(
            f"quota: {quota.bytes_per_second / 2**20:g} MiB/s: the CLI's send, and the loop (q), "
            f"are capped at {cap:,.0f} of these records/s"
        )
        print(f"load average before: {load_average()}")
        cli_run(settings, 1_000, out)  # warm-up: the sandbox's code paths, the disk cache
        raw_run(sandbox.endpoint_url, 1_000, template)
        cli_rates: list[float] = []
        raw_rates: list[float] = []
        quota_rates: list[float] = []
        sends: list[float] = []
        peaks: list[int] = []
        # CPU µs per record: the CLI's process, the raw loop's, the sandbox's for each
        cpu: dict[str, list[float]] = {"cli": [], "raw": [], "cli server": [], "raw server": []}

        def server_cpu() -> float:
            return sandbox.cpu_seconds() or 0.0

        for _ in range(arguments.reps):  # interleaved: drift hits both alike
            before = server_cpu()
            elapsed, peak, document = cli_run(settings, count, out)
            cpu["cli server"].append(1e6 * (server_cpu() - before) / count)
            cpu["cli"].append(1e6 * LAST_CPU[0] / count)
            cli_rates.append(count / elapsed)
            sends.append(document["elapsed_seconds"])
            peaks.append(peak)
            before = server_cpu()
            elapsed, _ = raw_run(sandbox.endpoint_url, count, template)
            cpu["raw server"].append(1e6 * (server_cpu() - before) / count)
            cpu["raw"].append(1e6 * LAST_CPU[0] / count)
            raw_rates.append(count / elapsed)
            elapsed, _ = raw_run(sandbox.endpoint_url, count, template, quota.bytes_per_second)
            quota_rates.append(count / elapsed)
        cli, raw = statistics.median(cli_rates), statistics.median(raw_rates)
        polite = statistics.median(quota_rates)
        send_phase = count / statistics.median(sends)
        print(f"\nrecords/s, whole process, median of {arguments.reps} (min–max)")
        print(
            f"  (w) CLI send --batch --json     {cli:>9,.0f}  "
            f"({min(cli_rates):,.0f}–{max(cli_rates):,.0f}); "
            f"its send phase alone {send_phase:,.0f}"
        )
        print(
            f"  (r) raw put_record_batch loop   {raw:>9,.0f}  "
            f"({min(raw_rates):,.0f}–{max(raw_rates):,.0f})"
        )
        print(
            f"  (q) that loop keeping the quota {polite:>9,.0f}  "
            f"({min(quota_rates):,.0f}–{max(quota_rates):,.0f})"
        )
        print(f"  w/r = {cli / raw:.2f}   (goal ≥ 1.0: {'met' if cli >= raw else 'MISSED'})")
        print(f"  w/q = {cli / polite:.2f}   (both held to the quota)")
        median = {what: statistics.median(values) for what, values in cpu.items()}
        print("CPU µs per record (start-up included), median: what bounds each on two cores")
        print(
            f"  CLI process {median['cli']:.0f}, the sandbox meanwhile "
            f"{median['cli server']:.0f} (they overlap: the larger bounds the CLI)"
        )
        print(
            f"  raw loop process {median['raw']:.0f}, the sandbox meanwhile "
            f"{median['raw server']:.0f} (one after the other: their sum bounds the loop)"
        )

        peak_n = statistics.median(peaks)
        elapsed, peak_10n, _ = cli_run(settings, 10 * count, out)
        print("\npeak memory of the CLI (ru_maxrss)")
        print(f"  N   = {count:>9,}: {peak_n / 1024:7.1f} MiB")
        print(
            f"  10N = {10 * count:>9,}: {peak_10n / 1024:7.1f} MiB "
            f"({10 * count / elapsed:,.0f} records/s)"
        )
        ratio = peak_10n / peak_n
        print(f"  10N/N = {ratio:.2f}   (goal ≤ 1.3: {'met' if ratio <= 1.3 else 'MISSED'})")
        if 10 * count == 1_000_000:
            print("  (10N is the million: 1,000,000 records run)")
        elif arguments.million:
            elapsed, peak, _ = cli_run(settings, 1_000_000, out)
            print(
                f"\n1,000,000 records: {elapsed:,.1f} s, {1_000_000 / elapsed:,.0f} records/s, "
                f"peak {peak / 1024:.1f} MiB"
            )
        print(f"\nload average after: {load_average()}")


if __name__ == "__main__":
    main()
