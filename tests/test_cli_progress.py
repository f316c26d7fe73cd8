"""The CLI's progress bar on a terminal: one line redrawn in place that never exceeds the
terminal's width (at 80 columns it used to print 58 lines for 100 records), drawn by rich,
which the CLI imports only then (README "CLI")."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_burst_digest import delivered, failed, started

from console.cli_output import ProgressBar, outcome_line
from engine.delivery import DeliveryOutcome
from engine.events import RateAdjusted, RateChange
from engine.failures import Failure, FailureClass
from engine.records import Action, burst_messages
from engine.session import outcome_document
from engine.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def drawn_lines(output: str) -> list[str]:
    """What the terminal shows, line by line and redraw by redraw, escapes removed."""
    return [line for line in re.split(r"[\r\n]", ESCAPES.sub("", output)) if line]


@pytest.mark.parametrize("columns", [80, 50, 120])
def test_a_send_of_100_redraws_one_line_that_fits_the_terminal(columns: int) -> None:
    now = [0.0]
    out = io.StringIO()
    bar = ProgressBar(out, clock=lambda: now[0], terminal=True, terminal_width=columns)
    bar.start(100)
    bar.on_event(RateAdjusted(250.0, 1000.0, RateChange.DECREASED, started(0).at))
    for n in range(100):
        now[0] += 0.2  # every event redraws
        bar.on_event(started(n))
        bar.on_event(failed(n, 1, True) if n % 10 == 0 else delivered(n))
    bar.finish()
    output = out.getvalue()
    assert output.count("\n") == 1  # one line, redrawn; the newline once it is done
    assert max(len(line) for line in drawn_lines(output)) <= columns
    last = drawn_lines(output)[-1]
    assert last.startswith("90/100 ") and "delivered 90" in last  # 10 still retrying


def test_the_cli_imports_rich_only_to_draw_progress() -> None:
    code = (
        "import sys, console.cli, console.cli_output; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'rich'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_send_json_lines_formatted_directly_are_json_dumps_lines() -> None:
    message = burst_messages(Settings(), Action.ADD, 2, timestamp=1)[0]
    odd = dataclasses.replace(message, message_id='id "quoted"\\ é \u2028 \x01')
    failure = Failure(FailureClass.THROTTLED, "Throttled", 'slow "down" é\n', 400)
    outcomes = [
        DeliveryOutcome(message, "49abc", 1, latency_seconds=0.06723456),
        DeliveryOutcome(odd, 'r"id', 3, latency_seconds=1e-05, possible_duplicate=True),
        DeliveryOutcome(message, None, 5, failure, latency_seconds=12.0, dead_lettered=True),
        DeliveryOutcome(dataclasses.replace(message, skip_reason="too big"), None, 0, skipped=True),
        DeliveryOutcome(message, None, 0, not_sent=True),
    ]
    for outcome in outcomes:
        line = outcome_line(outcome)
        assert line == json.dumps(outcome_document(outcome), ensure_ascii=False)
