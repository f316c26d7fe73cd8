"""Textual messages the console passes around, named for what happened (past tense).

Engine events arrive from worker threads through ``EngineEventRelay``: it wraps each event into
one of these messages and posts it to the app (``post_message`` is thread-safe), so widgets only
ever change on the UI thread and nothing polls the engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from textual.message import Message
from textual.message_pump import MessagePump

from engine.alerts import Alert
from engine.dead_letters import DeadLetter
from engine.events import AlertRaised, DeliveryEvent, DeliveryGaveUp, RecordDelivered
from engine.sandbox import DeliveredRecord
from engine.session import SendReport
from engine.settings import Settings
from engine.settings_file import LoadedSettings, SettingsProblem
from engine.verification import VerificationReport


class AttemptLogged(Message):
    """An attempt started, failed, delivered, gave up or was dead-lettered (for the log)."""

    def __init__(self, event: DeliveryEvent) -> None:
        super().__init__()
        self.event = event


class DeliveryResolved(Message):
    """A message's fate is known: a RecordId came back, or delivery gave up."""

    def __init__(self, event: RecordDelivered | DeliveryGaveUp) -> None:
        super().__init__()
        self.event = event


class AlertUpdated(Message):
    """An alert was raised, counted again or escalated."""

    def __init__(self, alert: Alert) -> None:
        super().__init__()
        self.alert = alert


class VerificationFinished(Message):
    def __init__(self, report: VerificationReport) -> None:
        super().__init__()
        self.report = report


class SendFinished(Message):
    """A send (or a dead-letter replay) is over; ``report`` is its honest tally."""

    def __init__(self, report: SendReport, *, what: str) -> None:
        super().__init__()
        self.report = report
        self.what = what


class DeadLettersLoaded(Message):
    def __init__(self, letters: Sequence[DeadLetter], journal: Path) -> None:
        super().__init__()
        self.letters = tuple(letters)
        self.journal = journal


class DeliveredRecordsLoaded(Message):
    def __init__(self, records: Sequence[DeliveredRecord]) -> None:
        super().__init__()
        self.records = tuple(records)


class SettingsEdited(Message):
    """The settings form changed: ``settings`` when valid (else None), its problems, and
    whether it differs from what is saved."""

    def __init__(
        self, settings: Settings | None, problems: Sequence[SettingsProblem], *, dirty: bool
    ) -> None:
        super().__init__()
        self.settings = settings
        self.problems = tuple(problems)
        self.dirty = dirty


class SettingsSaved(Message):
    def __init__(self, loaded: LoadedSettings, *, created: bool) -> None:
        super().__init__()
        self.loaded = loaded
        self.created = created


class EngineEventRelay:
    """The session's event sink: called from worker threads, posts messages to ``target``."""

    def __init__(self, target: MessagePump) -> None:
        self._target = target

    def __call__(self, event: DeliveryEvent) -> None:
        if isinstance(event, AlertRaised):
            self._target.post_message(AlertUpdated(event.alert))
            return
        self._target.post_message(AttemptLogged(event))
        if isinstance(event, RecordDelivered | DeliveryGaveUp):
            self._target.post_message(DeliveryResolved(event))
