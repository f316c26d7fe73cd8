"""Renders the commented ``settings.example.toml`` from the settings models themselves.

The models are the one source of truth: every key, its default and its description come from
``engine.settings``; ``firehose-console init`` writes this text, and a test keeps the checked-in
``settings.example.toml`` equal to it.
"""

from __future__ import annotations

import textwrap
from typing import Any

import tomli_w
from pydantic import BaseModel, SecretStr

from engine.identities import IDENTITIES
from engine.settings import AudienceSettings, ConnectionSettings, Settings

_HEADER = """\
# firehose-console settings. Every key is shown with its default or an example value.
# Environment variables override this file: FIREHOSE_CONSOLE_<SECTION>__<KEY>, for example
# FIREHOSE_CONSOLE_ACCOUNT__SECRET_ACCESS_KEY or FIREHOSE_CONSOLE_CONNECTIONS__TRAVEL__REGION.
# A secret that came from the environment is never written back into this file.
"""


def _comment(text: str) -> str:
    return "\n".join("# " + line for line in textwrap.wrap(text, 96)) + "\n"


def _value(value: Any) -> str:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {_value(item)}" for key, item in value.items()) + " }"
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
    identity_keys = ", ".join(identity.json_key for identity in IDENTITIES)
    parts = [
        _HEADER,
        "\n",
        _comment(Settings.model_fields["active_connection"].description or ""),
        '# active_connection = "travel"\n',
        _comment(Settings.model_fields["target"].description or ""),
        f"target = {_value(defaults.target)}\n",
        _section("account", defaults.account, "the IAM user"),
        _section(
            f"connections.{name}",
            connection,
            "one table per connection; the first is active unless chosen",
        ),
        _section("audience", defaults.audience, "the test audience used by preview and send"),
        "\n" + _comment(Settings.model_fields["audiences"].description or ""),
        _commented(_section("audiences.churn_risk", _EXAMPLE_AUDIENCE, "a named audience")),
        _section("operator", defaults.operator, "who reads the destination; never sends"),
        "\n" + _comment("Identity keys: " + identity_keys + "."),
        _section("test_user", defaults.test_user, "the test user"),
        _section("delivery", defaults.delivery, "attempts, backoff, timeouts, delimiter"),
        _section("sandbox", defaults.sandbox, "chaos for the embedded sandbox only"),
    ]
    return "".join(parts)
