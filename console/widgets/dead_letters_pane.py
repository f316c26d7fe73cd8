"""The dead-letter browser (README: "The console (TUI): a short tour"): every letter of the
connection's journal in a table, the selected one in full (decoded record, stream, reason,
attempts, possible duplicate, what it follows), and the calls that act on them — replay or drop
the selected letter, replay them all, or all to the current stream. Opened from the Alerts tab.

Every engine call runs in a thread worker; a refused or failed call (another replay holds the
journal, the disk is full) becomes a notification and an alert row, never a crash.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static
from textual.worker import Worker, WorkerState

from console.messages import SendFinished
from console.widgets.dialogs import ConfirmScreen
from console.widgets.key_footer import KeyFooter
from console.widgets.themed import themed
from engine.dead_letters import DeadLetter
from engine.jsonl import Quarantined
from engine.session import ConsoleSession, SendReport
from engine.state_dir import INTERRUPTED_UNSENT, UNKNOWN_FATE

WORKER_GROUP = "dead-letter-browser"

# Letters an interrupted run left carry no alert type: their reason says what is known.
_INTERRUPTED_REASONS = {
    UNKNOWN_FATE: "fate unknown",
    INTERRUPTED_UNSENT: "never sent",
}


def short_id(message_id: str) -> str:
    return message_id[:8]


def reason_of(letter: DeadLetter) -> str:
    """Why the letter is here, in words: its alert type, or what an interruption left."""
    return letter.alert_type or _INTERRUPTED_REASONS.get(letter.failure_class, letter.failure_class)


def _action_of(letter: DeadLetter) -> str:
    """The action, and the record's kind when it differs (an identity change sends a remove
    and an add)."""
    if letter.kind == letter.action:
        return letter.action
    return f"{letter.action} ({letter.kind})"


def _attempts(letter: DeadLetter) -> str:
    # An interrupted run's letters come from the outbox, which does not journal attempts.
    return str(letter.attempts) if letter.attempts else "not recorded (interrupted run)"


def warning_line(warning: Quarantined) -> str:
    noun = "line" if warning.lines == 1 else "lines"
    return (
        f"⚠ {warning.lines} damaged {noun} set aside in {warning.quarantine} (kept: repair by hand)"
    )


def _utc(at: str) -> str:
    try:
        return datetime.fromisoformat(at).astimezone(UTC).strftime("%m-%d %H:%M:%S")
    except ValueError:
        return at


def decoded_record(letter: DeadLetter) -> Content:
    """The record's bytes as Firehose would get them: pretty JSON when they are JSON."""
    data = letter.data_bytes
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return Content(data.decode("utf-8", errors="replace"))
    from textual.highlight import highlight  # pygments: loaded when first needed

    return highlight(json.dumps(document, indent=2, ensure_ascii=False), language="json")


def letter_detail(letter: DeadLetter) -> Content:
    """Everything the journal knows of one letter, one fact a line, then the decoded record."""
    duplicate = (
        "yes — Firehose may already have it: a replay may deliver it twice"
        if letter.possible_duplicate
        else "no"
    )
    facts = (
        ("Message", letter.message_id),
        ("Stream", f"{letter.stream_name} (connection {letter.connection})"),
        ("Action", _action_of(letter)),
        ("Reason", f"{reason_of(letter)}: {letter.detail}" if letter.detail else reason_of(letter)),
        ("Attempts", f"{_attempts(letter)} · kept at {_utc(letter.at)} UTC"),
        ("Possible duplicate", duplicate),
        ("Follows", f"{letter.follows} (replayed after it)" if letter.follows else "nothing"),
    )
    lines = [Content.assemble((f"{name}: ", "$text-accent"), value) for name, value in facts]
    lines.append(Content.styled("Record (decoded):", "$text-accent"))
    lines.append(decoded_record(letter))
    return Content("\n").join(lines)


