"""The live preview (README: "Message formats"): the records an action would send under the
form's settings, as they stand right now, saved or not. Nothing is sent from here."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Label, Select, Static
from textual.widgets._select import SelectCurrent

from console.messages import ActionChosen
from console.widgets.shown import on_the_shown_tab
from engine.records import Action, OutgoingMessage
from engine.settings import RECORD_SIZE_LIMIT_BYTES, Settings

# What the preview and a send use while the form is invalid: the same last valid settings.
STALE_PREVIEW_NOTE = (
    "⚠ The form has problems (see Settings): these records use its last valid state, and a "
    "send now would send them."
)

ACTION_LABELS: dict[Action, str] = {
    Action.ADD: "add",
    Action.REMOVE: "remove",
    Action.DELETE: "delete (audience deleted)",
    Action.IDENTITY_CHANGE: "identity change",
}


class ActionSelect(Select[Action]):
    """The action picker of Preview and Send, the field a switch to either tab focuses."""

    def watch_has_focus(self, has_focus: bool) -> None:
        """Restyle the picker and the line it shows (``Select:focus > SelectCurrent``) when it
        gains or loses the focus, not its hidden option list as well: only those two are styled
        by it (a test guards that), and the list's restyle was most of a switch's (README:
        "Performance")."""
        shown_lines = list(self.query_children(SelectCurrent))
        self.app.stylesheet.update_nodes([self, *shown_lines], animate=True)
        # The line's label and arrow have no background of their own: their text keeps the one
        # it was first drawn on (Textual caches it with their style, and their style does not
        # change), so a picker drawn before it took the focus kept its unfocused look there.
        for part in (child for line in shown_lines for child in line.children):
            part.notify_style_update()
            part.refresh()


def action_select(value: Action, *, id: str) -> Select[Action]:
    return ActionSelect(
        [(label, action) for action, label in ACTION_LABELS.items()],
        value=value,
        allow_blank=False,
        compact=True,
        id=id,
    )


def _json(document: object) -> Content:
    from textual.highlight import highlight  # pygments: loaded when first needed

    return highlight(json.dumps(document, indent=2, ensure_ascii=False), language="json")


def render_message(message: OutgoingMessage, number: int, total: int) -> Content:
    """One record as the preview shows it: verdict, size, decoded Data, request, drops."""
    if message.will_send:
        verdict = ("✓ will be sent", "$text-success bold")
    else:
        verdict = (f"✗ will not be sent: {message.skip_reason}", "$text-error bold")
    member = message.data.get("IsMember")
    what = message.kind.value + ("" if member is None else f" (IsMember {str(member).lower()})")
    share = message.size_bytes / RECORD_SIZE_LIMIT_BYTES
    size_style = "$text-error bold" if message.size_bytes > RECORD_SIZE_LIMIT_BYTES else ""
    if message.dropped:
        dropped = Content("\n").join(
            Content.assemble("  ", (drop.identity, "bold"), f" — {drop.reason}")
            for drop in message.dropped
        )
    else:
        dropped = Content("  none")
    return Content("\n").join(
        [
            Content.assemble((f"Record {number} of {total}: {what}", "bold"), " · ", verdict),
            Content.assemble(
                "Size ",
                (f"{message.size_bytes:,}", size_style),
                f" of {RECORD_SIZE_LIMIT_BYTES:,} bytes ({share:.3%})",
            ),
            Content.styled("Data (decoded)", "$text-accent bold"),
            _json(message.data),
            Content.styled("Request as sent (Data base64)", "$text-accent bold"),
            _json(message.request()),
            Content.styled("Dropped identities", "$text-accent bold"),
            dropped,
        ]
    )


def render_messages(messages: Sequence[OutgoingMessage]) -> Content:
    rule = Content.styled("─" * 40, "$text-muted")
    blocks = [render_message(m, n, len(messages)) for n, m in enumerate(messages, start=1)]
    return Content("\n").join(
        [block if n == 0 else Content("\n").join([rule, block]) for n, block in enumerate(blocks)]
    )


PreviewRecords = Callable[[Action, Settings], list[OutgoingMessage]]

# Where in the records a setting shows (by the last part of its key): the side preview scrolls
# there when the setting's field takes the focus. A setting not listed leaves it where it is.
FIELD_ANCHORS: dict[str, str] = {
    "delivery_stream_name": '"DeliveryStreamName"',
    "id": '"AudienceId"',
    "external_name": '"AudienceName"',
    "mpid": '"MPID"',
    "identities": '"UserIdentities"',
    "new_identities": '"UserIdentities"',
    "send_anonymous_users": '"UserIdentities"',
    "forward_email_addresses": '"UserIdentities"',
    "forward_customer_ids": '"UserIdentities"',
    "forward_idfas": '"UserIdentities"',
    "forward_google_advertising_ids": '"UserIdentities"',
    "identities_to_exclude": "Dropped identities",
    "record_delimiter": "Request as sent",
}


class PreviewPane(Vertical):
    """Shows what ``action`` would send for the test user, following every edit.

    ``preview`` builds the records (the app passes the session's preview, so what is shown is
    what a send builds)."""

    action: reactive[Action] = reactive(Action.ADD)

    def __init__(self, preview: PreviewRecords, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._preview = preview
        self._settings: Settings | None = None
        self._stale = False
        self._render_pending = False
        self._shown_lines: list[str] = []  # the records as last rendered, line by line

    def compose(self) -> ComposeResult:
        with Horizontal(id="preview-toolbar"):
            yield Label("Action ")
            yield action_select(self.action, id="preview-action")
        # Its own line (wrapped, never cut at 80 columns); shown only while the form is invalid.
        yield Static("", id="preview-note")
        with VerticalScroll(id="preview-body"):
            yield Static("", id="preview-records")

    def show(self, settings: Settings | None) -> None:
        """Follow the form: valid settings replace the preview; invalid ones mark it stale."""
        if settings is not None:
            self._settings = settings
        self._stale = settings is None
        if on_the_shown_tab(self):
            self._render_preview()
        else:
            self._render_pending = True  # rendered when shown: edits come one per keystroke

    def rebuild(self) -> None:
        """Build the records again from the same settings (the audience chosen changed)."""
        if on_the_shown_tab(self):
            self._render_preview()
        else:
            self._render_pending = True

    def on_mount(self) -> None:
        if self._render_pending:  # told before its tab was first shown
            self._render_preview()

    def on_show(self) -> None:
        self.show_pending()

    def show_pending(self) -> None:
        """Render what it was told while hidden. Its tab calls this as it is shown, so that the
        records come with the tab's first paint, not with a second one after it (Textual tells
        a widget it is shown only once it has been laid out and painted)."""
        if self._render_pending and self.is_mounted:
            self._render_preview()

    def messages(self) -> list[OutgoingMessage]:
        if self._settings is None:
            return []
        return self._preview(self.action, self._settings)

    def watch_action(self, action: Action) -> None:
        if self.is_mounted:
            self.query_one("#preview-action", Select).value = action
            self._render_preview()

    @on(Select.Changed, "#preview-action")
    def _action_chosen(self, event: Select.Changed) -> None:
        event.stop()
        if isinstance(event.value, Action) and event.value is not self.action:
            self.post_message(ActionChosen(event.value))

    def _render_preview(self) -> None:
        self._render_pending = False
        note = self.query_one("#preview-note", Static)
        note.update(Content.styled(STALE_PREVIEW_NOTE, "$text-warning") if self._stale else "")
        note.display = self._stale
        rendered = render_messages(self.messages())
        self._shown_lines = rendered.plain.splitlines()
        self.query_one("#preview-records", Static).update(rendered)

    def follow(self, key: str) -> None:
        """Scroll to where the setting at ``key`` shows in the records, if it shows."""
        anchor = FIELD_ANCHORS.get(key.rsplit(".", 1)[-1])
        if anchor is None:
            return
        line = next((n for n, text in enumerate(self._shown_lines) if anchor in text), None)
        if line is not None:
            self.query_one("#preview-body", VerticalScroll).scroll_to(
                y=max(0, line - 2), animate=False
            )
