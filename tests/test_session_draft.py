"""The session is the one way both fronts preview and send
(README: "From a key to Firehose and back"): the console's unsaved draft builds the records;
a send reports its own alerts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from engine.alerts import AlertBoard, AlertSample, Severity
from engine.failures import AlertType
from engine.records import Action
from engine.session import ConsoleSession
from engine.settings_file import load_settings

SETTINGS = """
[connections.travel]
delivery_stream_name = "{stream}"

[delivery]
state_dir = "{state}"
"""


def sandbox_session(tmp_path: Path, alerts: AlertBoard | None = None) -> ConsoleSession:
    path = tmp_path / "settings.toml"
    stream = f"draft-{uuid.uuid4().hex[:8]}"
    path.write_text(SETTINGS.format(stream=stream, state=tmp_path / "state"), encoding="utf-8")
    return ConsoleSession(
        load_settings(path), use_sandbox=True, clock=lambda: 1234565788.0, alerts=alerts
    )


def test_preview_and_send_build_the_records_from_the_draft(tmp_path: Path) -> None:
    session = sandbox_session(tmp_path)
    draft = session.settings.model_copy(
        update={"audience": session.settings.audience.model_copy(update={"id": 777})}
    )
    try:
        assert session.preview(Action.ADD)[0].data["AudienceId"] == 123123
        assert session.preview(Action.ADD, draft=draft)[0].data["AudienceId"] == 777
        report = session.send(Action.ADD, count=2, draft=draft)
        assert (report.requested, report.delivered) == (2, 2)
        assert {o.message.data["AudienceId"] for o in report.outcomes} == {777}
        assert session.settings.audience.id == 123123  # the draft is not kept
    finally:
        session.close()


def test_a_send_reports_its_own_alerts_not_the_sessions_older_ones(tmp_path: Path) -> None:
    earlier = AlertBoard()
    earlier.record(
        AlertType.REQUEST_TIMEOUT, Severity.WARNING, AlertSample({}, {}), datetime.now(UTC)
    )
    session = sandbox_session(tmp_path, alerts=earlier)
    try:
        report = session.send(Action.ADD)
    finally:
        session.close()
    assert report.delivered == 1
    assert report.alerts == ()
    assert [alert.type for alert in session.alerts.alerts()] == [AlertType.REQUEST_TIMEOUT]
