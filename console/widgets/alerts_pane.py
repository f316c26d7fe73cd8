"""System Alerts (README: "Delivery, retries and alerts"): the alerts table updated in place,
the sample of the selected alert, the live attempt log, and the dead letters with their replay."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Button, DataTable, Label, Static

from console.widgets.themed import themed
from engine.alerts import Alert, Severity
from engine.events import (
    AttemptFailed,
    AttemptStarted,
    DeadLettered,
    DeliveryEvent,
    DeliveryGaveUp,
    InterruptedRunRecovered,
    RateAdjusted,
    RecordDelivered,
)

if TYPE_CHECKING:
    from console.widgets.attempt_log import AttemptLog
    from engine.dead_letters import DeadLetter

ATTEMPT_LOG_LINES = 500
CONSOLE_FAILURE_SEVERITY = "error"
_SEVERITY_COLOURS = {
    Severity.WARNING.value: "text-warning",
    Severity.FATAL.value: "text-error",
    CONSOLE_FAILURE_SEVERITY: "text-error",
}


@dataclass(frozen=True)
class AlertRow:
    """What one line of the table shows: an engine alert, or a console call that failed."""

    type: str
    severity: str
    count: int
    first_seen: datetime
    last_seen: datetime
    sample: dict[str, Any]

    @classmethod
    def from_alert(cls, alert: Alert) -> AlertRow:
        return cls(
            alert.type.value,
            alert.severity.value,
            alert.count,
            alert.first_seen,
            alert.last_seen,
            {"sent": alert.sample.sent, "received": alert.sample.received},
        )


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%m-%d %H:%M:%S")


def _short(message_id: str) -> str:
    return message_id[:8]


def _clock(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%H:%M:%S")


def recovery_summary(letters: Sequence[DeadLetter]) -> str:
    """What an interrupted run left, in the dead letters now: how many have unknown fate
    (sent, never answered: possible duplicates) and how many were never sent (README
    "Reliability")."""
    unknown = sum(1 for letter in letters if letter.possible_duplicate)
    unsent = len(letters) - unknown
    parts = []
    if unknown:
        verb = "has" if unknown == 1 else "have"
        parts.append(f"{unknown} {verb} unknown fate (possible duplicates: they may have arrived)")
    if unsent:
        parts.append(f"{unsent} {'was' if unsent == 1 else 'were'} never sent")
    noun = "message" if len(letters) == 1 else "messages"
    return f"{len(letters)} {noun} of an interrupted run moved to the dead letters: " + ", ".join(
        parts
    )


def attempt_text(event: DeliveryEvent) -> tuple[str, str]:
    """One line of the attempt log, and the theme colour it is shown in."""
    if isinstance(event, AttemptStarted):
        who = f"{event.kind.value} {_short(event.message_id)}"
        return f"{_clock(event.at)} ▸ {who} attempt {event.attempt}", ""
    if isinstance(event, AttemptFailed):
        who = f"{event.kind.value} {_short(event.message_id)}"
        then = f"retry in {event.retry_in_seconds:.2f} s" if event.will_retry else "no retry"
        text = f"{_clock(event.at)} ✗ {who} attempt {event.attempt}: {event.failure.describe()}"
        return f"{text} — {then}", "text-warning"
    if isinstance(event, RecordDelivered):
        who = f"{event.kind.value} {_short(event.message_id)}"
        return (
            f"{_clock(event.at)} ✓ {who} delivered after {event.attempts} attempt(s): "
            f"RecordId {event.record_id}",
            "text-success",
        )
    if isinstance(event, DeliveryGaveUp):
        who = f"{event.kind.value} {_short(event.message_id)}"
        return (
            f"{_clock(event.at)} ✗ {who} gave up after {event.attempts} attempt(s): "
            f"{event.failure.describe()}",
            "text-error",
        )
    if isinstance(event, DeadLettered):
        return (
            f"         ☠ {_short(event.message_id)} kept in the dead-letter journal",
            "text-error",
        )
    if isinstance(event, RateAdjusted):
        return (
            f"{_clock(event.at)} ≈ rate {event.change.value}: {event.records_per_second:g} "
            f"records/s (ceiling {event.ceiling:g})",
            "text-accent",
        )
    if isinstance(event, InterruptedRunRecovered):
        return f"         ☠ {recovery_summary(event.letters)}", "text-error"
    return type(event).__name__, ""


class AlertsPane(Vertical):
    """Alerts table, selected sample, attempt log and dead letters.

    The app builds it when its tab is first shown; until then it keeps the alerts, the last
    ``ATTEMPT_LOG_LINES`` log lines and the dead letters it was given, and shows them on mount.
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._rows: dict[str, AlertRow] = {}
        self._journal: Path | None = None
        self._unwritten: deque[Text] = deque(maxlen=ATTEMPT_LOG_LINES)
        self._letters: Sequence[DeadLetter] | None = None

    def compose(self) -> ComposeResult:
        from console.widgets.attempt_log import AttemptLog  # imported when the tab is built

        yield DataTable(id="alerts-table", cursor_type="row")
        with VerticalScroll(id="alert-sample-box"):
            yield Static(
                "No alerts. Select one to see what was sent and what came back.", id="alert-sample"
            )
        yield Label("Attempt log (newest last)", classes="pane-label")
        yield AttemptLog(max_lines=ATTEMPT_LOG_LINES, id="attempt-log")
        with Horizontal(id="dead-letters-bar"):
            yield Label("Dead letters: none", id="dead-letters-title")
            yield Button("Browse", compact=True, id="browse-dead-letters", tooltip="l")
            yield Button("Replay", compact=True, id="replay-dead-letters", tooltip="p")
        yield DataTable(id="dead-letters", cursor_type="row")

    def on_mount(self) -> None:
        alerts = self.query_one("#alerts-table", DataTable)
        for label, key in (
            ("Type", "type"),
            ("Severity", "severity"),
            ("Count", "count"),
            ("First (UTC)", "first_seen"),
            ("Last (UTC)", "last_seen"),
        ):
            alerts.add_column(label, key=key)
        letters = self.query_one("#dead-letters", DataTable)
        for label, key in (
            ("At (UTC)", "at"),
            ("Kind", "kind"),
            ("Alert", "alert"),
            ("Attempts", "attempts"),
            ("Why", "detail"),
        ):
            letters.add_column(label, key=key)
        # (is_mounted turns true only after on_mount: what was kept is rendered directly)
        for row in self._rows.values():
            self._render_row(row)
        if self._unwritten:  # the log wraps them at its own width once it has one
            self._attempt_log().write_wrapped(Text("\n").join(self._unwritten))
            self._unwritten.clear()
        if self._letters is not None and self._journal is not None:
            self._render_dead_letters(self._letters, self._journal)

    # -- alerts --------------------------------------------------------------------------

    def update_alert(self, alert: Alert) -> None:
        self._show_row(AlertRow.from_alert(alert))

    def record_console_failure(self, what: str, error: BaseException) -> None:
        """A console call that failed outright (not a delivery): counted like an alert."""
        now = datetime.now(UTC)
        title = f"{what} failed"
        previous = self._rows.get(title)
        self._show_row(
            AlertRow(
                title,
                CONSOLE_FAILURE_SEVERITY,
                (previous.count if previous else 0) + 1,
                previous.first_seen if previous else now,
                now,
                {
                    "sent": {"action": what},
                    "received": {"error": type(error).__name__, "message": str(error)},
                },
            )
        )

    def _show_row(self, row: AlertRow) -> None:
        self._rows[row.type] = row
        if self.is_mounted:
            self._render_row(row)

    def _render_row(self, row: AlertRow) -> None:
        table = self.query_one("#alerts-table", DataTable)
        cells = {
            "type": themed(self, row.type, bold=True),
            "severity": themed(self, row.severity, _SEVERITY_COLOURS.get(row.severity, "")),
            "count": themed(self, str(row.count)),
            "first_seen": themed(self, _utc(row.first_seen)),
            "last_seen": themed(self, _utc(row.last_seen)),
        }
        if row.type in table.rows:
            for column, value in cells.items():
                table.update_cell(row.type, column, value)
        else:
            table.add_row(*cells.values(), key=row.type)
        if table.row_count == 1 or self._selected_type() == row.type:
            self._show_sample(row.type)

    def _selected_type(self) -> str | None:
        table = self.query_one("#alerts-table", DataTable)
        if table.row_count == 0:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def _show_sample(self, alert_type: str | None) -> None:
        row = self._rows.get(alert_type or "")
        sample = self.query_one("#alert-sample", Static)
        if row is None:
            sample.update("No alerts. Select one to see what was sent and what came back.")
            return

        from textual.highlight import highlight  # pygments: loaded when first needed

        def compact(document: object) -> Content:
            return highlight(json.dumps(document, ensure_ascii=False), language="json")

        sample.update(
            Content("\n").join(
                [
                    Content.styled(f"Sample of {row.type}", "bold"),
                    Content.assemble(
                        ("came back: ", "$text-accent"), compact(row.sample["received"])
                    ),
                    Content.assemble(("sent: ", "$text-accent"), compact(row.sample["sent"])),
                ]
            )
        )

    @on(DataTable.RowHighlighted, "#alerts-table")
    def _alert_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_sample(str(event.row_key.value))

    def clear(self) -> None:
        self._rows.clear()
        self._unwritten.clear()
        if not self.is_mounted:
            return
        self.query_one("#alerts-table", DataTable).clear()
        self._attempt_log().clear()
        self._show_sample(None)

    def _attempt_log(self) -> AttemptLog:
        from console.widgets.attempt_log import AttemptLog

        return self.query_one("#attempt-log", AttemptLog)

    # -- attempts ------------------------------------------------------------------------

    def log_events(self, events: Sequence[DeliveryEvent], *, not_listed: int = 0) -> None:
        """Add events to the attempt log (newest last); ``not_listed`` more happened but the
        digest kept only the latest, so a storm cannot flood the screen."""
        lines = []
        if not_listed:
            note = f"         … {not_listed} earlier event(s) not listed (counted in the tally)"
            lines.append(themed(self, note, "text-muted"))
        for event in events:
            text, colour = attempt_text(event)
            lines.append(themed(self, text, colour, bold=colour == "text-error"))
        if not lines:
            return
        # One write per digest. No log: not built yet, or (the console closing) taken down.
        if self.is_mounted and self.query("#attempt-log"):
            self._attempt_log().write_wrapped(Text("\n").join(lines))
        else:  # kept until the tab is first built
            self._unwritten.extend(lines)

    # -- dead letters --------------------------------------------------------------------

    def show_dead_letters(self, letters: Sequence[DeadLetter], journal: Path) -> None:
        self._journal, self._letters = journal, letters
        if self.is_mounted:
            self._render_dead_letters(letters, journal)

    def _render_dead_letters(self, letters: Sequence[DeadLetter], journal: Path) -> None:
        title = f"Dead letters: {len(letters)}" if letters else "Dead letters: none"
        self.query_one("#dead-letters-title", Label).update(f"{title} ({journal})")
        table = self.query_one("#dead-letters", DataTable)
        table.clear()
        for letter in letters:
            table.add_row(
                themed(self, _utc(datetime.fromisoformat(letter.at))),
                themed(self, letter.kind + (" (dup?)" if letter.possible_duplicate else "")),
                themed(self, letter.alert_type, "text-error"),
                themed(self, str(letter.attempts)),
                themed(self, letter.detail),
                key=letter.message_id,
            )
        self.query_one("#replay-dead-letters", Button).disabled = not letters

    @on(Button.Pressed, "#browse-dead-letters")
    async def _browse_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        await self.run_action("app.browse_dead_letters")

    @on(DataTable.RowSelected, "#dead-letters")
    async def _letter_chosen(self, event: DataTable.RowSelected) -> None:
        """Enter on a letter opens the browser at it."""
        event.stop()
        await self.run_action(f"app.browse_dead_letters({str(event.row_key.value)!r})")

    @on(Button.Pressed, "#replay-dead-letters")
    async def _replay_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        await self.run_action("app.replay_dead_letters")
