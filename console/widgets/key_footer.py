"""The footer of keys, rebuilt only when the keys it shows change.

Textual's ``Footer`` rebuilds all its keys after every bindings refresh, and a tab switch
refreshes the bindings several times (the tab activated, the tab strip focused, then the tab's
field): five rebuilds a switch, a quarter of its time in a profile (README: "Performance").
Here the refreshes of one screen update collapse into one check, and the keys are rebuilt only
if what they would show differs from what is on screen.
"""

from __future__ import annotations

from collections.abc import Hashable

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

# What one footer entry shows: key, its display, description, action, enabled, tooltip, group.
KeySignature = tuple[Hashable, ...]


class KeyFooter(Footer):
    """A ``Footer`` that skips rebuilding when the keys shown stay the same."""

    def __init__(self, *, id: str | None = None, compact: bool = False) -> None:
        super().__init__(id=id, compact=compact)
        self._shown: tuple[KeySignature, ...] | None = None
        self._check_pending = False

    def bindings_changed(self, screen: Screen[object]) -> None:
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen and not self._check_pending:
            self._check_pending = True
            # Before the next screen update, not after it (as Footer does): a tab's keys then
            # appear with its content, in one layout instead of two.
            self.call_next(self._rebuild_if_changed)

    async def _rebuild_if_changed(self) -> None:
        self._check_pending = False
        if not self.is_attached:
            return
        shown = self._keys_to_show()
        if shown == self._shown:
            return
        self._shown = shown
        await self.recompose()

    def _keys_to_show(self) -> tuple[KeySignature, ...]:
        """Everything ``Footer.compose`` reads from the active bindings, in its order."""
        app = self.app
        palette_key = app.COMMAND_PALETTE_BINDING if app.ENABLE_COMMAND_PALETTE else None
        return tuple(
            (
                key,
                binding.key,
                app.get_key_display(binding),
                binding.description,
                binding.action,
                enabled,
                tooltip,
                binding.tooltip,
                id(binding.group) if binding.group is not None else None,
            )
            for key, (_, binding, enabled, tooltip) in self.screen.active_bindings.items()
            if binding.show or key == palette_key
        ) + ((self.compact, self.show_command_palette),)

    def compose(self) -> ComposeResult:
        for widget in super().compose():
            if self.compact and isinstance(widget, FooterKey):
                # Born compact: its data binding then finds the class set and restyles nothing.
                widget.add_class("-compact", update=False)
            yield widget
