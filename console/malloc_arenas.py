"""At most two malloc arenas for this process, where the C library is glibc.

glibc gives a thread that finds its malloc arena busy another one, up to eight per CPU. A
burst's threads (the send's, and in the console the embedded sandbox's moto server, one thread
per request) then spread their request and answer buffers over all of them, freed memory is
not reused across arenas, and the process's resident memory kept growing with the burst's
length (README: "Console speed — `bench/console_speed.py`"). Two arenas do what
``MALLOC_ARENA_MAX=2`` would. One place for every front that needs it.
"""

from __future__ import annotations

import ctypes

M_ARENA_MAX = -8  # from glibc's malloc.h
ARENAS = 2


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Ask the C library for at most ``arenas`` malloc arenas; whether it agreed.

    Call it before any thread but the main one has allocated: threads that already have an
    arena keep it. Where there is no ``mallopt`` (not glibc) nothing changes.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt  # this process's own C library
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_ARENA_MAX, arenas))
