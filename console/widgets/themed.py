"""Rich Text in the theme's colours, for widgets that take Rich renderables (DataTable, RichLog).

Plain strings in a DataTable are parsed as markup; data from the wire must never be, so every
cell goes through ``themed``.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget


def themed(widget: Widget, text: str, variable: str = "", *, bold: bool = False) -> Text:
    """``text`` in the colour of the theme variable ``variable`` (e.g. "text-success")."""
    if variable == "text-muted":
        return Text(text, style="dim" + (" bold" if bold else ""))  # "auto 60%": not a colour
    color = widget.app.theme_variables.get(variable, "") if variable else ""
    parts = [color if color.startswith("#") else "", "bold" if bold else ""]
    return Text(text, style=" ".join(part for part in parts if part))
