"""Human-readable output of the CLI: short, plain text; JSON mode bypasses all of this."""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime
from json.encoder import encode_basestring as _quoted
from pathlib import Path
from typing import TextIO

from engine.dead_letters import DeadLetter
from engine.delivery import DeliveryOutcome
from engine.event_digest import DeliveryCounter, DeliveryTally
from engine.events import DeliveryEvent, RateAdjusted
from engine.landed import LandedReport, LandedStatus, RecordLanding
from engine.records import MessageKind, OutgoingMessage
from engine.session import SendReport
from engine.settings import RECORD_SIZE_LIMIT_BYTES
from engine.state_dir import INTERRUPTED_UNSENT, UNKNOWN_FATE
from engine.verification import CheckStatus, VerificationReport, policy_text

_MARKS = {CheckStatus.PASS: "PASS", CheckStatus.WARN: "WARN", CheckStatus.FAIL: "FAIL"}


def render_preview(messages: Sequence[OutgoingMessage]) -> str:
    blocks = []
    for number, message in enumerate(messages, start=1):
        state = "will be sent" if message.will_send else f"will NOT be sent: {message.skip_reason}"
        lines = [
            f"── record {number} of {len(messages)}: {message.kind.value} "
            f"({message.action.value}) — {state}",
            "Data (decoded):",
            json.dumps(message.data, indent=2, ensure_ascii=False),
            "Request as sent (Data base64):",
            json.dumps(message.request(), ensure_ascii=False),
            f"Size: {message.size_bytes:,} of {RECORD_SIZE_LIMIT_BYTES:,} bytes "
            f"({message.size_bytes / RECORD_SIZE_LIMIT_BYTES:.3%})",
        ]
        if message.dropped:
            lines.append("Dropped identities:")
            lines.extend(f"  {d.identity}: {d.reason}" for d in message.dropped)
        else:
            lines.append("Dropped identities: none")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def render_verification(report: VerificationReport) -> str:
    lines = []
    for check in report.checks:
        lines.append(f"[{_MARKS[check.status]}] {check.name}: {check.detail}")
        if check.fix and check.status is not CheckStatus.PASS:
            lines.append(f"       fix: {check.fix}")
    verdict = "verified" if report.ok else "NOT verified: fix the failing lines above"
    lines += [
        "",
        f"Result: {verdict}",
        "",
        "IAM policy for the IAM user:",
        policy_text(report.policy),
    ]
    lines += ["", *(f"Note: {note}" for note in report.notes)]
    return "\n".join(lines)


def render_send_report(report: SendReport, journal: Path) -> str:
    not_sent = f", NOT SENT {report.not_sent} (interrupted)" if report.not_sent else ""
    lines = [
        f"requested {report.requested}, delivered {report.delivered}, failed {report.failed}, "
        f"skipped {report.skipped}, dead-lettered {report.dead_lettered}{not_sent} "
        f"in {report.elapsed_seconds:.2f} s"
    ]
    shown = report.outcomes[:20]
    for outcome in shown:
        if outcome.delivered:
            state = f"RecordId {outcome.record_id}"
            if outcome.possible_duplicate:  # an earlier attempt's answer was lost or unusable
                state += "  [possible duplicate]"
        elif outcome.skipped:
            state = f"skipped: {outcome.message.skip_reason}"
        elif outcome.not_sent:
            state = "not sent: interrupted first"
        else:
            state = f"FAILED: {outcome.failure.describe() if outcome.failure else 'unknown'}"
        lines.append(f"  {outcome.message.kind.value:<6} attempts {outcome.attempts}  {state}")
    more = report.requested - report.not_built - len(shown)
    if more > 0:
        lines.append(f"  … and {more:,} more (--json lists all)")
    if report.alerts:
        lines.append("Alerts:")
        for alert in report.alerts:
            lines.append(
                f"  {alert.type.value} ({alert.severity.value}) ×{alert.count}, "
                f"last {alert.last_seen:%H:%M:%S} UTC: {alert.sample.received.get('code')}"
            )
    if report.dead_lettered:
        lines.append(f"Dead letters kept in {journal}: `firehose-console dead-letters replay`")
    return "\n".join(lines)


