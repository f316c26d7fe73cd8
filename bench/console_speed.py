"""The console's speed as a person sees it, against a bare Textual app with six tabs of plain
text (``bench/bare_tabs_app.py``), both measured in this run with the same harness: each runs
in its own tmux server at 80×24, and the screen is read with ``tmux capture-pane`` every few
milliseconds.

- launch: from starting the process to its first full screen (no settings file for the
  console), median of ``--launches`` fresh starts, interleaved; beside it the CPU time
  (user + system) each process spent up to the moment that screen was seen, which other work
  on the machine stretches far less than the wall-clock time;
- tab switch: from sending the key (f1–f6, round and round, so the first visit to each tab is
  among them) to the new tab's content on screen, p95 of ``--switches``, once the program is
  idle (the console's status line says its sandbox is verified);
- with ``--burst N`` (default 100,000; 0 skips it): the same tab switches while the console
  sends a burst of N records (batched) to its embedded sandbox, as a p95 ratio to the quiet
  switches, and the console's resident memory before and at the end of the burst;
- with ``--memory N`` (0, the default, skips it): the console's peak resident memory over a
  burst of N records and over one of 3N, each in a fresh console, and their ratio (flat in N:
  about 1);
- with ``--also PATH``: the launch of the console of another checkout too (its ``.venv``),
  interleaved with the two others, for a before/after in one run.

Needs tmux. Prints the figures and the ratios with the machine's load.

    python bench/console_speed.py [--launches 5] [--switches 30] [--burst 100000] [--memory N]
        [--also PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

from _sandbox_host import load_average, machine  # noqa: E402

PYTHON = str(Path(sys.executable))
POLL_SECONDS = 0.004
TIMEOUT_SECONDS = 600.0  # a burst of 100,000 in the console takes a minute or two
KEYS = ("F1", "F2", "F3", "F4", "F5", "F6")


@dataclass(frozen=True)
class Subject:
    """A program under test: how to start it, what its first full screen shows, what each tab
    (f1–f6) shows once switched to, and what it shows once the work it starts after its first
    screen is done (the console boots its sandbox and verifies it)."""

    name: str
    command: str
    first_screen: tuple[str, ...]
    tab_markers: tuple[str, ...]
    settled: tuple[str, ...] = ()


def bare_app() -> Subject:
    titles = ("Settings", "Preview", "Send", "Alerts", "Verify", "Delivered")
    return Subject(
        "bare Textual, six tabs",
        f"{PYTHON} {BENCH / 'bare_tabs_app.py'}",
        ("Settings tab content", "Settings: line 18", "^p palette"),
        tuple(f"{title} tab content" for title in titles),
    )


def console(state: Path, tree: Path | None = None) -> Subject:
    """This tree's console, or with ``tree`` the console installed in that checkout's
    ``.venv`` (another version, for a before/after in one run)."""
    script = Path(PYTHON).parent / "firehose-console"
    if tree is not None:
        script = tree / ".venv" / "bin" / "firehose-console"
    command = f"env XDG_STATE_HOME={state} {script} --settings {state / 'absent-settings.toml'}"
    return Subject(
        "firehose-console" if tree is None else f"firehose-console at {tree}",
        command,
        (
            "· sandbox",
            "Stream and what is forwarded",
            "identities_to_exclude",
            "^s Save",  # the footer's keys, not only the palette key docked right of them
            "^p palette",
        ),
        (
            "Stream and what is forwarded",
            "Record 1 of 1",
            "Burst of",
            "Attempt log (newest last)",
            "w Write policy",  # the footer: the checklist may fill the screen at 80×24
            "u Refresh",
        ),
        ("· verified",),  # the status line, once the sandbox is up and verified
    )


class Terminal:
    """One tmux server (a socket of its own) running one program at 80×24."""

    def __init__(self, command: str) -> None:
        self.socket = f"console-speed-{os.getpid()}-{time.monotonic_ns()}"
        self.command = command
        self.socket_path: Path | None = None

    def tmux(self, *arguments: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *arguments], capture_output=True, text=True, check=True
        )
        return done.stdout

    def start(self) -> None:
        self.tmux("new-session", "-d", "-s", "bench", "-x", "80", "-y", "24", self.command)
        self.socket_path = Path(self.tmux("display-message", "-p", "#{socket_path}").strip())

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "bench")

    def wait_for(self, markers: Sequence[str]) -> float:
        """Poll the screen until it shows every marker; the monotonic time it first did."""
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            shown = self.screen()
            if all(marker in shown for marker in markers):
                return time.monotonic()
            time.sleep(POLL_SECONDS)
        raise TimeoutError(f"{markers} not on screen:\n{self.screen()}")

    def press(self, key: str) -> None:
        self.tmux("send-keys", "-t", "bench", key)

    def pid(self) -> int:
        return int(self.tmux("list-panes", "-t", "bench", "-F", "#{pane_pid}").strip())

    def stop(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)
        if self.socket_path is not None:  # tmux leaves the socket file behind
            self.socket_path.unlink(missing_ok=True)


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the pane's shell may start the program as a child)."""
    pids = [pid]
    for each in pids:
        children = Path(f"/proc/{each}/task/{each}/children")
        with contextlib.suppress(OSError):  # gone meanwhile
            pids += [int(child) for child in children.read_text().split()]
    return pids


