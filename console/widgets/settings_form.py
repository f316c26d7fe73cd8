"""The settings form (README: "Settings"): the account, the active connection, the test
audience and user, delivery and sandbox knobs. Every edit is validated by the engine's own rules
as you type."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from textual import events, on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widget import AwaitMount, Widget
from textual.widgets import Button, Input, Label, Select, SelectionList, Static, Switch

from console.messages import SettingsEdited
from console.widgets.settings_fields import (
    FieldRow,
    IdentityRows,
    SecretField,
    excluded_identity_keys,
)
from console.widgets.settings_sections import FormSection, bring_into_view, form_sections
from engine.settings import Settings
from engine.settings_file import (
    SECRET_ENV_VAR,
    LoadedSettings,
    SettingsError,
    SettingsProblem,
    settings_from_document,
)


def _comparable(settings: Settings) -> dict[str, Any]:
    """A settings document where equal settings compare equal (exclusions named by key)."""
    document = settings.to_document(secret=settings.account.secret_access_key.get_secret_value())
    for connection in document["connections"].values():
        connection["identities_to_exclude"] = sorted(
            excluded_identity_keys(connection["identities_to_exclude"])
        )
    return document


def _set_path(document: dict[str, Any], key: str, value: Any) -> None:
    *parents, last = key.split(".")
    node = document
    for part in parents:
        node = node.setdefault(part, {})
    if value is None:
        node.pop(last, None)
    else:
        node[last] = value


def _owner(key: str, owners: Mapping[str, Widget]) -> Widget | None:
    """The widget whose key is ``key`` or its nearest parent key."""
    parts = key.split(".") if key else []
    for size in range(len(parts), 0, -1):
        found = owners.get(".".join(parts[:size]))
        if found is not None:
            return found
    return None


class SettingsForm(Vertical):
    """Edits a whole Settings through one of its connections; posts SettingsEdited."""

    def __init__(
        self,
        loaded: LoadedSettings,
        connection_name: str,
        *,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.loaded = loaded
        self.connection_name = connection_name
        self._shown: Settings = loaded.settings  # what the rows were filled from
        self.settings: Settings | None = loaded.settings  # the valid draft, or None
        # The draft sends and previews use: the last valid settings (the form's, never copied).
        self.last_valid: Settings = loaded.settings
        self.problems: tuple[SettingsProblem, ...] = ()
        self.dirty = False
        # The document the state above describes: the rows report a change as they are first
        # mounted, and validating what was just loaded (reading the region list) would delay
        # the first screen. None: validate on the next change.
        self._validated: dict[str, Any] | None = self._shown_document()
        self._validation_scheduled = False
        self._form_level_problems = ""
        self._row_cache: list[FieldRow] | None = None
        # Every section of the form, mounted or not: the first screen shows only the first
        # section (it fills an 80x24 terminal); the others wait for build_waiting_sections.
        self._all_sections: list[FormSection] = []
        self._waiting_sections: list[FormSection] = []
        self._first_compose = True
        self._sections_mounting: AwaitMount | None = None

    # -- building ------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="settings-toolbar"):
            yield Label(self._toolbar_text(), id="editing-connection")
            yield Button("Switch…", compact=True, id="switch-connection", tooltip="ctrl+o")
            yield Button("New…", compact=True, id="add-connection", tooltip="ctrl+n")
        yield Static("", id="form-problems")
        self._all_sections = self._sections()
        shown = self._all_sections[:1] if self._first_compose else self._all_sections
        self._waiting_sections = self._all_sections[len(shown) :]
        self._first_compose = False
        with VerticalScroll(id="settings-fields", can_focus=False):
            yield from shown
        yield Static(self._file_text(), id="field-help")

    def _toolbar_text(self) -> Content:
        saved = self.connection_name in self.loaded.settings.connections
        return Content.assemble(
            "Connection ",
            (self.connection_name, "bold"),
            ("" if saved else " (new, unsaved)", "$text-warning"),
        )

    def _file_text(self) -> str:
        path = self.loaded.path
        if self.loaded.exists:
            return f"Settings file {path} · ctrl+s saves"
        return f"No settings file yet: ctrl+s writes {path}"

    def _sections(self) -> list[FormSection]:
        return form_sections(
            self._shown,
            self.connection_name,
            secret_from=SECRET_ENV_VAR if self.loaded.secret_from_environment else None,
        )

    def build_waiting_sections(self) -> AwaitMount | None:
        """Mount the sections the first screen left out (README: "Performance"); the app
        calls this once that screen is drawn, so they never delay it. Awaiting the result
        waits until they are built (None: nothing was waiting)."""
        waiting, self._waiting_sections = self._waiting_sections, []
        if waiting and self.is_attached:
            self._row_cache = None
            self._sections_mounting = self.query_one("#settings-fields").mount_all(waiting)
            if self.problems:  # an edit came before them: show its problems on them too
                self.call_after_refresh(self._show_problems, self.problems)
        return self._sections_mounting

    async def _build_every_section(self) -> None:
        """Every section mounted and composed, before one is looked up by its rows."""
        mounting = self.build_waiting_sections()
        if mounting is not None:
            await mounting
            self._row_cache = None

    # -- loading -------------------------------------------------------------------------

    async def load(
        self, loaded: LoadedSettings, connection_name: str, shown: Settings | None = None
    ) -> None:
        """Show ``shown`` (default: the saved settings) through ``connection_name``."""
        self.loaded = loaded
        self.connection_name = connection_name
        self._shown = self.last_valid = shown or loaded.settings
        self._validated = None
        self._row_cache = None
        self._sections_mounting = None  # the recomposed form builds every section at once
        self._form_level_problems = ""
        await self.recompose()
        self.schedule_validation()

    def saved_as(self, loaded: LoadedSettings) -> None:
        """The form's settings are now on disk as ``loaded``: nothing is unsaved any more."""
        self.loaded = loaded
        self._shown = self.last_valid = loaded.settings
        self._validated = None
        self.query_one("#editing-connection", Label).update(self._toolbar_text())
        self.query_one("#field-help", Static).update(self._file_text())
        self.schedule_validation()

    # -- reading and validating ----------------------------------------------------------

    def _shown_document(self) -> dict[str, Any]:
        shown = self._shown
        return shown.to_document(secret=shown.account.secret_access_key.get_secret_value())

    def document(self) -> dict[str, Any]:
        """The settings document the form describes (unvalidated)."""
        shown = self._shown
        document = copy.deepcopy(
            shown.to_document(secret=shown.account.secret_access_key.get_secret_value())
        )
        for row in self._rows():
            _set_path(document, row.key, row.value())
        return document

    def schedule_validation(self) -> None:
        if not self._validation_scheduled:
            self._validation_scheduled = True
            self.call_after_refresh(self._validate)

    def _validate(self) -> None:
        self._validation_scheduled = False
        document = self.document()
        if document == self._validated:
            return
        self._validated = document
        try:
            settings: Settings | None = settings_from_document(document, str(self.loaded.path))
            problems: tuple[SettingsProblem, ...] = ()
        except SettingsError as error:
            settings, problems = None, error.problems
        self.settings = settings
        if settings is not None:
            self.last_valid = settings
        self.problems = problems
        self.dirty = settings is None or _comparable(settings) != _comparable(self.loaded.settings)
        self._show_problems(problems)
        self.post_message(SettingsEdited(settings, problems, dirty=self.dirty))

    def unsaved_draft(self) -> Settings | None:
        """The settings sends and previews follow while there are unsaved edits, else None."""
        return self.last_valid if self.dirty else None

    def _rows(self) -> list[FieldRow]:
        # Queried once per layout: a query over the whole form on every keystroke is slow.
        if self._row_cache is None:
            self._row_cache = list(self.query(FieldRow))
        return self._row_cache

    def _show_problems(self, problems: Iterable[SettingsProblem]) -> None:
        rows: dict[str, Widget] = {row.key: row for row in self._rows()}
        sections: dict[str, Widget] = {section.key: section for section in self.query(FormSection)}
        found: dict[Widget, list[str]] = {}
        form_level: list[str] = []
        for problem in problems:
            text = self._problem_text(problem)
            owner = _owner(problem.key, rows)
            if owner is None:
                owner = _owner(problem.key, sections)
                if owner is not None and problem.key != getattr(owner, "key", ""):
                    text = f"{problem.key}: {text}"  # its row is in a folded section
            if owner is None:
                form_level.append(f"{problem.key or problem.source}: {text}")
            else:
                found.setdefault(owner, []).append(text)
        for widget in (*rows.values(), *sections.values()):
            assert isinstance(widget, FieldRow | FormSection)
            widget.show_problem("\n".join(found.get(widget, [])))
        text = "\n".join(form_level)
        if text != self._form_level_problems:
            self._form_level_problems = text
            self.query_one("#form-problems", Static).update(text)
            self.query_one("#form-problems").display = bool(text)

    def _problem_text(self, problem: SettingsProblem) -> str:
        where = "" if problem.source == str(self.loaded.path) else f" ({problem.source})"
        return f"✗ {problem.problem}{where}. Fix: {problem.fix}."

    @on(Input.Changed)
    @on(Switch.Changed)
    @on(Select.Changed)
    @on(SelectionList.SelectedChanged)
    @on(IdentityRows.RowsChanged)
    def _edited(self, event: events.Event) -> None:
        event.stop()
        self.schedule_validation()

    # -- what the app asks of the form ---------------------------------------------------

    async def focus_first_problem(self) -> None:
        await self._build_every_section()
        for section in self.query(FormSection):
            if section.has_class("-invalid") or any(
                row.has_class("-invalid") for row in section.query(FieldRow)
            ):
                await section.open()
                break
        self._row_cache = None
        self._validate()  # now, so the opened section's rows show their problems
        for row in self._rows():
            if row.has_class("-invalid"):
                row.scroll_visible()
                row.focus_control()
                return

    def fields(self) -> list[tuple[str, str]]:
        """Every field of the form, folded and waiting sections included, as (key,
        description)."""
        return [field for section in self._all_sections for field in section.fields()]

    async def go_to_field(self, key: str) -> None:
        """Focus the field at ``key``, opening its section first if it is folded."""
        await self._build_every_section()
        for section in self.query(FormSection):
            if any(field_key == key for field_key, _ in section.fields()):
                await section.open()
                break
        self._row_cache = None
        row = next((row for row in self._rows() if row.key == key), None)
        if row is not None:
            row.focus_control()
            bring_into_view(row)

    @on(Button.Pressed, "#switch-connection")
    async def _switch_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        await self.run_action("app.switch_connection")

    @on(Button.Pressed, "#add-connection")
    async def _add_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        await self.run_action("app.add_connection")

    @on(FormSection.Opened)
    def _section_opened(self, event: FormSection.Opened) -> None:
        event.stop()
        self._row_cache = None
        self.schedule_validation()

    def toggle_secret(self) -> bool:
        """Reveal or mask the secret; True when it is now revealed."""
        fields = self.query(SecretField)
        if not fields:  # its section is not built yet (the first moments): nothing to reveal
            return False
        field = fields.first()
        field.toggle_reveal()
        return field.revealed

    def with_new_connection(self, name: str, stream_name: str) -> tuple[Settings | None, list[str]]:
        """The form's settings plus a new connection, or what is wrong with it."""
        document = self.document()
        if name in document.get("connections", {}):
            return None, [f"a connection named {name!r} already exists"]
        document.setdefault("connections", {})[name] = {"delivery_stream_name": stream_name}
        try:
            return settings_from_document(document, str(self.loaded.path)), []
        except SettingsError as error:
            mine = [
                f"{problem.problem}. Fix: {problem.fix}."
                for problem in error.problems
                if problem.key in ("connections", f"connections.{name}")
                or problem.key.startswith(f"connections.{name}.")
            ]
            others = len(error.problems) - len(mine)
            if others and not mine:
                mine = [f"first fix the {others} problem(s) shown in the settings form"]
            return None, mine

    @on(events.DescendantFocus)
    def _show_help(self, event: events.DescendantFocus) -> None:
        row = next((node for node in event.widget.ancestors if isinstance(node, FieldRow)), None)
        help_line = self.query_one("#field-help", Static)
        shown: str | Content
        if row is None:
            shown = self._file_text()
        else:
            shown = Content.assemble((row.key, "bold"), " — ", row.description)
        # The same help again (the field focused anew as its tab is shown): no update, which
        # would lay the screen out a second time after the tab's first (README: "Performance").
        if help_line.content != shown:
            help_line.update(shown)
