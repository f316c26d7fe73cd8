"""Textual messages the console passes around, named for what happened (past tense).

Engine events go into the engine's ``DigestSink`` (the session's event sink); a ``DigestPump``
hands the app one ``EventsDigested`` per interval from its own thread (``post_message`` is
thread-safe). A burst's thousands of events a second thus cost the screen a few updates a
second, widgets only change on the UI thread, and nothing polls the engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:  # what the messages carry, named only: the console's start needs none of it
    from engine.dead_letters import DeadLetter
    from engine.event_digest import EventDigest
    from engine.landed import LandedReport
    from engine.records import Action
    from engine.sandbox import DeliveredRecord
    from engine.session import SendReport
    from engine.settings import Settings
    from engine.settings_file import LoadedSettings, SettingsProblem
    from engine.verification import VerificationReport


class EventsDigested(Message):
    """What the engine reported since the previous digest: attempts, alerts, the tally."""

    def __init__(self, digest: EventDigest) -> None:
        super().__init__()
        self.digest = digest


class EventPumpFailed(Message):
    """The pump bringing engine events to the screen died; ``restarted`` says if it runs again."""

    def __init__(self, error: BaseException, *, restarted: bool) -> None:
        super().__init__()
        self.error = error
        self.restarted = restarted


class VerificationFinished(Message):
    def __init__(self, report: VerificationReport) -> None:
        super().__init__()
        self.report = report


class SendFinished(Message):
    """A send (or a dead-letter replay) is over; ``report`` is its honest tally."""

    def __init__(self, report: SendReport, *, what: str, replay: bool = False) -> None:
        super().__init__()
        self.report = report
        self.what = what
        self.replay = replay


class DeadLettersLoaded(Message):
    def __init__(self, letters: Sequence[DeadLetter], journal: Path) -> None:
        super().__init__()
        self.letters = tuple(letters)
        self.journal = journal


class DeliveredRecordsLoaded(Message):
    def __init__(
        self,
        records: Sequence[DeliveredRecord],
        landing: LandedReport | None = None,
        *,
        total: int | None = None,
    ) -> None:
        super().__init__()
        self.records = tuple(records)
        self.landing = landing  # where each acknowledged record landed
        # How many records the bucket holds, when ``records`` holds only the newest of them.
        self.total = len(self.records) if total is None else total


@dataclass(frozen=True)
class BurstRequest:
    """A burst's knobs from the Send tab, already checked."""

    count: int
    rate: float | None
    batch: bool


class SendRequested(Message):
    """The user asked for a send: by key, button or palette, every send starts here.
    ``burst`` None sends the action once."""

    def __init__(self, action: Action, burst: BurstRequest | None = None) -> None:
        super().__init__()
        self.action = action
        self.burst = burst


class ActionChosen(Message):
    """The user chose which action to preview and send (Preview and Send share it)."""

    def __init__(self, action: Action) -> None:
        super().__init__()
        self.action = action


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
    """The form's settings are on disk; ``connection_name`` is the connection it was editing."""

    def __init__(self, loaded: LoadedSettings, *, created: bool, connection_name: str) -> None:
        super().__init__()
        self.loaded = loaded
        self.created = created
        self.connection_name = connection_name


class SaveConflicted(Message):
    """The settings file changed on disk since it was loaded; saving needs the user's word."""

    def __init__(self, settings: Settings, connection_name: str) -> None:
        super().__init__()
        self.settings = settings
        self.connection_name = connection_name
