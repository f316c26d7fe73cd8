"""Human-readable output of the CLI: short, plain text; JSON mode bypasses all of this."""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from engine.dead_letters import INTERRUPTED_UNSENT, UNKNOWN_FATE, DeadLetter
from engine.delivery import DeliveryOutcome
from engine.event_digest import DeliveryCounter, DeliveryTally
from engine.events import DeliveryEvent, RateAdjusted
from engine.records import OutgoingMessage
from engine.session import SendReport, outcome_document
from engine.settings import RECORD_SIZE_LIMIT_BYTES
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
        self.stream.write(separator + json.dumps(outcome_document(outcome), ensure_ascii=False))

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
            f"{duplicates} of them may already be delivered (an interrupted run was sending "
            "them): a replay can deliver those twice."
        )
    lines.append("Re-send them with `firehose-console dead-letters replay`.")
    return "\n".join(lines)


def render_possible_duplicates(count: int) -> str:
    return (
        f"{count} of the re-sent message(s) were possible duplicates (fate unknown after an "
        "interrupted run): the destination may hold those twice."
    )


class ProgressBar:
    """A one-line progress bar on a terminal, fed by delivery events (from any thread).

    Shows the honest tally (delivered only when a RecordId came back, retrying, failed), the
    records delivered per second over the last seconds, and the rate limit once throttling
    has moved it.
    """

    WIDTH = 24
    REDRAW_SECONDS = 0.1
    SPEED_WINDOW_SECONDS = 2.0

    def __init__(self, stream: TextIO, *, clock: Callable[[], float] = time.monotonic) -> None:
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

    @classmethod
    def for_terminal(cls, stream: TextIO) -> ProgressBar | None:
        """A bar on ``stream`` if it is a terminal; None otherwise (pipes stay clean)."""
        return cls(stream) if stream.isatty() else None

    @property
    def tally(self) -> DeliveryTally:
        with self._lock:
            return self._counter.tally()

    def start(self, total: int) -> None:
        with self._lock:
            self.total = total
            self._started = self._clock()
            self._samples.clear()
        self._draw(force=True)

    def on_event(self, event: DeliveryEvent) -> None:
        with self._lock:
            self._counter.count(event)
            if isinstance(event, RateAdjusted):
                self._limit = event
        self._draw()

    def line(self) -> str:
        """The bar as it would be drawn now."""
        with self._lock:
            return self._line(self._clock())

    def _line(self, now: float) -> str:
        tally = self._counter.tally()
        done = tally.done
        filled = int(self.WIDTH * done / self.total) if self.total else 0
        self._samples.append((now, tally.delivered))
        while len(self._samples) > 1 and now - self._samples[0][0] > self.SPEED_WINDOW_SECONDS:
            self._samples.popleft()
        then, delivered_then = self._samples[0]
        speed = (tally.delivered - delivered_then) / (now - then) if now > then else 0.0
        text = (
            f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done:,}/{self.total:,}  "
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
            text = self._line(now)
            # \r and clear-to-end: a shorter line never leaves the tail of a longer one.
            self.stream.write(f"\r{text}\x1b[K")
            self.stream.flush()

    def finish(self) -> None:
        self._draw(force=True)
        self.stream.write("\n")
        self.stream.flush()
