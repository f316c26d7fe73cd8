"""A way for a front to make a running send step aside while it answers a person.

README: "Bursts: count, rate, batches and quotas" (a send that steps aside for a key). On a
machine with few cores, and with the embedded sandbox's server in the same process, the send's
threads and the screen's thread share one interpreter lock: each key waits for its turn behind
the calls being made and the messages being built. The front holds the gate from a key until
that key's screen update is drawn; meanwhile the send starts no new call and builds no new
message (calls in flight finish). A hold ends when the front releases it, and in any case
``max_hold_seconds`` after it was taken, and no single wait lasts longer: a front that never
releases, or that holds again and again, slows the send but never stops it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# Longer than the console takes to answer a key during a burst (a few hundred milliseconds at
# worst on a loaded machine), short enough that a stuck front costs a send little.
MAX_HOLD_SECONDS = 0.5


class SendGate:
    """Held by a front (``hold`` … ``release``), waited on by a send between its calls and
    while it builds messages (``wait``). Thread-safe; waiting on an open gate costs one check."""

    def __init__(
        self,
        *,
        max_hold_seconds: float = MAX_HOLD_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_hold_seconds = max_hold_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._open = threading.Event()
        self._open.set()
        self._held_until = 0.0
        self.waits = 0  # how many times the send stepped aside (a wait that found it held)

    @property
    def held(self) -> bool:
        """Whether a hold is in force (taken, not released, not yet expired)."""
        return not self._open.is_set() and self._clock() < self._held_until

    def hold(self) -> None:
        """From now until ``release`` (at most ``max_hold_seconds``), no new call and no new
        message; a hold taken while one is in force extends it."""
        with self._lock:
            self._held_until = self._clock() + self.max_hold_seconds
            self._open.clear()

    def release(self) -> None:
        """The send goes on; its threads waiting at the gate resume at once."""
        with self._lock:
            self._open.set()

    def wait(self) -> None:
        """Return at once if the gate is open; else once it is released or the hold expires,
        and never after more than ``max_hold_seconds``. The send calls it before each call it
        starts and as it builds messages."""
        if self._open.is_set():
            return
        remaining = min(self._held_until - self._clock(), self.max_hold_seconds)
        if remaining > 0:
            with self._lock:
                self.waits += 1
            self._open.wait(remaining)
