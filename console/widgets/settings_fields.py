"""The rows of the settings form: one per setting, each a label, a control and its problem.

A row knows its key in the settings document ("connections.travel.region") and turns its
control's state into the value that goes there; the engine alone decides whether it is valid.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.strip import Strip
from textual.suggester import SuggestFromList
from textual.widget import Widget
from textual.widgets import (
    Button,
    DataTable,
    Input,
    Label,
    OptionList,
    Select,
    SelectionList,
    Static,
    Switch,
)
from textual.widgets.option_list import OptionDoesNotExist
from textual.widgets.selection_list import Selection

from engine.identities import IDENTITIES, MPID_KEY, find_identity


class FieldRow(Widget):
    """One setting: a label, its control(s), and the engine's word on its value.

    Laid out as a grid row (label | control…); a problem line is mounted under it only while
    there is a problem, so the form stays light to lay out on every keystroke.
    """

    def __init__(
        self, key: str, description: str, *, label: str | None = None, classes: str = ""
    ) -> None:
        super().__init__(classes=f"field-row {classes}".strip())
        self.key = key
        self.description = description
        self.label = label or key.rsplit(".", 1)[-1]
        self._problem = ""

    def compose(self) -> ComposeResult:
        yield Label(self.label, classes="field-label")
        for control in self.controls():
            control.tooltip = self.description
            yield control

    def controls(self) -> Iterable[Widget]:
        raise NotImplementedError

    def value(self) -> Any:
        """What this row puts at ``key`` in the settings document (None: leave the key out)."""
        raise NotImplementedError

    def show_problem(self, text: str) -> None:
        if text == self._problem:
            return
        self._problem = text
        self.set_class(bool(text), "-invalid")
        shown = self.query(".field-problem")
        if not text:
            shown.remove()
        elif shown:
            shown.first(Static).update(text)
        else:
            self.mount(Static(text, classes="field-problem"))

    def focus_control(self) -> None:
        focusable = [widget for widget in self.query("*") if widget.focusable]
        if focusable:
            focusable[0].focus()


class TextField(FieldRow):
    """Free text, or numbers typed as text (the engine parses and judges them)."""

    def __init__(
        self,
        key: str,
        description: str,
        value: object,
        *,
        input_type: str = "text",
        optional: bool = False,
        placeholder: str = "",
    ) -> None:
        super().__init__(key, description)
        self._initial = "" if value is None else str(value)
        self._input_type = input_type
        self._optional = optional
        self._placeholder = placeholder

    def controls(self) -> Iterable[Widget]:
        self.entry = Input(
            self._initial,
            type=self._input_type,  # type: ignore[arg-type]
            compact=True,
            placeholder=self._placeholder,
            select_on_focus=False,
        )
        yield self.entry

    def value(self) -> str | None:
        text = self.entry.value
        return None if self._optional and not text.strip() else text


class DelimiterField(TextField):
    """The record delimiter, shown with escapes ("\\n") since a newline cannot be typed."""

    def __init__(self, key: str, description: str, value: str) -> None:
        escaped = value.encode("unicode_escape").decode("ascii")
        super().__init__(key, description, escaped, placeholder="empty: the JSON alone")

    def value(self) -> str:
        text = self.entry.value
        try:
            return codecs.decode(text, "unicode_escape")
        except UnicodeDecodeError:
            return text  # an incomplete escape: kept as typed


class SecretField(FieldRow):
    """The secret access key: masked unless the user reveals it."""

    def __init__(
        self, key: str, description: str, value: str, *, from_environment: str | None
    ) -> None:
        super().__init__(key, description, classes="secret-field")
        self._initial = value
        self._from_environment = from_environment

    def controls(self) -> Iterable[Widget]:
        self.entry = Input(
            self._initial,
            password=True,
            compact=True,
            disabled=self._from_environment is not None,
            placeholder=f"from {self._from_environment}" if self._from_environment else "",
            select_on_focus=False,
            id="secret-input",
        )
        yield self.entry
        yield Button("Reveal", compact=True, id="reveal-secret")

    @property
    def revealed(self) -> bool:
        return not self.entry.password

    def toggle_reveal(self) -> None:
        self.entry.password = not self.entry.password
        self.query_one("#reveal-secret", Button).label = "Hide" if self.revealed else "Reveal"

    @on(Button.Pressed, "#reveal-secret")
    def _reveal_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.toggle_reveal()

    def value(self) -> str:
        return self.entry.value


class SwitchField(FieldRow):
    def __init__(self, key: str, description: str, value: bool) -> None:
        super().__init__(key, description, classes="switch-field")
        self._initial = value

    def controls(self) -> Iterable[Widget]:
        self.switch = Switch(self._initial)
        yield self.switch
        yield Label(self._state_text(self._initial), classes="switch-state")

    @staticmethod
    def _state_text(on: bool) -> str:
        return "on" if on else "off"

    @on(Switch.Changed)
    def _switched(self, event: Switch.Changed) -> None:
        self.query_one(".switch-state", Label).update(self._state_text(event.value))

    def value(self) -> bool:
        return self.switch.value


class ChoiceField(FieldRow):
    """One of a fixed list (the region). ``choices`` is called when the field is first
    focused: the list of regions takes a moment to read, and the first screen needs only the
    current value."""

    def __init__(
        self, key: str, description: str, value: str, choices: Callable[[], Sequence[str]]
    ) -> None:
        super().__init__(key, description)
        self._initial = value
        self._choices: Callable[[], Sequence[str]] | None = choices

    def controls(self) -> Iterable[Widget]:
        self.select = Select(
            [(self._initial, self._initial)], value=self._initial, allow_blank=False, compact=True
        )
        yield self.select

    @on(events.DescendantFocus)
    def _load_choices(self) -> None:
        if self._choices is None:
            return
        choices, self._choices = list(self._choices()), None
        current = self.select.value
        if current not in choices:
            choices.insert(0, str(current))
        with self.select.prevent(Select.Changed):  # the value stays: no edit to report
            self.select.set_options((choice, choice) for choice in choices)
            self.select.value = current

    def value(self) -> str:
        return str(self.select.value)


class CheckedList(SelectionList[str]):
    """A SelectionList whose state reads as text, ``[x]`` or ``[ ]``, not only as the colour
    of a toggle: the picked and the unpicked differ on any terminal and to any eye."""

    def render_line(self, y: int) -> Strip:
        line = OptionList.render_line(self, y)  # the prompt, without SelectionList's toggle
        index = self.scroll_offset.y + y
        try:
            option = self.get_option_at_index(index)
        except OptionDoesNotExist:
            return line
        underlying = next(iter(line)).style or self.rich_style
        mark = "[x] " if option.value in self._selected else "[ ] "
        style = underlying + Style(bold=option.value in self._selected, meta={"option": index})
        return Strip([Segment(mark, style), *line])


class PickerField(FieldRow):
    """Any number of a fixed list (identities to exclude, chaos failure kinds), each marked
    ``[x]`` or ``[ ]``, with a line under it that sums up what is ``verb`` ("excluded")."""

    def __init__(
        self,
        key: str,
        description: str,
        options: Sequence[tuple[str, str]],
        selected: Iterable[str],
        *,
        verb: str = "chosen",
    ) -> None:
        super().__init__(key, description)
        self._options = list(options)
        self._selected = set(selected)
        self._verb = verb

    def controls(self) -> Iterable[Widget]:
        self.picker = CheckedList(
            *(Selection(label, value, value in self._selected) for label, value in self._options),
            compact=True,
        )
        self.summary = Static(
            self.summary_text(self._selected), classes="picker-summary", markup=False
        )
        yield Vertical(self.summary, self.picker, classes="picker")

    def summary_text(self, chosen: Iterable[str]) -> str:
        """One line: how many of the list are picked, and which."""
        picked = set(chosen)
        labels = [label for label, value in self._options if value in picked]
        total = len(self._options)
        if not labels:
            return f"none of {total} {self._verb}; space toggles [x]"
        return f"{len(labels)} of {total} {self._verb}: {', '.join(labels)}"

    @on(SelectionList.SelectedChanged)
    def _picked(self) -> None:  # not stopped: the form validates on it too
        self.summary.update(self.summary_text(self.picker.selected))

    def value(self) -> list[str]:
        chosen = set(self.picker.selected)
        return [value for _, value in self._options if value in chosen]


def identity_options() -> list[tuple[str, str]]:
    """The identity table as (label, JSON key) choices."""
    return [
        (
            identity.name
            if f"({identity.json_key})" in identity.name
            else f"{identity.name} ({identity.json_key})",
            identity.json_key,
        )
        for identity in IDENTITIES
    ]


def excluded_identity_keys(values: Iterable[str]) -> list[str]:
    """``identities_to_exclude`` as JSON keys (the file may name them by display name)."""
    found = (find_identity(value) for value in values)
    return [identity.json_key for identity in found if identity]


IDENTITY_KEYS: tuple[str, ...] = tuple(
    identity.json_key for identity in IDENTITIES if identity.json_key != MPID_KEY
)


class IdentityRows(FieldRow):
    """The test user's identities as key/value rows, edited as in Posting's header editor: a
    table of rows, and a key/value line under it that adds (or, for an existing key, updates)
    a row. Enter on a row copies it into the line to edit it in place: the row stays where it
    is (walking away loses nothing) and the change lands in the same place, so the order of
    ``UserIdentities`` never changes by editing. Delete removes a row."""

    class RowsChanged(Message):
        """A row was added, changed or removed."""

    BINDINGS = [Binding("delete,backspace", "remove_row", "Remove", show=False)]

    def __init__(self, key: str, description: str, identities: Mapping[str, str]) -> None:
        super().__init__(
            key,
            f"{description} Enter on a row edits it; delete removes it.",
            classes="identity-field",
        )
        self._initial = dict(identities)
        self._editing: str | None = None  # the key of the row the line is editing, if any

    def compose(self) -> ComposeResult:
        yield Label(self.label, classes="field-label")
        yield Static()  # the grid's second column on the label's line
        self.table = DataTable[Text](cursor_type="row", show_header=False, classes="identity-table")
        self.table.tooltip = self.description
        yield self.table
        with Horizontal(classes="identity-editor"):
            self.new_key = Input(
                compact=True,
                classes="identity-key",
                placeholder="key, e.g. CustomerId",
                suggester=SuggestFromList(IDENTITY_KEYS, case_sensitive=False),
            )
            yield self.new_key
            self.new_value = Input(compact=True, classes="identity-value", placeholder="value")
            yield self.new_value
            yield Button("Add", compact=True, classes="add-identity")

    def on_mount(self) -> None:
        self.table.add_columns("key", "value")
        for key, value in self._initial.items():
            self.table.add_row(Text(key), Text(value), key=key)

    def controls(self) -> Iterable[Widget]:
        return ()

    def value(self) -> dict[str, str]:
        return {str(row.value): self.table.get_row(row)[1].plain for row in self.table.rows}

    def add_identity(self, key: str, value: str, *, replacing: str | None = None) -> None:
        """Add a row, or change the row with this key; ``replacing`` names a row (being
        edited) that the new key and value take the place of, in its position."""
        rows = self.value()
        if replacing is not None and replacing in rows and replacing != key:
            rows = {
                (key if old == replacing else old): (value if old == replacing else text)
                for old, text in rows.items()
                if old != key
            }
            self.table.clear()
            for row_key, text in rows.items():
                self.table.add_row(Text(row_key), Text(text), key=row_key)
        elif key in self.table.rows:
            self.table.update_cell(key, self.table.ordered_columns[1].key, Text(value))
        else:
            self.table.add_row(Text(key), Text(value), key=key)
        self.post_message(self.RowsChanged())

    def _edit_line_for(self, key: str | None) -> None:
        self._editing = key
        self.query_one(".add-identity", Button).label = "Add" if key is None else "Update"

    @on(Button.Pressed, ".add-identity")
    @on(Input.Submitted, ".identity-editor Input")
    def _add(self, event: Button.Pressed | Input.Submitted) -> None:
        event.stop()
        key = self.new_key.value.strip()
        if not key:
            self.new_key.focus()
            return
        self.add_identity(key, self.new_value.value, replacing=self._editing)
        self._edit_line_for(None)
        self.new_key.value = self.new_value.value = ""
        self.new_key.focus()

    @on(Input.Changed, ".identity-editor Input")
    def _typing(self, event: Input.Changed) -> None:
        event.stop()  # nothing is an identity until it is added

    @on(DataTable.RowSelected, ".identity-table")
    def _edit(self, event: DataTable.RowSelected) -> None:
        event.stop()
        key = str(event.row_key.value)
        self.new_key.value, self.new_value.value = key, self.table.get_row(key)[1].plain
        self._edit_line_for(key)  # the row stays: the line's change replaces it in place
        self.new_value.focus()

    def action_remove_row(self) -> None:
        if self.table.has_focus and self.table.row_count:
            row_key, _ = self.table.coordinate_to_cell_key(self.table.cursor_coordinate)
            self.table.remove_row(row_key)
            if row_key.value == self._editing:
                self._edit_line_for(None)  # nothing left to replace: the line adds again
            self.post_message(self.RowsChanged())
