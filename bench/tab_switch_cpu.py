"""The main thread's CPU time per tab switch, in-process, console against bare Textual.

``bench/console_speed.py`` measures what a person sees (tmux, wall clock), which moves with
whatever else shares the two cores. This measures the work itself, to decide what to change:
each app runs headless (``App.run_test`` at 80×24) in a process of its own, and the keys f1–f6
go round and round to each in turn (interleaved, so both see the same machine). For each switch,
the thread's CPU time (``time.thread_time``) from the key to the end of the first screen update
that lays the new tab out and paints it, and until the app is idle again.

    python bench/tab_switch_cpu.py [--rounds 8] [--wide]

The console runs on the embedded sandbox without verifying (no settings file), every tab visited
once before measuring: repeat visits, as a person makes them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

from _sandbox_host import load_average, machine  # noqa: E402

KEYS = ("f1", "f2", "f3", "f4", "f5", "f6")


def serve(which: str, size: tuple[int, int]) -> None:
    """Run one app; switch tabs on the keys read from stdin, one per line; print the CPU
    milliseconds to the first paint and until idle for each."""
    os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp()
    from textual.app import App
    from textual.screen import Screen

    painted: dict[str, float | None] = {"at": None}
    waiting = {"armed": False}
    lay_out = Screen._refresh_layout

    def lay_out_and_note(screen: Screen[object], *args: object, **options: object) -> None:
        lay_out(screen, *args, **options)  # type: ignore[arg-type]
        if waiting["armed"] and not options.get("scroll"):
            waiting["armed"] = False
            painted["at"] = time.thread_time()

    Screen._refresh_layout = lay_out_and_note  # type: ignore[method-assign,assignment]

    app: App[Any]
    if which == "bare":
        from bare_tabs_app import BareTabsApp

        app = BareTabsApp()
    else:
        from console.app import FirehoseConsoleApp
        from engine.settings_file import load_settings

        app = FirehoseConsoleApp(
            load_settings(Path(tempfile.mkdtemp()) / "absent.toml"), auto_verify=False
        )
    app.animation_level = "none"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with app.run_test(size=size) as pilot:
            await pilot.pause(3.0)  # the first screen's background work
            for key in KEYS:  # first visits out of the way
                await pilot.press(key)
                await pilot.pause()
            await pilot.pause(0.3)
            print("ready", file=sys.__stdout__, flush=True)
            while key := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
                started = time.thread_time()
                painted["at"] = None
                waiting["armed"] = True
                await pilot.press(key)
                await pilot.pause()
                idle = time.thread_time()
                first = painted["at"] if painted["at"] is not None else idle
                line = f"{(first - started) * 1000:.2f} {(idle - started) * 1000:.2f}"
                print(line, file=sys.__stdout__, flush=True)

    asyncio.run(main())


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def measure(rounds: int, wide: bool) -> None:
    size = ["--wide"] if wide else []
    apps = {
        which: subprocess.Popen(
            [sys.executable, __file__, "--serve", which, *size],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for which in ("bare", "console")
    }
    for which, process in apps.items():
        assert process.stdin is not None and process.stdout is not None
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{which} did not start")
    figures: dict[str, tuple[list[float], list[float]]] = {which: ([], []) for which in apps}
    for _ in range(rounds):
        for key in KEYS:
            for which, process in apps.items():
                assert process.stdin is not None and process.stdout is not None
                process.stdin.write(key + "\n")
                process.stdin.flush()
                first, idle = map(float, process.stdout.readline().split())
                figures[which][0].append(first)
                figures[which][1].append(idle)
    for process in apps.values():
        assert process.stdin is not None
        process.stdin.write("\n")
        process.stdin.close()
        process.wait(timeout=60)
    print(f"{'x'.join(map(str, (120, 40) if wide else (80, 24)))}, {rounds * len(KEYS)} switches")
    print("thread CPU per switch, ms: median / p95, to the first paint | until idle")
    for which, (to_paint, to_idle) in figures.items():
        print(
            f"  {which:8s} {statistics.median(to_paint):6.1f} / {p95(to_paint):6.1f} | "
            f"{statistics.median(to_idle):6.1f} / {p95(to_idle):6.1f}"
        )
    bare, console = figures["bare"][0], figures["console"][0]
    median_ratio = statistics.median(console) / statistics.median(bare)
    print(f"  console / bare to the first paint: median {median_ratio:.2f}, ", end="")
    print(f"p95 {p95(console) / p95(bare):.2f}")
    print(f"{machine()}, load average {load_average()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--wide", action="store_true", help="120×40 instead of 80×24")
    parser.add_argument("--serve", choices=("bare", "console"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve:
        serve(arguments.serve, (120, 40) if arguments.wide else (80, 24))
    else:
        measure(arguments.rounds, arguments.wide)
