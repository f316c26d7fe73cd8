"""A running send's progress line: counted from the engine's event tally and the send's own
outcomes, whichever is further along; "never sent" only from the outcomes.

README: "The console (TUI): a short tour".
"""

from __future__ import annotations

from console.send_progress import RunningSend
from engine.delivery import DeliveryOutcome
from engine.event_digest import DeliveryTally
from engine.records import Action, MessageKind, OutgoingMessage

MESSAGE = OutgoingMessage(
    kind=MessageKind.ADD,
    action=Action.ADD,
    stream_name="stream",
    data={},
    data_bytes=b"{}\n",
    message_id="m",
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_progress_counts_live_events_rate_and_eta() -> None:
    clock = Clock()
    running = RunningSend(
        "Burst of 1,000 add",
        1000,
        tally_before=DeliveryTally(delivered=50, failed=5),  # an earlier send's
        clock=clock,
    )
    clock.now += 10
    running.observe(DeliveryTally(delivered=250, retrying=3, failed=5))
    assert running.describe() == (
        "Burst of 1,000 add: 200 / 1,000 · 20/s · ETA 40 s\ndelivered 200 · retrying 3 · failed 0"
    )


def test_outcomes_count_never_sent_and_catch_up_with_the_events() -> None:
    clock = Clock()
    running = RunningSend("Burst of 4 add", 4, clock=clock)
    running.settled(DeliveryOutcome(MESSAGE, "record-1", 1))
    running.settled(DeliveryOutcome(MESSAGE, None, 0, not_sent=True))
    running.settled(DeliveryOutcome(MESSAGE, None, 0, not_sent=True))
    running.cancel.set()
    clock.now += 1
    line = running.describe()
    assert line.startswith("Burst of 4 add: 3 / 4 · 3/s · stopping…\n")
    assert line.endswith("delivered 1 · retrying 0 · failed 0")  # never sent: not failed
    assert running.not_sent == 2


def test_a_cleared_tally_never_counts_backwards() -> None:
    running = RunningSend("Burst of 10 add", 10, tally_before=DeliveryTally(delivered=7))
    running.settled(DeliveryOutcome(MESSAGE, "record-1", 1))
    running.observe(DeliveryTally())  # "clear alerts" emptied the engine's tally
    assert running.delivered == 1 and running.settled_count == 1
