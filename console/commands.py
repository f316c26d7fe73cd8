"""Every console action in one table: its key binding (shown in the footer) and its command
palette entry ("Group: Title") both come from here, so the two can never disagree."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content

if TYPE_CHECKING:
    from console.app import FirehoseConsoleApp

# The tabs, in the order they appear; ids are the TabPane ids.
TABS: tuple[tuple[str, str], ...] = (
    ("settings", "Settings"),
    ("preview", "Preview"),
    ("send", "Send"),
    ("alerts", "Alerts"),
    ("verify", "Verify"),
    ("delivered", "Delivered"),
)


@dataclass(frozen=True)
class ConsoleAction:
    """One thing the user can do, as a key binding and as a command palette entry."""

    group: str  # the palette group, e.g. "Send"
    title: str  # the palette title, e.g. "Send add"
    action: str  # the Textual action string run on the app, e.g. "send('add')"
    key: str  # fixed: the README's console tour says why there is no keymap
    footer: str  # the short label the footer shows
    help: str  # one line shown in the palette and as the footer tooltip
    tab: str | None = None  # the tab whose footer shows it (and where its key works)
    show: bool = True  # shown in the footer
    priority: bool = False  # checked before the focused widget sees the key

    @property
    def palette_text(self) -> str:
        return f"{self.group}: {self.title}"

    def binding(self) -> Binding:
        return Binding(
            self.key,
            self.action,
            self.footer,
            show=self.show,
            priority=self.priority,
            tooltip=self.help,
        )


def _tab_actions() -> tuple[ConsoleAction, ...]:
    return tuple(
        ConsoleAction(
            "Go to",
            f"{title} tab",
            f"show_tab('{tab_id}')",
            f"f{number}",
            title,
            f"Show the {title} tab",
            show=False,
        )
        for number, (tab_id, title) in enumerate(TABS, start=1)
    )


def _message_actions(verb: str, tab: str, help_verb: str) -> tuple[ConsoleAction, ...]:
    keys = (("add", "a", "Add"), ("remove", "r", "Remove"), ("delete", "d", "Delete"))
    actions = [
        ConsoleAction(
            verb.title(),
            f"{verb.title()} {name}",
            f"{verb}('{name}')",
            key,
            footer,
            f"{help_verb} the {name} message for the test user",
            tab=tab,
        )
        for name, key, footer in keys
    ]
    actions.append(
        ConsoleAction(
            verb.title(),
            f"{verb.title()} identity change",
            f"{verb}('identity-change')",
            "i",
            "Id change",
            f"{help_verb} the identity-change messages for the test user",
            tab=tab,
        )
    )
    return tuple(actions)


CONSOLE_ACTIONS: tuple[ConsoleAction, ...] = (
    ConsoleAction(
        "Settings",
        "Save settings",
        "save_settings",
        "ctrl+s",
        "Save",
        "Validate and save the settings file (atomically)",
        priority=True,
    ),
    ConsoleAction(
        "Verify",
        "Verify connection",
        "verify",
        "ctrl+r",
        "Verify",
        "Check the credentials, the stream and its type; fill in the IAM policy",
        tab="verify",  # shown on its tab; VERIFY_ANYWHERE makes the key work on every tab
    ),
    ConsoleAction(
        "Settings",
        "Revert unsaved edits",
        "revert_settings",
        "ctrl+z",
        "Revert",
        "Drop the form's unsaved edits and show the settings as saved (asks first)",
        show=False,
    ),
    ConsoleAction(
        "Settings",
        "Go to field…",
        "go_to_field",
        "ctrl+g",
        "Go to field",
        "Pick a settings field by name (fuzzy) and edit it, opening its section",
        show=False,
    ),
    ConsoleAction(
        "Settings",
        "Reveal or hide the secret access key",
        "toggle_secret",
        "ctrl+t",
        "Reveal",
        "Show or mask the secret access key in the form",
        tab="settings",
    ),
    ConsoleAction(
        "Settings",
        "Switch connection",
        "switch_connection",
        "ctrl+o",
        "Connection",
        "Work on another connection of the settings file",
        tab="settings",
    ),
    ConsoleAction(
        "Settings",
        "Add connection",
        "add_connection",
        "ctrl+n",
        "New",
        "Add a connection (audience → stream) to the settings",
        tab="settings",
    ),
    ConsoleAction(
        "Settings",
        "Choose audience",
        "choose_audience",
        "ctrl+l",  # free in every tab and in Input (ctrl+a, ctrl+e, ctrl+u edit the line)
        "Audience",
        "Build records for [audience], a named [audiences.NAME], or all of them",
        show=False,
    ),
    *_message_actions("preview", "preview", "Show"),
    *_message_actions("send", "send", "Send"),
    ConsoleAction(
        "Send",
        "Send burst",
        "send_burst",
        "b",
        "Burst",
        "Send the count of distinct users given on the Send tab, then stop",
        tab="send",
    ),
    ConsoleAction(
        "Send",
        "Stop the running send",
        "cancel_send",
        "escape",
        "Stop",
        "Stop the send in progress: no new call starts; the rest is kept as never sent",
        # Shown on every tab, and only while a send runs (the app's check_action).
    ),
    ConsoleAction(
        "Alerts",
        "Replay dead letters",
        "replay_dead_letters",
        "p",
        "Replay",
        "Send every dead letter again, byte for byte",
        tab="alerts",
    ),
    ConsoleAction(
        "Alerts",
        "Browse dead letters",
        "browse_dead_letters",
        "l",
        "Letters",
        "Open the dead letters: see each one in full, replay or drop it",
        tab="alerts",
    ),
    ConsoleAction(
        "Alerts",
        "Clear alerts and attempt log",
        "clear_alerts",
        "x",
        "Clear",
        "Forget the alerts seen so far and empty the attempt log",
        tab="alerts",
    ),
    ConsoleAction(
        "Verify",
        "Copy IAM policy",
        "copy_policy",
        "c",
        "Copy policy",
        "Send the filled-in IAM policy to the terminal's clipboard (OSC 52)",
        tab="verify",
    ),
    ConsoleAction(
        "Verify",
        "Write IAM policy to a file",
        "write_policy",
        "w",
        "Write policy",
        "Write the filled-in IAM policy beside the settings file (iam-policy-<connection>.json)",
        tab="verify",
    ),
    ConsoleAction(
        "Delivered",
        "Refresh delivered records",
        "refresh_delivered",
        "u",  # not r: r removes on Preview and Send; a key means one thing on every tab
        "Refresh",
        "Read again where sent records landed (and, on the sandbox, its bucket)",
        tab="delivered",
    ),
    *_tab_actions(),
    ConsoleAction(
        "Console",
        "Keys for this tab",
        "show_keys",
        "question_mark",
        "Keys",
        "List the keys of the tab you are on and those that work everywhere (escape closes)",
        show=False,
    ),
    ConsoleAction(
        "Console",
        "Quit",
        "quit",
        "ctrl+q",
        "Quit",
        "Quit (asks first if unsaved)",
        priority=True,
    ),
)

# The tab an action belongs to, by action name (the part before any parameters).
ACTION_TABS: dict[str, str | None] = {
    action.action.split("(")[0]: action.tab for action in CONSOLE_ACTIONS
}


# ctrl+r verifies from any tab; only the Verify tab's footer shows it, to keep 80 columns.
VERIFY_ANYWHERE = Binding("ctrl+r", "verify_connection", "Verify", show=False)


def console_bindings() -> list[BindingType]:
    """The app's key bindings."""
    bindings: list[BindingType] = [action.binding() for action in CONSOLE_ACTIONS]
    return [*bindings, VERIFY_ANYWHERE]


