"""The sections of the settings form and the rows in each, labelled by their TOML keys and
described by the engine's own field descriptions.

A section can be folded; a folded section builds its rows only when first opened, so the form
stays quick to show (and to lay out on every keystroke) while the rarely-edited sections wait.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pydantic import BaseModel
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static

from console.widgets.settings_fields import (
    ChoiceField,
    DelimiterField,
    FieldRow,
    IdentityRows,
    PickerField,
    SecretField,
    SwitchField,
    TextField,
    excluded_identity_keys,
    identity_options,
)
from engine.identities import FORWARD_FLAGS
from engine.regions import firehose_regions
from engine.settings import (
    SANDBOX_FAILURES,
    AccountSettings,
    AudienceSettings,
    ConnectionSettings,
    DeliverySettings,
    SandboxSettings,
    Settings,
    TestUserSettings,
)

RowFactory = Callable[[], Iterable[Widget]]


def _description(model: type[BaseModel], name: str) -> str:
    return model.model_fields[name].description or ""


class SectionTitle(Static, can_focus=True):
    """A section's title; enter, space or a click folds or opens the section."""

    BINDINGS = [Binding("enter,space", "toggle_section", "Open/fold", show=False)]

    async def action_toggle_section(self) -> None:
        section = self.parent
        if isinstance(section, FormSection):
            await section.toggle()

    async def _on_click(self, event: events.Click) -> None:
        event.stop()
        await self.action_toggle_section()


class FormSection(Vertical):
    """A titled group of rows; problems of the whole group show under the title, folded or
    not."""

    class Opened(Message):
        """The section's rows exist now (they are built on first opening)."""

    def __init__(self, key: str, title: str, rows: RowFactory, *, folded: bool) -> None:
        super().__init__(classes="form-section")
        self.key = key
        self.section_title = title
        self._rows = rows
        self._folded = folded
        self._built = False
        self._problem = ""
        self._fields: list[tuple[str, str]] | None = None  # (key, description), once read

    def compose(self) -> ComposeResult:
        yield SectionTitle(self._title_text(), classes="section-title")
        if not self._folded:
            self._built = True
            yield Vertical(*self._rows(), classes="section-body")

    def _title_text(self) -> Content:
        mark = "▶ " if self._folded else "▼ "
        hint = " (enter opens)" if self._folded else ""
        return Content.assemble(mark, (self.section_title, "bold"), (hint, "$text-muted"))

    @property
    def folded(self) -> bool:
        return self._folded

    def fields(self) -> list[tuple[str, str]]:
        """Each row's key and description, folded or not (a folded section's rows are made
        for this, never mounted: mounting waits for the first opening)."""
        if self._fields is None:
            rows = self.query(FieldRow) if self._built else self._rows()
            self._fields = [(row.key, row.description) for row in rows if isinstance(row, FieldRow)]
        return self._fields

    async def toggle(self) -> None:
        if self._folded:
            await self.open()
        else:
            self._folded = True
            self.query_one(".section-body").display = False
            self.query_one(SectionTitle).update(self._title_text())

    async def open(self) -> None:
        if not self._folded:
            return
        self._folded = False
        if self._built:
            self.query_one(".section-body").display = True
        else:
            self._built = True
            await self.mount(Vertical(*self._rows(), classes="section-body"))
            self.post_message(self.Opened())
        self.query_one(SectionTitle).update(self._title_text())
        bring_into_view(self, top=True)  # as much of what was opened as fits, title first

    def show_problem(self, text: str) -> None:
        if text == self._problem:
            return
        self._problem = text
        self.set_class(bool(text), "-invalid")
        shown = self.query_children(".section-problem")
        if not text:
            shown.remove()
        elif shown:
            shown.first(Static).update(text)
        else:
            self.mount(Static(text, classes="section-problem"), after=0)


# Scrolls tried at most while the form is still growing around a widget brought into view.
VIEW_ATTEMPTS = 3


def bring_into_view(widget: Widget, *, top: bool = False) -> None:
    """Scroll ``widget`` into view once the rows just mounted around it are laid out (the
    first refresh mounts them, the second gives the form its new height). On a busy machine
    the form may still be growing then, and a scroll cannot go past the height it has: while
    ``widget`` is not wholly in view after a refresh, it is scrolled again, a few times at
    most (a widget taller than the view never is)."""

    def scroll(attempts_left: int) -> None:
        if not widget.is_attached:
            return
        widget.scroll_visible(animate=False, top=top)
        if attempts_left > 1:
            widget.call_after_refresh(scroll_if_out_of_view, attempts_left - 1)

    def scroll_if_out_of_view(attempts_left: int) -> None:
        if widget.is_attached and not widget.screen.can_view_entire(widget):
            scroll(attempts_left)

    widget.call_after_refresh(widget.call_after_refresh, scroll, VIEW_ATTEMPTS)


