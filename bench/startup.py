"""Startup: the CLI's ``preview`` (and the TUI's first screen, once the TUI exists) as a ratio
to ``python -c "import boto3"``, all measured in this run, each in a fresh process.

Each figure is the wall time from starting the process to the work being done (the preview
printed and the process gone; the TUI's first screen up, headless, 80×24), median of
``--reps`` runs, interleaved.

    python bench/startup.py [--reps 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

from _sandbox_host import load_average, machine  # noqa: E402

# Run in a child, cwd = the checkout: prints the wall clock when the TUI's first screen is up.
TUI_FIRST_SCREEN = """
import asyncio, inspect, sys, time
from pathlib import Path
from console.app import FirehoseConsoleApp
from engine.settings_file import load_settings

def make_app():
    loaded = load_settings(Path(sys.argv[1]))
    required = [
        p for p in inspect.signature(FirehoseConsoleApp).parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    return FirehoseConsoleApp(loaded) if required else FirehoseConsoleApp()

async def first_screen():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        print(time.time(), flush=True)
        app.exit()

asyncio.run(first_screen())
"""


def wall_seconds(command: list[str]) -> float:
    started = time.time()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, timeout=120)
    return time.time() - started


def first_screen_seconds(absent_settings: Path) -> float:
    started = time.time()
    result = subprocess.run(
        [sys.executable, "-c", TUI_FIRST_SCREEN, str(absent_settings)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return float(result.stdout.split()[0]) - started


def tui_present() -> bool:
    """console/app.py is in this checkout and imports (an editable install elsewhere could
    otherwise lend its own console.app)."""
    if not (ROOT / "console" / "app.py").exists():
        return False
    probe = subprocess.run(
        [sys.executable, "-c", "import console.app"], cwd=ROOT, capture_output=True, timeout=120
    )
    return probe.returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=7)
    arguments = parser.parse_args()
    print(f"machine: {machine()}; load average {load_average()}")
    with tempfile.TemporaryDirectory() as state:
        absent = Path(state) / "absent.toml"  # no settings file: the built-in defaults
        runs = {
            'python -c "import boto3"': lambda: wall_seconds(
                [sys.executable, "-c", "import boto3"]
            ),
            "CLI preview add": lambda: wall_seconds(
                [sys.executable, "-m", "console", "--settings", str(absent), "preview", "add"]
            ),
        }
        tui_error = None
        if tui_present():
            runs["TUI first screen (headless, 80×24)"] = lambda: first_screen_seconds(absent)
        for name, run in list(runs.items()):  # warm-up: the OS file cache, .pyc files
            try:
                run()
            except (subprocess.CalledProcessError, ValueError, IndexError) as error:
                detail = getattr(error, "stderr", "") or str(error)
                tui_error = str(detail).strip().splitlines()[-1] if detail else repr(error)
                del runs[name]
        samples: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(arguments.reps):
            for name, run in runs.items():
                samples[name].append(run())
    baseline = statistics.median(samples['python -c "import boto3"'])
    print(f"median of {arguments.reps} fresh processes each:")
    for name, values in samples.items():
        median = statistics.median(values)
        print(
            f"  {name:<38} {median * 1000:6.0f} ms   ratio to import boto3 {median / baseline:.2f}"
            f"   ({min(values) * 1000:.0f}–{max(values) * 1000:.0f} ms)"
        )
    print(f"load average after: {load_average()}")
    if not tui_present():
        sys.exit(
            "the console (console/app.py) does not import here: its first screen is unmeasured"
        )
    if tui_error:
        sys.exit(f"the console's first screen could not be measured: {tui_error}")


if __name__ == "__main__":
    main()
