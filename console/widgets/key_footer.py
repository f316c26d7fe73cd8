"""The footer of keys: each set of keys built once, then only shown or hidden.

Textual's ``Footer`` rebuilds all its keys after every bindings refresh, and a tab switch
refreshes the bindings several times (the tab activated, the focus moved): a quarter of a
switch's time in a profile. Here the refreshes of one screen update collapse into one check,
and a set of keys is built the first time it is shown (a tab's keys, or the same keys dimmed
while a send runs) and kept: going back to it only shows it again, as the tabs do with their
panes, instead of mounting and styling a dozen widgets each switch (README: "Performance").
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from contextlib import AbstractContextManager

from textual.app import ComposeResult
from textual.compose import compose
from textual.containers import HorizontalGroup
from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

# What one footer entry shows: key, its display, description, action, enabled, tooltip, group.
KeySignature = tuple[Hashable, ...]
MAX_KEY_SETS = 24  # six tabs, each also dimmed during a send, and the dialogs: a few spare


class KeySet(HorizontalGroup):
    """One set of the footer's keys (all but the palette key, docked right of every set)."""

    DEFAULT_CSS = """
    KeySet {
        width: auto;
        height: 1;
    }
    """


class KeyFooter(Footer):
    """A ``Footer`` that keeps every set of keys it has shown and shows one at a time."""

    def __init__(self, *, id: str | None = None, compact: bool = False) -> None:
        super().__init__(id=id, compact=compact)
        self._shown: tuple[KeySignature, ...] | None = None
        self._composed: tuple[KeySignature, ...] | None = None  # the keys compose last read
        self._key_sets: dict[tuple[KeySignature, ...], KeySet] = {}
        self._check_pending = False

    def bindings_changed(self, screen: Screen[object]) -> None:
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen and not self._check_pending:
            self._check_pending = True
            # Before the next screen update, not after it (as Footer does): a tab's keys then
            # appear with its content, in one layout instead of two.
            self.call_next(self._show_pending_keys)

    async def _show_pending_keys(self) -> None:
        self._check_pending = False
        to_build = self._show_built_keys()
        if to_build is not None:  # built now, not a message later: the first frame has them
            await self._build_keys(*to_build)

    def show_keys(self) -> None:
        """Show the keys the screen's bindings call for now: a tab switch calls this as soon as
        the tab and the focus have changed, so the keys are shown in the tab's first layout."""
        to_build = self._show_built_keys()
        if to_build is not None:
            self.call_next(self._build_keys, *to_build)

    def _show_built_keys(
        self,
    ) -> tuple[tuple[KeySignature, ...], tuple[KeySignature, ...] | None] | None:
        """Show the set of keys the bindings call for if it is built; if it is not, the keys
        to build and those shown until now."""
        if not self.is_attached or not self._bindings_ready:
            return None
        shown = self._keys_to_show()
        if shown == self._shown:
            return None
        before, self._shown = self._shown, shown
        key_set = self._key_sets.get(shown)
        if key_set is None:
            return shown, before
        for each in self._key_sets.values():
            if each.display != (each is key_set):
                each.display = each is key_set
                # Ask the screen for the layout now, as Textual would once this set's own
                # queue is idle: by then the screen has laid the new tab out, and it would lay
                # the whole screen out a second time for the footer (5–30 ms a switch).
                each._check_refresh()
        return None

    def prepare_keys(self, as_on: Callable[[], AbstractContextManager[None]]) -> None:
        """Build, hidden, the set of keys the bindings call for within ``as_on`` (the app
        answering for another tab), unless it is built already."""
        if not self.is_attached or not self._bindings_ready or self._shown is None:
            return
        with as_on():
            shown = self._keys_to_show()
            if shown in self._key_sets or shown[-2:] != self._shown[-2:]:
                return
            if len(self._key_sets) >= MAX_KEY_SETS:
                return
            key_set = next(widget for widget in compose(self) if isinstance(widget, KeySet))
        key_set.display = False
        self._key_sets[shown] = key_set
        self.mount(key_set, before=0)

    async def _build_keys(
        self, shown: tuple[KeySignature, ...], before: tuple[KeySignature, ...] | None
    ) -> None:
        """Build the set of keys ``shown`` and show it (unless other keys are due by now)."""
        if not self.is_attached or self._shown != shown or shown in self._key_sets:
            return
        if before is None or shown[-2:] != before[-2:] or len(self._key_sets) >= MAX_KEY_SETS:
            # The palette key (and the footer's own options) go with every set: start over.
            self._key_sets.clear()
            await self.recompose()
            self._key_sets[shown] = self.query_one(KeySet)
            return
        key_set = next(widget for widget in compose(self) if isinstance(widget, KeySet))
        self._key_sets[shown] = key_set
        for each in self._key_sets.values():
            each.display = each is key_set
        await self.mount(key_set, before=0)

    def _keys_to_show(self) -> tuple[KeySignature, ...]:
        """Everything ``Footer.compose`` reads from the active bindings, in its order; the
        palette key's entry and the footer's options last."""
        app = self.app
        palette_key = app.COMMAND_PALETTE_BINDING if app.ENABLE_COMMAND_PALETTE else None
        entries = [
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
        ]
        palette = [entry for entry in entries if entry[0] == palette_key]
        keys = [entry for entry in entries if entry[0] != palette_key]
        return (*keys, tuple(palette), (self.compact, self.show_command_palette))

    def on_mount(self) -> None:
        super().on_mount()
        if self._shown is None and self._composed is not None:
            # The keys composed with the screen: the first frame shows them.
            self._shown = self._composed
            self._key_sets[self._composed] = self.query_one(KeySet)

    def compose(self) -> ComposeResult:
        if not self._bindings_ready and self._shown is None:
            # Composed with the screen: the bindings it has now (the app's, the first tab's)
            # are the first keys, composed here so that they are in the first frame instead
            # of a frame or two after it, once the screen reports its bindings.
            self._bindings_ready = True
        self._composed = self._keys_to_show()
        palette_key: FooterKey | None = None
        with KeySet():
            for widget in super().compose():
                if isinstance(widget, FooterKey):
                    if self.compact:
                        # Born compact: its data binding then finds the class set and restyles
                        # nothing.
                        widget.add_class("-compact", update=False)
                    if widget.has_class("-command-palette"):
                        palette_key = widget  # docked right of the footer, not of the set
                        continue
                yield widget
        if palette_key is not None:
            yield palette_key
