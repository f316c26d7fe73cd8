"""Fixed engine events and results, so snapshots of live screens are the same on every run."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.alerts import Alert, AlertSample, Severity
from engine.dead_letters import DeadLetter
from engine.delivery import DeliveryOutcome
from engine.events import (
    AlertRaised,
    AttemptFailed,
    AttemptStarted,
    DeadLettered,
    DeliveryEvent,
    DeliveryGaveUp,
    RecordDelivered,
)
from engine.failures import AlertType, Failure, FailureClass
from engine.journaled import JournaledMessage
from engine.records import Action, MessageKind, messages_for_test_user
from engine.sandbox import DeliveredRecord
from engine.session import SendReport
from engine.settings import Settings

AT = datetime.fromtimestamp(1234565788, UTC)  # the seed's MembershipChangedTimestamp
THROTTLED = Failure(FailureClass.THROTTLED, "ServiceUnavailableException", "Slow down.", 503)
STREAM = "mPTravelAudiences"
JOURNAL = Path("~/.local/state/firehose-console/dead-letters/travel.sandbox.jsonl")


def _message_id(number: int) -> str:
    return f"{number:08x}" + "0" * 24


def burst_events() -> list[DeliveryEvent]:
    """A burst of four adds as the engine reports it: two delivered at once, one after a
    retry, one given up on and dead-lettered; with the alerts the failures raise."""
    sample = AlertSample(
        sent={"DeliveryStreamName": STREAM, "Record": {"Data": "eyJBdWRpZW5jZUlkIjoxMjMxMjN9Cg=="}},
        received={
            "code": "ServiceUnavailableException",
            "message": "Slow down.",
            "http_status": 503,
            "failure_class": "THROTTLED",
            "retryable": True,
        },
    )

    def at(seconds: float) -> datetime:
        return AT + timedelta(seconds=seconds)

    def server_error(count: int, severity: Severity, seconds: float) -> AlertRaised:
        alert = Alert(
            AlertType.INTERNAL_SERVER_ERROR, severity, count, at(0.1), at(seconds), sample
        )
        return AlertRaised(alert)

    one, two, three, four = (_message_id(n) for n in (1, 2, 3, 4))
    add = MessageKind.ADD
    return [
        AttemptStarted(one, add, 1, at(0)),
        RecordDelivered(one, add, "49640912821178398250-000000000001", 1, 0.012, at(0.01)),
        AttemptStarted(two, add, 1, at(0)),
        AttemptFailed(two, add, 1, THROTTLED, True, 0.12, at(0.1)),
        server_error(1, Severity.WARNING, 0.1),
        AttemptStarted(three, add, 1, at(0)),
        RecordDelivered(three, add, "49640912821178398250-000000000003", 1, 0.015, at(0.02)),
        AttemptStarted(four, add, 1, at(0)),
        AttemptFailed(four, add, 1, THROTTLED, True, 0.09, at(0.1)),
        server_error(2, Severity.WARNING, 0.1),
        AttemptStarted(two, add, 2, at(0.3)),
        RecordDelivered(two, add, "49640912821178398250-000000000002", 2, 0.31, at(0.31)),
        AttemptStarted(four, add, 2, at(0.3)),
        AttemptFailed(four, add, 2, THROTTLED, False, 0.0, at(0.4)),
        server_error(3, Severity.FATAL, 0.4),
        AlertRaised(
            Alert(AlertType.RETRY_LIMIT_EXCEEDED, Severity.FATAL, 1, at(0.4), at(0.4), sample)
        ),
        DeliveryGaveUp(four, add, 2, THROTTLED, at(0.4)),
        DeadLettered(four, str(JOURNAL)),
    ]


def send_report() -> SendReport:
    settings = Settings()
    [message] = messages_for_test_user(settings, Action.ADD, timestamp=int(AT.timestamp()))
    outcomes = [DeliveryOutcome(message, f"record-{n}", 1 + (n == 2)) for n in (1, 2, 3)]
    outcomes.append(DeliveryOutcome(message, None, 2, THROTTLED, dead_lettered=True))
    return SendReport(requested=4, outcomes=tuple(outcomes), elapsed_seconds=0.42)


def dead_letters() -> list[DeadLetter]:
    settings = Settings()
    [message] = messages_for_test_user(settings, Action.ADD, timestamp=int(AT.timestamp()))
    return [DeadLetter.from_failure(message, "travel", THROTTLED, 2, AT.isoformat())]


def delivered_records() -> list[DeliveredRecord]:
    """A remove, then an add a second later: newest first, as the engine lists them."""
    settings = Settings()
    records = []
    for seconds, action in ((1, Action.ADD), (0, Action.REMOVE)):
        moment = AT + timedelta(seconds=seconds)
        [message] = messages_for_test_user(settings, action, timestamp=int(moment.timestamp()))
        records.append(
            DeliveredRecord(
                object_key=f"{moment:%Y/%m/%d/%H}/{STREAM}-1-{moment:%Y-%m-%d-%H-%M-%S}-0000000{seconds}",
                last_modified=moment,
                data=message.data_bytes,
                decoded=message.data,
            )
        )
    return records


def browsed_dead_letters() -> list[DeadLetter]:
    """Five letters with fixed ids: three throttled adds, an identity change's remove that
    was never sent and its add whose fate is unknown (what an interrupted run leaves)."""
    settings = Settings()
    letters = []
    for number in range(3):
        [message] = messages_for_test_user(settings, Action.ADD, timestamp=int(AT.timestamp()))
        at = (AT + timedelta(seconds=number)).isoformat()
        letter = DeadLetter.from_failure(message, "travel", THROTTLED, 3, at)
        letters.append(replace(letter, message_id=_message_id(0x100 + number)))
    remove, add = messages_for_test_user(
        settings, Action.IDENTITY_CHANGE, timestamp=int(AT.timestamp())
    )
    at = (AT + timedelta(seconds=5)).isoformat()
    unsent = DeadLetter.interrupted(
        JournaledMessage.from_message(remove, "travel", at), at, sent=False
    )
    unknown = DeadLetter.interrupted(
        JournaledMessage.from_message(add, "travel", at), at, sent=True
    )
    letters.append(replace(unsent, message_id=_message_id(0x200)))
    letters.append(replace(unknown, message_id=_message_id(0x201), follows=_message_id(0x200)))
    return letters
