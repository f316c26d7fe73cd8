"""Reading and writing the settings file: clear errors on load, atomic saves that lose nothing.

Its neighbours do the rest: ``engine.secrets`` (which values are secret, masking),
``engine.settings_environment`` (what the environment set) and ``engine.atomic_files`` (how a
file is replaced). The names other modules imported from here still work.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from engine.atomic_files import (
    STALE_TEMPORARY_SECONDS,
    replace_atomically,
    temporary_leftovers,
)
from engine.secrets import (
    SECRET_ENV_VAR,
    SECRET_KEY_PATH,
    SECRET_MASK,
    document_secret,
    known_secrets,
    maskable,
    readable_by_others,
    redact,
    secret_from_environment,
)
from engine.settings import ENV_NESTED_DELIMITER, ENV_PREFIX, ConnectionSettings, Settings
from engine.settings_environment import (
    EnvironmentTableError,
    KeyPath,
    environment_values,
    keep_file_values,
    settings_with_environment,
    too_deep_variables,
    undecodable_variables,
    variable_setting,
    variables_inside,
)
from engine.settings_template import render_settings_document

# Names other modules import from here; they live with their own job now.
__all__ = [
    "SECRET_ENV_VAR",
    "SECRET_KEY_PATH",
    "SECRET_MASK",
    "STALE_TEMPORARY_SECONDS",
    "LoadedSettings",
    "SettingsChangedOnDisk",
    "SettingsError",
    "SettingsProblem",
    "known_secrets",
    "load_settings",
    "permission_warning",
    "readable_by_others",
    "redact",
    "render_settings",
    "save_settings",
    "secrets_of",
    "settings_from_document",
    "temporary_leftovers",
    "write_atomically",
]


@dataclass(frozen=True)
class SettingsProblem:
    """One thing wrong with the settings: where, what, and how to fix it."""

    source: str
    key: str
    problem: str
    fix: str

    def __str__(self) -> str:
        where = f"{self.source}: {self.key}" if self.key else self.source
        return f"{where}: {self.problem}. Fix: {self.fix}."


class SettingsError(Exception):
    """Settings that cannot be used; ``problems`` says each thing wrong and its fix."""

    def __init__(self, problems: Sequence[SettingsProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class SettingsChangedOnDisk(SettingsError):
    """The file changed on disk after it was loaded; saving would overwrite someone's edit."""


@dataclass(frozen=True)
class LoadedSettings:
    """Settings together with where they came from, as saving needs to know."""

    settings: Settings
    path: Path
    exists: bool
    secret_from_environment: bool
    file_secret: SecretStr
    loaded_mtime_ns: int | None
    loaded_digest: str | None = None  # SHA-256 of the bytes loaded: catches same-mtime edits
    # The file's own document (its secret taken out: that is ``file_secret``) and the values the
    # environment gave, key by key: a save puts the file's own back where the environment's are.
    file_document: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    environment_values: dict[KeyPath, Any] = field(default_factory=dict, repr=False, compare=False)


