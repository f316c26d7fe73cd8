"""Alert storm: 20,000 delivery events in 10 s into the running TUI (headless ``run_test``);
the time to handle a key press meanwhile (p95) and the memory growth, printed.

The storm goes exactly where a burst's events go: ``app.event_sink``, the digest sink the app
hands every ``ConsoleSession``. Keys switch tabs as ``console/commands.py`` binds them (F1
Settings, F4 Alerts). If the console cannot be imported or the storm cannot run, it says why on
stderr and exits 1: a benchmark that measured nothing must not pass for one that did.

    python bench/alert_storm.py [--events 20000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

from _sandbox_host import load_average, machine  # noqa: E402

if TYPE_CHECKING:
    from console.app import FirehoseConsoleApp


def storm_events(count: int) -> list:
    """A burst's events: throttled once then delivered, with the alert each failure raises."""
    from engine.alerts import Alert, AlertSample, Severity
    from engine.events import (
        AlertRaised,
        AttemptFailed,
        AttemptStarted,
        RecordDelivered,
    )
    from engine.failures import AlertType, Failure, FailureClass
    from engine.records import MessageKind

    now = datetime.now(UTC)
    throttled = Failure(FailureClass.THROTTLED, "ServiceUnavailableException", "Slow down.", 503)
    sample = AlertSample({"DeliveryStreamName": "storm"}, {"code": throttled.code})
    events: list = []
    n = 0
    while len(events) < count:
        message_id = f"storm-{n}"
        events += [
            AttemptStarted(message_id, MessageKind.ADD, 1, now),
            AttemptFailed(message_id, MessageKind.ADD, 1, throttled, True, 0.1, now),
            AlertRaised(
                Alert(AlertType.INTERNAL_SERVER_ERROR, Severity.WARNING, n + 1, now, now, sample)
            ),
            AttemptStarted(message_id, MessageKind.ADD, 2, now),
            RecordDelivered(message_id, MessageKind.ADD, f"id-{n}", 2, 0.1, now),
        ]
        n += 1
    return events[:count]


def resident_kib() -> int:
    """This process's resident memory (Linux), cheap enough to sample during the storm."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def make_app(settings_path: Path) -> FirehoseConsoleApp:
    from console.app import FirehoseConsoleApp
    from engine.settings_file import load_settings

    return FirehoseConsoleApp(load_settings(settings_path))


def pour(sink, events: list, seconds: float, threads: int, done: threading.Event) -> None:
    """Feed ``events`` to ``sink`` evenly over ``seconds`` from ``threads`` threads."""
    share = [events[i::threads] for i in range(threads)]

    def worker(mine: list) -> None:
        started = time.monotonic()
        for index, event in enumerate(mine):
            due = started + seconds * index / len(mine)
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sink(event)

    workers = [threading.Thread(target=worker, args=(part,), daemon=True) for part in share]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    done.set()


def p95(times: list[float]) -> float:
    return statistics.quantiles(times, n=20)[-1] if len(times) >= 20 else max(times)


async def storm(arguments: argparse.Namespace, settings_path: Path) -> None:
    from textual.events import Key
    from textual.widgets import TabbedContent

    events = storm_events(arguments.events)
    app = make_app(settings_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        sink = app.event_sink
        tabs = app.query_one(TabbedContent)
        keys = (("f4", "alerts"), ("f1", "settings"))
        peak = 0

        async def press_until(stop: threading.Event | float) -> list[float]:
            """Switch tabs by key until ``stop``; each time runs from the key reaching the app
            to the tab having switched (pilot.press would also wait for the whole process to go
            idle, which a storm never lets happen)."""
            nonlocal peak
            times: list[float] = []
            while not (
                stop.is_set() if isinstance(stop, threading.Event) else time.monotonic() > stop
            ):
                key, tab = keys[len(times) % 2]
                pressed = time.perf_counter()
                app.post_message(Key(key, None))
                while tabs.active != tab:
                    await asyncio.sleep(0.001)
                times.append(time.perf_counter() - pressed)
                peak = max(peak, resident_kib())
                await asyncio.sleep(0.05)
            return times

        quiet = await press_until(time.monotonic() + 3.0)  # the baseline: no storm
        gc.collect()
        before = peak = resident_kib()
        done = threading.Event()
        feeder = threading.Thread(
            target=pour, args=(sink, events, arguments.seconds, 4, done), daemon=True
        )
        started = time.monotonic()
        feeder.start()
        stormy = await press_until(done)
        poured = time.monotonic() - started
        await pilot.pause()
        gc.collect()
        after = resident_kib()
    print(f"{len(events):,} events in {poured:.1f} s ({len(events) / poured:,.0f}/s) into the TUI")
    for label, times in (("quiet (baseline)", quiet), ("during the storm", stormy)):
        print(
            f"key press handled, {label}: median {statistics.median(times) * 1000:.0f} ms, "
            f"p95 {p95(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms ({len(times)} presses)"
        )
    print(f"p95 ratio storm / quiet: {p95(stormy) / p95(quiet):.2f}")
    print(
        f"memory growth (resident set): {after - before:,} KiB after, {peak - before:,} KiB at peak"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    arguments = parser.parse_args()
    print(f"machine: {machine()}; load average {load_average()}")
    import tempfile

    with tempfile.TemporaryDirectory() as state:
        try:
            asyncio.run(storm(arguments, Path(state) / "absent.toml"))
        except Exception as error:  # a storm that did not run measured nothing: fail loudly
            sys.exit(f"alert storm could not run: {type(error).__name__}: {error}")


if __name__ == "__main__":
    main()
