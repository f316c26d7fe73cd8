"""While a send runs the oldest generation is collected by the clock, not by CPython's counts,
and only then (README: "Performance")."""

from __future__ import annotations

import gc
import threading

from console.full_collections import OLDEST_THRESHOLD_DURING_A_SEND, paced_full_collections


def test_a_send_turns_off_cpythons_full_collections_then_puts_them_back() -> None:
    before = gc.get_threshold()
    with paced_full_collections():
        during = gc.get_threshold()
    assert during == (before[0], before[1], OLDEST_THRESHOLD_DURING_A_SEND)
    assert gc.get_threshold() == before


def test_the_threshold_is_put_back_when_the_last_of_two_overlapping_sends_ends() -> None:
    before = gc.get_threshold()
    first_in, second_out, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[tuple[int, int, int]] = []

    def first_send() -> None:
        with paced_full_collections():
            first_in.set()
            second_out.wait(10)
            seen.append(gc.get_threshold())  # the other one ended: still raised for this one
        first_out.set()

    thread = threading.Thread(target=first_send)
    thread.start()
    first_in.wait(10)
    with paced_full_collections():
        pass
    second_out.set()
    first_out.wait(10)
    thread.join(10)
    assert seen == [(before[0], before[1], OLDEST_THRESHOLD_DURING_A_SEND)]
    assert gc.get_threshold() == before


def test_the_threshold_is_put_back_when_the_send_fails() -> None:
    before = gc.get_threshold()
    try:
        with paced_full_collections():
            raise RuntimeError("the send failed")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before


def test_cyclic_garbage_still_goes_while_a_send_runs() -> None:
    full_collections = threading.Event()

    def on_collection(phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info["generation"] == 2:
            full_collections.set()

    gc.callbacks.append(on_collection)
    try:
        with paced_full_collections(interval_seconds=0.05):
            assert full_collections.wait(10)  # CPython's own would not come for ages
        full_collections.clear()
        assert not any(t.name == "full-collections" and t.is_alive() for t in _threads_soon())
    finally:
        gc.callbacks.remove(on_collection)


def _threads_soon() -> list[threading.Thread]:
    """The threads alive once a stopped collecting thread has had time to end."""
    for thread in threading.enumerate():
        if thread.name == "full-collections":
            thread.join(5)
    return threading.enumerate()
