"""Reading and writing the settings file: clear errors on load, atomic saves that lose nothing."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import BaseModel, SecretStr, ValidationError

from engine.settings import ENV_NESTED_DELIMITER, ENV_PREFIX, ConnectionSettings, Settings

SECRET_KEY_PATH = ("account", "secret_access_key")
SECRET_ENV_VAR = ENV_PREFIX + ENV_NESTED_DELIMITER.join(SECRET_KEY_PATH).upper()


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


def _environment_name(loc: Sequence[str | int]) -> str:
    return ENV_PREFIX + ENV_NESTED_DELIMITER.join(str(part) for part in loc).upper()


def _environment_sets(loc: Sequence[str | int]) -> str | None:
    """The environment variable that supplied this key, if one did (names are case-insensitive)."""
    wanted = _environment_name(loc)
    for name in os.environ:
        if name.upper() == wanted:
            return name
    return None


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


def _problem_from_error(error: Any, source: str) -> SettingsProblem:
    loc = tuple(error["loc"])
    key = ".".join(str(part) for part in loc)
    env_name = _environment_sets(loc) if loc else None
    where = f"environment variable {env_name}" if env_name else source
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
    message = error["msg"]
    if loc[:2] != SECRET_KEY_PATH and "input" in error and kind in _TYPE_FIXES:
        message = f"{message}, got {error['input']!r}"
    return SettingsProblem(where, key, message.rstrip("."), fix)


def settings_from_document(document: dict[str, Any], source: str) -> Settings:
    """Validate a settings document (plus the environment); SettingsError names each problem."""
    try:
        return Settings(**document)
    except ValidationError as error:
        problems = [_problem_from_error(e, source) for e in error.errors()]
        raise SettingsError(problems) from None


def read_document(path: Path) -> dict[str, Any]:
    """Parse the TOML file, or raise SettingsError naming the line that is wrong."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(
            [
                SettingsProblem(
                    str(path),
                    "",
                    f"not valid TOML ({error})",
                    "correct the syntax there; the file was left as it is",
                )
            ]
        ) from None
    except OSError as error:
        raise SettingsError(
            [SettingsProblem(str(path), "", f"cannot be read ({error.strerror})", "check the path")]
        ) from None


def load_settings(path: Path) -> LoadedSettings:
    """Load settings from ``path``; a missing file gives the defaults (the seed's example)."""
    if path.exists():
        document = read_document(path)
        mtime: int | None = path.stat().st_mtime_ns
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
    file_secret = str(document.get("account", {}).get("secret_access_key", "") or "")
    return LoadedSettings(
        settings=settings,
        path=path,
        exists=mtime is not None,
        secret_from_environment=_environment_sets(SECRET_KEY_PATH) is not None,
        file_secret=SecretStr(file_secret),
        loaded_mtime_ns=mtime,
    )


def render_settings(settings: Settings, loaded: LoadedSettings) -> str:
    """The TOML text a save writes; a secret from the environment is replaced by the file's own."""
    secret = (
        loaded.file_secret.get_secret_value()
        if loaded.secret_from_environment
        else settings.account.secret_access_key.get_secret_value()
    )
    return tomli_w.dumps(settings.to_document(secret=secret))


def write_atomically(path: Path, text: str, *, private: bool) -> None:
    """Write ``text`` to ``path`` so a reader sees the old file or the new one, never a mix.

    The previous file is kept beside it as ``PATH.bak``. ``private`` gives mode 0600.
    """
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = 0o600 if private else 0o644
    if path.exists() and not private:
        mode = stat.S_IMODE(path.stat().st_mode)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        if path.exists():
            backup = path.with_name(path.name + ".bak")
            shutil.copy2(path, backup)
            if private:
                os.chmod(backup, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def save_settings(
    settings: Settings, loaded: LoadedSettings, *, force: bool = False
) -> LoadedSettings:
    """Save ``settings`` over ``loaded.path`` atomically; returns what is now on disk.

    Refuses (SettingsError) to overwrite a malformed file, and (SettingsChangedOnDisk) a file
    changed since it was loaded unless ``force``.
    """
    path = loaded.path
    if path.exists():
        read_document(path)  # a malformed file is never overwritten
        if not force and path.stat().st_mtime_ns != loaded.loaded_mtime_ns:
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
    written_secret = tomllib.loads(text)["account"]["secret_access_key"]
    write_atomically(path, text, private=bool(written_secret))
    return LoadedSettings(
        settings=settings,
        path=path,
        exists=True,
        secret_from_environment=loaded.secret_from_environment,
        file_secret=SecretStr(written_secret),
        loaded_mtime_ns=path.stat().st_mtime_ns,
    )


def readable_by_others(path: Path) -> bool:
    """True when a file holding a secret can be read by group or others."""
    return path.exists() and bool(stat.S_IMODE(path.stat().st_mode) & 0o077)
