"""Reading and writing the settings file: clear errors on load, atomic saves that lose nothing."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import tempfile
import time
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_settings import SettingsError as SourceError

from engine.atomic_files import write_temporary
from engine.settings import ENV_NESTED_DELIMITER, ENV_PREFIX, ConnectionSettings, Settings

SECRET_KEY_PATH = ("account", "secret_access_key")
SECRET_ENV_VAR = ENV_PREFIX + ENV_NESTED_DELIMITER.join(SECRET_KEY_PATH).upper()
SECRET_MASK = "**********"  # as pydantic shows a SecretStr
# A temporary file a killed save left behind is removed by a later save once this old (a save
# takes milliseconds; the margin keeps a concurrent save's own file safe).
STALE_TEMPORARY_SECONDS = 60.0


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


def _echoable(loc: tuple[Any, ...], value: Any) -> bool:
    """Whether a wrong value may be quoted back: a scalar, not at (or above) the secret."""
    if loc == SECRET_KEY_PATH[: len(loc)]:
        return False
    return isinstance(value, str | int | float | bool)


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
    if "input" in error and kind in _TYPE_FIXES and _echoable(loc, error["input"]):
        message = f"{message}, got {error['input']!r}"
    return SettingsProblem(where, key, message.rstrip("."), fix)


def known_secrets(document: dict[str, Any] | None = None) -> list[str]:
    """The secret values in play (a document's and the environment's), to keep out of text."""
    found = [os.environ.get(name, "") for name in os.environ if name.upper() == SECRET_ENV_VAR]
    account = (document or {}).get("account")
    if isinstance(account, dict) and isinstance(account.get("secret_access_key"), str):
        found.append(account["secret_access_key"])
    return [secret for secret in found if len(secret) >= 4]


def secrets_of(loaded: LoadedSettings | None) -> list[str]:
    """Every secret value a front may hold: the environment's, the settings' and the file's."""
    found = known_secrets()
    if loaded is not None:
        for secret in (loaded.settings.account.secret_access_key, loaded.file_secret):
            found.append(secret.get_secret_value())
    return [secret for secret in found if len(secret) >= 4]


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each secret masked."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, SECRET_MASK)
    return text


def _redacted(problem: SettingsProblem, secrets: list[str]) -> SettingsProblem:
    return SettingsProblem(
        redact(problem.source, secrets),
        redact(problem.key, secrets),
        redact(problem.problem, secrets),
        redact(problem.fix, secrets),
    )


def _source_problem(error: SourceError) -> SettingsProblem:
    """pydantic-settings could not parse an environment variable holding a whole table."""
    found = re.search(r'field "([^"]+)"', str(error))
    field = found.group(1) if found else ""
    name = ENV_PREFIX + field.upper() if field else ENV_PREFIX + "…"
    return SettingsProblem(
        f"environment variable {name}",
        field,
        "not valid JSON for a table",
        f"write it as JSON, or set one key per variable ({name}{ENV_NESTED_DELIMITER}KEY)",
    )


def settings_from_document(document: dict[str, Any], source: str) -> Settings:
    """Validate a settings document (plus the environment); SettingsError names each problem.

    No problem quotes a secret: values at the secret's key are never echoed, and the secret's
    text is masked wherever a wrong value is quoted.
    """
    # Keys starting with "_" would reach pydantic-settings as its own init options
    # (_env_file, _cli_parse_args, …) instead of being refused as unknown.
    reserved = [key for key in document if key.startswith("_")]
    known = ", ".join(Settings.model_fields)
    problems = [
        SettingsProblem(source, key, "unknown key", f"remove it (known keys here: {known})")
        for key in reserved
    ]
    try:
        settings = Settings(**{k: v for k, v in document.items() if k not in reserved})
    except ValidationError as error:
        problems += [_problem_from_error(e, source) for e in error.errors()]
    except SourceError as error:
        problems.append(_source_problem(error))
    if problems:
        secrets = known_secrets(document)
        raise SettingsError([_redacted(problem, secrets) for problem in problems])
    return settings


def _read_bytes(path: Path) -> tuple[bytes, int]:
    """The file's bytes and the mtime they go with (taken first: a later edit shows as newer)."""
    try:
        mtime = path.stat().st_mtime_ns
        return path.read_bytes(), mtime
    except OSError as error:
        raise SettingsError(
            [SettingsProblem(str(path), "", f"cannot be read ({error.strerror})", "check the path")]
        ) from None


