"""Settings from the environment: which keys it sets, which variable to name in an error, and
what a save must leave as the file had it (README "Settings": environment variables).

``FIREHOSE_CONSOLE_<SECTION>__<KEY>`` sets one key, ``FIREHOSE_CONSOLE_<SECTION>='{…}'`` a whole
table (JSON). Variable names are case-insensitive, as pydantic-settings reads them.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from engine.secrets import SECRET_KEY_PATH
from engine.settings import ENV_NESTED_DELIMITER, ENV_PREFIX, Settings

if TYPE_CHECKING:
    from pydantic_settings import PydanticBaseSettingsSource

KeyPath = tuple[str, ...]


def _is_ours(name: str) -> bool:
    return name.upper().startswith(ENV_PREFIX)


def environment_keys() -> dict[KeyPath, str]:
    """Each settings key (or table) the environment sets, with the variable that sets it."""
    return {
        tuple(name[len(ENV_PREFIX) :].lower().split(ENV_NESTED_DELIMITER)): name
        for name in os.environ
        if _is_ours(name)
    }


class EnvironmentTableError(ValueError):
    """A variable holding a whole table (``FIREHOSE_CONSOLE_<SECTION>``) is not valid JSON; the
    message is pydantic-settings', which names the field."""


def settings_with_environment(values: dict[str, Any]) -> Settings:
    """``Settings`` from a settings document's values, the environment's winning over them.

    pydantic-settings reads the environment, and importing it costs some 40 ms of the console's
    launch (README: "Performance"), so it is imported only when a variable of ours is set.
    Without one the values are validated as it would validate them: top-level keys matched to
    the fields whatever their case. Raises pydantic's ValidationError, or EnvironmentTableError.
    """
    if not environment_keys():
        return Settings(**_by_field_name(values))
    from pydantic_settings import SettingsError

    try:
        read = _environment_settings()(**values)
    except SettingsError as error:
        raise EnvironmentTableError(str(error)) from error
    # A plain Settings, as without the environment (pydantic compares models by class too).
    return Settings.model_construct(_fields_set=read.model_fields_set, **dict(read))


def _by_field_name(values: dict[str, Any]) -> dict[str, Any]:
    """As pydantic-settings passes a model's keyword arguments on: a key naming a field in
    another case names it (the first such key wins, the others are dropped); other keys are
    kept, to be refused as unknown."""
    matched: dict[str, Any] = {}
    others = dict(values)
    for name in Settings.model_fields:
        keys = [key for key in values if isinstance(key, str) and key.lower() == name]
        if keys:
            matched[name] = values[keys[0]]
            for key in keys:
                del others[key]
    return {**matched, **others}


@functools.cache
def _environment_settings() -> type[Settings]:
    """``Settings`` as a pydantic-settings model reading ``FIREHOSE_CONSOLE_…`` variables."""
    from pydantic_settings import BaseSettings, SettingsConfigDict

    class EnvironmentSettings(Settings, BaseSettings):  # type: ignore[misc]
        model_config = SettingsConfigDict(
            env_prefix=ENV_PREFIX,
            env_nested_delimiter=ENV_NESTED_DELIMITER,
            extra="forbid",
            validate_assignment=True,
            hide_input_in_errors=True,
        )

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            # The file's content arrives as init kwargs; the environment wins over it.
            return (env_settings, init_settings)

    return EnvironmentSettings


def printable_name(name: str) -> str:
    """A variable name as it can be printed, bytes that are not UTF-8 shown as escapes."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def undecodable_variables() -> list[str]:
    """Our variables whose name or value is not UTF-8 text (printable names)."""
    found = []
    for name, value in os.environ.items():
        if not _is_ours(name):
            continue
        try:
            name.encode("utf-8")
            value.encode("utf-8")
        except UnicodeEncodeError:  # os.environ keeps undecodable bytes as lone surrogates
            found.append(printable_name(name))
    return found


def too_deep_variables() -> list[str]:
    """Our variables holding JSON nested too deeply to read (the reader's recursion limit)."""
    found = []
    for name, value in os.environ.items():
        if not _is_ours(name):
            continue
        try:
            json.loads(value)
        except RecursionError:
            found.append(name)
        except ValueError:
            pass  # not JSON: a plain value, or a table pydantic-settings reports as not JSON
    return found


def variable_setting(loc: Sequence[str | int]) -> str | None:
    """The variable that set the key at ``loc`` or a table holding it (the closest), if any."""
    path = tuple(str(part).lower() for part in loc)
    keys = environment_keys()
    for length in range(len(path), 0, -1):
        if path[:length] in keys:
            return keys[path[:length]]
    return None


def variables_inside(loc: Sequence[str | int]) -> list[str]:
    """The variables that set keys inside the table at ``loc`` (for an error about the table)."""
    path = tuple(str(part).lower() for part in loc)
    return sorted(
        name
        for key, name in environment_keys().items()
        if len(key) > len(path) and key[: len(path)] == path
    )


def _leaves(value: Any, path: KeyPath) -> Iterator[tuple[KeyPath, Any]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _leaves(inner, (*path, str(key)))
    else:
        yield path, value


_MISSING = object()


def _at(document: Any, path: KeyPath) -> Any:
    for part in path:
        if not isinstance(document, dict) or part not in document:
            return _MISSING
        document = document[part]
    return document


def environment_values(document: dict[str, Any]) -> dict[KeyPath, Any]:
    """The values at the keys the environment set, as ``document`` (the loaded settings) holds
    them, leaf by leaf; the secret is left out (it has a rule of its own)."""
    found: dict[KeyPath, Any] = {}
    for path in environment_keys():
        value = _at(document, path)
        if value is _MISSING:
            continue
        for leaf, leaf_value in _leaves(value, path):
            if leaf[: len(SECRET_KEY_PATH)] != SECRET_KEY_PATH:
                found[leaf] = leaf_value
    return found


def keep_file_values(
    document: dict[str, Any], file_document: dict[str, Any], from_environment: dict[KeyPath, Any]
) -> None:
    """In ``document`` (about to be saved), put back the file's own value (or no value, if the
    file had none) wherever a key still holds what the environment gave it. A key changed since
    (an edit in the console) keeps the change."""
    for path, environment_value in from_environment.items():
        if _at(document, path) != environment_value:
            continue
        own = _at(file_document, path)
        if own is not _MISSING:
            _parent(document, path)[path[-1]] = own
            continue
        _parent(document, path).pop(path[-1], None)
        _prune_empty_tables(document, file_document, path[:-1])


def _parent(document: dict[str, Any], path: KeyPath) -> dict[str, Any]:
    parent = _at(document, path[:-1])
    assert isinstance(parent, dict)  # the leaf was found under it
    return parent


def _prune_empty_tables(
    document: dict[str, Any], file_document: dict[str, Any], path: KeyPath
) -> None:
    """Remove tables left empty that the file did not have (say, a connection the environment
    defined): an empty table would not load."""
    while path and _at(document, path) == {} and _at(file_document, path) is _MISSING:
        _parent(document, path).pop(path[-1])
        path = path[:-1]