def outcome_line(outcome: DeliveryOutcome) -> str:
    """``json.dumps(outcome_document(outcome), ensure_ascii=False)``, formatted directly (a
    burst writes one per message; the generic encoder costs several times more). A latency is
    a finite number, which JSON writes as its repr."""
    message = outcome.message
    skip_reason = message.skip_reason if outcome.skipped else None
    error = outcome.failure.describe() if outcome.failure else None
    return (
        f'{{"message_id": {_quoted(message.message_id)}, "kind": {_KIND_JSON[message.kind]}, '
        f'"record_id": {_quoted_or_null(outcome.record_id)}, "attempts": {outcome.attempts:d}, '
        f'"latency_seconds": {round(outcome.latency_seconds, 4)!r}, '
        f'"skip_reason": {_quoted_or_null(skip_reason)}, "not_sent": {_TRUTH[outcome.not_sent]}, '
        f'"error": {_quoted_or_null(error)}, '
        f'"possible_duplicate": {_TRUTH[outcome.possible_duplicate]}}}'
    )


_TRUTH = {False: "false", True: "true"}
_KIND_JSON = {kind: _quoted(kind.value) for kind in MessageKind}  # quoted once, not per line


def _quoted_or_null(text: str | None) -> str:
    return "null" if text is None else _quoted(text)


class JsonSendWriter:
    """``send --json`` written as the send goes: one valid document listing every message,
    without holding them (``records`` first, one line each, then the counts). Nothing is
    written before the first outcome, so a send that cannot start prints nothing."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.started = False

    def _start(self) -> str:
        if self.started:
            return ",\n    "
        self.started = True
        self.stream.write('{\n  "records": [')
        return "\n    "

    def record(self, outcome: DeliveryOutcome) -> None:
        separator = self._start()
        self.stream.write(separator + outcome_line(outcome))

    def finish(self, report: SendReport) -> None:
        """Close ``records`` and add the counts (``SendReport.summary``)."""
        self._close(report.summary())

    def abort(self, error: str) -> None:
        """The send failed midway: close the document already begun, saying why."""
        if self.started:
            self._close({"error": error})

    def _close(self, fields: dict[str, object]) -> None:
        self.stream.write("\n  ]" if self.started else '{\n  "records": []')
        self.started = True
        for key, value in fields.items():
            self.stream.write(f",\n  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}")
        self.stream.write("\n}\n")
        self.stream.flush()


def render_dead_letters(letters: Sequence[DeadLetter], journal: Path) -> str:
    if not letters:
        return f"No dead letters ({journal})."
    lines = [f"{len(letters)} dead letter(s) in {journal}:"]
    for letter in letters:
        why = f"{letter.alert_type}: {letter.detail}" if letter.alert_type else letter.detail
        if letter.failure_class == UNKNOWN_FATE:
            why = f"FATE UNKNOWN: {why}"
        elif letter.failure_class == INTERRUPTED_UNSENT:
            why = f"NEVER SENT: {why}"
        tries = f"after {letter.attempts} attempt(s)" if letter.attempts else "attempts unknown"
        mark = "  [possible duplicate]" if letter.possible_duplicate else ""
        lines.append(
            f"  {letter.at}  {letter.kind:<6} → {letter.stream_name}  {why} ({tries})"
            f"  id {letter.message_id}{mark}"
        )
    duplicates = sum(1 for letter in letters if letter.possible_duplicate)
    if duplicates:
        lines.append(
            f"{duplicates} of them may already be delivered (sent, but an interrupted run or an "
            "unusable answer left their fate unknown): a replay can deliver those twice."
        )
    lines.append("Re-send them with `firehose-console dead-letters replay`.")
    return "\n".join(lines)


def _decoded_record(letter: DeadLetter) -> object:
    """The record's JSON, or its text when it is not JSON."""
    text = letter.data_bytes.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def dead_letter_document(letter: DeadLetter) -> dict[str, object]:
    """``dead-letters show --json``: the letter's fields and its decoded record."""
    return {"dead_letter": letter.document(), "record": _decoded_record(letter)}


