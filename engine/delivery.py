"""Delivering records: retries with exponential backoff and full jitter, alerts, dead letters.

A record counts as delivered only when Firehose returned a RecordId for it: a non-empty string,
in an answer that accounts for every record of the call. An answer that does not (a RecordId
``""`` or ``0``, a batch answer of the wrong length) leaves the records' fate unknown: they are
retried and marked as possible duplicates (README, Reliability). Every attempt is an event;
whatever cannot be delivered is dead-lettered, never dropped silently.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple, Protocol

from engine.alerts import AlertBoard, AlertSample, Severity
from engine.dead_letters import DeadLetter, DeadLetterJournal
from engine.events import (
    AlertRaised,
    AttemptFailed,
    AttemptStarted,
    DeadLettered,
    DeliveryGaveUp,
    EventSink,
    RecordDelivered,
    ignore_events,
)
from engine.failures import AlertType, Failure, FailureClass, classify, classify_code
from engine.gateway import BatchEntryResult
from engine.outbox import Outbox, Settlement
from engine.records import OutgoingMessage
from engine.settings import RECORD_SIZE_LIMIT_BYTES, DeliverySettings
from engine.state_dir import INTERRUPTED_UNSENT, INTERRUPTED_UNSENT_DETAIL


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


class DeliveryOutcome(NamedTuple):
    """What became of one message. A named tuple, not a frozen dataclass: a burst builds one
    per record, and a tuple is built four times faster."""

    message: OutgoingMessage
    record_id: str | None
    attempts: int
    failure: Failure | None = None
    latency_seconds: float = 0.0
    dead_lettered: bool = False
    skipped: bool = False
    # An attempt's answer was lost or unusable, so Firehose may hold the record more than once.
    possible_duplicate: bool = False
    # Never sent because the send was cancelled (not a failure): dead-lettered as
    # INTERRUPTED_UNSENT, so a replay sends it.
    not_sent: bool = False

    @property
    def delivered(self) -> bool:
        return self.record_id is not None


def _now() -> datetime:
    return datetime.now(UTC)


def acknowledged_record_id(record_id: object) -> str | None:
    """The RecordId if it acknowledges a record (a non-empty string), else None."""
    return record_id if isinstance(record_id, str) and record_id else None


def _unacknowledged(operation: str, record_id: object) -> Failure:
    return Failure(
        FailureClass.MALFORMED_ANSWER,
        "MissingRecordId",
        f"{operation} answered without a usable RecordId (got {record_id!r}): "
        "the record may have arrived",
        fate_unknown=True,
    )


def _mismatched_batch_answer(sent: int, answered: int) -> Failure:
    return Failure(
        FailureClass.MALFORMED_ANSWER,
        "AnswerMismatch",
        f"PutRecordBatch answered for {answered} records of the {sent} sent: "
        "which arrived is unknown",
        fate_unknown=True,
    )


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
        possible_duplicate = False
        failure: Failure | None = None
        for attempt in range(1, self.policy.max_attempts + 1):
            if self.cancelled:
                return self._stopped(message, failure, attempt - 1, started, possible_duplicate)
            self.sink(AttemptStarted(message.message_id, message.kind, attempt, self.clock()))
            try:
                answered = self.sender.put_record(message.stream_name, message.data_bytes)
            except SendCancelled:
                return self._stopped(message, failure, attempt - 1, started, possible_duplicate)
            except Exception as error:  # every failure is classified, none escapes
                failure = classify(error)
            else:
                record_id = acknowledged_record_id(answered)
                if record_id is not None:
                    delivered = self._delivered(
                        message, record_id, attempt, started, possible_duplicate
                    )
                    return self._settled(delivered)
                failure = _unacknowledged("PutRecord", answered)
            possible_duplicate = possible_duplicate or failure.fate_unknown
            if not self._retry_after(message, failure, attempt):
                return self._settled(
                    self._give_up(message, failure, attempt, started, possible_duplicate)
                )
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
        possible_duplicates: set[int] = set()  # indexes whose answer was lost or unusable
        attempt = 0
        last_failure: dict[int, Failure] = {}

        def stop_before(attempt: int) -> None:
            """Cancelled before ``attempt``: the pending records are never sent, or given up."""
            self._stop_batch(
                messages,
                pending,
                last_failure,
                attempt - 1,
                started,
                outcomes,
                possible_duplicates,
            )

        while pending:
            attempt += 1
            if self.cancelled:
                stop_before(attempt)
                break
            at = self.clock()  # one call: one time for all its records' events
            for index in pending if self.sink is not ignore_events else ():  # none listens
                message = messages[index]
                self.sink(AttemptStarted(message.message_id, message.kind, attempt, at))
            stream_name = messages[pending[0]].stream_name
            try:
                results = self.sender.put_record_batch(
                    stream_name, [messages[index].data_bytes for index in pending]
                )
            except SendCancelled:
                stop_before(attempt)
                break
            except Exception as error:  # the whole call failed: every record in it failed
                failures: list[Failure | None] = [classify(error)] * len(pending)
            else:
                failures = self._answer_failures(results, len(pending))
            answered_at, latency = self.clock(), time.monotonic() - started
            still_pending: list[int] = []
            settled: list[DeliveryOutcome] = []
            backoff_needed = False
            for position, (index, failure) in enumerate(zip(pending, failures, strict=True)):
                message = messages[index]
                if failure is None:
                    record_id = str(results[position].record_id)
                    outcomes[index] = self._delivered(
                        message,
                        record_id,
                        attempt,
                        started,
                        index in possible_duplicates,
                        answered=(answered_at, latency),
                    )
                    settled.append(outcomes[index])
                    continue
                if failure.fate_unknown:
                    possible_duplicates.add(index)
                last_failure[index] = failure
                if self._retry_after(message, failure, attempt, sleep=False):
                    still_pending.append(index)
                    backoff_needed = True
                else:
                    outcomes[index] = self._give_up(
                        message, failure, attempt, started, index in possible_duplicates
                    )
                    settled.append(outcomes[index])
            self._settle(settled)
            pending = still_pending
            if backoff_needed:
                self._pause(self.policy.backoff_seconds(attempt, self.rng))
        return [outcomes[index] for index in range(len(messages))]

    @classmethod
    def _answer_failures(
        cls, results: Sequence[BatchEntryResult], sent: int
    ) -> list[Failure | None]:
        """Each record's failure (None: acknowledged), from an answer of ``sent`` records.

        Entries are matched to records by position only, so an answer with more or fewer
        entries than records sent acknowledges none of them: every record's fate is unknown.
        """
        if len(results) != sent:
            return [_mismatched_batch_answer(sent, len(results))] * sent
        return [cls._entry_failure(result) for result in results]

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
        self,
        message: OutgoingMessage,
        failure: Failure | None,
        attempts: int,
        started: float,
        possible_duplicate: bool,
    ) -> DeliveryOutcome:
        """Cancelled before another attempt: never sent, or given up on its last failure."""
        if failure is None:
            return self.set_aside_unsent([message])[0]
        return self._settled(self._give_up(message, failure, attempts, started, possible_duplicate))

    def _stop_batch(
        self,
        messages: Sequence[OutgoingMessage],
        pending: Sequence[int],
        last_failure: dict[int, Failure],
        attempts: int,
        started: float,
        outcomes: dict[int, DeliveryOutcome],
        possible_duplicates: set[int],
    ) -> None:
        unsent = [index for index in pending if index not in last_failure]
        failed = [index for index in pending if index in last_failure]
        unsent_outcomes = self.set_aside_unsent([messages[index] for index in unsent])
        outcomes.update(zip(unsent, unsent_outcomes, strict=True))
        given_up = [
            self._give_up(
                messages[index],
                last_failure[index],
                attempts,
                started,
                index in possible_duplicates,
            )
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
        if result.error_code:
            return classify_code(str(result.error_code), str(result.error_message or ""))
        if acknowledged_record_id(result.record_id) is None:
            return _unacknowledged("PutRecordBatch", result.record_id)
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
        self,
        message: OutgoingMessage,
        record_id: str,
        attempts: int,
        started: float,
        possible_duplicate: bool = False,
        answered: tuple[datetime, float] | None = None,
    ) -> DeliveryOutcome:
        """``answered``: (when, latency) of the answer, once for a whole batch's records."""
        at, latency = answered or (self.clock(), time.monotonic() - started)
        if self.sink is not ignore_events:  # a burst's records need no events nobody hears
            self.sink(
                RecordDelivered(
                    message.message_id,
                    message.kind,
                    record_id,
                    attempts,
                    latency,
                    at,
                    possible_duplicate,
                )
            )
        return DeliveryOutcome(
            message,
            record_id,
            attempts,
            latency_seconds=latency,
            possible_duplicate=possible_duplicate,
        )

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
        self,
        message: OutgoingMessage,
        failure: Failure,
        attempts: int,
        started: float,
        possible_duplicate: bool = False,
    ) -> DeliveryOutcome:
        if failure.retryable:  # the retries ran out
            self._alert(AlertType.RETRY_LIMIT_EXCEEDED, Severity.FATAL, message, failure)
        at = self.clock()
        self.sink(DeliveryGaveUp(message.message_id, message.kind, attempts, failure, at))
        dead_lettered = False
        if self.dead_letters is not None:
            letter = DeadLetter.from_failure(
                message, self.connection_name, failure, attempts, at.isoformat()
            )
            # A replay of it may then deliver it twice: the letter says so.
            self.dead_letters.add(
                dataclasses.replace(letter, possible_duplicate=possible_duplicate)
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
            possible_duplicate=possible_duplicate,
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
