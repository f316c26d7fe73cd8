"""Modal dialogs: confirm a step that loses edits, choose among answers, pick a connection,
name a new one. Escape cancels each; the arrow keys move between its buttons."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from engine.settings import ConnectionSettings

# Arrow keys move between a dialog's buttons (a field or list that uses them keeps them: the
# focused widget's own bindings come first).
DIALOG_BINDINGS: list[BindingType] = [
    Binding("escape", "cancel", "Cancel"),
    Binding("left,up", "app.focus_previous", "Previous", show=False),
    Binding("right,down", "app.focus_next", "Next", show=False),
]


class ChoiceScreen(ModalScreen[str | None]):
    """Asks one question with several answers, one button each; dismisses with the chosen
    answer's id, or None for Cancel (escape)."""

    BINDINGS = DIALOG_BINDINGS

    def __init__(self, question: str, answers: Sequence[tuple[str, str]]) -> None:
        """``answers``: (id, button label) pairs, left to right; a Cancel button follows."""
        super().__init__(classes="dialog-screen")
        self._question = question
        self._answers = list(answers)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self._question, classes="dialog-question")
            with Horizontal(classes="dialog-buttons"):
                for number, (answer, label) in enumerate(self._answers):
                    yield Button(
                        label,
                        variant="primary" if number == 0 else "warning",
                        id=answer,
                        classes="answer",
                    )
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    @on(Button.Pressed, ".answer")
    def _answered(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """Asks one yes/no question; dismisses with True when confirmed."""

    BINDINGS = DIALOG_BINDINGS

    def __init__(self, question: str, confirm_label: str) -> None:
        super().__init__(classes="dialog-screen")
        self._question = question
        self._confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self._question, classes="dialog-question")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self._confirm_label, variant="warning", id="confirm")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    @on(Button.Pressed, "#confirm")
    def _confirmed(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)


class ChooseConnectionScreen(ModalScreen[str | None]):
    """Picks one of the saved connections; dismisses with its name, or None."""

    BINDINGS = DIALOG_BINDINGS

    def __init__(self, names: Sequence[str], current: str) -> None:
        super().__init__(classes="dialog-screen")
        self._names = list(names)
        self._current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Switch to connection", classes="dialog-title")
            yield OptionList(
                *(
                    Option(f"{name} (current)" if name == self._current else name, id=name)
                    for name in self._names
                ),
                id="connection-choices",
            )

    def on_mount(self) -> None:
        choices = self.query_one(OptionList)
        choices.highlighted = (
            self._names.index(self._current) if self._current in self._names else 0
        )
        choices.focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ChooseAudienceScreen(ModalScreen[str | None]):
    """Picks the audience records are built for: ``[audience]`` (id ""), a named one, or
    "all"; dismisses with the id, or None. A list, not ChoiceScreen's buttons: audience names
    may start with a digit, which a button id may not."""

    BINDINGS = DIALOG_BINDINGS

    def __init__(self, choices: Sequence[tuple[str, str]], current: str) -> None:
        """``choices``: (id, label) pairs, top to bottom; ``current``: the id chosen now."""
        super().__init__(classes="dialog-screen")
        self._choices = list(choices)
        self._current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Build records for audience", classes="dialog-title")
            yield OptionList(
                *(
                    # Content, not markup: "[audience]" is no style tag.
                    Option(Content(label + (" (current)" if choice == self._current else "")))
                    for choice, label in self._choices
                ),
                id="audience-choices",
            )

    def on_mount(self) -> None:
        choices = self.query_one(OptionList)
        ids = [choice for choice, _ in self._choices]
        choices.highlighted = ids.index(self._current) if self._current in ids else 0
        choices.focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self._choices[event.option_index][0])

    def action_cancel(self) -> None:
        self.dismiss(None)


NewConnectionCheck = Callable[[str, str], list[str]]


class AddConnectionScreen(ModalScreen[tuple[str, str] | None]):
    """Names a new connection and its stream; the engine's rules judge both before it closes."""

    BINDINGS = DIALOG_BINDINGS

    def __init__(self, check: NewConnectionCheck) -> None:
        super().__init__(classes="dialog-screen")
        self._check = check

    def compose(self) -> ComposeResult:
        stream_help = ConnectionSettings.model_fields["delivery_stream_name"].description or ""
        with Vertical(classes="dialog"):
            yield Label("Add a connection", classes="dialog-title")
            yield Label("Name (letters, digits, _ and -)")
            yield Input(placeholder="e.g. travel", id="new-connection-name")
            yield Label("delivery_stream_name")
            yield Input(placeholder=stream_help, id="new-connection-stream", tooltip=stream_help)
            yield Static("", id="new-connection-problems")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Add", variant="primary", id="confirm")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#new-connection-name", Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#confirm")
    def _submitted(self) -> None:
        name = self.query_one("#new-connection-name", Input).value.strip()
        stream = self.query_one("#new-connection-stream", Input).value.strip()
        problems = ["give the connection a name"] if not name else self._check(name, stream)
        if problems:
            self.query_one("#new-connection-problems", Static).update(
                "\n".join(f"✗ {problem}" for problem in problems)
            )
            return
        self.dismiss((name, stream))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class KeysScreen(ModalScreen[None]):
    """The keys of the tab on show and those that work everywhere; escape (or ?) closes."""

    BINDINGS = [
        Binding("escape,question_mark,q", "close", "Close"),
    ]

    def __init__(self, text: str) -> None:
        super().__init__(classes="dialog-screen")
        self._text = text

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog keys-dialog"):
            yield Label("Keys (escape closes; ctrl+p lists every action)", classes="dialog-title")
            yield Static(self._text, id="keys-list", markup=False)

    def action_close(self) -> None:
        self.dismiss(None)