def _parse(raw: bytes, path: Path) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SettingsError(
            [
                SettingsProblem(
                    str(path),
                    "",
                    f"not UTF-8 text (byte {error.start})",
                    "save it as UTF-8; the file was left as it is",
                )
            ]
        ) from None
    try:
        return tomllib.loads(text)
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


def _digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def load_settings(path: Path) -> LoadedSettings:
    """Load settings from ``path``; a missing file gives the defaults (the seed's example)."""
    digest: str | None = None
    if path.exists():
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
    file_secret = str(document.get("account", {}).get("secret_access_key", "") or "")
    return LoadedSettings(
        settings=settings,
        path=path,
        exists=mtime is not None,
        secret_from_environment=_environment_sets(SECRET_KEY_PATH) is not None,
        file_secret=SecretStr(file_secret),
        loaded_mtime_ns=mtime,
        loaded_digest=digest,
    )


def render_settings(settings: Settings, loaded: LoadedSettings) -> str:
    """The TOML text a save writes; a secret from the environment is replaced by the file's own."""
    secret = (
        loaded.file_secret.get_secret_value()
        if loaded.secret_from_environment
        else settings.account.secret_access_key.get_secret_value()
    )
    return tomli_w.dumps(settings.to_document(secret=secret))


def _temporary_name_pattern(path: Path) -> re.Pattern[str]:
    # What tempfile.mkstemp(prefix=".NAME.") makes: the prefix and 8 random characters.
    return re.compile(re.escape(f".{path.name}.") + r"[a-z0-9_]{8}")


def temporary_leftovers(path: Path) -> list[Path]:
    """Temporary files a save of ``path`` killed mid-write left beside it. The loader never
    reads them; a later save removes those older than STALE_TEMPORARY_SECONDS."""
    pattern = _temporary_name_pattern(path)
    try:
        return sorted(p for p in path.parent.iterdir() if pattern.fullmatch(p.name))
    except OSError:
        return []


def _remove_stale_leftovers(path: Path) -> None:
    deadline = time.time() - STALE_TEMPORARY_SECONDS
    for leftover in temporary_leftovers(path):
        try:
            if leftover.stat().st_mtime < deadline:
                leftover.unlink()
        except OSError:
            pass  # gone already, or not ours to remove


def write_atomically(path: Path, text: str, *, private: bool) -> None:
    """Write ``text`` to ``path`` so a reader sees the old file or the new one, never a mix,
    even if the process is killed mid-save (temporary file, fsync, rename, directory fsync).

    The previous file is kept beside it as ``PATH.bak`` (itself replaced atomically).
    ``private`` gives mode 0600 to both. A killed save can leave a ``.PATH.xxxxxxxx``
    temporary file (mode 0600) that nothing reads; a later save removes it.
    """
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = 0o600 if private else 0o644
    if path.exists() and not private:
        mode = stat.S_IMODE(path.stat().st_mode)
    prefix = f".{path.name}."
    temporary = write_temporary(path.parent, prefix, text, mode)
    try:
        if path.exists():
            backup = path.with_name(path.name + ".bak")
            copy = tempfile.mkstemp(prefix=prefix, dir=path.parent)
            os.close(copy[0])
            try:
                shutil.copy2(path, copy[1])
                if private:
                    os.chmod(copy[1], 0o600)
                os.replace(copy[1], backup)
            except BaseException:
                Path(copy[1]).unlink(missing_ok=True)
                raise
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    _remove_stale_leftovers(path)


def save_settings(
    settings: Settings, loaded: LoadedSettings, *, force: bool = False
) -> LoadedSettings:
    """Save ``settings`` over ``loaded.path`` atomically; returns what is now on disk.

    Refuses (SettingsError) to overwrite a malformed file, and (SettingsChangedOnDisk) a file
    changed since it was loaded unless ``force``.
    """
    path = loaded.path
    if path.exists():
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
    written_secret = tomllib.loads(text)["account"]["secret_access_key"]
    write_atomically(path, text, private=bool(written_secret))
    return LoadedSettings(
        settings=settings,
        path=path,
        exists=True,
        secret_from_environment=loaded.secret_from_environment,
        file_secret=SecretStr(written_secret),
        loaded_mtime_ns=path.stat().st_mtime_ns,
        loaded_digest=_digest(text.encode("utf-8")),
    )


def readable_by_others(path: Path) -> bool:
    """True when a file holding a secret can be read by group or others."""
    try:
        return bool(stat.S_IMODE(path.stat().st_mode) & 0o077)
    except OSError:
        return False


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