def _model_at(loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The settings model a key path points into (for listing its known keys)."""
    model: type[BaseModel] = Settings
    parts = [str(part) for part in loc]
    while parts:
        part = parts.pop(0)
        if model is Settings and part == "connections":
            if not parts:
                return None
            parts.pop(0)  # the connection's name
            model = ConnectionSettings
            continue
        field = model.model_fields.get(part)
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


_TYPE_FIXES = {
    "int_parsing": "write a whole number, e.g. 5",
    "int_type": "write a whole number, e.g. 5",
    "int_from_float": "write a whole number, e.g. 5",
    "float_parsing": "write a number, e.g. 0.5",
    "float_type": "write a number, e.g. 0.5",
    "bool_parsing": "write true or false, without quotes",
    "bool_type": "write true or false, without quotes",
    "string_type": 'write text in quotes, e.g. "value"',
    "list_type": 'write a list, e.g. ["a", "b"]',
    "dict_type": 'make it a table: [name] or { key = "value" }',
    "model_type": "make it a table: [name]",
    "model_attributes_type": "make it a table: [name]",
}


_RANGE_FIXES = {
    "less_than_equal": "use a number at most",
    "less_than": "use a number below",
    "greater_than_equal": "use a number of at least",
    "greater_than": "use a number above",
}


def _echoable(loc: tuple[Any, ...], value: Any) -> bool:
    """Whether a wrong value may be quoted back: a scalar, not at (or above) the secret."""
    if loc == SECRET_KEY_PATH[: len(loc)]:
        return False
    return isinstance(value, str | int | float | bool)


def _where(loc: tuple[Any, ...], source: str) -> str:
    """Who to blame for a problem at ``loc``: the environment variable that set it, or the
    file (and the variables that set keys inside the table at ``loc``)."""
    variable = variable_setting(loc) if loc else None
    if variable:
        return f"environment variable {variable}"
    inside = variables_inside(loc) if loc else []
    if inside:
        return f"{source} with environment variable " + ", ".join(inside)
    return source


def _problem_from_error(error: Any, source: str) -> SettingsProblem:
    loc = tuple(error["loc"])
    key = ".".join(str(part) for part in loc)
    where = _where(loc, source)
    kind = error["type"]
    if kind == "settings_problem":
        return SettingsProblem(where, key, error["msg"], error["ctx"]["fix"])
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        known = ", ".join(model.model_fields) if model else ""
        fix = (
            f"remove it or correct its spelling (known keys here: {known})"
            if known
            else ("remove it or correct its spelling")
        )
        return SettingsProblem(where, key, "unknown key", fix)
    if kind == "missing":
        return SettingsProblem(where, key, "this key is required", f"add {loc[-1]} = …")
    fix = _TYPE_FIXES.get(kind, "see settings.example.toml for the expected form")
    if kind in _RANGE_FIXES:
        fix = _RANGE_FIXES[kind] + " " + ", ".join(str(v) for v in error.get("ctx", {}).values())
    message = error["msg"]
    if "input" in error and kind in _TYPE_FIXES and _echoable(loc, error["input"]):
        message = f"{message}, got {error['input']!r}"
    return SettingsProblem(where, key, message.rstrip("."), fix)


def secrets_of(loaded: LoadedSettings | None) -> list[str]:
    """Every secret value a front may hold: the environment's, the settings' and the file's."""
    found = known_secrets()
    if loaded is not None:
        for secret in (loaded.settings.account.secret_access_key, loaded.file_secret):
            found.append(secret.get_secret_value())
    return maskable(found)


def _redacted(problem: SettingsProblem, secrets: list[str]) -> SettingsProblem:
    return SettingsProblem(
        redact(problem.source, secrets),
        redact(problem.key, secrets),
        redact(problem.problem, secrets),
        redact(problem.fix, secrets),
    )


def _source_problem(error: EnvironmentTableError) -> SettingsProblem:
    """pydantic-settings could not parse an environment variable holding a whole table."""
    found = re.search(r'field "([^"]+)"', str(error))
    field = found.group(1) if found else ""
    name = variable_setting((field,)) or ENV_PREFIX + (field.upper() or "…")
    return SettingsProblem(
        f"environment variable {name}",
        field,
        "not valid JSON for a table",
        f"write it as JSON, or set one key per variable ({name}{ENV_NESTED_DELIMITER}KEY)",
    )


def _undecodable_problems() -> list[SettingsProblem]:
    return [
        SettingsProblem(
            f"environment variable {name}",
            "",
            "not UTF-8 text",
            "set it again as UTF-8 text, or unset it",
        )
        for name in undecodable_variables()
    ]


def _too_deep(source: str) -> SettingsProblem:
    return SettingsProblem(
        source,
        "",
        "nested too deeply to read (tables or lists inside each other hundreds of times)",
        "flatten it: no settings key needs more than a few levels",
    )


def settings_from_document(document: dict[str, Any], source: str) -> Settings:
    """Validate a settings document (plus the environment); SettingsError names each problem.

    No problem quotes a secret: values at the secret's key are never echoed, and the secret's
    text (the file's, or the environment's in either form) is masked wherever a wrong value is
    quoted. A problem caused by an environment variable names that variable.
    """
    problems = _undecodable_problems()
    if problems:  # nothing else can be trusted to print: stop at the variable to fix
        raise SettingsError(problems)
    # Keys starting with "_" would reach pydantic-settings as its own init options
    # (_env_file, _cli_parse_args, …) instead of being refused as unknown.
    reserved = [key for key in document if key.startswith("_")]
    known = ", ".join(Settings.model_fields)
    problems = [
        SettingsProblem(source, key, "unknown key", f"remove it (known keys here: {known})")
        for key in reserved
    ]
    try:
        settings = settings_with_environment(
            {k: v for k, v in document.items() if k not in reserved}
        )
    except ValidationError as error:
        problems += [_problem_from_error(e, source) for e in error.errors()]
    except EnvironmentTableError as error:
        problems.append(_source_problem(error))
    except RecursionError:  # a value nested deeper than the validators can walk
        variables = too_deep_variables()
        sources = [f"environment variable {name}" for name in variables] or [source]
        problems += [_too_deep(where) for where in sources]
    if problems:
        secrets = known_secrets(document)
        raise SettingsError([_redacted(problem, secrets) for problem in problems])
    return settings


def _unusable(path: Path, problem: str, fix: str) -> SettingsError:
    return SettingsError([SettingsProblem(str(path), "", problem, fix)])


_NOT_A_FILE = {
    stat.S_IFDIR: ("a directory", "name the settings file itself, e.g. DIR/settings.toml"),
    stat.S_IFIFO: ("a named pipe (FIFO)", "name a regular settings file"),
    stat.S_IFCHR: ("a device", "name a regular settings file"),
    stat.S_IFBLK: ("a device", "name a regular settings file"),
    stat.S_IFSOCK: ("a socket", "name a regular settings file"),
}


def _check_regular_file(path: Path, mode: int) -> None:
    if not stat.S_ISREG(mode):
        what, fix = _NOT_A_FILE.get(stat.S_IFMT(mode), ("not a regular file", "name a file"))
        raise _unusable(path, f"is {what}, not a settings file", fix)


def settings_file_exists(path: Path) -> bool:
    """Whether ``path`` is a settings file; False only when nothing is there at all.

    Anything else that is not a readable regular file raises SettingsError naming what it is,
    at once (a FIFO is never opened, so it cannot hang): a dangling symlink, a symlink loop, a
    directory, a device, a path whose directory cannot be entered.
    """
    try:
        link = os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError as error:
        raise _unusable(
            path, f"cannot be reached ({error.strerror})", "check the path and its directories"
        ) from None
    try:
        target = os.stat(path)
    except OSError as error:
        fix = "point the link at a settings file, or name the file itself with --settings"
        if error.errno == errno.ELOOP:
            raise _unusable(path, "is a symbolic link loop", fix) from None
        if stat.S_ISLNK(link.st_mode) and error.errno == errno.ENOENT:
            pointee = os.readlink(path)
            raise _unusable(
                path, f"is a symbolic link to {pointee}, which does not exist", fix
            ) from None
        raise _unusable(path, f"cannot be reached ({error.strerror})", "check the path") from None
    _check_regular_file(path, target.st_mode)
    return True


def _read_bytes(path: Path) -> tuple[bytes, int]:
    """The file's bytes and the mtime they go with (taken first: a later edit shows as newer)."""
    try:
        # O_NONBLOCK: should the path have become a FIFO since it was checked, open returns
        # at once instead of waiting for a writer; fstat then refuses it.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        raise _unusable(
            path, f"cannot be read ({error.strerror})", "make it readable (chmod u+r)"
        ) from None
    try:
        status = os.fstat(descriptor)
        _check_regular_file(path, status.st_mode)
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            return handle.read(), status.st_mtime_ns
    except OSError as error:
        raise _unusable(path, f"cannot be read ({error.strerror})", "check the file") from None
    finally:
        os.close(descriptor)


