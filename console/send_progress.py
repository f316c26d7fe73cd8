"""One running send as the console follows it: how far it got, how fast, and how to stop it.

README: "The console (TUI): a short tour" (a running send). The send's worker thread counts
each message's outcome here (``on_outcome``); the screen reads the counts on a timer, so a
burst of a million records repaints the line a few times a second, never once per record.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from engine.delivery import DeliveryOutcome


def _count(number: int) -> str:
    return f"{number:,}"


def _duration(seconds: float) -> str:
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes, seconds_left = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {seconds_left:02d} s"
    hours, minutes_left = divmod(minutes, 60)
    return f"{hours} h {minutes_left:02d} min"


class RunningSend:
    """A send in progress: its counts (from the send's outcomes), its cancel flag, its pace.

    ``settled`` is called from the send's worker thread; each count is a single integer
    update, and the screen only reads them, so no lock is needed.
    """

    def __init__(
        self, what: str, total: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.what = what
        self.total = total
        self.cancel = threading.Event()
        self._clock = clock
        self.started = clock()
        self.settled_count = 0  # fate known, or never sent
        self.delivered = 0
        self.failed = 0
        self.not_sent = 0

    def settled(self, outcome: DeliveryOutcome) -> None:
        """Count one message's outcome (the engine's ``on_outcome``)."""
        if outcome.not_sent:
            self.not_sent += 1
        elif outcome.delivered:
            self.delivered += 1
        elif not outcome.skipped:
            self.failed += 1
        self.settled_count += 1

    @property
    def cancelling(self) -> bool:
        return self.cancel.is_set()

    def describe(self, retrying: int = 0) -> str:
        """One line: sent / total, delivered, retrying, failed, rate and ETA.

        ``retrying`` comes from the engine's event tally (messages failed once and due again).
        """
        elapsed = max(self._clock() - self.started, 1e-9)
        done = self.settled_count
        rate = done / elapsed
        if self.cancelling:
            tail = "stopping: no new call starts; what is not sent stays unsent"
        elif done and self.total > done:
            tail = f"ETA {_duration((self.total - done) / rate)}"
        else:
            tail = "ETA —"
        return (
            f"{self.what}: {_count(done)} / {_count(self.total)} · "
            f"delivered {_count(self.delivered)} · retrying {_count(retrying)} · "
            f"failed {_count(self.failed)} · {rate:,.0f}/s · {tail}"
        )
