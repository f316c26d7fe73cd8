"""Where sent records landed (README "Where records land"): each acknowledged record landed,
waiting (with a countdown to when buffering says it should be there), missing or failed, read
by the engine's destination reader for real streams and the sandbox alike; on the sandbox, the
records in its bucket decoded too, newest first."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import DataTable, Static

from console.widgets.shown import on_the_shown_tab
from console.widgets.themed import themed

# The landed reader (engine.landed) loads with the first report it reads: the console's first
# screen has none to show (README: "Performance").
if TYPE_CHECKING:
    from engine.landed import LandedReport, LandedStatus, RecordLanding
    from engine.sandbox import DeliveredRecord

MAX_DELIVERED_ROWS = 500
MAX_LANDING_ROWS = 200


@cache
def _status_styles() -> dict[LandedStatus, str]:
    """How each landing status is coloured; built once, when the first report is shown."""
    from engine.landed import LandedStatus

    return {
        LandedStatus.LANDED: "$success",
        LandedStatus.WAITING: "$warning",
        LandedStatus.MISSING: "$error",
        LandedStatus.FAILED: "$error",
        LandedStatus.UNCONFIRMED: "$text-muted",
    }


def _clock(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%H:%M:%S") if moment else ""


def _where(landing: RecordLanding) -> str:
    from engine.landed import LandedStatus

    if landing.status is LandedStatus.LANDED:
        return f"{_clock(landing.landed_at)} ({landing.latency_seconds:.0f} s)  {landing.location}"
    if landing.status is LandedStatus.FAILED:
        return f"{landing.error}  {landing.location}"
    if landing.expected_by is not None:
        return f"due {_clock(landing.expected_by)}"
    return ""


def landing_summary(report: LandedReport, now: datetime) -> str:
    """One line: the counts, the countdown to the next record due, and what cannot be read."""
    from engine.landed import LandedStatus

    counts = ", ".join(
        f"{report.count(status)} {status.value}"
        for status in LandedStatus
        if report.count(status) or status is LandedStatus.LANDED
    )
    if not report.records:
        return f"No acknowledged records from this console yet (read by {report.reader})."
    text = f"{len(report.records)} acknowledged record(s): {counts}"
    due = [
        landing.expected_by
        for landing in report.records
        if landing.status is LandedStatus.WAITING and landing.expected_by is not None
    ]
    if due:
        seconds = max(0, int((min(due) - now).total_seconds()))
        interval = report.destination.buffering_interval_seconds
        text += f" · next due in {seconds} s (Firehose buffers up to {interval} s)"
    if report.problem:
        text += f" · {report.problem}"
    return f"{text} · read by {report.reader}" if report.reader else text


def _record_text(record: DeliveredRecord) -> str:
    if record.decoded is None:
        return record.data.decode("utf-8", errors="replace").rstrip("\n")
    return json.dumps(record.decoded, ensure_ascii=False, separators=(",", ":"))


class DeliveredPane(Vertical):
    """Where each acknowledged record landed; on the sandbox, a table of the records in its
    bucket and the selected one in full."""

    DEFAULT_CSS = """
    #landing-table { height: auto; max-height: 12; }
    """

    def __init__(self, *, sandbox: bool, id: str | None = None) -> None:
        super().__init__(id=id)
        self.sandbox = sandbox
        self._records: dict[str, DeliveredRecord] = {}
        self._landing: LandedReport | None = None

    def compose(self) -> ComposeResult:
        if self.sandbox:
            note = "Records in the sandbox's S3 bucket, newest first (refreshed after sends)."
        else:
            note = (
                "Where each record sent from here landed in the stream's destination, read as "
                "the operator (refreshed after sends). A real stream buffers records for "
                "minutes first."
            )
        yield Static(Content.styled(note, "$text-muted"), id="delivered-note")
        yield Static("", id="landing-summary")
        yield DataTable(id="landing-table", cursor_type="row")
        yield DataTable(id="delivered-table", cursor_type="row")
        with VerticalScroll(id="delivered-detail-box"):
            yield Static("", id="delivered-detail")

    def on_mount(self) -> None:
        table = self.query_one("#delivered-table", DataTable)
        table.add_column("Arrived (UTC)", key="arrived")
        table.add_column("Record (decoded)", key="record")
        landing = self.query_one("#landing-table", DataTable)
        for label in ("Status", "Audience", "Kind", "Acked (UTC)", "Landed / due (UTC)"):
            landing.add_column(label)
        # Shown once the reader has reported; the sandbox's own records are shown there only.
        self.query_one("#landing-summary").display = False
        landing.display = False
        if not self.sandbox:
            table.display = False
            self.query_one("#delivered-detail-box").display = False
        self.set_interval(1.0, self._count_down)

    def show_landing(self, report: LandedReport) -> None:
        """Where each acknowledged record is, as the engine's destination reader found it."""
        self._landing = report
        table = self.query_one("#landing-table", DataTable)
        table.clear()
        for landing in list(report.records)[-MAX_LANDING_ROWS:][::-1]:
            entry = landing.entry
            table.add_row(
                Content.styled(landing.status.value, _status_styles()[landing.status]),
                themed(self, entry.audience),
                themed(self, entry.kind),
                themed(self, _clock(entry.acked_time)),
                themed(self, _where(landing)),
            )
        table.display = bool(report.records)
        # On the sandbox an empty landing says nothing the records table does not.
        self.query_one("#landing-summary").display = bool(report.records) or not self.sandbox
        self._count_down()

    def on_show(self) -> None:
        self._count_down()

    def _count_down(self) -> None:
        # Not while another tab is shown (each update lays the screen out): caught up on show.
        if self._landing is not None and on_the_shown_tab(self):
            summary = landing_summary(self._landing, datetime.now(UTC))
            self.query_one("#landing-summary", Static).update(summary)

    def show_records(
        self,
        records: Sequence[DeliveredRecord],
        landing: LandedReport | None = None,
        *,
        total: int | None = None,
    ) -> None:
        """The newest records (``total``: how many the bucket holds, if more than given)."""
        if landing is not None:
            self.show_landing(landing)
        if not self.sandbox:  # a real stream's records are not read whole: the landing says it
            return
        table = self.query_one("#delivered-table", DataTable)
        table.clear()
        self._records.clear()
        for number, record in enumerate(records[:MAX_DELIVERED_ROWS]):
            key = f"{number}:{record.object_key}"
            self._records[key] = record
            arrived = record.last_modified.astimezone(UTC).strftime("%H:%M:%S.%f")[:-3]
            table.add_row(themed(self, arrived), themed(self, _record_text(record)), key=key)
        self.query_one("#delivered-note", Static).update(
            Content.styled(
                f"{len(records) if total is None else total} record(s) in the sandbox's S3 "
                "bucket, newest first.",
                "$text-muted",
            )
        )
        self._show_detail(next(iter(self._records), None))

    def _show_detail(self, key: str | None) -> None:
        detail = self.query_one("#delivered-detail", Static)
        record = self._records.get(key or "")
        if record is None:
            detail.update("")
            return
        from textual.highlight import highlight  # pygments: loaded when first needed

        body = (
            highlight(json.dumps(record.decoded, indent=2, ensure_ascii=False), language="json")
            if record.decoded is not None
            else Content(_record_text(record))
        )
        detail.update(Content("\n").join([Content.styled(record.object_key, "$text-muted"), body]))

    @on(DataTable.RowHighlighted, "#delivered-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_detail(str(event.row_key.value))
