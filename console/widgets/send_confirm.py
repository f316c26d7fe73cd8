"""The question asked before a send that changes a real audience: which account, region and
stream it goes to, and whether to ask again this session.

README: "The console (TUI): a short tour" (confirming a send).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Label, Static


@dataclass(frozen=True)
class SendTarget:
    """Where a send goes, as the confirmation names it."""

    account: str | None  # from verify's STS identity; None until known
    region: str
    stream: str
    sandbox: bool

    def describe(self) -> str:
        """One line each: where, account, region, stream (fits an 80-column dialog)."""
        account = self.account or "unknown account (ctrl+r verifies)"
        where = "the embedded sandbox" if self.sandbox else "AWS"
        return (
            f"To:      {where}\nAccount: {account}\nRegion:  {self.region}\nStream:  {self.stream}"
        )


@dataclass(frozen=True)
class SendConfirmed:
    """The answer: send or not, and whether to stop asking for this session."""

    send: bool
    dont_ask_again: bool = False


class ConfirmSendScreen(ModalScreen[SendConfirmed]):
    """Names what is about to be sent and where; the Cancel button has the focus."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, what: str, target: SendTarget) -> None:
        super().__init__(classes="dialog-screen", id="confirm-send")
        self._what = what
        self._target = target

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"{self._what}?", classes="dialog-title")
            yield Static(self._target.describe(), classes="dialog-question", id="send-target")
            yield Checkbox("Don't ask again for this session", id="dont-ask-again")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Send", variant="warning", id="confirm")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    @on(Button.Pressed, "#confirm")
    def _confirmed(self) -> None:
        self.dismiss(SendConfirmed(True, self.query_one("#dont-ask-again", Checkbox).value))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(SendConfirmed(False))