class ConsoleCommands(Provider):
    """Lists every console action in the command palette as "Group: Title", then Textual's
    own commands (theme, screenshot…) less those the console has its own of (Quit, Keys): one
    provider, so the console's come first."""

    @property
    def console(self) -> FirehoseConsoleApp:
        return self.app  # type: ignore[return-value]

    def _help(self, action: ConsoleAction) -> str:
        return f"{action.help} — key {self.console.key_for(action)}"

    async def discover(self) -> Hits:
        for action in CONSOLE_ACTIONS:
            yield DiscoveryHit(
                action.palette_text,
                partial(self.console.perform, action),
                help=self._help(action),
            )
        for command in self.console.get_system_commands(self.screen):
            yield DiscoveryHit(command.title, command.callback, help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for action in CONSOLE_ACTIONS:
            score = matcher.match(action.palette_text)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(action.palette_text),
                    partial(self.console.perform, action),
                    text=action.palette_text,
                    help=self._help(action),
                )
        for command in self.console.get_system_commands(self.screen):
            score = matcher.match(command.title)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(command.title),
                    command.callback,
                    text=command.title,
                    help=command.help,
                )


def tab_label(tab: str, *, unsaved: bool = False) -> Content:
    """A tab's label with the F-key that shows it ("Settings f1"; "Settings ● f1" while the
    form has unsaved edits)."""
    number = [tab_id for tab_id, _ in TABS].index(tab) + 1
    title = dict(TABS)[tab] + (" ●" if unsaved else "")
    return Content.assemble(title, " ", (f"f{number}", "$text-muted"))


def keys_text(console: FirehoseConsoleApp, tab: str) -> str:
    """The keys panel's text: the keys of ``tab``, then those that work on every tab."""
    title = dict(TABS).get(tab, tab)

    def lines(actions: list[ConsoleAction]) -> list[str]:
        return [f"  {console.key_for(a):<9} {a.title}" for a in actions]

    own = [action for action in CONSOLE_ACTIONS if action.tab == tab]
    everywhere = [
        action
        for action in CONSOLE_ACTIONS
        if action.tab is None and not action.action.startswith("show_tab")
    ]
    if tab != "verify":
        everywhere.append(next(a for a in CONSOLE_ACTIONS if a.action == "verify"))
    tabs = f"  f1…f{len(TABS)}     " + ", ".join(title for _, title in TABS)
    return "\n".join(
        [f"On the {title} tab", *(lines(own) or ["  (no keys of its own)"]), "", "Everywhere"]
        + lines(everywhere)
        + [tabs]
    )
