"""One running send as the console follows it: how far it got, how fast, and how to stop it.

README: "The console (TUI): a short tour" (a running send). Two sources, both coalesced: the
engine's event tally (one digest per interval; it sees each record delivered or given up on as
it happens) and the send's own outcomes (``on_outcome``, a chunk of up to 10,000 at a time,
the only place "never sent" is told). The screen reads them on a timer, so a burst of a
million records repaints the line a few times a second, never once per record.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from engine.event_digest import DeliveryTally

if TYPE_CHECKING:  # named only: the console's start needs no send path
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
        self,
        what: str,
        total: int,
        *,
        tally_before: DeliveryTally | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.total = total
        self.cancel = threading.Event()
        self._clock = clock
        self.started = clock()
        # From the send's outcomes (a chunk at a time):
        self.outcomes = 0  # fate known, or never sent
        self.outcomes_delivered = 0
        self.outcomes_failed = 0
        self.not_sent = 0
        # From the engine's events, counted from the tally as it was when the send started:
        self._tally_before = tally_before or DeliveryTally()
        self._events_delivered = 0
        self._events_failed = 0
        self.retrying = 0
        self.told_delivered_waits = False  # the Delivered tab said it refreshes at the end

    def observe(self, tally: DeliveryTally) -> None:
        """The engine's event tally, as the latest digest tells it (on the screen's thread)."""
        self._events_delivered = tally.delivered - self._tally_before.delivered
        self._events_failed = tally.failed - self._tally_before.failed
        self.retrying = tally.retrying

    @property
    def delivered(self) -> int:
        return max(self.outcomes_delivered, self._events_delivered)

    @property
    def failed(self) -> int:
        return max(self.outcomes_failed, self._events_failed)

    @property
    def settled_count(self) -> int:
        """Messages whose fate is known, or that were never sent."""
        return max(self.outcomes, self.delivered + self.failed + self.not_sent)

    def settled(self, outcome: DeliveryOutcome) -> None:
        """Count one message's outcome (the engine's ``on_outcome``)."""
        if outcome.not_sent:
            self.not_sent += 1
        elif outcome.delivered:
            self.outcomes_delivered += 1
        elif not outcome.skipped:
            self.outcomes_failed += 1
        self.outcomes += 1

    @property
    def cancelling(self) -> bool:
        return self.cancel.is_set()

    def describe(self) -> str:
        """Two lines (each fits 80 columns): sent / total, rate and ETA; then delivered,
        retrying and failed."""
        elapsed = max(self._clock() - self.started, 1e-9)
        done = self.settled_count
        rate = done / elapsed
        if self.cancelling:
            tail = "stopping…"
        elif done and self.total > done:
            tail = f"ETA {_duration((self.total - done) / rate)}"
        else:
            tail = "ETA —"
        return (
            f"{self.what}: {_count(done)} / {_count(self.total)} · {rate:,.0f}/s · {tail}\n"
            f"delivered {_count(self.delivered)} · retrying {_count(self.retrying)} · "
            f"failed {_count(self.failed)}"
        )