def render_dead_letter(letter: DeadLetter) -> str:
    """``dead-letters show``: everything about one letter, its record decoded."""
    reason = f"{letter.alert_type}: {letter.detail}" if letter.alert_type else letter.detail
    record = _decoded_record(letter)
    lines = [
        f"Dead letter {letter.message_id}",
        f"  stream:    {letter.stream_name} (connection {letter.connection})",
        f"  kind:      {letter.kind} (action {letter.action})",
        f"  reason:    {letter.failure_class} — {reason}",
        f"  attempts:  {letter.attempts if letter.attempts else 'unknown'}",
        f"  at:        {letter.at}",
        "  possible duplicate: "
        + ("yes (it may already be delivered)" if letter.possible_duplicate else "no"),
    ]
    if letter.follows:
        lines.append(f"  follows:   {letter.follows} (sent only after it)")
    lines += [
        "Record (decoded):",
        json.dumps(record, indent=2, ensure_ascii=False) if not isinstance(record, str) else record,
        "Re-send with `firehose-console dead-letters replay` (to the current stream: "
        "--to-current); remove with `firehose-console dead-letters drop ID`.",
    ]
    return "\n".join(lines)


def render_possible_duplicates(count: int) -> str:
    return (
        f"{count} of the re-sent message(s) were possible duplicates (their fate was unknown): "
        "the destination may hold those twice."
    )


class ProgressBar:
    """A progress bar on a terminal, fed by delivery events (from any thread).

    Shows the honest tally (delivered only when a RecordId came back, retrying, failed), the
    records delivered per second over the last seconds, and the rate limit once throttling
    has moved it. On a terminal, rich's ``Progress`` draws it: one line that fits the
    terminal's width (the bar shrinks, the tally is cut with an ellipsis) and is redrawn in
    place, with an ETA. Rich is imported only then, so the CLI starts fast (README "CLI").
    Anywhere else (a test's buffer) the line is written with a carriage return.
    """

    WIDTH = 24
    REDRAW_SECONDS = 0.1
    SPEED_WINDOW_SECONDS = 2.0

    def __init__(
        self,
        stream: TextIO,
        *,
        clock: Callable[[], float] = time.monotonic,
        terminal: bool = False,
        terminal_width: int | None = None,
    ) -> None:
        self.stream = stream
        self.total = 0
        self._clock = clock
        self._counter = DeliveryCounter()
        self._limit: RateAdjusted | None = None
        self._started = clock()
        self._last_draw = -math.inf
        # (time, delivered so far) samples for the speed, one per redraw: a few dozen at most.
        self._samples: deque[tuple[float, int]] = deque()
        self._lock = threading.Lock()
        self._terminal = terminal
        self._terminal_width = terminal_width  # None: the terminal's own (tests fix it)
        self._drawn: TerminalProgress | None = None

    @classmethod
    def for_terminal(cls, stream: TextIO) -> ProgressBar | None:
        """A bar on ``stream`` if it is a terminal; None otherwise (pipes stay clean)."""
        return cls(stream, terminal=True) if stream.isatty() else None

    @property
    def tally(self) -> DeliveryTally:
        with self._lock:
            return self._counter.tally()

    def start(self, total: int) -> None:
        with self._lock:
            self.total = total
            self._started = self._clock()
            self._samples.clear()
            if self._terminal and self._drawn is None:
                self._drawn = TerminalProgress(self.stream, total, self._terminal_width)
        self._draw(force=True)

    def on_event(self, event: DeliveryEvent) -> None:
        with self._lock:
            self._counter.count(event)
            if isinstance(event, RateAdjusted):
                self._limit = event
        self._draw()

    def line(self) -> str:
        """The bar as it would be drawn now (as text)."""
        with self._lock:
            return self._line(self._clock())

    def _line(self, now: float) -> str:
        done = self._counter.tally().done
        filled = int(self.WIDTH * done / self.total) if self.total else 0
        return (
            f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done:,}/{self.total:,}  "
            + self._figures(now)
        )

    def _figures(self, now: float) -> str:
        """Delivered, retrying, failed, the speed and a lowered limit: the bar's words."""
        tally = self._counter.tally()
        self._samples.append((now, tally.delivered))
        while len(self._samples) > 1 and now - self._samples[0][0] > self.SPEED_WINDOW_SECONDS:
            self._samples.popleft()
        then, delivered_then = self._samples[0]
        speed = (tally.delivered - delivered_then) / (now - then) if now > then else 0.0
        text = (
            f"delivered {tally.delivered:,}  retrying {tally.retrying:,}  "
            f"failed {tally.failed:,}  {speed:,.0f} rec/s"
        )
        limit = self._limit
        if limit is not None and limit.records_per_second < limit.ceiling:
            text += f"  limit {limit.records_per_second:,.0f}/s (throttled)"
        return text

    def _draw(self, *, force: bool = False) -> None:
        with self._lock:
            now = self._clock()
            if not force and now - self._last_draw < self.REDRAW_SECONDS:
                return
            self._last_draw = now
            if self._drawn is not None:
                self._drawn.show(self._counter.tally().done, self._figures(now))
                return
            text = self._line(now)
            # \r and clear-to-end: a shorter line never leaves the tail of a longer one.
            self.stream.write(f"\r{text}\x1b[K")
            self.stream.flush()

    def finish(self) -> None:
        self._draw(force=True)
        with self._lock:
            if self._drawn is not None:
                self._drawn.stop()  # leaves the last line, and a newline after it
                self._drawn = None
                return
        self.stream.write("\n")
        self.stream.flush()