def cpu_seconds(pid: int) -> float:
    """User + system CPU time spent so far by ``pid`` and its descendants (``/proc/PID/stat``:
    the 14th and 15th fields, in clock ticks)."""
    ticks = 0
    for each in process_tree(pid):
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # fields from the 3rd on: utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Launch:
    """One start: wall-clock time to the first full screen, and the CPU the program spent
    up to the moment that screen was seen (robust to other work on the machine)."""

    wall: float
    cpu: float


def launch(subject: Subject) -> Launch:
    terminal = Terminal(subject.command)
    started = time.monotonic()
    terminal.start()
    try:
        pid = terminal.pid()
        shown = terminal.wait_for(subject.first_screen)
        return Launch(shown - started, cpu_seconds(pid))
    finally:
        terminal.stop()


def switch_seconds(terminal: Terminal, subject: Subject, count: int) -> list[float]:
    """``count`` tab switches, f2 f3 … f6 f1 f2 …: key to the new tab's content shown."""
    times = []
    for number in range(1, count + 1):
        tab = number % len(KEYS)
        started = time.monotonic()
        terminal.press(KEYS[tab])
        times.append(terminal.wait_for([subject.tab_markers[tab]]) - started)
        time.sleep(0.15)  # a person's pace: the app is idle again before the next key
    return times


def switch_seconds_during_burst(
    terminal: Terminal, subject: Subject, count: int, done: str
) -> list[float]:
    """Up to ``count`` tab switches made while the burst runs, as ``switch_seconds``. Only
    the Send tab tells whether the burst is still running (its ``done`` line shows once it
    ended): a switch counts once a later visit to it still shows the burst running, so the
    switches after the burst ended are never counted as during it."""
    counted: list[float] = []
    pending: list[float] = []
    send_tab = KEYS.index("F3")
    # During a send the Delivered tab's notice names the burst ("… when Burst of N add ends")
    # for a few seconds on every tab: the Send tab is told by its rate field instead.
    markers = [*subject.tab_markers]
    if subject.tab_markers[send_tab] == "Burst of":
        markers[send_tab] = "rate/s"
    number = 0
    while len(counted) < count:
        number += 1
        tab = number % len(KEYS)
        started = time.monotonic()
        terminal.press(KEYS[tab])
        pending.append(terminal.wait_for([markers[tab]]) - started)
        time.sleep(0.15)
        if tab == send_tab:
            if done in terminal.screen():
                break
            counted += pending
            pending = []
    return counted[:count]


def burst_seconds(terminal: Terminal, done: str) -> float | None:
    """The burst's own duration as the Send tab reports it at the end (``… · 12.34 s``)."""
    lines = terminal.screen().splitlines()
    for number, line in enumerate(lines):
        if done in line:
            text = " ".join(lines[number : number + 3])
            found = re.search(r"· ([0-9]+\.[0-9]+) s", text)
            return float(found.group(1)) if found else None
    return None


