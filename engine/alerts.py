"""System Alerts: failures grouped by type with a count, severity, first/last seen and a sample."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from engine.failures import AlertType


class Severity(StrEnum):
    WARNING = "warning"  # still retrying
    FATAL = "fatal"  # given up


@dataclass(frozen=True)
class AlertSample:
    """What was sent (the request, Data base64) and what came back (code, message, status)."""

    sent: dict[str, Any]
    received: dict[str, Any]


@dataclass(frozen=True)
class Alert:
    type: AlertType
    severity: Severity
    count: int
    first_seen: datetime
    last_seen: datetime
    sample: AlertSample


class AlertBoard:
    """The alerts of one session, grouped by type; safe to update from many threads."""

    def __init__(self) -> None:
        self._alerts: dict[AlertType, Alert] = {}
        self._lock = threading.Lock()

    def record(
        self, alert_type: AlertType, severity: Severity, sample: AlertSample, at: datetime
    ) -> Alert:
        """Count one occurrence; severity only rises (warning → fatal), the sample is the latest."""
        with self._lock:
            current = self._alerts.get(alert_type)
            if current is None:
                alert = Alert(alert_type, severity, 1, at, at, sample)
            else:
                worst = (
                    Severity.FATAL if Severity.FATAL in (current.severity, severity) else severity
                )
                alert = replace(
                    current, severity=worst, count=current.count + 1, last_seen=at, sample=sample
                )
            self._alerts[alert_type] = alert
            return alert

    def alerts(self) -> list[Alert]:
        """Every alert, most recently seen first."""
        with self._lock:
            return sorted(self._alerts.values(), key=lambda a: a.last_seen, reverse=True)

    def clear(self) -> None:
        with self._lock:
            self._alerts.clear()


def alert_document(alert: Alert) -> dict[str, Any]:
    """An alert as JSON-ready data."""
    return {
        "type": alert.type.value,
        "severity": alert.severity.value,
        "count": alert.count,
        "first_seen": alert.first_seen.isoformat(),
        "last_seen": alert.last_seen.isoformat(),
        "sample": {"sent": alert.sample.sent, "received": alert.sample.received},
    }
