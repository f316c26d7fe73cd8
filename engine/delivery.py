"""Delivering records: retries with exponential backoff and full jitter, alerts, dead letters.

A record counts as delivered only when Firehose returned its RecordId. Every attempt is an
event; whatever cannot be delivered is dead-lettered, never dropped silently.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from engine.alerts import AlertBoard, AlertSample, Severity
from engine.dead_letters import (
    INTERRUPTED_UNSENT,
    INTERRUPTED_UNSENT_DETAIL,
    DeadLetter,
    DeadLetterJournal,
)
from engine.events import (
    AlertRaised,
    AttemptFailed,
    AttemptStarted,
    DeadLettered,
    DeliveryGaveUp,
    EventSink,
    RecordDelivered,
)
from engine.failures import AlertType, Failure, FailureClass, classify, classify_code
from engine.gateway import BatchEntryResult
from engine.outbox import Outbox, Settlement
from engine.records import OutgoingMessage
from engine.settings import RECORD_SIZE_LIMIT_BYTES, DeliverySettings


class SendCancelled(Exception):
    """Raised by a sender (a PacedSender whose wait was cut short) when the send was cancelled
    before its call started: nothing went out."""


class RecordSender(Protocol):
    """What delivery needs from the gateway (tests may pass their own)."""

    def put_record(self, stream_name: str, data: bytes) -> str: ...

    def put_record_batch(
        self, stream_name: str, records: Sequence[bytes]
    ) -> list[BatchEntryResult]: ...


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_seconds: float = 0.2
    cap_seconds: float = 10.0

    @classmethod
    def from_settings(cls, delivery: DeliverySettings) -> RetryPolicy:
        return cls(
            delivery.max_attempts, delivery.backoff_base_seconds, delivery.backoff_cap_seconds
        )

    def backoff_seconds(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: a uniform wait below min(cap, base·2^(attempt-1))."""
        ceiling = min(self.cap_seconds, self.base_seconds * (2 ** (attempt - 1)))
        return rng.uniform(0, ceiling)


@dataclass(frozen=True)
class DeliveryOutcome:
    """What became of one message."""

    message: OutgoingMessage
    record_id: str | None
    attempts: int
    failure: Failure | None = None
    latency_seconds: float = 0.0
    dead_lettered: bool = False
    skipped: bool = False
    # Never sent because the send was cancelled (not a failure): dead-lettered as
    # INTERRUPTED_UNSENT, so a replay sends it.
    not_sent: bool = False

    @property
    def delivered(self) -> bool:
        return self.record_id is not None


def _now() -> datetime:
    return datetime.now(UTC)


def _received(failure: Failure) -> dict[str, object]:
    return {
        "code": failure.code,
        "message": failure.message,
        "http_status": failure.http_status,
        "failure_class": failure.failure_class.name,
        "retryable": failure.retryable,
    }


