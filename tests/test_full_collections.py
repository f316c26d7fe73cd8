"""While a send runs the oldest generation is collected less often, and only then (README:
"Performance")."""

from __future__ import annotations

import gc
import threading

from console.full_collections import OLDEST_THRESHOLD_DURING_A_SEND, fewer_full_collections


def test_a_send_collects_the_oldest_generation_less_often_then_puts_it_back() -> None:
    before = gc.get_threshold()
    with fewer_full_collections():
        during = gc.get_threshold()
    assert during == (before[0], before[1], OLDEST_THRESHOLD_DURING_A_SEND)
    assert gc.get_threshold() == before


def test_the_threshold_is_put_back_when_the_last_of_two_overlapping_sends_ends() -> None:
    before = gc.get_threshold()
    first_in, second_out, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[tuple[int, int, int]] = []

    def first_send() -> None:
        with fewer_full_collections():
            first_in.set()
            second_out.wait(10)
            seen.append(gc.get_threshold())  # the other one ended: still raised for this one
        first_out.set()

    thread = threading.Thread(target=first_send)
    thread.start()
    first_in.wait(10)
    with fewer_full_collections():
        pass
    second_out.set()
    first_out.wait(10)
    thread.join(10)
    assert seen == [(before[0], before[1], OLDEST_THRESHOLD_DURING_A_SEND)]
    assert gc.get_threshold() == before


def test_the_threshold_is_put_back_when_the_send_fails() -> None:
    before = gc.get_threshold()
    try:
        with fewer_full_collections():
            raise RuntimeError("the send failed")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before
