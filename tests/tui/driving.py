"""Driving the console in tests: settings files, the app, waiting for its workers, reading the
screen.

Pilot tests are plain functions that ``asyncio.run`` a scenario, so no async pytest plugin is
needed (pytest-textual-snapshot drives its own event loop the same way).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import re
import uuid
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import tomli_w
from rich.cells import cell_len
from textual.app import App
from textual.message import Message
from textual.notifications import Notify
from textual.pilot import Pilot
from textual.worker import WorkerFailed

from console.app import FirehoseConsoleApp
from console.session_app import DIGEST_INTERVAL_SECONDS
from console.widgets.settings_fields import FieldRow
from engine.settings_file import load_settings

FROZEN_CLOCK = 1234565788.0  # the seed's MembershipChangedTimestamp

M = TypeVar("M", bound=Message)
Scenario = Callable[[FirehoseConsoleApp, Pilot[int]], Awaitable[None]]


def write_settings(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(tomli_w.dumps(document), encoding="utf-8")
    return path


def unique_stream() -> str:
    """A stream of its own: moto's state is process-wide and other tests send too."""
    return f"tui-{uuid.uuid4().hex[:12]}"


def sandbox_settings(tmp_path: Path, **sections: dict[str, Any]) -> Path:
    """A settings file for a sandbox run on a stream no other test uses."""
    document: dict[str, Any] = {
        "connections": {"travel": {"delivery_stream_name": unique_stream()}},
        "delivery": {"state_dir": str(tmp_path / "state")},
    }
    for name, values in sections.items():
        document.setdefault(name, {}).update(values)
    return write_settings(tmp_path / "settings.toml", document)


def make_app(path: Path, **options: Any) -> FirehoseConsoleApp:
    options.setdefault("clock", lambda: FROZEN_CLOCK)
    app = FirehoseConsoleApp(load_settings(path), **options)
    app.animation_level = "none"  # the pilot waits for every animation to end
    return app


def steady_cursor(app: App[Any]) -> None:
    """The focused input's cursor drawn and still, as right after a key: it blinks every half
    second, and a snapshot must not depend on where in that cycle it is taken."""
    from textual.widgets import Input

    if isinstance(app.focused, Input):
        app.focused._pause_blink(visible=True)


def status(app: FirehoseConsoleApp) -> str:
    """The status line at the top, as text (toasts may cover it on screen)."""
    from console.widgets.status_line import StatusLine

    return str(app.query_one(StatusLine).render())


# Every message each app under test received, in order (Textual's message_hook, as Harlequin's
# tests use it): tests assert on what the app was told, not on its private state.
_RECEIVED: weakref.WeakKeyDictionary[App[Any], list[Message]] = weakref.WeakKeyDictionary()


def received(app: App[Any], kind: type[M]) -> list[M]:
    """The messages of type ``kind`` posted in ``app`` so far, oldest first (a bubbling
    message reaches several widgets: it is listed once)."""
    seen: set[int] = set()
    found = []
    for message in _RECEIVED.get(app, []):
        if isinstance(message, kind) and id(message) not in seen:
            seen.add(id(message))
            found.append(message)
    return found


def notifications(app: App[Any]) -> str:
    """Every notification posted so far, title and message, one per line."""
    return "\n".join(
        f"{notify.notification.title}: {notify.notification.message}"
        for notify in received(app, Notify)
    )


def run_scenario(
    app: FirehoseConsoleApp, scenario: Scenario, size: tuple[int, int] = (80, 24)
) -> None:
    messages = _RECEIVED.setdefault(app, [])

    async def main() -> None:
        async with app.run_test(size=size, message_hook=messages.append) as pilot:
            await settle(pilot)
            await scenario(app, pilot)

    asyncio.run(main())


async def settle(pilot: Pilot[Any]) -> None:
    """Wait until no worker runs, the engine's events have reached the screen (one digest
    interval), and every message all that posted has been handled."""
    app = pilot.app
    # The console's first screen leaves work for after its first frame; a test that ran ahead
    # of it would meet it later (under load: the no-settings-file toast in a snapshot).
    for _ in range(200):
        if getattr(app, "first_screen_done", True):
            break
        await pilot.pause(0.02)
    for _ in range(20):
        # A worker that fails is the console's to report (an alert): only wait for it here.
        with contextlib.suppress(WorkerFailed):
            await app.workers.wait_for_complete()
        await asyncio.sleep(1.5 * DIGEST_INTERVAL_SECONDS)  # the pump's next hand-over
        await pilot.pause()
        if not any(worker.is_running for worker in app.workers):
            await pilot.pause()
            if not any(worker.is_running for worker in app.workers):
                return


def field(app: FirehoseConsoleApp, key: str) -> FieldRow:
    return next(row for row in app.query(FieldRow) if row.key == key)


async def open_section(pilot: Pilot[Any], app: FirehoseConsoleApp, key: str) -> None:
    """Open the folded settings section that holds ``key`` (as enter on its title would)."""
    from console.widgets.settings_sections import FormSection

    for section in app.query(FormSection):
        if key == section.key or key.startswith(section.key + "."):
            await section.open()
            await pilot.pause()


async def type_into(pilot: Pilot[Any], app: FirehoseConsoleApp, key: str, text: str) -> None:
    """Replace a text field's value as a person would: focus it, clear it (ctrl+u), then paste
    the new text (one paste instead of a key per character keeps the tests quick)."""
    from textual import events
    from textual.widgets import Input

    await open_section(pilot, app, key)
    row = field(app, key)
    entry = row.query_one(Input)
    row.scroll_visible(animate=False)
    entry.focus()
    await pilot.press("end", "ctrl+u")  # ctrl+u deletes everything left of the cursor
    if text:
        entry.post_message(events.Paste(text))
    # Pasted, validated after the next refresh, its problem line mounted: a few rounds.
    for _ in range(3):
        await pilot.pause()


async def paste(pilot: Pilot[Any], text: str) -> None:
    """Paste ``text`` into the focused widget."""
    from textual import events

    focused = pilot.app.focused
    assert focused is not None
    focused.post_message(events.Paste(text))
    await pilot.pause()


# Rich's SVG export puts each run of text at x = column × (20 px × 0.61) on line N.
_SVG_CHARACTER_WIDTH = 20 * 0.61
_SVG_TEXT = re.compile(r'<text [^>]*?x="([0-9.]+)"[^>]*?-line-(\d+)\)">(.*?)</text>')


def screen_text(app: App[Any]) -> str:
    """Every character the current screen shows (dialogs included), one line per row, read
    from Textual's public screenshot (an SVG)."""
    rows: dict[int, list[tuple[int, str]]] = {}
    for x, line, text in _SVG_TEXT.findall(app.export_screenshot()):
        column = round(float(x) / _SVG_CHARACTER_WIDTH)
        rows.setdefault(int(line), []).append((column, html.unescape(text).replace("\xa0", " ")))
    lines = []
    for number in range(app.size.height):
        shown = ""
        for column, text in sorted(rows.get(number, [])):
            shown += " " * max(0, column - cell_len(shown)) + text
        lines.append(shown.rstrip())
    return "\n".join(lines) + "\n"


async def confirm_send(pilot: Pilot[Any], *, dont_ask_again: bool = False) -> None:
    """Answer the confirmation asked before a delete, a burst or a send to AWS: Send."""
    from console.widgets.send_confirm import ConfirmSendScreen

    assert isinstance(pilot.app.screen, ConfirmSendScreen), pilot.app.screen
    if dont_ask_again:
        await pilot.click("#dont-ask-again")
    await pilot.click("#confirm")
    await pilot.pause()
