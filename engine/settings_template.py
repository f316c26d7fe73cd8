"""Renders settings files with their comments, from the settings models themselves.

The models are the one source of truth: every key, its default and its description come from
``engine.settings``. ``firehose-console init`` writes the example (a test keeps the checked-in
``settings.example.toml`` equal to it), and every save renders the document it writes with the
same comments (README: "Settings"), so a file stays documented however often it is saved.
"""

from __future__ import annotations

import re
import textwrap
import tomllib
from collections.abc import Mapping
from typing import Any

import tomli_w
from pydantic import BaseModel, SecretStr

from engine.identities import IDENTITIES
from engine.settings import AudienceSettings, ConnectionSettings, Settings

# Each top-level table's note, written beside its header in the example and in saved files.
SECTION_NOTES = {
    "account": "the IAM user",
    "connections": "one table per connection; the first is active unless chosen",
    "audience": "the test audience used by preview and send",
    "audiences": "a named audience",
    "operator": "who reads the destination; never sends",
    "test_user": "the test user",
    "delivery": "attempts, backoff, timeouts, delimiter",
    "sandbox": "chaos for the embedded sandbox only",
}

_HEADER = """\
# firehose-console settings. Every key is shown with its default or an example value.
# Environment variables override this file: FIREHOSE_CONSOLE_<SECTION>__<KEY>, for example
# FIREHOSE_CONSOLE_ACCOUNT__SECRET_ACCESS_KEY or FIREHOSE_CONSOLE_CONNECTIONS__TRAVEL__REGION.
# A secret that came from the environment is never written back into this file.
"""


def _comment(text: str) -> str:
    return "\n".join("# " + line for line in textwrap.wrap(text, 96)) + "\n"


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _key(key: str) -> str:
    """A TOML key: bare when it can be, quoted otherwise."""
    if _BARE_KEY.fullmatch(key):
        return key
    return tomli_w.dumps({key: 0}).rsplit("=", 1)[0].strip()


def _value(value: Any) -> str:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, dict):
        if not value:
            return "{}"
        return (
            "{ " + ", ".join(f"{_key(key)} = {_value(item)}" for key, item in value.items()) + " }"
        )
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    # tomli_w renders one scalar when given a one-key table.
    return tomli_w.dumps({"v": value}).split("=", 1)[1].strip()


def _section(title: str, model: BaseModel, doc: str | None = None) -> str:
    lines = [f"\n[{title}]" + (f"  # {doc}" if doc else "") + "\n"]
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if value is None:
            lines.append(_comment(field.description or ""))
            lines.append(f"# {name} = 42\n")
            continue
        lines.append(_comment(field.description or ""))
        lines.append(f"{name} = {_value(value)}\n")
    return "".join(lines)


_EXAMPLE_AUDIENCE = AudienceSettings(
    id=456456, internal_name="churn_risk", external_name="ChurnRisk"
)


def _commented(text: str) -> str:
    """``text`` with its settings lines commented out (an example, not a default)."""
    return "".join(
        line if not line.strip() or line.startswith("#") else "# " + line
        for line in text.splitlines(keepends=True)
    )


def render_example_settings() -> str:
    """The commented example settings file (the seed's example connection, audience and user)."""
    defaults = Settings.model_construct(
        **{
            name: field.get_default(call_default_factory=True)
            for name, field in Settings.model_fields.items()
        }
    )
    name, connection = next(iter(defaults.connections.items()))
    assert isinstance(connection, ConnectionSettings)
    parts = [
        _HEADER,
        "\n",
        _comment(Settings.model_fields["active_connection"].description or ""),
        '# active_connection = "travel"\n',
        _comment(Settings.model_fields["target"].description or ""),
        f"target = {_value(defaults.target)}\n",
        _section("account", defaults.account, SECTION_NOTES["account"]),
        _section(f"connections.{name}", connection, SECTION_NOTES["connections"]),
        _section("audience", defaults.audience, SECTION_NOTES["audience"]),
        "\n" + _comment(Settings.model_fields["audiences"].description or ""),
        _commented(_section("audiences.churn_risk", _EXAMPLE_AUDIENCE, SECTION_NOTES["audiences"])),
        _section("operator", defaults.operator, SECTION_NOTES["operator"]),
        "\n" + _comment(_identity_keys_note()),
        _section("test_user", defaults.test_user, SECTION_NOTES["test_user"]),
        _section("delivery", defaults.delivery, SECTION_NOTES["delivery"]),
        _section("sandbox", defaults.sandbox, SECTION_NOTES["sandbox"]),
    ]
    return "".join(parts)


def _identity_keys_note() -> str:
    return "Identity keys: " + ", ".join(identity.json_key for identity in IDENTITIES) + "."


_SAVED_HEADER = """\
# firehose-console settings, written by a save. Each key's comment says what it does; keys left
# out take their defaults (settings.example.toml, or `firehose-console init`, lists them all).
# Environment variables override this file: FIREHOSE_CONSOLE_<SECTION>__<KEY>, for example
# FIREHOSE_CONSOLE_ACCOUNT__SECRET_ACCESS_KEY or FIREHOSE_CONSOLE_CONNECTIONS__TRAVEL__REGION.
# A secret that came from the environment is never written back into this file.
"""


def _table(title: str, model: type[BaseModel], values: Mapping[str, Any], note: str) -> str:
    """One ``[title]`` table: the model's keys in the model's order, each under its
    description; a key the model does not know (none, once validated) is kept, uncommented."""
    lines = [f"\n[{title}]" + (f"  # {note}" if note else "") + "\n"]
    for name, field in model.model_fields.items():
        if name in values:
            lines.append(_comment(field.description or ""))
            lines.append(f"{_key(name)} = {_value(values[name])}\n")
    lines += [
        f"{_key(k)} = {_value(v)}\n" for k, v in values.items() if k not in model.model_fields
    ]
    return "".join(lines)


def _model_of(name: str) -> type[BaseModel] | None:
    annotation = Settings.model_fields[name].annotation
    return (
        annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    )


def _documented(document: Mapping[str, Any]) -> str:
    parts = [_SAVED_HEADER]
    # The top-level keys (active_connection, target) first: TOML wants them before any table.
    for name, field in Settings.model_fields.items():
        if name in document and not isinstance(document[name], dict):
            parts += ["\n", _comment(field.description or "")]
            parts.append(f"{name} = {_value(document[name])}\n")
    for name in Settings.model_fields:
        value = document.get(name)
        if not isinstance(value, dict):
            continue
        if name in ("connections", "audiences"):
            item_model = ConnectionSettings if name == "connections" else AudienceSettings
            if name == "audiences":
                parts.append("\n" + _comment(Settings.model_fields[name].description or ""))
            for item_name, item in value.items():
                note = SECTION_NOTES[name]
                parts.append(_table(f"{name}.{_key(item_name)}", item_model, item, note))
            continue
        model = _model_of(name)
        if model is None:
            continue
        if name == "test_user":
            parts.append("\n" + _comment(_identity_keys_note()))
        parts.append(_table(name, model, value, SECTION_NOTES.get(name, "")))
    return "".join(parts)


def render_settings_document(document: Mapping[str, Any]) -> str:
    """The TOML text of a settings ``document``, each key under its model's description as a
    comment (as ``settings.example.toml`` has them), keys and identities in the document's own
    order. Should the commented text not read back as exactly ``document`` (a key no model
    knows, say), the plain TOML is returned instead: a save never loses a value for a comment.
    """
    text = _documented(document)
    try:
        if tomllib.loads(text) == document:
            return text
    except tomllib.TOMLDecodeError:
        pass
    return tomli_w.dumps(dict(document))
