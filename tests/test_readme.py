"""The README's tables are the engine's tables: one source of truth, kept in step by this test."""

from __future__ import annotations

import re
from pathlib import Path

from engine.failures import FailureClass
from engine.identities import IDENTITIES

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def section(name: str) -> str:
    match = re.search(rf"<!-- {name}:start -->\n(.*?)<!-- {name}:end -->", README, re.S)
    assert match, f"README lacks the {name} table markers"
    return match.group(1)


def test_identity_table_matches_the_engine() -> None:
    header = "| Identity | JSON key | kind | governed by | key shown in seed |"
    rows = [header, "|---|---|---|---|---|"]
    for identity in IDENTITIES:
        flag = f"`{identity.forward_flag}`" if identity.forward_flag else "—"
        shown = "no (inferred)" if identity.inferred else "yes"
        key, kind = identity.json_key, identity.kind.value
        rows.append(f"| {identity.name} | `{key}` | {kind} | {flag} | {shown} |")
    assert section("identities") == "\n".join(rows) + "\n"


def test_failure_table_matches_the_engine() -> None:
    rows = ["| failure class | retried | alert | fix |", "|---|---|---|---|"]
    for failure in FailureClass:
        retried = "yes" if failure.retryable else "no"
        alert = f"`{failure.alert_type.value}`" if failure.alert_type else "none"
        rows.append(f"| {failure.name} | {retried} | {alert} | {failure.fix} |")
    assert section("failures") == "\n".join(rows) + "\n"
