"""The Textual console: edit, verify, preview, send and watch alerts live.

README: "The console (TUI): a short tour".

The session and the thread workers that call the engine live in ``SessionApp``; this module is
the screen: the tabs, the actions behind every key and palette entry, and where each result
and engine event is shown. A failing call becomes an alert row and a notification.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, ClassVar

from textual import events, on
from textual.actions import ActionParseResult
from textual.app import ComposeResult, SystemCommand
from textual.binding import BindingType
from textual.command import SimpleCommand
from textual.css.query import NoMatches
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Footer, Select, TabbedContent, TabPane, Tabs

from console.commands import (
    ACTION_TABS,
    TABS,
    ConsoleAction,
    ConsoleCommands,
    console_bindings,
    keys_text,
    tab_label,
)
from console.main_screen import MainScreen
from console.messages import (
    ActionChosen,
    DeadLettersLoaded,
    DeliveredRecordsLoaded,
    EventPumpFailed,
    EventsDigested,
    SaveConflicted,
    SendFinished,
    SendRequested,
    SettingsEdited,
    SettingsSaved,
    VerificationFinished,
)
from console.send_progress import RunningSend
from console.session_app import Clock, SessionApp
from console.widgets.alerts_pane import AlertsPane, recovery_summary
from console.widgets.delivered_pane import DeliveredPane
from console.widgets.key_footer import KeyFooter
from console.widgets.preview_pane import PreviewPane
from console.widgets.send_pane import SendPane
from console.widgets.settings_fields import FieldRow
from console.widgets.settings_form import SettingsForm
from console.widgets.status_line import StatusLine, VerificationState
from console.widgets.verify_pane import VerifyPane
from engine.event_digest import DeliveryTally
from engine.events import DeliveryGaveUp, InterruptedRunRecovered, RecordDelivered
from engine.records import Action, OutgoingMessage
from engine.settings import ALL_AUDIENCES, Settings
from engine.settings_file import LoadedSettings
from engine.verification import policy_file_path

# The dialogs and the dead-letter browser are imported where they open, not here: the first
# screen needs none of them (README: "Performance").
if TYPE_CHECKING:
    from console.widgets.dialogs import ConfirmScreen
    from console.widgets.send_confirm import SendConfirmed, SendTarget

PROGRESS_INTERVAL_SECONDS = 0.25  # how often a running send's progress line is redrawn
QUIT_WAIT_SECONDS = 4.0  # quitting waits this long at most for a cancelled send's last calls
# The actions that start a send: refused (dimmed in the footer) while one runs.
STARTS_A_SEND = frozenset({"send", "send_burst", "replay_dead_letters"})
SIDE_BY_SIDE_COLUMNS = 120  # from this width Settings shows the preview beside the form
IDLE_BUILD_SECONDS = 0.05  # between building two hidden tabs after the first screen
MAX_REFRESHES_BEFORE_WORK = 20  # the footer shows within a refresh or two; never wait forever


class FirehoseConsoleApp(SessionApp):
    """The operations console over one settings file.

    ``clock`` gives the preview's timestamps (tests freeze it); ``auto_verify`` verifies the
    connection at start and whenever the session is rebuilt (after a save or a switch).
    """

    CSS_PATH = "app.tcss"
    TITLE = "firehose-console"
    BINDINGS: ClassVar[list[BindingType]] = console_bindings()
    # One provider: the console's own actions first, then Textual's (less Quit and Keys).
    COMMANDS = {ConsoleCommands}

    def __init__(
        self,
        loaded: LoadedSettings,
        *,
        connection_name: str | None = None,
        use_sandbox: bool = False,
        audience_name: str | None = None,
        clock: Clock = time.time,
        auto_verify: bool = True,
    ) -> None:
        super().__init__(
            loaded,
            connection_name=connection_name,
            use_sandbox=use_sandbox,
            audience_name=audience_name,
            clock=clock,
        )
        self._auto_verify = auto_verify
        # The start's work still running, and whether what it made is frozen (see _settled).
        self._start_work_left = {"built", "verified"} if auto_verify else {"built"}
        self._start_frozen = False
        self._tabs: TabbedContent | None = None
        self._progress_timer: Timer | None = None
        self._tally = DeliveryTally()  # the engine's event tally as last digested
        self._ask_before_sending = True  # until "don't ask again" (per session)
        self._quit_question: ConfirmScreen | None = None
        # The field each tab last had focused: going back to a tab goes back to it.
        self._last_focused: dict[str, Widget] = {}
        self._focus_into_tab = False  # set by show_tab: focus follows into the tab shown
        self._tab_frame_due = False  # a tab was switched to and its first frame is not out yet
        self._keys_tab: str | None = None  # the tab check_action answers for, if not the shown one
        self._quit_after_save = False  # "Save and quit": the save's success ends the console
        # The work the first screen leaves out (the other sections, the no-settings-file
        # notice, the workers) has started: until then the console is still opening.
        self.first_screen_done = False
        # Every tab but Settings is built when first shown (a quicker first screen); until
        # then its pane keeps what it is told and shows it once mounted.
        self.preview_pane = PreviewPane(self._preview_records, id="preview-pane")
        # On a wide terminal, a second preview beside the form (as Posting shows a request and
        # its response); built the first time the terminal is wide enough.
        self.side_preview: PreviewPane | None = None
        self.send_pane = SendPane(id="send-pane")
        self.alerts_pane = AlertsPane(id="alerts-pane")
        self.verify_pane = VerifyPane(id="verify-pane")
        self.delivered_pane = DeliveredPane(sandbox=self.session.uses_sandbox, id="delivered-pane")
        self._unbuilt_panes: dict[str, Widget] = {
            "preview": self.preview_pane,
            "send": self.send_pane,
            "alerts": self.alerts_pane,
            "verify": self.verify_pane,
            "delivered": self.delivered_pane,
        }

    # -- layout --------------------------------------------------------------------------

    def get_default_screen(self) -> Screen[None]:
        return MainScreen(id="_default")

    def compose(self) -> ComposeResult:
        yield StatusLine(id="status-line")
        with TabbedContent(initial="settings", id="tabs"):
            with TabPane(tab_label("settings"), id="settings"):
                yield SettingsForm(self.loaded, self.session.connection_name, id="settings-form")
            for tab_id, _ in TABS[1:]:
                yield TabPane(tab_label(tab_id), id=tab_id)
        yield KeyFooter(compact=True)

    def on_mount(self) -> None:
        self._tabs = self.query_one(TabbedContent)  # check_action runs often: no query there
        self._tabs.screen.screen_layout_refresh_signal.subscribe(
            self, self._let_the_frame_out, immediate=True
        )
        self.start_event_pump()
        self._show_status()
        self.preview_pane.show(self.form.last_valid)
        self.send_pane.show_unsaved(False)
        self._focus_last_field("settings")  # the stream, not the tabs

    def on_ready(self) -> None:
        """The first frame is on the terminal: what it left out comes now."""
        self._start_background_work_when_painted(first_screen=True)

    def _after_first_screen(self) -> None:
        """What the first screen leaves out so that it shows sooner (README: "Performance"):
        the form's other sections, and the word about the missing settings file."""
        self.form.build_waiting_sections()
        if not self.loaded.exists:
            self.notify(
                f"No settings file at {self.loaded.path}: running on the embedded sandbox. "
                "ctrl+s writes one from the form and asks whether it keeps the sandbox.",
                title="Sandbox",
                timeout=8,
            )

    async def on_resize(self, event: events.Resize) -> None:
        await self._lay_out_for_width(event.size.width)

    async def _lay_out_for_width(self, width: int) -> None:
        """Settings and its preview side by side from SIDE_BY_SIDE_COLUMNS, else the tabs."""
        wide = width >= SIDE_BY_SIDE_COLUMNS
        try:
            settings_pane = self.query_one("#settings", TabPane)
        except NoMatches:  # not composed yet, or closing
            return
        if wide and self.side_preview is None:
            self.side_preview = PreviewPane(self._preview_records, id="side-preview")
            self.side_preview.action = self.preview_pane.action
            await settings_pane.mount(self.side_preview)
            self.side_preview.show(self.form.last_valid)
            self.side_preview.show(self.form.settings)  # marked stale while the form is invalid
        settings_pane.set_class(wide, "-side-by-side")

    def _preview_records(self, action: Action, draft: Settings) -> list[OutgoingMessage]:
        return self.session.preview(action, draft=draft)

    @property
    def form(self) -> SettingsForm:
        return self.query_one(SettingsForm)

    @property
    def status_line(self) -> StatusLine:
        return self.query_one(StatusLine)

    def _show_status(self) -> None:
        status = self.status_line
        session = self.session
        status.connection = session.connection_name
        status.stream = session.stream_name
        status.aws_region = session.connection.region
        status.sandbox = session.uses_sandbox
        status.audience = session.audience_name or ""
        self.sub_title = session.describe_target()

    def _replace_session(self, connection_name: str, *, keep_alerts: bool) -> None:
        """Start over with the loaded settings and ``connection_name`` (after a save or a
        switch)."""
        self.renew_session(connection_name, keep_alerts=keep_alerts)
        self._ask_before_sending = True  # another target: ask again
        self.delivered_pane.sandbox = self.session.uses_sandbox  # a first save may choose AWS
        if not keep_alerts:
            self.event_sink.clear()
            self.alerts_pane.clear()
        self._show_status()
        self.status_line.verification = VerificationState.NOT_CHECKED
        self._start_background_work_when_painted()

    def _start_background_work_when_painted(
        self, refreshes: int = 0, *, first_screen: bool = False
    ) -> None:
        """The whole first screen, footer keys included, comes before the workers start:
        booting the sandbox (importing moto) holds the interpreter lock for a second or more,
        and the footer fills in a refresh or two after the rest."""
        footer_drawn = bool(self.query_one(Footer).children)
        if footer_drawn or refreshes >= MAX_REFRESHES_BEFORE_WORK:
            if first_screen:
                self._after_first_screen()
                self.first_screen_done = True
            # The first screen's objects live as long as the console: out of the garbage
            # collector's way, or each full collection walks them all (a visible stall).
            # The collector is on again from here (the launch turned it off until now).
            gc.freeze()
            gc.enable()
            self._start_background_work()
        else:
            self.call_after_refresh(
                self._start_background_work_when_painted, refreshes + 1, first_screen=first_screen
            )

    async def _build_pane(self, tab: str) -> None:
        pane = self._unbuilt_panes.pop(tab, None)
        if pane is None or self._tabs is None:
            return
        try:  # through the tabs, not the screen: a dialog may be the screen now
            tab_pane = self._tabs.get_pane(tab)
        except NoMatches:  # the console is closing: its tabs are gone
            return
        await tab_pane.mount(pane)

    async def _build_a_hidden_pane(self) -> None:
        """One tab not shown yet is built while the console waits for keys, one at a time, so
        a first visit only lays it out; a key pressed meanwhile waits for one pane at most."""
        if self._unbuilt_panes:
            await self._build_pane(next(iter(self._unbuilt_panes)))
        if self._unbuilt_panes:
            self.set_timer(IDLE_BUILD_SECONDS, self._build_a_hidden_pane)
        else:
            self.set_timer(IDLE_BUILD_SECONDS, self._prepare_footer_keys)

    def _prepare_footer_keys(self) -> None:
        """Each tab's footer keys, built hidden while the console waits for keys: a first
        visit then finds them ready, instead of building them after the tab's first paint."""
        if self._tabs is None or not self._tabs.is_attached or not self.screen_stack:
            return  # closing
        if isinstance(self.screen, ModalScreen):
            return
        footer = self._tabs.screen.query_one(KeyFooter)
        for tab, _ in TABS:
            footer.call_next(footer.prepare_keys, partial(self._keys_as_on, tab))
        footer.call_next(self._settled, "built")

    def _settled(self, what: str) -> None:
        """``what`` of the start's work is done ("built": every tab's pane and keys; "verified":
        the first verification, the sandbox's boot with it). Once both are, what they made to
        last is moved out of the garbage collector's way: otherwise the first full collections
        walk it all, 35–90 ms each with the interpreter lock held, on the first keys pressed
        (README: "Performance")."""
        self._start_work_left.discard(what)
        if not self._start_work_left and not self._start_frozen:
            self._start_frozen = True
            gc.collect(1)  # the young garbage first (a few ms): frozen, it would never go
            gc.freeze()

    @contextmanager
    def _keys_as_on(self, tab: str) -> Iterator[None]:
        """The screen's bindings as if ``tab`` were shown with its field focused, for the footer
        to build that tab's keys: check_action answers for ``tab``, and the screen's focus is
        set without any of its effects (no restyle, no event) and put back after."""
        if self._tabs is None:
            yield
            return
        screen = self._tabs.screen
        focused = screen.focused
        self._keys_tab = tab
        screen.set_reactive(MainScreen.focused, self._field_to_focus(tab))
        try:
            yield
        finally:
            self._keys_tab = None
            screen.set_reactive(MainScreen.focused, focused)

    def _start_background_work(self) -> None:
        if self._auto_verify:
            self.action_verify()
        self.read_dead_letters(self.session)
        self.read_regions()  # the first edit validates the region against them
        self.set_timer(IDLE_BUILD_SECONDS, self._build_a_hidden_pane)

    def work_failed(self, group: str, what: str, error: BaseException) -> None:
        self.alerts_pane.record_console_failure(what, error)
        if group == "send":  # no SendFinished comes: the next send may start
            self._send_ended()
        if group == "verify":
            self.status_line.verification = VerificationState.FAILING
        if group == "save":
            self._quit_after_save = False  # not saved: the console stays, edits and all

    # -- engine events and worker results ------------------------------------------------

    def on_events_digested(self, message: EventsDigested) -> None:
        digest = message.digest
        alerts = self.alerts_pane
        for alert in digest.alerts:
            alerts.update_alert(alert)
        alerts.log_events(digest.recent, not_listed=digest.recent_dropped)
        send = self.send_pane
        send.add_results(
            [
                event
                for event in digest.recent
                if isinstance(event, RecordDelivered | DeliveryGaveUp)
            ]
        )
        send.show_tally(digest.tally, digest.rate)
        self._tally = digest.tally
        if self.running_send is not None:
            self.running_send.observe(digest.tally)
        recovered = [e for e in digest.recent if isinstance(e, InterruptedRunRecovered)]
        if recovered:
            letters = [letter for event in recovered for letter in event.letters]
            self.notify(
                f"{recovery_summary(letters)}. l on the Alerts tab shows them.",
                title="Interrupted run recovered",
                severity="warning",
                timeout=10,
            )
            self.read_dead_letters(self.session)

    def on_event_pump_failed(self, message: EventPumpFailed) -> None:
        what = "Screen updates from the engine"
        self.alerts_pane.record_console_failure(what, message.error)
        then = (
            "restarted."
            if message.restarted
            else "stopped: the tallies and the attempt log no longer update; restart the console."
        )
        self.notify(
            f"{type(message.error).__name__}: {message.error}. Updates {then}",
            title=f"{what} failed",
            severity="warning" if message.restarted else "error",
            timeout=10,
        )

    async def on_verification_finished(self, message: VerificationFinished) -> None:
        await self.verify_pane.show_report(message.report)
        self.status_line.verification = (
            VerificationState.VERIFIED if message.report.ok else VerificationState.FAILING
        )
        self._settled("verified")

    def on_send_finished(self, message: SendFinished) -> None:
        report = message.report
        if not message.replay:
            self._send_ended()
        self.send_pane.show_report(report, message.what)
        if report.not_sent:
            self.notify(
                f"Stopped: {report.not_sent:,} never sent (not failures; those built are dead "
                "letters a replay sends, p on the Alerts tab).",
                title=message.what,
                severity="warning",
            )
        if report.failed:
            self.notify(
                f"{report.failed} of {report.requested} not delivered: see the Alerts tab.",
                title=message.what,
                severity="warning",
            )
        elif message.replay:
            self.notify(f"{report.delivered} of {report.requested} delivered.", title=message.what)
        self.read_dead_letters(self.session)
        self.read_delivered(self.session)

    def on_dead_letters_loaded(self, message: DeadLettersLoaded) -> None:
        self.alerts_pane.show_dead_letters(message.letters, message.journal)

    def on_delivered_records_loaded(self, message: DeliveredRecordsLoaded) -> None:
        if self.delivered_pane.is_mounted:  # else read when its tab is first shown
            self.delivered_pane.show_records(message.records, message.landing, total=message.total)

    def on_settings_edited(self, message: SettingsEdited) -> None:
        self.preview_pane.show(message.settings)
        if self.side_preview is not None:
            self.side_preview.show(message.settings)  # follows the field as it is typed
        self.send_pane.show_unsaved(message.dirty, form_valid=message.settings is not None)
        if message.dirty != self.status_line.unsaved:
            self.status_line.unsaved = message.dirty
            self.query_one(TabbedContent).get_tab("settings").label = tab_label(
                "settings", unsaved=message.dirty
            )

    def on_settings_saved(self, message: SettingsSaved) -> None:
        same_connection = message.connection_name == self.session.connection_name
        self.loaded = message.loaded
        self.form.saved_as(self.loaded)
        self._replace_session(message.connection_name, keep_alerts=same_connection)
        if message.created:
            where = (
                "the embedded sandbox"
                if self.session.uses_sandbox
                else f"{self.session.stream_name} on AWS"
            )
            self.notify(
                f"Created {self.loaded.path}: sends go to {where}, now and at every start "
                f'(its target = "{self.loaded.settings.target}").',
                title="Settings saved",
                timeout=10,
            )
        else:
            self.notify(f"Saved {self.loaded.path}", title="Settings saved")
        if self._quit_after_save:
            self._exit_now()

    def on_send_requested(self, message: SendRequested) -> None:
        """Every send starts here, whether from a key, a button or the palette: one at a
        time, and confirmed first when it changes a real audience."""
        if self.running_send is not None:
            self._say_send_running()
            return
        action = message.action
        self._choose(action)
        burst = message.burst
        what = (
            f"Send {action.value}" if burst is None else f"Burst of {burst.count:,} {action.value}"
        )
        if not self._needs_confirmation(message):
            self._start_send(message, what)
            return

        def answered(answer: SendConfirmed | None) -> None:
            if answer is None or not answer.send:
                self.notify("Nothing sent.", title=what)
                return
            if answer.dont_ask_again:
                self._ask_before_sending = False
            self._start_send(message, what)

        from console.widgets.send_confirm import ConfirmSendScreen

        self.push_screen(ConfirmSendScreen(what, self._send_target()), answered)

    def _needs_confirmation(self, message: SendRequested) -> bool:
        """Deletes, bursts and every send to AWS change (or may change) a real audience."""
        if not self._ask_before_sending:
            return False
        return (
            not self.session.uses_sandbox
            or message.burst is not None
            or message.action is Action.DELETE
        )

    def _send_target(self) -> SendTarget:
        from console.widgets.send_confirm import SendTarget

        report = self.verify_pane.report
        session = self.session
        return SendTarget(
            account=report.account_id if report is not None else None,
            region=session.connection.region,
            stream=session.stream_name,
            sandbox=session.uses_sandbox,
        )

    def _start_send(self, message: SendRequested, what: str) -> None:
        # Built from the form's unsaved edits, if any, as the preview is.
        draft = self.form.unsaved_draft()
        burst = message.burst
        count = 1 if burst is None else burst.count
        total = self.session.burst_size(message.action, count, draft=draft)
        running = RunningSend(what, total, tally_before=self._tally)
        self.running_send = running
        self._show_progress()
        self._progress_timer = self.set_interval(PROGRESS_INTERVAL_SECONDS, self._show_progress)
        self.refresh_bindings()
        self.run_send(
            self.session,
            message.action,
            what,
            count=count,
            rate=None if burst is None else burst.rate,
            batch=False if burst is None else burst.batch,
            draft=draft,
            running=running,
        )

    def _show_progress(self) -> None:
        if self.running_send is not None:
            self.send_pane.show_progress(self.running_send.describe())

    def _send_ended(self) -> None:
        if self._progress_timer is not None:
            self._progress_timer.stop()
            self._progress_timer = None
        self.running_send = None
        self.send_pane.show_progress(None)
        self.refresh_bindings()

    def _say_send_running(self) -> None:
        running = self.running_send
        what = running.what if running is not None else "A send"
        self.notify(
            f"{what} is still running: wait for it, or press escape to stop it.",
            title="One send at a time",
            severity="warning",
        )

    async def run_action(
        self,
        action: str | ActionParseResult,
        default_namespace: DOMNode | None = None,
        namespaces: Mapping[str, DOMNode] | None = None,
    ) -> bool:
        """A key that would start a second send says why it does nothing (its footer entry is
        dimmed meanwhile)."""
        name = (action if isinstance(action, str) else action[0]).split("(")[0]
        if (
            self.running_send is not None
            and name in STARTS_A_SEND
            and self._tabs is not None
            and self._tabs.active == ACTION_TABS.get(name)
            and not isinstance(self.screen, ModalScreen)
        ):
            self._say_send_running()
            return True
        return await super().run_action(action, default_namespace, namespaces)

    def action_cancel_send(self) -> None:
        running = self.running_send
        if running is None or running.cancelling:
            return
        running.cancel.set()
        self._show_progress()
        self.notify(
            "Stopping: no new call starts; calls in flight finish; the rest is recorded as "
            "never sent.",
            title=running.what,
        )

    @on(TabbedContent.TabActivated)
    async def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        await self._build_pane(event.pane.id or "")
        self.refresh_bindings()
        if event.pane.id == "delivered":
            self._refresh_delivered_when_shown()
        if self._focus_into_tab:
            self._focus_into_tab = False
            self.call_after_refresh(self._focus_last_field, event.pane.id or "")

    def _refresh_delivered_when_shown(self) -> None:
        """The Delivered tab reads its destination when shown; while a send runs, when the send
        ends instead (or on u): a read parses every record landed so far, on the interpreter
        lock the send and the keys need. Never a second read while one runs: a thread worker
        runs to its end even when replaced."""
        running = self.running_send
        if running is not None:
            if not running.told_delivered_waits:
                running.told_delivered_waits = True
                self.notify(
                    f"Refreshed when {running.what} ends; u refreshes it now.",
                    title="Delivered",
                )
            return
        if not any(worker.is_running for worker in self.workers if worker.group == "delivered"):
            self.read_delivered(self.session)

    @on(events.DescendantFocus)
    def _remember_focus(self, event: events.DescendantFocus) -> None:
        pane = next((node for node in event.widget.ancestors if isinstance(node, TabPane)), None)
        if pane is not None and pane.id:
            # An open picker's list closes when the tab is left: coming back, the picker itself
            # takes the focus, not its hidden list (where keys would change the value unseen).
            picker = next(
                (node for node in event.widget.ancestors_with_self if isinstance(node, Select)),
                None,
            )
            self._last_focused[pane.id] = picker or event.widget
        row = next((node for node in event.widget.ancestors if isinstance(node, FieldRow)), None)
        if row is not None and self.side_preview is not None and self.side_preview.display:
            self.side_preview.follow(row.key)  # the preview follows the field being edited

    def _focus_last_field(self, tab: str) -> None:
        """Focus where the user left ``tab`` (on a first visit, its first field), not the tab
        bar: the field being worked on stays one key away."""
        if self._tabs is None or self._shown_tab() != tab or isinstance(self.screen, ModalScreen):
            return
        field = self._field_to_focus(tab)
        if field is not None:
            field.focus(scroll_visible=True)

    def _field_to_focus(self, tab: str) -> Widget | None:
        """Where the user left ``tab``, else its first field, else its first focusable widget,
        else the tab strip; None if the tab's pane is not built yet."""
        if self._tabs is None or tab in self._unbuilt_panes:
            return None
        last = self._last_focused.get(tab)
        if last is not None and last.is_attached and last.focusable:
            return last
        focusable = [widget for widget in self._tabs.get_pane(tab).query("*") if widget.focusable]
        # A field before a toolbar button: on Settings the first thing to edit is the stream.
        in_a_field = [w for w in focusable if any(isinstance(a, FieldRow) for a in w.ancestors)]
        first = in_a_field or focusable or [self._tabs.query_one(Tabs)]
        return first[0]

    def _scroll_focus_into_view(self) -> None:
        """What ``focus(scroll_visible=True)`` does, once the pane just shown is laid out (before
        that, no widget of it counts as in view, and Textual would scroll every focused field
        to the middle)."""
        screen = self.screen
        focused = screen.focused
        if focused is not None and not screen.can_view_entire(focused):
            screen.scroll_to_center(focused, origin_visible=True)

    # -- actions -------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Tab actions work (and show in the footer) only on their tab, never under a dialog;
        while a send runs, those that start one are dimmed and the stop key shows."""
        if action == "cancel_send":
            return self.running_send is not None
        if action not in ACTION_TABS:
            return True
        shown = self._keys_tab or self._shown_tab()
        if action in STARTS_A_SEND and self.running_send is not None:
            return None if shown == ACTION_TABS[action] else False  # None: shown dimmed
        tab = ACTION_TABS[action]
        if tab is None:
            return True
        if isinstance(self.screen, ModalScreen):
            return False
        return shown == tab

    def _shown_tab(self) -> str:
        """The tab on show. Until the tab strip reports its first one, that is the first tab:
        the footer's first keys are then Settings' own, in the first frame, not a frame later."""
        if self._tabs is None or not self._tabs.active:
            return TABS[0][0]
        return self._tabs.active

    async def perform(self, console_action: ConsoleAction) -> None:
        """Run an action from the command palette, going to its tab first."""
        if console_action.tab is not None:
            self.action_show_tab(console_action.tab)
        await self.run_action(console_action.action)

    def key_for(self, console_action: ConsoleAction) -> str:
        """The key that runs ``console_action``, as the footer shows it."""
        return self.get_key_display(console_action.binding())

    def action_show_tab(self, tab: str) -> None:
        self._show_tab(tab)

    def _show_tab(self, tab: str, *, focus_last_field: bool = True) -> None:
        """Show ``tab``; with ``focus_last_field``, the field the user left it on takes the
        focus in the same screen update, before the tab's first paint (README: "Performance")."""
        if tab not in dict(TABS):
            return
        tabs = self.query_one(TabbedContent)
        if tabs.active == tab:
            return
        tabs.active = tab  # the pane is displayed now, laid out and painted at the next update
        if tab == "preview":
            self.preview_pane.show_pending()
        elif tab == "settings" and self.side_preview is not None:
            self.side_preview.show_pending()
        field = self._field_to_focus(tab) if focus_last_field else None
        if field is not None:
            # Straight from the field left to this one: one blur and one focus to restyle. Not
            # through the tab strip, which restyles all its tabs when focused and again when
            # left.
            tabs.screen.set_focus(field, scroll_visible=False)
            self.call_after_refresh(self._scroll_focus_into_view)
        else:
            # Focus leaves the pane being hidden, or it could move to a neighbour in that same
            # pane, and TabbedContent would switch back to it. To nothing, until the tab is
            # built (a first visit) or the caller's field takes it.
            tabs.screen.set_focus(None)
            self._focus_into_tab = focus_last_field
        self.refresh_bindings()
        tabs.screen.query_one(KeyFooter).show_keys()  # the tab's keys, with its first paint
        self._tab_frame_due = True

    def _let_the_frame_out(self, screen: Screen[object]) -> None:
        """Called as each layout's frame is handed to the thread that writes it to the terminal.
        After a switch, that thread needs the interpreter lock for a moment, and the rest of
        the switch (events to every widget hidden and shown) would hold it for up to the
        interpreter's switch interval, 5 ms, and longer on a loaded machine (a profile of the
        writes): let go of it once, for a millisecond, so the new tab reaches the screen
        (README: "Performance")."""
        if self._tab_frame_due:
            self._tab_frame_due = False
            time.sleep(0.001)

    def action_verify(self) -> None:
        self.status_line.verification = VerificationState.CHECKING
        self.verify_pane.show_checking()
        self.run_verify(self.session)

    def action_verify_connection(self) -> None:
        self.action_verify()

    def on_action_chosen(self, message: ActionChosen) -> None:
        self._choose(message.action)

    def _choose(self, action: Action) -> None:
        """Preview and Send always show the same action."""
        self.preview_pane.action = action
        self.send_pane.action = action
        if self.side_preview is not None:
            self.side_preview.action = action

    def action_preview(self, action: str) -> None:
        self._choose(Action(action))

    def action_send(self, action: str) -> None:
        self.post_message(SendRequested(Action(action)))

    def action_send_burst(self) -> None:
        self.send_pane.request_burst()

    def action_replay_dead_letters(self) -> None:
        if self.running_send is not None:
            self._say_send_running()
            return
        self.run_replay(self.session)

    def action_browse_dead_letters(self, select: str = "") -> None:
        from console.widgets.dead_letters_pane import DeadLettersBrowser

        browser = DeadLettersBrowser(
            lambda: self._started(self.session),
            self.alerts_pane.record_console_failure,
            select=select or None,
        )

        def closed(_: None) -> None:
            self.read_dead_letters(self.session)  # the Alerts tab shows what is left

        self.push_screen(browser, closed)

    def action_clear_alerts(self) -> None:
        self.session.alerts.clear()
        self.event_sink.clear()
        self.alerts_pane.clear()

    def action_refresh_delivered(self) -> None:
        self.read_delivered(self.session)

    def action_copy_policy(self) -> None:
        policy = self.verify_pane.policy_text()
        if not policy:
            self.notify("Verify first (ctrl+r): the policy needs the account id.")
            return
        self.copy_to_clipboard(policy)
        # OSC 52: the terminal may ignore it, and nothing tells us whether it did.
        self.notify(
            "IAM policy sent to the terminal's clipboard (OSC 52). If your terminal ignores "
            "it, w writes the policy to a file.",
            title="Copy IAM policy",
        )

    def action_write_policy(self) -> None:
        report = self.verify_pane.report
        if report is None:
            self.notify("Verify first (ctrl+r): the policy needs the account id.")
            return
        self.run_write_policy(
            report.policy, policy_file_path(self.loaded.path, self.session.connection_name)
        )

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """Textual's palette commands, less the two the console has its own of: Quit (which
        asks about unsaved edits) and Keys (``?``, the keys of the tab on show)."""
        for command in super().get_system_commands(screen):
            if command.title not in ("Quit", "Keys"):
                yield command

    def action_show_keys(self) -> None:
        if isinstance(self.screen, ModalScreen):
            return
        tab = self._tabs.active if self._tabs is not None else "settings"
        from console.widgets.dialogs import KeysScreen

        self.push_screen(KeysScreen(keys_text(self, tab)))

    def action_go_to_field(self) -> None:
        """A second palette over the form's fields: the chosen one is focused on Settings."""
        form = self.form
        commands = [
            SimpleCommand(key.rsplit(".", 1)[-1] + f"  ({key})", partial(self._go_to, key), help)
            for key, help in form.fields()
        ]
        self.search_commands(commands, placeholder="Go to field…")

    async def _go_to(self, key: str) -> None:
        self._show_tab("settings", focus_last_field=False)  # the chosen field takes the focus
        # Once the Settings pane is laid out: a field in a pane not yet laid out has no size,
        # and Textual cannot scroll to it.
        self.call_after_refresh(self.form.go_to_field, key)

    def action_toggle_secret(self) -> None:
        revealed = self.form.toggle_secret()
        self.notify("Secret shown: ctrl+t hides it." if revealed else "Secret masked.")

    def action_save_settings(self) -> None:
        form = self.form
        if form.problems or form.settings is None:
            count = len(form.problems)
            self.notify(
                f"Not saved: {count} problem{'s' if count != 1 else ''} in the settings.",
                title="Save settings",
                severity="error",
            )
            self.action_show_tab("settings")
            self.call_next(form.focus_first_problem)
            return
        if not form.dirty and self.loaded.exists:
            self.notify("No changes to save.")
            if self._quit_after_save:
                self._exit_now()
            return
        # The connection being edited is the one the next start opens.
        settings = form.settings.model_copy(update={"active_connection": form.connection_name})
        if not self.loaded.exists and self.session.uses_sandbox:
            self._choose_target_then_save(settings, form.connection_name)
            return
        self.run_save(settings, form.connection_name, False)

    def _choose_target_then_save(self, settings: Settings, connection_name: str) -> None:
        """The first save from the sandbox asks where the file's sends go, never a silent
        switch to AWS at the next start (README: "The sandbox or AWS")."""
        connection = settings.connections[connection_name]

        def chosen(target: str | None) -> None:
            if target is None:
                self.notify("Not saved.", title="Save settings")
                return
            self.run_save(settings.model_copy(update={"target": target}), connection_name, False)

        from console.widgets.target_choice import ChooseTargetScreen

        self.push_screen(
            ChooseTargetScreen(
                str(self.loaded.path), connection.delivery_stream_name, connection.region
            ),
            chosen,
        )

    def on_save_conflicted(self, message: SaveConflicted) -> None:
        def answered(answer: str | None) -> None:
            if answer == "overwrite":
                self.run_save(message.settings, message.connection_name, True)
            elif answer == "reload":
                self._quit_after_save = False
                self.run_reload(self.loaded.path)
            else:
                self._quit_after_save = False

        from console.widgets.dialogs import ChoiceScreen

        self.push_screen(
            ChoiceScreen(
                f"{self.loaded.path} changed on disk since it was loaded. Reload it (your "
                "unsaved edits are dropped), or overwrite it with the form?",
                [("reload", "Reload from disk"), ("overwrite", "Overwrite")],
            ),
            answered,
        )

    async def reloaded(self, loaded: LoadedSettings) -> None:
        """Show ``loaded`` (just read from disk) in place of the form's edits."""
        self.loaded = loaded
        await self._show_saved_settings()
        self.notify(f"Reloaded {loaded.path}", title="Settings")

    async def _show_saved_settings(self) -> None:
        """The form shows the loaded file again, on the same connection if it is saved."""
        connections = self.loaded.settings.connections
        name = self.form.connection_name
        if name not in connections:
            name = self.session.connection_name
        if name not in connections:
            name = self.loaded.settings.connection_name()
        await self.form.load(self.loaded, name)
        self._replace_session(name, keep_alerts=name == self.session.connection_name)

    def action_revert_settings(self) -> None:
        if not self.form.dirty:
            self.notify("No unsaved edits to revert.", title="Revert")
            return

        async def answered(confirmed: bool | None) -> None:
            if confirmed:
                await self._show_saved_settings()
                self.notify("Unsaved edits dropped.", title="Revert")

        from console.widgets.dialogs import ConfirmScreen

        self.push_screen(
            ConfirmScreen(
                f"Drop your unsaved edits and show the settings as saved in {self.loaded.path}?",
                "Revert",
            ),
            answered,
        )

    def action_switch_connection(self) -> None:
        names = list(self.loaded.settings.connections)

        def chosen(name: str | None) -> None:
            if name is None or name == self.form.connection_name:
                return
            self._unless_unsaved(f"Discard unsaved changes and switch to {name}?", switch, name)

        async def switch(name: str) -> None:
            await self.form.load(self.loaded, name)
            self._replace_session(name, keep_alerts=False)

        from console.widgets.dialogs import ChooseConnectionScreen

        self.push_screen(ChooseConnectionScreen(names, self.form.connection_name), chosen)

    def action_choose_audience(self) -> None:
        """Pick the audience the preview and every send build records for (README: "The console
        (TUI): a short tour"); each new session carries it on."""
        named = list(self.loaded.settings.audiences)
        choices = [("", "[audience] (default)"), *((name, name) for name in named)]
        if named:
            choices.append((ALL_AUDIENCES, "all (a burst is shared out across them)"))

        def chosen(name: str | None) -> None:
            if name is None:
                return
            if self.running_send is not None:  # its records are built as it goes
                self._say_send_running()
                return
            self.session.audience_name = name or None
            self._show_status()
            self.preview_pane.rebuild()
            if self.side_preview is not None:
                self.side_preview.rebuild()

        from console.widgets.dialogs import ChooseAudienceScreen

        self.push_screen(ChooseAudienceScreen(choices, self.session.audience_name or ""), chosen)

    def action_add_connection(self) -> None:
        if not self.form.dirty:
            self._add_connection()
            return

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self._add_connection()

        from console.widgets.dialogs import ConfirmScreen

        self.push_screen(
            ConfirmScreen(
                "The form has unsaved edits. They stay in the form, and the next ctrl+s saves "
                "them together with the new connection. Add a connection now?",
                "Add anyway",
            ),
            answered,
        )

    def _add_connection(self) -> None:
        def check(name: str, stream: str) -> list[str]:
            return self.form.with_new_connection(name, stream)[1]

        async def added(answer: tuple[str, str] | None) -> None:
            if answer is None:
                return
            settings, _ = self.form.with_new_connection(*answer)
            if settings is not None:
                await self.form.load(self.loaded, answer[0], shown=settings)
                self.notify(f"Connection {answer[0]} added: ctrl+s saves it and switches to it.")

        from console.widgets.dialogs import AddConnectionScreen

        self.push_screen(AddConnectionScreen(check), added)

    async def action_quit(self) -> None:
        if self._quit_question is not None:  # ctrl+q pressed again: the answer is yes
            self._quit_question.dismiss(True)
            return
        running = self.running_send
        if running is None:
            self._ask_about_unsaved_then_quit()
            return
        unsaved = " and lose your unsaved settings changes" if self.form.dirty else ""
        from console.widgets.dialogs import ConfirmScreen

        self._quit_question = ConfirmScreen(
            f"{running.what} is running ({running.settled_count:,} of {running.total:,} done). "
            f"Stop it{unsaved} and quit? What is not sent is kept as never sent. "
            "ctrl+q again confirms.",
            "Stop and quit",
        )

        async def answered(confirmed: bool | None) -> None:
            self._quit_question = None
            if confirmed:
                await self._stop_send_and_exit()

        self.push_screen(self._quit_question, answered)

    def _ask_about_unsaved_then_quit(self) -> None:
        """Quit at once, or with unsaved edits: Save and quit, Quit without saving, or Cancel."""
        if not self.form.dirty:
            self._exit_now()
            return

        def answered(answer: str | None) -> None:
            if answer == "save":
                self._quit_after_save = True
                self.action_save_settings()
            elif answer == "discard":
                self._exit_now()

        from console.widgets.dialogs import ChoiceScreen

        self.push_screen(
            ChoiceScreen(
                "The settings have unsaved changes.",
                [("save", "Save and quit"), ("discard", "Quit without saving")],
            ),
            answered,
        )

    async def _stop_send_and_exit(self) -> None:
        """Cancel the send, wait (bounded) for its worker, then exit: the session, and the
        sandbox with it, is closed after the send's last call, never under it."""
        running = self.running_send
        if running is not None:
            running.cancel.set()
            self._show_progress()
        deadline = time.monotonic() + QUIT_WAIT_SECONDS
        while time.monotonic() < deadline and any(
            worker.is_running for worker in self.workers if worker.group == "send"
        ):
            await asyncio.sleep(0.05)
        self.exit(0)

    def _exit_now(self) -> None:
        self.exit(0)

    def _unless_unsaved(self, question: str, then: Callable[..., object], *args: object) -> None:
        """Run ``then`` now, or after the user agrees to lose unsaved edits."""
        if not self.form.dirty:
            self.call_next(then, *args)
            return

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self.call_next(then, *args)

        from console.widgets.dialogs import ConfirmScreen

        self.push_screen(ConfirmScreen(question, "Discard changes"), answered)


def run_console(
    loaded: LoadedSettings,
    *,
    connection_name: str | None,
    use_sandbox: bool,
    audience_name: str | None = None,
) -> int:
    """Open the console (on ``audience_name``, a name checked by the CLI); returns the exit
    status."""
    app = FirehoseConsoleApp(
        loaded,
        connection_name=connection_name,
        use_sandbox=use_sandbox,
        audience_name=audience_name,
    )
    app.run()
    return app.return_code or 0