class Deliverer:
    """Sends messages through a RecordSender, retrying, alerting and dead-lettering.

    With an ``outbox``, each call's messages are journaled (fsynced) before the call and
    tombstoned once Firehose answered for them or they were dead-lettered, so a crash leaves
    the messages in flight on record (see ``engine.outbox``).
    """

    def __init__(
        self,
        sender: RecordSender,
        policy: RetryPolicy,
        *,
        connection_name: str,
        alerts: AlertBoard,
        sink: EventSink,
        dead_letters: DeadLetterJournal | None = None,
        outbox: Outbox | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] = _now,
        cancel: threading.Event | None = None,
    ) -> None:
        self.sender = sender
        self.policy = policy
        self.connection_name = connection_name
        self.alerts = alerts
        self.sink = sink
        self.dead_letters = dead_letters
        self.outbox = outbox
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.clock = clock
        # Once set, no new call starts (retries included); see ``set_aside_unsent``.
        self.cancel = cancel

    # -- single records ------------------------------------------------------------------

    def deliver(self, message: OutgoingMessage) -> DeliveryOutcome:
        """Send one message with PutRecord, retrying transient failures per the policy."""
        refused = self._refuse_unsendable(message)
        if refused is not None:
            return refused
        if self.cancelled:
            return self.set_aside_unsent([message])[0]
        self._journal([message])
        started = time.monotonic()
        failure: Failure | None = None
        for attempt in range(1, self.policy.max_attempts + 1):
            if self.cancelled:
                return self._stopped(message, failure, attempt - 1, started)
            self.sink(AttemptStarted(message.message_id, message.kind, attempt, self.clock()))
            try:
                record_id = self.sender.put_record(message.stream_name, message.data_bytes)
            except SendCancelled:
                return self._stopped(message, failure, attempt - 1, started)
            except Exception as error:  # every failure is classified, none escapes
                failure = classify(error)
            else:
                return self._settled(self._delivered(message, record_id, attempt, started))
            if not self._retry_after(message, failure, attempt):
                return self._settled(self._give_up(message, failure, attempt, started))
        raise AssertionError("unreachable: the last attempt always gives up")

    # -- batches -------------------------------------------------------------------------

    def deliver_batch(self, messages: Sequence[OutgoingMessage]) -> list[DeliveryOutcome]:
        """Send messages (one stream, ≤500) with PutRecordBatch; only failed records are re-sent."""
        outcomes: dict[int, DeliveryOutcome] = {}
        pending: list[int] = []
        for index, message in enumerate(messages):
            refused = self._refuse_unsendable(message)
            if refused is None:
                pending.append(index)
            else:
                outcomes[index] = refused
        if pending and self.cancelled:
            unsent = self.set_aside_unsent([messages[index] for index in pending])
            outcomes.update(zip(pending, unsent, strict=True))
            pending = []
        self._journal([messages[index] for index in pending])
        started = time.monotonic()
        attempt = 0
        last_failure: dict[int, Failure] = {}
        while pending:
            attempt += 1
            if self.cancelled:
                self._stop_batch(messages, pending, last_failure, attempt - 1, started, outcomes)
                break
            for index in pending:
                message = messages[index]
                self.sink(AttemptStarted(message.message_id, message.kind, attempt, self.clock()))
            stream_name = messages[pending[0]].stream_name
            try:
                results = self.sender.put_record_batch(
                    stream_name, [messages[index].data_bytes for index in pending]
                )
                failures = [self._entry_failure(result) for result in results]
            except SendCancelled:
                self._stop_batch(messages, pending, last_failure, attempt - 1, started, outcomes)
                break
            except Exception as error:  # the whole call failed: every record in it failed
                failures = [classify(error)] * len(pending)
                results = [BatchEntryResult(None)] * len(pending)
            still_pending: list[int] = []
            settled: list[DeliveryOutcome] = []
            backoff_needed = False
            for index, result, failure in zip(pending, results, failures, strict=True):
                message = messages[index]
                if failure is None and result.record_id:
                    outcomes[index] = self._delivered(message, result.record_id, attempt, started)
                    settled.append(outcomes[index])
                    continue
                assert failure is not None
                last_failure[index] = failure
                if self._retry_after(message, failure, attempt, sleep=False):
                    still_pending.append(index)
                    backoff_needed = True
                else:
                    outcomes[index] = self._give_up(message, failure, attempt, started)
                    settled.append(outcomes[index])
            self._settle(settled)
            pending = still_pending
            if backoff_needed:
                self._pause(self.policy.backoff_seconds(attempt, self.rng))
        return [outcomes[index] for index in range(len(messages))]

    # -- messages not sent at all ----------------------------------------------------------

    @property
    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def set_aside_unsent(self, messages: Sequence[OutgoingMessage]) -> list[DeliveryOutcome]:
        """Messages the send was cancelled before sending: never sent, not failed. They are
        dead-lettered as INTERRUPTED_UNSENT (one write), so a replay sends them."""
        at = self.clock()
        dead_lettered = self.dead_letters is not None
        if self.dead_letters is not None and messages:
            self.dead_letters.add_many(
                [
                    DeadLetter(
                        message_id=message.message_id,
                        connection=self.connection_name,
                        stream_name=message.stream_name,
                        kind=message.kind.value,
                        action=message.action.value,
                        data_base64=message.data_base64,
                        failure_class=INTERRUPTED_UNSENT,
                        alert_type="",
                        detail=INTERRUPTED_UNSENT_DETAIL,
                        attempts=0,
                        at=at.isoformat(),
                        follows=message.follows,
                    )
                    for message in messages
                ]
            )
            for message in messages:
                self.sink(DeadLettered(message.message_id, str(self.dead_letters.path)))
        outcomes = [
            DeliveryOutcome(message, None, 0, dead_lettered=dead_lettered, not_sent=True)
            for message in messages
        ]
        self._settle(outcomes)
        return outcomes

    def hold_back(self, message: OutgoingMessage, predecessor: DeliveryOutcome) -> DeliveryOutcome:
        """A message whose predecessor (the one it ``follows``) was not delivered: it is not
        sent. Dead-lettered as WAITING_FOR_PREDECESSOR (or, when the send was cancelled, as
        never sent), so a replay sends it after its predecessor."""
        if predecessor.not_sent or self.cancelled:
            return self.set_aside_unsent([message])[0]
        failure = Failure(
            FailureClass.WAITING_FOR_PREDECESSOR,
            "WaitingForPredecessor",
            f"not sent: the {predecessor.message.kind.value} it follows "
            f"({predecessor.message.message_id}) was not delivered",
        )
        return self._settled(self._give_up(message, failure, 0, time.monotonic()))

    def _stopped(
        self, message: OutgoingMessage, failure: Failure | None, attempts: int, started: float
    ) -> DeliveryOutcome:
        """Cancelled before another attempt: never sent, or given up on its last failure."""
        if failure is None:
            return self.set_aside_unsent([message])[0]
        return self._settled(self._give_up(message, failure, attempts, started))

    def _stop_batch(
        self,
        messages: Sequence[OutgoingMessage],
        pending: Sequence[int],
        last_failure: dict[int, Failure],
        attempts: int,
        started: float,
        outcomes: dict[int, DeliveryOutcome],
    ) -> None:
        unsent = [index for index in pending if index not in last_failure]
        failed = [index for index in pending if index in last_failure]
        unsent_outcomes = self.set_aside_unsent([messages[index] for index in unsent])
        outcomes.update(zip(unsent, unsent_outcomes, strict=True))
        given_up = [
            self._give_up(messages[index], last_failure[index], attempts, started)
            for index in failed
        ]
        self._settle(given_up)
        outcomes.update(zip(failed, given_up, strict=True))

    def _pause(self, seconds: float) -> None:
        """Back off, cut short when the send is cancelled (with the real clock only)."""
        if self.cancel is not None and self.sleep is time.sleep:
            self.cancel.wait(seconds)
        else:
            self.sleep(seconds)

    @staticmethod
    def _entry_failure(result: BatchEntryResult) -> Failure | None:
        if result.error_code or not result.record_id:
            return classify_code(result.error_code or "MissingRecordId", result.error_message or "")
        return None

    # -- shared steps --------------------------------------------------------------------

    def _journal(self, messages: Sequence[OutgoingMessage]) -> None:
        """Marked as sending in the outbox before the call (a failure here stops the send:
        better unsent than sent without a trace)."""
        if self.outbox is not None and messages:
            self.outbox.sending(messages, self.clock().isoformat())

    def _settle(self, outcomes: Sequence[DeliveryOutcome]) -> None:
        if self.outbox is None or not outcomes:
            return
        settlements = [
            Settlement(o.message.message_id, o.record_id, o.dead_lettered) for o in outcomes
        ]
        # If this fails, the messages look interrupted at the next start: reported, not lost.
        with contextlib.suppress(OSError):
            self.outbox.settle(settlements)

    def _settled(self, outcome: DeliveryOutcome) -> DeliveryOutcome:
        self._settle([outcome])
        return outcome

    def _refuse_unsendable(self, message: OutgoingMessage) -> DeliveryOutcome | None:
        if message.will_send:
            return None
        if message.size_bytes > RECORD_SIZE_LIMIT_BYTES:
            failure = Failure(FailureClass.TOO_LARGE, "RecordTooLarge", message.skip_reason or "")
            self._alert(failure.failure_class.alert_type, Severity.FATAL, message, failure)
            self.sink(DeliveryGaveUp(message.message_id, message.kind, 0, failure, self.clock()))
            return DeliveryOutcome(message, None, 0, failure)
        return DeliveryOutcome(message, None, 0, skipped=True)

    def _delivered(
        self, message: OutgoingMessage, record_id: str, attempts: int, started: float
    ) -> DeliveryOutcome:
        latency = time.monotonic() - started
        self.sink(
            RecordDelivered(
                message.message_id, message.kind, record_id, attempts, latency, self.clock()
            )
        )
        return DeliveryOutcome(message, record_id, attempts, latency_seconds=latency)

    def _retry_after(
        self, message: OutgoingMessage, failure: Failure, attempt: int, *, sleep: bool = True
    ) -> bool:
        """Alert on a failed attempt; True (after backing off) when it is worth another try."""
        will_retry = failure.retryable and attempt < self.policy.max_attempts
        delay = self.policy.backoff_seconds(attempt, self.rng) if will_retry and sleep else 0.0
        severity = Severity.WARNING if will_retry else Severity.FATAL
        self._alert(failure.failure_class.alert_type, severity, message, failure)
        self.sink(
            AttemptFailed(
                message.message_id,
                message.kind,
                attempt,
                failure,
                will_retry,
                delay,
                self.clock(),
            )
        )
        if will_retry and sleep:
            self._pause(delay)
        return will_retry

    def _give_up(
        self, message: OutgoingMessage, failure: Failure, attempts: int, started: float
    ) -> DeliveryOutcome:
        if failure.retryable:  # the retries ran out
            self._alert(AlertType.RETRY_LIMIT_EXCEEDED, Severity.FATAL, message, failure)
        at = self.clock()
        self.sink(DeliveryGaveUp(message.message_id, message.kind, attempts, failure, at))
        dead_lettered = False
        if self.dead_letters is not None:
            self.dead_letters.add(
                DeadLetter.from_failure(
                    message, self.connection_name, failure, attempts, at.isoformat()
                )
            )
            self.sink(DeadLettered(message.message_id, str(self.dead_letters.path)))
            dead_lettered = True
        return DeliveryOutcome(
            message,
            None,
            attempts,
            failure,
            latency_seconds=time.monotonic() - started,
            dead_lettered=dead_lettered,
        )

    def _alert(
        self,
        alert_type: AlertType | None,
        severity: Severity,
        message: OutgoingMessage,
        failure: Failure,
    ) -> None:
        if alert_type is None:  # a failure with no alert of its own
            return
        sample = AlertSample(sent=message.request(), received=_received(failure))
        alert = self.alerts.record(alert_type, severity, sample, self.clock())
        self.sink(AlertRaised(alert))
