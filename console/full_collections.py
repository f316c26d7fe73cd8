"""Full garbage collections paced by the clock while a send runs (README: "Performance").

During a burst the send's chunks in flight (thousands of messages, their journal lines and
outcomes) outlive the two young generations, and CPython runs a full collection once the
objects promoted since the last one reach a quarter of those it kept: about one a second,
50–150 ms each on this machine, the interpreter lock held throughout, a key on the screen
waiting behind it. While a send runs CPython's own full collections are off, and one runs every
``FULL_COLLECTION_INTERVAL_SECONDS`` instead: cyclic garbage still goes, so memory stays bounded
however long the send, and a key meets one that often at most. The threshold is put back, and
the pacing stops, when the last send ends.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Collections of the middle generation between two full ones while a send runs (CPython: 10):
# so many that CPython never gets there; the clock below runs them instead.
OLDEST_THRESHOLD_DURING_A_SEND = 1_000_000
# One full collection this often while a send runs.
FULL_COLLECTION_INTERVAL_SECONDS = 10.0


class _Pacing:
    """The sends running now, the threshold they found and the thread collecting meanwhile:
    the first send sets them up, the last puts them back (a replay may end while a send still
    runs)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sends = 0
        self.oldest_before = gc.get_threshold()[2]
        self.stop = threading.Event()


_pacing = _Pacing()


def _collect_every(interval_seconds: float, stop: threading.Event) -> None:
    while not stop.wait(interval_seconds):
        gc.collect()


@contextmanager
def paced_full_collections(
    interval_seconds: float = FULL_COLLECTION_INTERVAL_SECONDS,
) -> Iterator[None]:
    """Within this block, and any other such block running meanwhile, the oldest generation is
    collected every ``interval_seconds`` (the first block's), not when CPython's counts say."""
    with _pacing.lock:
        if _pacing.sends == 0:
            youngest, middle, oldest = gc.get_threshold()
            _pacing.oldest_before = oldest
            gc.set_threshold(youngest, middle, max(oldest, OLDEST_THRESHOLD_DURING_A_SEND))
            _pacing.stop = threading.Event()
            threading.Thread(
                target=_collect_every,
                args=(interval_seconds, _pacing.stop),
                name="full-collections",
                daemon=True,
            ).start()
        _pacing.sends += 1
    try:
        yield
    finally:
        with _pacing.lock:
            _pacing.sends -= 1
            if _pacing.sends == 0:
                _pacing.stop.set()
                youngest, middle, _ = gc.get_threshold()
                gc.set_threshold(youngest, middle, _pacing.oldest_before)