def p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def resident_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its children (the console is the pane's process)."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(child) for child in children.read_text().split()]
    for each in pids:
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def start_burst(terminal: Terminal, count: int) -> None:
    """On the Send tab: the count, batch on, then b (the keys a person would press)."""
    terminal.press("F3")
    terminal.wait_for(["Burst of"])
    time.sleep(0.3)
    for key in ("Tab", "Tab"):  # F3 focuses the action: then Send, then the count field
        terminal.press(key)
        time.sleep(0.1)
    terminal.tmux("send-keys", "-t", "bench", "End", "C-u")
    time.sleep(0.3)
    terminal.tmux("send-keys", "-t", "bench", "-l", str(count))
    terminal.wait_for([f"Burst of {count}"])
    for key in ("Tab", "Tab", "Space"):  # the rate field, the batch switch: on
        terminal.press(key)
        time.sleep(0.3)
    terminal.press("b")
    terminal.wait_for(["Don't ask again"])  # a burst asks first; Cancel has the focus
    terminal.press("BTab")  # to Send
    time.sleep(0.2)
    terminal.press("Enter")


def burst_memory(subject: Subject, count: int) -> tuple[float, float, float | None]:
    """A fresh console's resident memory before a burst of ``count`` and its peak until the
    burst is reported done (sampled every 0.2 s), and the burst's seconds (no key pressed)."""
    terminal = Terminal(subject.command)
    terminal.start()
    try:
        terminal.wait_for(subject.first_screen)
        terminal.wait_for(subject.settled)  # the sandbox booted and verified
        time.sleep(0.5)
        before = resident_mb(terminal.pid())
        start_burst(terminal, count)
        peak = before
        done = f"Burst of {count:,} add: requested"
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while done not in terminal.screen():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{done!r} not on screen:\n{terminal.screen()}")
            peak = max(peak, resident_mb(terminal.pid()))
            time.sleep(0.2)
        took = burst_seconds(terminal, done)
        time.sleep(1.0)  # the Delivered tab reads the bucket once the send is done
        return before, max(peak, resident_mb(terminal.pid())), took
    finally:
        terminal.stop()


def fresh_state(folder: Path, name: str) -> Path:
    """A state directory of its own for one console."""
    state = folder / name
    state.mkdir()
    return state


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launches", type=int, default=5)
    parser.add_argument("--switches", type=int, default=30)
    parser.add_argument("--burst", type=int, default=100_000)
    parser.add_argument("--memory", type=int, default=0, help="bursts of N and 3N: peak memory")
    parser.add_argument(
        "--also",
        type=Path,
        help="launch the console of this checkout too (its .venv, its bytecode compiled), "
        "interleaved with the others: a before/after of the launch in one run",
    )
    options = parser.parse_args()
    if subprocess.run(["which", "tmux"], capture_output=True).returncode != 0:
        print("console_speed: tmux is not installed; nothing measured.", file=sys.stderr)
        return 1

    print(f"console speed: {machine()}; load average {load_average()}")
    with tempfile.TemporaryDirectory(prefix="console-speed-") as folder:
        bare, tui = bare_app(), console(Path(folder))
        other = console(fresh_state(Path(folder), "also"), options.also) if options.also else None
        launched = (bare, tui) if other is None else (bare, other, tui)
        launches: dict[str, list[Launch]] = {subject.name: [] for subject in launched}
        for _ in range(options.launches):
            for subject in launched:
                launches[subject.name].append(launch(subject))

        switches: dict[str, list[float]] = {}
        during: list[float] = []
        memory: tuple[float, float] | None = None
        burst_took: float | None = None
        for subject in (bare, tui):
            terminal = Terminal(subject.command)
            terminal.start()
            try:
                terminal.wait_for(subject.first_screen)
                # Quiet means idle: the console boots its sandbox (moto's import holds the
                # interpreter lock for a second or so) and verifies it after its first paint.
                terminal.wait_for(subject.settled)
                time.sleep(0.5)
                switches[subject.name] = switch_seconds(terminal, subject, options.switches)
                if subject is tui and options.burst > 0:
                    before = resident_mb(terminal.pid())
                    start_burst(terminal, options.burst)
                    time.sleep(1.0)
                    done = f"Burst of {options.burst:,} add: requested"
                    during = switch_seconds_during_burst(terminal, subject, options.switches, done)
                    peak = resident_mb(terminal.pid())
                    terminal.press("F3")
                    terminal.wait_for([done])
                    memory = (before, max(peak, resident_mb(terminal.pid())))
                    burst_took = burst_seconds(terminal, done)
            finally:
                terminal.stop()
        # Each in a state directory of its own: a console started where the one before was
        # stopped by killing its terminal first recovers that one's outbox (a whole burst's
        # journal), and its memory would measure that, not the burst.
        peaks = [
            burst_memory(console(fresh_state(Path(folder), f"memory-{count}")), count)
            for count in ((options.memory, 3 * options.memory) if options.memory > 0 else ())
        ]

    print(f"load average after: {load_average()}")
    bare_launch = statistics.median(each.wall for each in launches[bare.name])
    tui_launch = statistics.median(each.wall for each in launches[tui.name])
    bare_cpu = statistics.median(each.cpu for each in launches[bare.name])
    tui_cpu = statistics.median(each.cpu for each in launches[tui.name])
    print("\n| | bare Textual | console | ratio | goal |")
    print("|---|---|---|---|---|")
    print(
        f"| launch to first full screen, median of {options.launches} | {ms(bare_launch)} | "
        f"{ms(tui_launch)} | {tui_launch / bare_launch:.2f} | ≤ 1.5 |"
    )
    print(
        f"| CPU spent up to the first full screen, median | {ms(bare_cpu)} | "
        f"{ms(tui_cpu)} | {tui_cpu / bare_cpu:.2f} | |"
    )
    if other is not None:
        other_launch = statistics.median(each.wall for each in launches[other.name])
        other_cpu = statistics.median(each.cpu for each in launches[other.name])
        print(
            f"| launch, the console at {options.also} | {ms(bare_launch)} | {ms(other_launch)} | "
            f"{other_launch / bare_launch:.2f} | |"
        )
        print(
            f"| CPU to the first full screen, the console at {options.also} | {ms(bare_cpu)} | "
            f"{ms(other_cpu)} | {other_cpu / bare_cpu:.2f} | |"
        )
    bare_switch, tui_switch = p95(switches[bare.name]), p95(switches[tui.name])
    print(
        f"| tab switch, key to content, p95 of {options.switches} | {ms(bare_switch)} | "
        f"{ms(tui_switch)} | {tui_switch / bare_switch:.2f} | ≤ 2 |"
    )
    print(
        f"| tab switch, median | {ms(statistics.median(switches[bare.name]))} | "
        f"{ms(statistics.median(switches[tui.name]))} | | |"
    )
    if memory:
        pace = f"{options.burst / burst_took:,.0f} records/s" if burst_took else "pace not read"
        print(
            f"\nDuring a burst of {options.burst:,} (batched, embedded sandbox; "
            f"{burst_took or 0:.1f} s, {pace} with the keys pressed): "
            f"resident memory {memory[0]:,.0f} MB before, {memory[1]:,.0f} MB at the end."
        )
    if during:
        print(
            f"Tab switch during it, p95 of {len(during)} (those the burst outlasted): "
            f"{ms(p95(during))} vs {ms(tui_switch)} quiet: {p95(during) / tui_switch:.2f} "
            f"(goal ≤ 2); median {ms(statistics.median(during))}."
        )
    elif memory:
        print("No tab switch fell within the burst: make it longer (--burst).")
    if peaks:
        (before, peak, took), (before_3n, peak_3n, took_3n) = peaks
        paces = ", ".join(
            f"{count / seconds:,.0f}" if seconds else "not read"
            for count, seconds in ((options.memory, took), (3 * options.memory, took_3n))
        )
        print(
            f"\nResident memory, fresh console each: burst of {options.memory:,} {before:,.0f} → "
            f"{peak:,.0f} MB peak; burst of {3 * options.memory:,} {before_3n:,.0f} → "
            f"{peak_3n:,.0f} MB peak: 3N/N peak {peak_3n / peak:.2f} (goal ≤ 1.3). "
            f"The bursts' pace, no key pressed: {paces} records/s."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
