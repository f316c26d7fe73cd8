"""What reached the sandbox's S3 destination: the records decoded, newest first.

README: "The embedded sandbox".
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.highlight import highlight
from textual.widgets import DataTable, Static

from console.widgets.themed import themed
from engine.sandbox import DeliveredRecord

MAX_DELIVERED_ROWS = 500


def _record_text(record: DeliveredRecord) -> str:
    if record.decoded is None:
        return record.data.decode("utf-8", errors="replace").rstrip("\n")
    return json.dumps(record.decoded, ensure_ascii=False, separators=(",", ":"))


class DeliveredPane(Vertical):
    """A table of delivered records and the selected one in full."""

    def __init__(self, *, sandbox: bool, id: str | None = None) -> None:
        super().__init__(id=id)
        self.sandbox = sandbox
        self._records: dict[str, DeliveredRecord] = {}

    def compose(self) -> ComposeResult:
        if self.sandbox:
            note = "Records in the sandbox's S3 bucket, newest first (refreshed after sends)."
        else:
            note = (
                "Only with the embedded sandbox: a real stream buffers records for minutes "
                "before they reach its destination (see Verify)."
            )
        yield Static(Content.styled(note, "$text-muted"), id="delivered-note")
        yield DataTable(id="delivered-table", cursor_type="row")
        with VerticalScroll(id="delivered-detail-box"):
            yield Static("", id="delivered-detail")

    def on_mount(self) -> None:
        table = self.query_one("#delivered-table", DataTable)
        table.add_column("Arrived (UTC)", key="arrived")
        table.add_column("Record (decoded)", key="record")

    def show_records(self, records: Sequence[DeliveredRecord]) -> None:
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
                f"{len(records)} record(s) in the sandbox's S3 bucket, newest first.",
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
