"""The sandbox or AWS, chosen when a settings file is first written from the sandbox.

README: "The sandbox or AWS". The answer becomes the file's ``target`` key, so the next start
goes where the user said, not silently to AWS.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

# The dismiss values: the settings' ``target`` to write, or None (not saved).
SANDBOX = "sandbox"
AWS = "aws"


class ChooseTargetScreen(ModalScreen[str | None]):
    """Asks where this file's sends go; "keep the sandbox" has the focus (nothing real)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, path: str, stream: str, region: str) -> None:
        super().__init__(classes="dialog-screen", id="choose-target")
        self._path = path
        self._stream = stream
        self._region = region

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Where do this file's sends go?", classes="dialog-title")
            yield Static(
                f"{self._path} is written now. This console runs on the embedded sandbox; the "
                f"file can keep it, or send to the stream {self._stream} in {self._region} on "
                "AWS, from now on and at every start. The choice is the file's target key; "
                "the status line always shows it.",
                classes="dialog-question",
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Keep the sandbox", variant="primary", id="keep-sandbox")
                yield Button("Use AWS", variant="warning", id="use-aws")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#keep-sandbox", Button).focus()

    @on(Button.Pressed, "#keep-sandbox")
    def _keep_sandbox(self) -> None:
        self.dismiss(SANDBOX)

    @on(Button.Pressed, "#use-aws")
    def _use_aws(self) -> None:
        self.dismiss(AWS)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