def _parse(raw: bytes, path: Path) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _unusable(
            path,
            f"not UTF-8 text (byte {error.start})",
            "save it as UTF-8; the file was left as it is",
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise _unusable(
            path,
            f"not valid TOML ({error})",
            "correct the syntax there; the file was left as it is",
        ) from None
    except RecursionError:
        raise SettingsError([_too_deep(str(path))]) from None


def _digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _without_secret(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``document`` with no secret in it (kept apart, as a SecretStr)."""
    account = document.get("account")
    if not (isinstance(account, dict) and SECRET_KEY_PATH[1] in account):
        return dict(document)
    return {
        **document,
        "account": {k: v for k, v in account.items() if k != SECRET_KEY_PATH[1]},
    }


def load_settings(path: Path) -> LoadedSettings:
    """Load settings from ``path``; a missing file gives the defaults (the seed's example).

    Anything at ``path`` that is not a readable settings file raises SettingsError (see
    ``settings_file_exists``), as does every problem in the file or the environment.
    """
    digest: str | None = None
    if settings_file_exists(path):
        raw, loaded_mtime = _read_bytes(path)
        document = _parse(raw, path)
        mtime: int | None = loaded_mtime
        digest = _digest(raw)
        connections_from_env = any(
            name.upper().startswith(ENV_PREFIX + "CONNECTIONS") for name in os.environ
        )
        if not document.get("connections") and not connections_from_env:
            # The built-in example connection only stands in when there is no file at all.
            raise SettingsError(
                [
                    SettingsProblem(
                        str(path),
                        "connections",
                        "no connection is defined",
                        'add a table like [connections.travel] with delivery_stream_name = "…"',
                    )
                ]
            )
    else:
        document, mtime = {}, None
    settings = settings_from_document(document, str(path))
    return LoadedSettings(
        settings=settings,
        path=path,
        exists=mtime is not None,
        secret_from_environment=secret_from_environment(),
        file_secret=SecretStr(document_secret(document)),
        loaded_mtime_ns=mtime,
        loaded_digest=digest,
        file_document=_without_secret(document),
        environment_values=environment_values(settings.to_document(secret="")),
    )


def render_settings(settings: Settings, loaded: LoadedSettings) -> str:
    """The TOML text a save writes, each key under its description. Nothing the environment
    supplied is written: a secret from the environment is replaced by the file's own, and every
    other key still holding the environment's value keeps the file's own value (or stays out,
    if the file had none)."""
    secret = (
        loaded.file_secret.get_secret_value()
        if loaded.secret_from_environment
        else settings.account.secret_access_key.get_secret_value()
    )
    document = settings.to_document(secret=secret)
    keep_file_values(document, loaded.file_document, loaded.environment_values)
    document.setdefault("account", {})[SECRET_KEY_PATH[1]] = secret
    # Commented as `init` wrote it: a save keeps the file documented (README: "Settings").
    return render_settings_document(document)


def write_atomically(path: Path, text: str, *, private: bool) -> None:
    """Write ``text`` to ``path`` so a reader sees the old file or the new one, never a mix,
    even if the process is killed mid-save (see ``engine.atomic_files``).

    The previous file is kept beside it as ``PATH.bak`` (itself replaced atomically).
    ``private`` gives mode 0600 to both; otherwise an existing file keeps its mode. A killed
    save can leave a ``.PATH.firehose-console-tmp-XXXXXXXX`` file (mode 0600) that nothing
    reads; a later save removes it.
    """
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = 0o600 if private else 0o644
    if path.exists() and not private:
        mode = stat.S_IMODE(path.stat().st_mode)
    replace_atomically(path, text, mode, keep_backup=True)


def save_settings(
    settings: Settings, loaded: LoadedSettings, *, force: bool = False
) -> LoadedSettings:
    """Save ``settings`` over ``loaded.path`` atomically; returns what is now on disk.

    Refuses (SettingsError) to overwrite a malformed file, and (SettingsChangedOnDisk) a file
    changed since it was loaded unless ``force``.
    """
    path = loaded.path
    if settings_file_exists(path):
        raw, mtime = _read_bytes(path)
        _parse(raw, path)  # a malformed file is never overwritten
        changed = mtime != loaded.loaded_mtime_ns or (
            loaded.loaded_digest is not None and _digest(raw) != loaded.loaded_digest
        )
        if not force and changed:
            raise SettingsChangedOnDisk(
                [
                    SettingsProblem(
                        str(path),
                        "",
                        "the file changed on disk since it was loaded",
                        "reload it, or save again to overwrite it",
                    )
                ]
            )
    text = render_settings(settings, loaded)
    written = tomllib.loads(text)
    written_secret = document_secret(written)
    write_atomically(path, text, private=bool(written_secret))
    return LoadedSettings(
        settings=settings,
        path=path,
        exists=True,
        secret_from_environment=loaded.secret_from_environment,
        file_secret=SecretStr(written_secret),
        loaded_mtime_ns=path.stat().st_mtime_ns,
        loaded_digest=_digest(text.encode("utf-8")),
        file_document=_without_secret(written),
        environment_values=loaded.environment_values,
    )


def permission_warning(loaded: LoadedSettings) -> str | None:
    """One line for the fronts when the loaded file holds a secret that group or others can
    read (with the fix); None when all is well."""
    if not (loaded.exists and loaded.file_secret.get_secret_value()):
        return None
    if not readable_by_others(loaded.path):
        return None
    return (
        f"warning: {loaded.path} holds a secret and is readable by group or others; "
        f"fix: chmod 600 {loaded.path}"
    )