class DeadLettersBrowser(ModalScreen[None]):
    """The dead letters of the current connection, browsed and acted on one at a time.

    ``started_session`` returns the app's current session with its gateway up (called in a
    worker thread); ``report_failure`` adds a failed call to the Alerts tab.
    """

    BINDINGS = [
        Binding("p", "replay_selected", "Replay this", id="dead-letters.replay-one"),
        Binding("d", "drop_selected", "Drop this", id="dead-letters.drop-one"),
        Binding("a", "replay_all", "Replay all", id="dead-letters.replay-all"),
        Binding("t", "replay_to_current", "All to current stream", id="dead-letters.to-current"),
        Binding("escape", "close", "Close", id="dead-letters.close"),
    ]

    class LettersRead(Message):
        """The journal as read now: letters, quarantine warnings, and where it is."""

        def __init__(
            self,
            letters: Sequence[DeadLetter],
            warnings: Sequence[Quarantined],
            journal: Path,
            stream_name: str,
        ) -> None:
            super().__init__()
            self.letters = tuple(letters)
            self.warnings = tuple(warnings)
            self.journal = journal
            self.stream_name = stream_name

    class CallFinished(Message):
        """A replay or a drop is over; ``summary`` says what it did (empty: already said)."""

        def __init__(self, summary: str) -> None:
            super().__init__()
            self.summary = summary

    def __init__(
        self,
        started_session: Callable[[], ConsoleSession],
        report_failure: Callable[[str, BaseException], None],
        *,
        select: str | None = None,
    ) -> None:
        super().__init__(id="dead-letters-browser")
        self._started_session = started_session
        self._report_failure = report_failure
        self._select = select
        self._letters: dict[str, DeadLetter] = {}
        self._stream_name = ""
        self.busy: str | None = None  # what the running call does, e.g. "Replay 3f2a1b2c"

    def compose(self) -> ComposeResult:
        with Vertical(id="dead-letters-frame"):
            yield Label("Dead letters: reading the journal…", id="dead-letters-heading")
            yield Static("", id="dead-letters-warnings")
            yield DataTable(id="dead-letters-browser-table", cursor_type="row")
            with VerticalScroll(id="dead-letter-detail-box"):
                yield Static("No letter selected.", id="dead-letter-detail")
        yield KeyFooter(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#dead-letters-browser-table", DataTable)
        for label, key in (
            ("At (UTC)", "at"),
            ("Action", "action"),
            ("Dup?", "duplicate"),
            ("Tries", "attempts"),
            ("Reason", "reason"),
            ("Stream", "stream"),
        ):
            table.add_column(label, key=key)
        table.focus()
        self._read()

    # -- reading -------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group=WORKER_GROUP)
    def _read(self) -> None:
        session = self._started_session()
        letters = session.dead_letters()
        self.post_message(
            self.LettersRead(
                letters,
                session.journal_warnings(),
                session.dead_letter_journal().path,
                session.stream_name,
            )
        )

    @on(LettersRead)
    def _show_letters(self, message: LettersRead) -> None:
        self._letters = {letter.message_id: letter for letter in message.letters}
        self._stream_name = message.stream_name
        count = len(message.letters)
        heading = f"Dead letters: {count}" if count else "Dead letters: none"
        self.query_one("#dead-letters-heading", Label).update(f"{heading} ({message.journal})")
        warnings = self.query_one("#dead-letters-warnings", Static)
        warnings.update("\n".join(warning_line(warning) for warning in message.warnings))
        warnings.display = bool(message.warnings)
        table = self.query_one("#dead-letters-browser-table", DataTable)
        selected = self._select or self.selected_id()
        self._select = None
        table.clear()
        for letter in message.letters:
            table.add_row(
                themed(self, _utc(letter.at)),
                themed(self, _action_of(letter)),
                themed(self, "dup?" if letter.possible_duplicate else "", "text-warning"),
                themed(self, str(letter.attempts) if letter.attempts else "–"),
                themed(self, reason_of(letter), "text-error"),
                themed(self, letter.stream_name),
                key=letter.message_id,
            )
        if selected in self._letters:
            table.move_cursor(row=table.get_row_index(selected), animate=False)
        self._show_detail(self.selected_id())
        self.refresh_bindings()

    def selected_id(self) -> str | None:
        table = self.query_one("#dead-letters-browser-table", DataTable)
        if table.row_count == 0:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def _show_detail(self, message_id: str | None) -> None:
        letter = self._letters.get(message_id or "")
        detail = self.query_one("#dead-letter-detail", Static)
        detail.update(letter_detail(letter) if letter else "No dead letters: nothing to replay.")

    @on(DataTable.RowHighlighted, "#dead-letters-browser-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_detail(str(event.row_key.value))

    # -- actions -------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """One call at a time; none without letters (shown dimmed in the footer)."""
        if action == "close":
            return True
        if self.busy is not None or not self._letters:
            return None
        return True

    def action_close(self) -> None:
        self.dismiss(None)

    def action_replay_selected(self) -> None:
        letter = self._letters.get(self.selected_id() or "")
        if letter is None:
            return
        what = f"Replay {short_id(letter.message_id)}"
        if not letter.possible_duplicate:
            self._call(
                what,
                lambda s: _replayed(s.replay_dead_letters(message_ids=[letter.message_id]), what),
            )
            return
        self._confirm(
            f"Dead letter {short_id(letter.message_id)} may already be in {letter.stream_name}: "
            "Firehose may have received it before the run was interrupted. Replay it anyway "
            "(it may arrive twice)?",
            "Replay",
            what,
            lambda s: _replayed(s.replay_dead_letters(message_ids=[letter.message_id]), what),
        )

    def action_drop_selected(self) -> None:
        letter = self._letters.get(self.selected_id() or "")
        if letter is None:
            return
        what = f"Drop {short_id(letter.message_id)}"
        self._confirm(
            f"Drop dead letter {short_id(letter.message_id)} ({letter.action} to "
            f"{letter.stream_name})? It leaves the journal for good and is never sent.",
            "Drop",
            what,
            lambda s: f"Dropped {len(s.drop_dead_letters([letter.message_id]))} dead letter.",
        )

    def action_replay_all(self) -> None:
        what = "Replay all dead letters"
        self._call(what, lambda s: _replayed(s.replay_dead_letters(), what))

    def action_replay_to_current(self) -> None:
        what = f"Replay all to {self._stream_name}"
        count = len(self._letters)
        self._confirm(
            f"Replay all {count} dead letter(s) to the current stream {self._stream_name}, "
            "whatever stream they were first sent to?",
            "Replay to current",
            what,
            lambda s: _replayed(s.replay_dead_letters(to_current=True), what),
        )

    def _confirm(
        self, question: str, label: str, what: str, call: Callable[[ConsoleSession], object]
    ) -> None:
        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self._call(what, call)

        self.app.push_screen(ConfirmScreen(question, label), answered)

    def _call(self, what: str, call: Callable[[ConsoleSession], object]) -> None:
        self.busy = what
        self.refresh_bindings()
        self.query_one("#dead-letters-heading", Label).update(f"{what}…")
        self._run(what, call)

    @work(thread=True, exclusive=True, exit_on_error=False, group=WORKER_GROUP)
    def _run(self, what: str, call: Callable[[ConsoleSession], object]) -> None:
        outcome = call(self._started_session())
        if isinstance(outcome, SendFinished):
            # The app notifies it and shows it on the Send and Alerts tabs: said once.
            self.app.post_message(outcome)
            self.post_message(self.CallFinished(""))
        else:
            self.post_message(self.CallFinished(f"{what}: {outcome}"))

    @on(CallFinished)
    def _finished(self, message: CallFinished) -> None:
        self.busy = None
        if message.summary:
            self.notify(message.summary, title="Dead letters")
        self._read()

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        """A refused or failed call: a notification and an alert row, and the journal read
        again (a replay may have delivered some letters before it stopped)."""
        if event.worker.group != WORKER_GROUP or event.state is not WorkerState.ERROR:
            return
        event.stop()
        error = event.worker.error
        if error is None:
            return
        what = self.busy or "Read dead letters"
        self._report_failure(what, error)
        self.notify(str(error), title=f"{what} failed", severity="error", timeout=10)
        if self.busy is not None:
            self.busy = None
            self.refresh_bindings()
            self._read()


def _replayed(report: SendReport, what: str) -> SendFinished:
    return SendFinished(report, what=what, replay=True)
