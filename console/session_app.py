"""The console's engine side: one ``ConsoleSession`` at a time and the thread workers that call
it. Every blocking call (network, files, the sandbox) runs here; results come back as messages,
engine events as one digest per interval, and any failure lands in ``work_failed``.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import App
from textual.worker import Worker, WorkerState, get_current_worker

from console.full_collections import paced_full_collections
from console.messages import (
    DeadLettersLoaded,
    DeliveredRecordsLoaded,
    EventPumpFailed,
    EventsDigested,
    SaveConflicted,
    SendFinished,
    SettingsSaved,
    VerificationFinished,
)
from console.send_progress import RunningSend
from console.widgets.delivered_pane import MAX_DELIVERED_ROWS, MAX_LANDING_ROWS
from engine.event_digest import LOGGED_EVENTS, DigestPump, DigestSink, EventDigest
from engine.events import InterruptedRunRecovered
from engine.records import Action
from engine.regions import firehose_regions
from engine.session import ConsoleSession
from engine.settings import ALL_AUDIENCES, Settings
from engine.settings_file import (
    LoadedSettings,
    SettingsChangedOnDisk,
    load_settings,
    save_settings,
)
from engine.verification import write_policy_file

Clock = Callable[[], float]

DIGEST_INTERVAL_SECONDS = 0.1  # how often the screen hears of engine events
# While a send runs: each digest lays the screen out and draws rows and log lines, on the
# thread that answers the keys and under the interpreter lock the send needs too; a burst's
# results and log lines scroll by faster than anyone reads them anyway.
SEND_DIGEST_INTERVAL_SECONDS = 0.5
RECENT_EVENTS = 30  # attempt log lines kept per digest; the rest are counted, not listed
PUMP_RESTARTS = 3  # a pump that keeps dying is left stopped, and the screen says so

# What each worker group does, as a notification title says it.
WORK_TITLES = {
    "verify": "Verify connection",
    "send": "Send",
    "replay": "Replay dead letters",
    "dead-letters": "Read dead letters",
    "delivered": "Read delivered records",
    "save": "Save settings",
    "reload": "Reload settings",
    "policy": "Write IAM policy",
    "session": "Close session",
    "regions": "Read the region list",
}


class SessionApp(App[int]):
    """Owns the session and runs the engine's blocking calls in thread workers."""

    def __init__(
        self,
        loaded: LoadedSettings,
        *,
        connection_name: str | None,
        use_sandbox: bool,
        audience_name: str | None = None,
        clock: Clock = time.time,
    ) -> None:
        super().__init__()
        self.loaded = loaded
        self.clock = clock
        # Every session reports into this one sink; the pump brings its digests to the screen.
        self.event_sink = DigestSink(
            recent_limit=RECENT_EVENTS, logged=(*LOGGED_EVENTS, InterruptedRunRecovered)
        )
        self.event_pump = DigestPump(
            self.event_sink,
            self._digested,
            interval_seconds=DIGEST_INTERVAL_SECONDS,
            on_error=self._pump_failed,
        )
        self._pump_restarts = 0
        self._sandbox_forced = use_sandbox  # --sandbox: this run stays on the sandbox
        # The send in progress, if any: one at a time (README: "The console (TUI): a short tour").
        self.running_send: RunningSend | None = None
        # The session owns the connection in use and the sandbox rule (see renew_session).
        self.session = ConsoleSession(
            loaded,
            connection_name=connection_name,
            use_sandbox=use_sandbox,
            sink=self.event_sink,
            clock=clock,
            audience_name=audience_name,
        )

    def _digested(self, digest: EventDigest) -> None:
        self.post_message(EventsDigested(digest))  # from the pump's thread: thread-safe

    def _pump_failed(self, error: BaseException) -> None:
        # From the pump's thread. Left dead, the screen would silently stop updating.
        restart = self._pump_restarts < PUMP_RESTARTS
        if restart:
            self._pump_restarts += 1
            self.event_pump.start()
        self.post_message(EventPumpFailed(error, restarted=restart))

    def start_event_pump(self) -> None:
        self.event_pump.start()

    def flush_events(self) -> None:
        """Bring the engine's pending events to the screen now, before what is posted next."""
        self.event_pump.flush()

    # -- the session ---------------------------------------------------------------------

    def _started(self, session: ConsoleSession) -> ConsoleSession:
        """The session with its gateway (and sandbox) up; the session lets one thread at a
        time start it, so two workers never start two sandboxes."""
        session.gateway()
        # What starting loaded (boto3, and moto for the sandbox: hundreds of thousands of
        # long-lived objects) is moved out of the garbage collector's way; otherwise each full
        # collection walks it all and stalls the screen for a few hundred milliseconds.
        gc.freeze()
        return session

    def renew_session(self, connection_name: str, *, keep_alerts: bool) -> ConsoleSession:
        """A new session for the loaded settings and ``connection_name``; the old one is
        closed. The sandbox or AWS: --sandbox for the whole run, else the file's ``target``
        (asked on the first save from the sandbox; README: "The sandbox or AWS"). The audience
        chosen carries on while the settings still define it, else it falls back to
        ``[audience]`` (README: "The console (TUI): a short tour")."""
        old = self.session
        self.session = ConsoleSession(
            self.loaded,
            connection_name=connection_name,
            use_sandbox=self._sandbox_forced,
            sink=self.event_sink,
            clock=self.clock,
            alerts=old.alerts if keep_alerts else None,
            audience_name=self._audience_still_defined(old.audience_name),
        )
        self._close_session(old)
        return self.session

    def _audience_still_defined(self, name: str | None) -> str | None:
        named = self.loaded.settings.audiences
        if name == ALL_AUDIENCES:
            return name if named else None
        return name if name in named else None

    def on_unmount(self) -> None:
        if self.running_send is not None:  # however the console ends, no new call starts
            self.running_send.cancel.set()
        self.event_pump.stop()
        self.session.close()

    # -- workers -------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="session")
    def _close_session(self, session: ConsoleSession) -> None:
        session.close()

    @work(thread=True, exclusive=True, exit_on_error=False, group="verify")
    def run_verify(self, session: ConsoleSession) -> None:
        report = self._started(session).verify()
        if not get_current_worker().is_cancelled:
            self.post_message(VerificationFinished(report))

    @work(thread=True, exclusive=True, exit_on_error=False, group="send")
    def run_send(
        self,
        session: ConsoleSession,
        action: Action,
        what: str,
        *,
        count: int = 1,
        rate: float | None = None,
        batch: bool = False,
        draft: Settings | None = None,
        running: RunningSend | None = None,
    ) -> None:
        """Send in a thread; ``running`` counts its outcomes and holds its cancel flag. The
        screen hears of the engine's events less often meanwhile."""
        started = self._started(session)
        self.event_pump.interval_seconds = SEND_DIGEST_INTERVAL_SECONDS
        try:
            with paced_full_collections():
                report = started.send(
                    action,
                    count=count,
                    rate=rate,
                    batch=batch,
                    draft=draft,
                    cancel=running.cancel if running else None,
                    on_outcome=running.settled if running else None,
                )
        finally:
            self.event_pump.interval_seconds = DIGEST_INTERVAL_SECONDS
        self.flush_events()  # the send's own results reach the screen before its summary
        self.post_message(SendFinished(report, what=what))

    @work(thread=True, exclusive=True, exit_on_error=False, group="replay")
    def run_replay(self, session: ConsoleSession) -> None:
        with paced_full_collections():
            report = self._started(session).replay_dead_letters()
        self.flush_events()
        self.post_message(SendFinished(report, what="Replay of dead letters", replay=True))

    @work(thread=True, exclusive=True, exit_on_error=False, group="dead-letters")
    def read_dead_letters(self, session: ConsoleSession) -> None:
        letters = session.dead_letters()
        self.post_message(DeadLettersLoaded(letters, session.dead_letter_journal().path))

    @work(thread=True, exclusive=True, exit_on_error=False, group="delivered")
    def read_delivered(self, session: ConsoleSession) -> None:
        started = self._started(session)
        # The sandbox's newest records, the rest only counted; every stream's landing through
        # the same reader.
        records, total = (
            started.newest_delivered_records(MAX_DELIVERED_ROWS)
            if started.uses_sandbox
            else ([], 0)
        )
        landing = started.landed(last=MAX_LANDING_ROWS)
        self.post_message(DeliveredRecordsLoaded(records, landing, total=total))

    @work(thread=True, exclusive=True, exit_on_error=False, group="policy")
    def run_write_policy(self, policy: dict[str, Any], path: Path) -> None:
        written = write_policy_file(policy, path)
        self.call_from_thread(self.notify, f"IAM policy written to {written}", title="IAM policy")

    @work(thread=True, exclusive=True, exit_on_error=False, group="regions")
    def read_regions(self) -> None:
        firehose_regions()  # cached: the form's first validation then finds them read

    @work(thread=True, exclusive=True, exit_on_error=False, group="save")
    def run_save(self, settings: Settings, connection_name: str, force: bool) -> None:
        try:
            saved = save_settings(settings, self.loaded, force=force)
        except SettingsChangedOnDisk:
            self.post_message(SaveConflicted(settings, connection_name))
            return
        self.post_message(
            SettingsSaved(saved, created=not self.loaded.exists, connection_name=connection_name)
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="reload")
    def run_reload(self, path: Path) -> None:
        loaded = load_settings(path)  # a file that cannot be used: a notification naming why
        self.call_from_thread(self.reloaded, loaded)  # type: ignore[arg-type]  # awaited

    async def reloaded(self, loaded: LoadedSettings) -> None:
        """Show settings just read again from disk (the console replaces the form)."""
        self.loaded = loaded

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        """The one place a failed call lands: ``work_failed`` and a notification, no crash."""
        if event.state is not WorkerState.ERROR or event.worker.error is None:
            return
        error = event.worker.error
        what = WORK_TITLES.get(event.worker.group, event.worker.group)
        self.work_failed(event.worker.group, what, error)
        self.notify(
            f"{type(error).__name__}: {error}", title=f"{what} failed", severity="error", timeout=10
        )

    def work_failed(self, group: str, what: str, error: BaseException) -> None:
        """Show a failed call (the console adds it to the alerts table)."""
