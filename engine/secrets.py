"""Which values are secret, where they come from, and how text is kept free of them
(README "Reliability": secrets).

The secret access key can come from the settings file or from the environment, in either of the
environment's forms: its own variable (``FIREHOSE_CONSOLE_ACCOUNT__SECRET_ACCESS_KEY``) or inside
a whole ``[account]`` table given as JSON (``FIREHOSE_CONSOLE_ACCOUNT='{"secret_access_key": …}'``).
Both are environment secrets: masked in every message, never written by a save.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from engine.settings import ENV_NESTED_DELIMITER, ENV_PREFIX

SECRET_KEY_PATH = ("account", "secret_access_key")
SECRET_ENV_VAR = ENV_PREFIX + ENV_NESTED_DELIMITER.join(SECRET_KEY_PATH).upper()
ACCOUNT_ENV_VAR = ENV_PREFIX + SECRET_KEY_PATH[0].upper()
SECRET_MASK = "**********"  # as pydantic shows a SecretStr
# Shorter values are not masked: masking "a" would garble every message without hiding anything.
MIN_SECRET_LENGTH = 4


def _variables_named(wanted: str) -> list[str]:
    """The environment variables called ``wanted`` (pydantic-settings ignores their case)."""
    return [name for name in os.environ if name.upper() == wanted]


def _secret_in_table(text: str) -> str | None:
    """The secret inside an ``[account]`` table given as JSON, if there is one."""
    try:
        table = json.loads(text)
    except (ValueError, RecursionError):
        return None  # not a table pydantic-settings could use either (it reports that)
    if not isinstance(table, dict):
        return None
    for key, value in table.items():
        if str(key).lower() == SECRET_KEY_PATH[1] and isinstance(value, str):
            return value
    return None


def environment_secret_sources() -> dict[str, str]:
    """Each environment variable that supplies a secret, with the secret it supplies."""
    found = {name: os.environ[name] for name in _variables_named(SECRET_ENV_VAR)}
    for name in _variables_named(ACCOUNT_ENV_VAR):
        secret = _secret_in_table(os.environ[name])
        if secret is not None:
            found[name] = secret
    return found


def secret_from_environment() -> bool:
    """Whether the environment supplies the secret access key, in any of its forms (an empty
    one too: it still overrides the file's, and the file's must still be what a save keeps)."""
    return bool(environment_secret_sources())


def document_secret(document: dict[str, Any] | None) -> str:
    """The secret a settings document holds ("" when it holds none, or not as text)."""
    account = (document or {}).get("account")
    if isinstance(account, dict) and isinstance(account.get(SECRET_KEY_PATH[1]), str):
        return str(account[SECRET_KEY_PATH[1]])
    return ""


def known_secrets(document: dict[str, Any] | None = None) -> list[str]:
    """The secret values in play (a document's and the environment's), to keep out of text."""
    found = [*environment_secret_sources().values(), document_secret(document)]
    return maskable(found)


def maskable(secrets: Iterable[str]) -> list[str]:
    """The values long enough to mask."""
    return [secret for secret in secrets if len(secret) >= MIN_SECRET_LENGTH]


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each secret masked."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, SECRET_MASK)
    return text


def readable_by_others(path: Path) -> bool:
    """True when a file (one holding a secret, say) can be read by group or others."""
    try:
        return bool(stat.S_IMODE(path.stat().st_mode) & 0o077)
    except OSError:
        return False
