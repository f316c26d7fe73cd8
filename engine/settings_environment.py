"""Settings from the environment: which keys it sets, which variable to name in an error, and
what a save must leave as the file had it (README "Settings": environment variables).

``FIREHOSE_CONSOLE_<SECTION>__<KEY>`` sets one key, ``FIREHOSE_CONSOLE_<SECTION>='{…}'`` a whole
table (JSON). Variable names are case-insensitive, as pydantic-settings reads them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

from engine.secrets import SECRET_KEY_PATH
from engine.settings import ENV_NESTED_DELIMITER, ENV_PREFIX

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
