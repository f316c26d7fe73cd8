"""Sending: the previewed message, or a burst of N, with each result as it happens.

README: "Delivery, retries and alerts" and "Bursts: count, rate, batches and quotas".
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Button, DataTable, Input, Label, Select, Static, Switch

from console.messages import ActionChosen, BurstRequest, SendRequested
from console.widgets.preview_pane import action_select
from console.widgets.shown import on_the_shown_tab
from console.widgets.themed import themed
from engine.event_digest import DeliveryTally
from engine.events import DeliveryGaveUp, RateAdjusted, RecordDelivered
from engine.records import MAX_BURST_COUNT, Action
from engine.session import SendReport

MAX_RESULT_ROWS = 400


def describe_report(report: SendReport, what: str) -> Content:
    """The honest tally of a send, one line."""
    style = "$text-success" if report.ok else "$text-error bold"
    return Content.assemble(
        (what, "bold"),
        f": requested {report.requested} · ",
        (f"delivered {report.delivered}", "$text-success"),
        " · ",
        (f"failed {report.failed}", style if report.failed else ""),
        f" · skipped {report.skipped} · dead-lettered {report.dead_lettered}",
        # Stopped before they went out: not failures (a replay sends those built).
        (f" · never sent {report.not_sent}", "$text-warning") if report.not_sent else "",
        f" · {report.elapsed_seconds:.2f} s",
    )


class SendPane(Vertical):
    """Buttons to send, the burst knobs, and the results table.

    The app builds it when its tab is first shown: until then (and after) it keeps what it was
    told (results, tally, last report) and shows it once mounted. While another tab is shown,
    a running send's results, tally and progress only wait for the tab to show again: drawing
    them ten times a second on a hidden tab would lay the whole screen out as often, on the
    thread that answers the keys.
    """

    action: reactive[Action] = reactive(Action.ADD)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._rows: deque[tuple[Text, ...]] = deque(maxlen=MAX_RESULT_ROWS // 2)
        self._unsaved = False
        self._form_valid = True
        self._tally: Content | None = None
        self._report: Content | None = None
        self._progress: str | None = None
        self._rows_not_drawn = 0  # results kept while the tab was hidden, not in the table yet
        self._redraw_on_show = False  # tally or progress changed while the tab was hidden
        self._progress_drawn: int | None = 0  # its height as last drawn (None: it wrapped)

    def compose(self) -> ComposeResult:
        with Horizontal(id="send-toolbar"):
            yield Label("Action ")
            yield action_select(self.action, id="send-action")
            yield Button("Send", variant="primary", compact=True, id="send-once")
        with Horizontal(id="burst-toolbar"):
            yield Label("Burst of ")
            yield Input("10", type="integer", compact=True, id="burst-count", tooltip="N users")
            yield Label(" rate/s ")
            yield Input(
                "",
                type="number",
                compact=True,
                id="burst-rate",
                placeholder="max",
                tooltip="Records per second at most (empty: as fast as possible)",
            )
            yield Label(" batch ")
            yield Switch(False, id="burst-batch", tooltip="PutRecordBatch (≤500 a call)")
            yield Button("Send burst", compact=True, id="send-burst")
        yield Static("", id="send-note")
        yield DataTable(id="send-results", cursor_type="row", zebra_stripes=True)
        yield Static("", id="send-progress")
        yield Static("Nothing sent yet.", id="send-summary")
        yield Static("", id="send-tally")

    def on_mount(self) -> None:
        table = self.query_one("#send-results", DataTable)
        for label, key in (
            ("At (UTC)", "at"),
            ("Kind", "kind"),
            ("Result", "result"),
            ("Attempts", "attempts"),
            ("Latency", "latency"),
            ("RecordId", "record_id"),
        ):
            table.add_column(label, key=key)
        if self._rows:
            table.add_rows(self._rows)
            table.move_cursor(row=table.row_count - 1)
        self._show_unsaved()
        if self._tally is not None:
            self.query_one("#send-tally", Static).update(self._tally)
        if self._report is not None:
            self.query_one("#send-summary", Static).update(self._report)
        self._show_progress()

    def on_show(self) -> None:
        if self._rows_not_drawn:
            if self._rows_not_drawn > len(self._rows):
                self.query_one("#send-results", DataTable).clear()
            rows = list(self._rows)[-self._rows_not_drawn :]
            self._rows_not_drawn = 0
            self._draw_results(rows)
        if self._redraw_on_show:
            self._redraw_on_show = False
            if self._tally is not None:
                self.query_one("#send-tally", Static).update(self._tally)
            self._show_progress()

    def watch_action(self, action: Action) -> None:
        if self.is_mounted:
            self.query_one("#send-action", Select).value = action

    @on(Select.Changed, "#send-action")
    def _action_chosen(self, event: Select.Changed) -> None:
        event.stop()
        if isinstance(event.value, Action) and event.value is not self.action:
            self.post_message(ActionChosen(event.value))

    def burst_request(self) -> BurstRequest | str:
        """The burst knobs, or what is wrong with them."""
        count_text = self.query_one("#burst-count", Input).value.strip()
        rate_text = self.query_one("#burst-rate", Input).value.strip()
        try:
            count = int(count_text)
            rate = float(rate_text) if rate_text else None
        except ValueError:
            return "the burst needs a whole count (and a number for the rate, or nothing)"
        if count < 1 or (rate is not None and rate <= 0):
            return "the burst count must be 1 or more, and the rate above 0"
        if count > MAX_BURST_COUNT:  # the CLI's limit: both fronts agree
            return f"the burst count must be at most {MAX_BURST_COUNT:,}"
        return BurstRequest(count, rate, self.query_one("#burst-batch", Switch).value)

    def request_burst(self) -> None:
        """Ask for a burst with the knobs as they stand, or say what is wrong with them (the
        key and the button both come here)."""
        burst = self.burst_request()
        if isinstance(burst, str):
            self.notify(burst, severity="error")
            return
        self.post_message(SendRequested(self.action, burst))

    @on(Button.Pressed, "#send-once")
    def _send_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.post_message(SendRequested(self.action))

    @on(Button.Pressed, "#send-burst")
    def _burst_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.request_burst()

    def show_unsaved(self, unsaved: bool, *, form_valid: bool = True) -> None:
        """Say what a send uses: the form as it stands, or (while the form has problems)
        its last valid state — never "follows the form" when it does not."""
        if (unsaved, form_valid) == (self._unsaved, self._form_valid):
            return
        self._unsaved, self._form_valid = unsaved, form_valid
        if self.is_mounted:
            self._show_unsaved()

    def _show_unsaved(self) -> None:
        note = self.query_one("#send-note", Static)
        if not self._form_valid:
            note.update(
                Content.styled(
                    "The form has problems (see Settings): records use its last valid state, "
                    "not what it shows now; region, endpoint, credentials, delivery and chaos "
                    "settings apply once saved (ctrl+s).",
                    "$text-warning",
                )
            )
        elif self._unsaved:
            note.update(
                Content.styled(
                    "Unsaved edits: records follow the form; region, endpoint, credentials, "
                    "delivery and chaos settings apply once saved (ctrl+s).",
                    "$text-warning",
                )
            )
        else:
            note.update(
                Content.styled(
                    "Sends what the Preview tab shows; each result appears as it arrives.",
                    "$text-muted",
                )
            )

    def show_tally(self, tally: DeliveryTally, rate: RateAdjusted | None) -> None:
        """The running tally of this console's sends, from the engine's events."""
        pace = f" · rate {rate.records_per_second:g}/s ({rate.change.value})" if rate else ""
        self._tally = Content.styled(
            f"So far: {tally.delivered} delivered · {tally.retrying} retrying · "
            f"{tally.failed} failed · {tally.dead_lettered} dead-lettered · "
            f"{tally.throttled} throttled{pace}",
            "$text-muted",
        )
        if on_the_shown_tab(self):
            self.query_one("#send-tally", Static).update(self._tally)
        elif self.is_mounted:
            self._redraw_on_show = True

    def add_results(self, events: Sequence[RecordDelivered | DeliveryGaveUp]) -> None:
        """One row per result, newest last, at most MAX_RESULT_ROWS of them."""
        if not events:
            return
        rows = [self._result_cells(event) for event in events]
        self._rows.extend(rows)
        if not self.is_mounted:
            return
        if not on_the_shown_tab(self):
            self._rows_not_drawn += len(rows)  # more than are kept: the table starts over
            return
        self._draw_results(rows)

    def _draw_results(self, rows: list[tuple[Text, ...]]) -> None:
        table = self.query_one("#send-results", DataTable)
        if table.row_count + len(rows) > MAX_RESULT_ROWS:
            # Rebuilt from the newest half at once: removing rows one by one is slow.
            table.clear()
            rows = list(self._rows)[-MAX_RESULT_ROWS // 2 :]
        table.add_rows(rows)
        table.move_cursor(row=table.row_count - 1)

    def _result_cells(self, event: RecordDelivered | DeliveryGaveUp) -> tuple[Text, ...]:
        at = event.at.strftime("%H:%M:%S")
        if isinstance(event, RecordDelivered):
            record_id = event.record_id
            latency = f"{event.latency_seconds * 1000:.0f} ms"
            result = themed(self, "delivered", "text-success")
        else:
            record_id, latency = "—", "—"
            result = themed(self, f"gave up: {event.failure.code}", "text-error")
        return (
            themed(self, at),
            themed(self, event.kind.value),
            result,
            themed(self, str(event.attempts)),
            themed(self, latency),
            themed(self, record_id),
        )

    def show_report(self, report: SendReport, what: str) -> None:
        self._report = describe_report(report, what)
        if self.is_mounted:
            self.query_one("#send-summary", Static).update(self._report)

    def show_progress(self, line: str | None) -> None:
        """The running send's progress line (redrawn on a timer), or None once it ended."""
        if line == self._progress:
            return
        self._progress = line
        if on_the_shown_tab(self):
            self._show_progress()
        elif self.is_mounted:
            self._redraw_on_show = True

    def _show_progress(self) -> None:
        progress = self.query_one("#send-progress", Static)
        # A progress line as tall as the one shown, neither wrapping, only repaints: laying
        # the whole screen out four times a second takes the screen's thread's time, which
        # the keys and the send both wait for.
        height = self._progress_height(progress.content_size.width)
        same_size = progress.display and height is not None and height == self._progress_drawn
        progress.display = self._progress is not None
        # The last send's summary is not this one's: hidden until this one ends.
        self.query_one("#send-summary", Static).display = self._progress is None
        if self._progress is not None:
            progress.update(
                Content.styled(self._progress, "$text-accent bold"), layout=not same_size
            )
        self._progress_drawn = height

    def _progress_height(self, width: int) -> int | None:
        """The progress line's height in rows when none of its lines wraps at ``width``."""
        if self._progress is None:
            return 0
        lines = self._progress.split("\n")
        return len(lines) if all(len(line) <= width for line in lines) else None
