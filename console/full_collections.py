"""Fewer full garbage collections while a send runs (README: "Performance").

During a burst the send's chunks in flight (thousands of messages, their journal lines and
outcomes) outlive the two young generations, and CPython runs a full collection once the
objects promoted since the last one reach a quarter of those it kept: about one a second,
50–150 ms each on this machine, the interpreter lock held throughout, a key on the screen
waiting behind it. While a send runs the oldest generation waits for ten times as many
collections of the middle one; cyclic garbage is still freed, later, and the threshold is put
back when the last send ends.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Collections of the middle generation between two full ones while a send runs (CPython: 10).
OLDEST_THRESHOLD_DURING_A_SEND = 100


class _Pacing:
    """The sends running now and the threshold they found: the first sets it, the last puts it
    back (a replay may end while a send still runs)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sends = 0
        self.oldest_before = gc.get_threshold()[2]


_pacing = _Pacing()


@contextmanager
def fewer_full_collections() -> Iterator[None]:
    """Within this block, and any other such block running meanwhile, the oldest generation is
    collected a tenth as often."""
    with _pacing.lock:
        if _pacing.sends == 0:
            youngest, middle, oldest = gc.get_threshold()
            _pacing.oldest_before = oldest
            gc.set_threshold(youngest, middle, max(oldest, OLDEST_THRESHOLD_DURING_A_SEND))
        _pacing.sends += 1
    try:
        yield
    finally:
        with _pacing.lock:
            _pacing.sends -= 1
            if _pacing.sends == 0:
                youngest, middle, _ = gc.get_threshold()
                gc.set_threshold(youngest, middle, _pacing.oldest_before)
