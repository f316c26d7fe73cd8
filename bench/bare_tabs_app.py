"""The baseline for the console's speed: a bare Textual app with six tabs of plain text and a
footer, f1–f6 switching tabs as in the console. ``bench/console_speed.py`` runs it in tmux next
to the console, with the same harness, and prints the console's figures as ratios to it.

    python bench/bare_tabs_app.py
"""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Static, TabbedContent, TabPane

TABS = ("Settings", "Preview", "Send", "Alerts", "Verify", "Delivered")


def tab_text(title: str) -> str:
    """The plain text of one tab: a marker line the harness waits for, then filler."""
    lines = [f"{title} tab content"]
    lines += [f"{title}: line {number} of plain text" for number in range(1, 19)]
    return "\n".join(lines)


class BareTabsApp(App[None]):
    BINDINGS = [
        Binding(f"f{number}", f"show_tab('{title.lower()}')", title, show=False)
        for number, title in enumerate(TABS, start=1)
    ]

    def compose(self) -> ComposeResult:
        with TabbedContent(initial=TABS[0].lower()):
            for title in TABS:
                with TabPane(title, id=title.lower()):
                    yield Static(tab_text(title))
        yield Footer()

    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab


if __name__ == "__main__":
    BareTabsApp().run()