_LANDED_MARKS = {
    LandedStatus.LANDED: "LANDED",
    LandedStatus.WAITING: "WAITING",
    LandedStatus.MISSING: "MISSING",
    LandedStatus.FAILED: "FAILED",
    LandedStatus.UNCONFIRMED: "UNCONFIRMED",
}


def _landing_line(record: RecordLanding, now: datetime) -> str:
    entry = record.entry
    head = f"  [{_LANDED_MARKS[record.status]}] {entry.kind:<6} {entry.audience or '-'}"
    if record.status is LandedStatus.LANDED and record.landed_at is not None:
        return (
            f"{head}  {record.location}  at {record.landed_at:%H:%M:%S} UTC "
            f"({record.latency_seconds:.0f} s after the ack)"
        )
    if record.status is LandedStatus.FAILED:
        return f"{head}  {record.location}: {record.error}"
    if record.expected_by is not None:
        due = (record.expected_by - now).total_seconds()
        when = f"due in {due:.0f} s" if due > 0 else f"due {-due:.0f} s ago"
        return f"{head}  RecordId {entry.record_id}  {when} ({record.expected_by:%H:%M:%S} UTC)"
    return f"{head}  RecordId {entry.record_id}"


def render_landed(report: LandedReport) -> str:
    destination = report.destination
    where = (
        f"s3://{destination.bucket}/{destination.prefix}" if destination.bucket else "no S3 copy"
    )
    lines = [
        f"Destination: {destination.type} → {where} ({destination.compression}; buffering "
        f"{destination.buffering_size_mib} MiB / {destination.buffering_interval_seconds} s)",
        f"Read by: {report.reader}",
    ]
    if not report.records:
        lines.append("No acknowledged records in the journal yet: send some first.")
        lines += [f"Note: {report.problem}"] if report.problem else []
        return "\n".join(lines)
    counts = ", ".join(
        f"{report.count(status)} {status.value}"
        for status in LandedStatus
        if report.count(status) or status is LandedStatus.LANDED
    )
    lines.append(f"{len(report.records)} acknowledged record(s): {counts}")
    shown = report.records[-50:]
    lines.extend(_landing_line(record, report.checked_at) for record in shown)
    if len(report.records) > len(shown):
        lines.append(f"  … and {len(report.records) - len(shown)} older (--json lists all)")
    if report.problem:
        lines.append(f"Note: {report.problem}")
    if report.policy is not None:
        lines += ["The operator needs this IAM policy to read the destination:"]
        lines.append(json.dumps(report.policy, indent=2))
    return "\n".join(lines)


class TerminalProgress:
    """rich's ``Progress`` on one line: count, bar, ETA, then the figures, cut to fit."""

    def __init__(self, stream: TextIO, total: int, width: int | None) -> None:
        # Imported here, not at the top: only a send on a terminal pays for rich.
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
        from rich.table import Column

        console = Console(file=stream, width=width, force_terminal=True if width else None)
        self._progress = Progress(
            TextColumn("{task.completed:,}/{task.total:,}"),
            BarColumn(bar_width=None, table_column=Column(ratio=1, min_width=5)),
            TimeRemainingColumn(),
            TextColumn(
                "{task.fields[figures]}",
                table_column=Column(ratio=3, no_wrap=True, overflow="ellipsis"),
            ),
            console=console,
            auto_refresh=False,  # redrawn when the figures change (at most 10 times a second)
            expand=True,
        )
        self._task = self._progress.add_task("send", total=total, figures="")
        self._progress.start()

    def show(self, done: int, figures: str) -> None:
        self._progress.update(self._task, completed=done, figures=figures, refresh=True)

    def stop(self) -> None:
        self._progress.stop()
