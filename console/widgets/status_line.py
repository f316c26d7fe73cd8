"""The line at the top: what the console is talking to, and how that went."""

from __future__ import annotations

from enum import StrEnum

from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static


class VerificationState(StrEnum):
    NOT_CHECKED = "not yet checked"
    CHECKING = "checking…"
    VERIFIED = "verified"
    FAILING = "failing"


_STATE_STYLES = {
    VerificationState.NOT_CHECKED: "$text-muted",
    VerificationState.CHECKING: "$text-muted italic",
    VerificationState.VERIFIED: "$text-success bold",
    VerificationState.FAILING: "$text-error bold",
}


class StatusLine(Static):
    """Connection, stream, region, sandbox or not, the audience when not ``[audience]``, last
    verification, unsaved marker."""

    connection: reactive[str] = reactive("")
    stream: reactive[str] = reactive("")
    aws_region: reactive[str] = reactive("")
    sandbox: reactive[bool] = reactive(False)
    verification: reactive[VerificationState] = reactive(VerificationState.NOT_CHECKED)
    unsaved: reactive[bool] = reactive(False)
    audience: reactive[str] = reactive("")  # "" for [audience]: the line stays as it was

    def render(self) -> Content:
        where = ("sandbox", "$text-warning bold") if self.sandbox else ("AWS", "$text-accent bold")
        parts: list[tuple[str, str] | str] = [
            (self.connection, "bold"),
            " → ",
            (self.stream, "bold"),
            f" ({self.aws_region}) · ",
            where,
            " · ",
        ]
        if self.audience:
            parts += [f"audience {self.audience}", " · "]
        parts += [
            (self.verification.value, _STATE_STYLES[self.verification]),
        ]
        if self.unsaved:
            parts += [" · ", ("● unsaved", "$text-warning bold")]
        return Content.assemble(*parts)
