"""Typed events the engine emits while delivering; the fronts subscribe and show them.

Events flow one way: the engine calls an ``EventSink`` with each event as it happens (from
whatever thread did the work); it never waits on the front.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # named in the events' fields only: importing them here slowed every start
    from engine.alerts import Alert
    from engine.dead_letters import DeadLetter
    from engine.failures import Failure
    from engine.records import MessageKind


@dataclass(frozen=True)
class AttemptStarted:
    message_id: str
    kind: MessageKind
    attempt: int
    at: datetime


@dataclass(frozen=True)
class AttemptFailed:
    message_id: str
    kind: MessageKind
    attempt: int
    failure: Failure
    will_retry: bool
    retry_in_seconds: float
    at: datetime


@dataclass(frozen=True)
class RecordDelivered:
    message_id: str
    kind: MessageKind
    record_id: str
    attempts: int
    latency_seconds: float
    at: datetime
    # An earlier attempt's answer was lost or unusable: Firehose may hold the record twice.
    possible_duplicate: bool = False


@dataclass(frozen=True)
class DeliveryGaveUp:
    message_id: str
    kind: MessageKind
    attempts: int
    failure: Failure
    at: datetime


@dataclass(frozen=True)
class AlertRaised:
    """An alert was raised or updated (its count, last seen or severity changed)."""

    alert: Alert


@dataclass(frozen=True)
class DeadLettered:
    message_id: str
    journal_path: str


class RateChange(StrEnum):
    STARTED = "started"  # the send began at this limit
    DECREASED = "decreased"  # Firehose throttled: multiplicative decrease
    INCREASED = "increased"  # no throttling for a while: additive increase


@dataclass(frozen=True)
class RateAdjusted:
    """The send's records-per-second limit changed (AIMD on throttling; see engine.burst)."""

    records_per_second: float
    ceiling: float  # --rate, or the region's Direct PUT records quota
    change: RateChange
    at: datetime


@dataclass(frozen=True)
class InterruptedRunRecovered:
    """Messages an interrupted earlier run was sending, fate unknown, were moved into the
    dead-letter journal as possible duplicates (``ConsoleSession.recover_interrupted``)."""

    letters: tuple[DeadLetter, ...]
    journal_path: str


DeliveryEvent = (
    AttemptStarted
    | AttemptFailed
    | RecordDelivered
    | DeliveryGaveUp
    | AlertRaised
    | DeadLettered
    | RateAdjusted
    | InterruptedRunRecovered
)
EventSink = Callable[[DeliveryEvent], None]


def ignore_events(event: DeliveryEvent) -> None:
    """An EventSink that drops everything (for callers that only want the final report)."""
