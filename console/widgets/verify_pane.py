"""Verification (README: "Verification"): the checklist with pass / warn / fail and a fix for
each, and the filled-in IAM policy in a read-only text area (select and copy, or copy it with one
key)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Label, Static

from engine.verification import Check, CheckStatus, VerificationReport, policy_text

_MARKS = {
    CheckStatus.PASS: ("✓ pass", "$text-success bold"),
    CheckStatus.WARN: ("! warn", "$text-warning bold"),
    CheckStatus.FAIL: ("✗ fail", "$text-error bold"),
}


def verdict(report: VerificationReport) -> Content:
    if report.ok:
        return Content.styled("Verified: no check failed.", "$text-success bold")
    return Content.styled("Failing: fix the lines marked ✗.", "$text-error bold")


def check_text(check: Check) -> Content:
    """A check's name, detail and (unless it passed) its fix."""
    text = Content.assemble((check.name, "bold"), f": {check.detail}")
    if check.fix and check.status is not CheckStatus.PASS:
        text = Content("\n").join([text, Content.assemble(("fix: ", "$text-accent"), check.fix)])
    return text


class VerifyPane(VerticalScroll):
    """The last verification report; empty until the first one arrives. Built when its tab is
    first shown, it shows the report it was given before."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.report: VerificationReport | None = None
        self._checking = False

    def watch_has_focus(self, has_focus: bool) -> None:
        """Restyle the pane alone when it gains or loses the focus: no rule styles its children
        by it, and Textual would restyle all thirty of them, twice a tab switch to or from
        Verify (README: "Performance")."""
        self.app.stylesheet.update_nodes([self], animate=True)

    def compose(self) -> ComposeResult:
        yield Static("Not yet checked: verification runs in the background.", id="verdict")
        yield Vertical(id="checklist")
        yield Label(
            "IAM policy for the IAM user (c copies it, w writes it to a file)", classes="pane-label"
        )
        from textual.widgets import TextArea  # imported when the tab is built

        # No soft wrap: a wrapped ARN breaks a mouse copy; long lines scroll sideways instead.
        yield TextArea(
            "",
            read_only=True,
            language="json",
            id="policy",
            show_line_numbers=False,
            soft_wrap=False,
        )
        yield Static("", id="verify-notes")

    async def on_mount(self) -> None:
        if self.report is not None:
            await self._show_report(self.report)
        elif self._checking:
            self._show_checking()

    def show_checking(self) -> None:
        self._checking = True
        if self.report is None and self.is_mounted:
            self._show_checking()

    def _show_checking(self) -> None:
        self.query_one("#verdict", Static).update(
            Content.styled("Checking the connection…", "$text-muted italic")
        )

    async def show_report(self, report: VerificationReport) -> None:
        self.report = report
        if self.is_mounted:
            await self._show_report(report)

    async def _show_report(self, report: VerificationReport) -> None:
        self.query_one("#verdict", Static).update(verdict(report))
        checklist = self.query_one("#checklist", Vertical)
        await checklist.remove_children()
        await checklist.mount_all(
            Horizontal(
                Static(Content.styled(*_MARKS[check.status]), classes="check-mark"),
                Static(check_text(check), classes="check-text"),
                classes="check",
            )
            for check in report.checks
        )
        from textual.widgets import TextArea

        self.query_one("#policy", TextArea).load_text(self.policy_text())
        self.query_one("#verify-notes", Static).update(
            Content("\n").join(
                Content.styled(f"Note: {note}", "$text-muted") for note in report.notes
            )
        )

    def policy_text(self) -> str:
        return policy_text(self.report.policy) if self.report else ""
