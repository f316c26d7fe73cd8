"""Alert storm: 20,000 delivery events in 10 s into the running TUI (headless ``run_test``);
the time to handle a key press meanwhile (p95) and the memory growth, printed.

WRITTEN BEFORE THE TUI EXISTED IN THIS BRANCH, against the API we expect it to have:

- ``console.app.FirehoseConsoleApp(loaded_settings)`` — the app, given ``LoadedSettings``;
- ``app.event_sink`` — the ``EventSink`` the app hands its ``ConsoleSession`` (for the storm
  to go exactly where a burst's events go: ideally an ``engine.event_digest.DigestSink``);
- the tab keys of ``console/commands.py`` (F1 Settings, F4 Alerts).

Until ``console.app`` imports, it prints "TUI not present" and exits 0. If the app differs from
the above, it says what it could not find; adjust the two lookups below (``make_app`` and
``find_event_sink``) when the TUI lands.

    python bench/alert_storm.py [--events 20000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import threading
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

from _sandbox_host import load_average, machine  # noqa: E402


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


def make_app(settings_path: Path):
    from console.app import FirehoseConsoleApp
    from engine.settings_file import load_settings

    return FirehoseConsoleApp(load_settings(settings_path))


def find_event_sink(app):
    sink = getattr(app, "event_sink", None)
    if callable(sink):
        return sink
    session = getattr(app, "session", None)
    return getattr(session, "sink", None)


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


async def storm(arguments: argparse.Namespace, settings_path: Path) -> None:
    events = storm_events(arguments.events)
    app = make_app(settings_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        sink = find_event_sink(app)
        if sink is None:
            print("TUI present, but it exposes no event sink (expected app.event_sink)")
            return
        gc.collect()
        tracemalloc.start()
        before, _ = tracemalloc.get_traced_memory()
        done = threading.Event()
        feeder = threading.Thread(
            target=pour, args=(sink, events, arguments.seconds, 4, done), daemon=True
        )
        started = time.monotonic()
        feeder.start()
        key_times: list[float] = []
        keys = ("f4", "f1")
        while not done.is_set():
            pressed = time.perf_counter()
            await pilot.press(keys[len(key_times) % 2])
            key_times.append(time.perf_counter() - pressed)
            await asyncio.sleep(0.05)
        poured = time.monotonic() - started
        await pilot.pause()
        gc.collect()
        after, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    p95 = statistics.quantiles(key_times, n=20)[-1] if len(key_times) >= 20 else max(key_times)
    print(f"{len(events):,} events in {poured:.1f} s ({len(events) / poured:,.0f}/s) into the TUI")
    print(
        f"key press handled in: median {statistics.median(key_times) * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms, max {max(key_times) * 1000:.0f} ms ({len(key_times)} presses)"
    )
    print(
        f"memory growth (Python allocations): {(after - before) / 1024:,.0f} KiB after, "
        f"{(peak - before) / 1024:,.0f} KiB at peak"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    arguments = parser.parse_args()
    print(f"machine: {machine()}; load average {load_average()}")
    if not (ROOT / "console" / "app.py").exists():  # not another checkout's, via an install
        print("TUI not present (no console/app.py in this checkout): nothing to measure")
        return
    try:
        import console.app  # noqa: F401
    except ImportError as error:
        print(f"TUI not present ({error}): nothing to measure")
        return
    import tempfile

    with tempfile.TemporaryDirectory() as state:
        try:
            asyncio.run(storm(arguments, Path(state) / "absent.toml"))
        except Exception as error:  # the TUI is not what this script expected
            print(f"TUI present, but the storm could not run: {type(error).__name__}: {error}")


if __name__ == "__main__":
    main()