def form_sections(
    settings: Settings, connection_name: str, *, secret_from: str | None
) -> list[FormSection]:
    """The form's sections for ``connection_name``; the connection and account start open."""
    return [
        FormSection(
            f"connections.{connection_name}",
            "Stream and what is forwarded",
            lambda: connection_rows(
                f"connections.{connection_name}", settings.connections[connection_name]
            ),
            folded=False,
        ),
        FormSection(
            "account",
            "Account (the IAM user)",
            lambda: account_rows(settings, secret_from),
            folded=False,
        ),
        FormSection("audience", "Test audience", lambda: audience_rows(settings), folded=True),
        FormSection(
            "test_user", "Test user", lambda: configured_test_user_rows(settings), folded=True
        ),
        FormSection("delivery", "Delivery", lambda: delivery_rows(settings.delivery), folded=True),
        FormSection(
            "sandbox",
            "Sandbox chaos (embedded sandbox only)",
            lambda: sandbox_rows(settings),
            folded=True,
        ),
    ]


def connection_switches() -> list[str]:
    """The connection's on/off settings, in the settings file's order; which identities have a
    forward flag is the engine's table (``FORWARD_FLAGS``), never repeated here."""
    switches = {"send_anonymous_users", *FORWARD_FLAGS}
    return [name for name in ConnectionSettings.model_fields if name in switches]


def connection_rows(prefix: str, connection: ConnectionSettings) -> Iterable[FieldRow]:
    def describe(field: str) -> str:
        return _description(ConnectionSettings, field)

    yield TextField(
        f"{prefix}.delivery_stream_name",
        describe("delivery_stream_name"),
        connection.delivery_stream_name,
    )
    yield ChoiceField(f"{prefix}.region", describe("region"), connection.region, firehose_regions)
    yield TextField(
        f"{prefix}.endpoint_url",
        describe("endpoint_url"),
        connection.endpoint_url,
        placeholder="empty: AWS",
    )
    for flag in connection_switches():
        yield SwitchField(f"{prefix}.{flag}", describe(flag), getattr(connection, flag))
    yield PickerField(
        f"{prefix}.identities_to_exclude",
        describe("identities_to_exclude"),
        identity_options(),
        excluded_identity_keys(connection.identities_to_exclude),
        verb="excluded",
    )


def account_rows(settings: Settings, secret_from: str | None) -> Iterable[FieldRow]:
    account = settings.account
    yield TextField(
        "account.access_key_id",
        _description(AccountSettings, "access_key_id"),
        account.access_key_id,
        placeholder="empty: the AWS credential chain",
    )
    yield SecretField(
        "account.secret_access_key",
        _description(AccountSettings, "secret_access_key"),
        account.secret_access_key.get_secret_value(),
        from_environment=secret_from,
    )
    yield SwitchField(
        "account.send_remove_on_identity_change",
        _description(AccountSettings, "send_remove_on_identity_change"),
        account.send_remove_on_identity_change,
    )


def audience_rows(settings: Settings) -> Iterable[FieldRow]:
    for field in ("id", "internal_name", "external_name"):
        yield TextField(
            f"audience.{field}",
            _description(AudienceSettings, field),
            getattr(settings.audience, field),
            input_type="integer" if field == "id" else "text",
        )


def configured_test_user_rows(settings: Settings) -> Iterable[FieldRow]:
    user = settings.test_user
    yield TextField("test_user.mpid", _description(TestUserSettings, "mpid"), user.mpid)
    for field in ("identities", "new_identities"):
        yield IdentityRows(
            f"test_user.{field}", _description(TestUserSettings, field), getattr(user, field)
        )


def delivery_rows(delivery: DeliverySettings) -> Iterable[FieldRow]:
    for field, input_type in (
        ("max_attempts", "integer"),
        ("backoff_base_seconds", "number"),
        ("backoff_cap_seconds", "number"),
        ("connect_timeout_seconds", "number"),
        ("read_timeout_seconds", "number"),
        ("concurrency", "integer"),
        ("batch_size", "integer"),
    ):
        yield TextField(
            f"delivery.{field}",
            _description(DeliverySettings, field),
            getattr(delivery, field),
            input_type=input_type,
        )
    yield DelimiterField(
        "delivery.record_delimiter",
        _description(DeliverySettings, "record_delimiter"),
        delivery.record_delimiter,
    )
    yield TextField(
        "delivery.state_dir",
        _description(DeliverySettings, "state_dir"),
        delivery.state_dir,
        placeholder="empty: $XDG_STATE_HOME/firehose-console",
    )


def sandbox_rows(settings: Settings) -> Iterable[FieldRow]:
    chaos = settings.sandbox
    yield TextField(
        "sandbox.failure_rate",
        _description(SandboxSettings, "failure_rate"),
        chaos.failure_rate,
        input_type="number",
    )
    yield PickerField(
        "sandbox.failures",
        _description(SandboxSettings, "failures"),
        [(kind, kind) for kind in SANDBOX_FAILURES],
        chaos.failures,
    )
    yield TextField(
        "sandbox.seed",
        _description(SandboxSettings, "seed"),
        chaos.seed,
        input_type="integer",
        optional=True,
        placeholder="empty: random",
    )
