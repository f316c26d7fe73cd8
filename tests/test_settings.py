"""Settings: every kind of bad file is named with its key and fix; saves are atomic and safe."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from engine.settings import Settings, TestUserSettings
from engine.settings_file import (
    SettingsChangedOnDisk,
    SettingsError,
    load_settings,
    save_settings,
)
from engine.settings_template import render_example_settings, render_settings_document

ROOT = Path(__file__).resolve().parents[1]
GOOD = """
[account]
access_key_id = "AKIAIOSFODNN7EXAMPLE"
secret_access_key = "file-secret-value"

[connections.travel]
delivery_stream_name = "mPTravelAudiences"
region = "eu-west-1"
identities_to_exclude = ["Other3"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(text)
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        load_settings(path)
    return [str(problem) for problem in caught.value.problems]


def test_example_file_is_the_rendered_template_and_loads() -> None:
    example = ROOT / "settings.example.toml"
    assert example.read_text() == render_example_settings()
    loaded = load_settings(example)
    assert loaded.settings.connections["travel"].delivery_stream_name == "mPTravelAudiences"


def test_missing_file_gives_the_defaults() -> None:
    loaded = load_settings(Path("/nonexistent/settings.toml"))
    assert not loaded.exists
    assert loaded.settings.connection_name() == "travel"


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("[account\n", "", "not valid TOML"),
        ("[account]\ncolour = 1\n" + GOOD.split("[account]")[1], "account.colour", "unknown key"),
        (
            GOOD + "send_anonymous_users = 3\n",
            "connections.travel.send_anonymous_users",
            "true or false",
        ),
        (GOOD.replace('"eu-west-1"', '"us-moon-1"'), "connections.travel.region", "not a region"),
        (GOOD.replace('"mPTravelAudiences"', '"bad name!"'), "delivery_stream_name", "not a valid"),
        (
            GOOD.replace('["Other3"]', '["Nope"]'),
            "identities_to_exclude",
            "'Nope' is not an identity",
        ),
        ("[account]\n", "connections", "no connection is defined"),
        (GOOD + "[delivery]\nmax_attempts = 0\n", "delivery.max_attempts", "greater than or equal"),
        (
            GOOD.replace('access_key_id = "AKIAIOSFODNN7EXAMPLE"', ""),
            "account",
            "access_key_id is empty",
        ),
        (GOOD + '[test_user]\nidentities = { Shoe = "x" }\n', "test_user.identities", "'Shoe'"),
        (GOOD + '[sandbox]\nfailures = ["gremlins"]\n', "sandbox.failures", "gremlins"),
    ],
)
def test_bad_settings_name_the_file_key_and_fix(
    tmp_path: Path, text: str, key: str, words: str
) -> None:
    path = write(tmp_path, text)
    problems = problems_of(path)
    joined = "\n".join(problems)
    assert str(path) in joined
    assert key in joined
    assert words in joined
    assert "Fix:" in joined
    assert "file-secret-value" not in joined


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, GOOD)
    monkeypatch.setenv("FIREHOSE_CONSOLE_CONNECTIONS__TRAVEL__REGION", "us-west-2")
    monkeypatch.setenv("FIREHOSE_CONSOLE_DELIVERY__MAX_ATTEMPTS", "9")
    settings = load_settings(path).settings
    assert settings.connections["travel"].region == "us-west-2"
    assert settings.delivery.max_attempts == 9


def test_bad_environment_value_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, GOOD)
    monkeypatch.setenv("FIREHOSE_CONSOLE_DELIVERY__MAX_ATTEMPTS", "many")
    assert "FIREHOSE_CONSOLE_DELIVERY__MAX_ATTEMPTS" in "\n".join(problems_of(path))


def test_save_round_trips_and_keeps_a_backup(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    loaded = load_settings(path)
    changed = loaded.settings.model_copy(deep=True)
    changed.connections["travel"].region = "us-east-2"
    saved = save_settings(changed, loaded)
    again = load_settings(path)
    assert again.settings == changed
    assert (tmp_path / "settings.toml.bak").read_text() == GOOD
    assert saved.loaded_mtime_ns == path.stat().st_mtime_ns


def test_file_with_a_secret_is_written_0600(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    os.chmod(path, 0o644)
    loaded = load_settings(path)
    save_settings(loaded.settings, loaded)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "settings.toml.bak").stat().st_mode) == 0o600


def test_secret_from_environment_is_never_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, GOOD)
    monkeypatch.setenv("FIREHOSE_CONSOLE_ACCOUNT__SECRET_ACCESS_KEY", "env-canary-secret")
    loaded = load_settings(path)
    assert loaded.settings.account.secret_access_key.get_secret_value() == "env-canary-secret"
    save_settings(loaded.settings, loaded)
    text = path.read_text()
    assert "env-canary-secret" not in text
    assert "file-secret-value" in text


SECRET_TABLE = '{"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "env-canary-secret"}'


def test_secret_from_an_environment_table_is_never_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, GOOD)
    monkeypatch.setenv("FIREHOSE_CONSOLE_ACCOUNT", SECRET_TABLE)
    loaded = load_settings(path)
    assert loaded.secret_from_environment
    assert loaded.settings.account.secret_access_key.get_secret_value() == "env-canary-secret"
    save_settings(loaded.settings, loaded)
    text = path.read_text()
    assert "env-canary-secret" not in text and "file-secret-value" in text


def test_a_save_keeps_the_files_own_values_where_the_environment_set_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, GOOD)  # region eu-west-1, no [delivery]
    monkeypatch.setenv("FIREHOSE_CONSOLE_CONNECTIONS__TRAVEL__REGION", "us-west-2")
    monkeypatch.setenv("FIREHOSE_CONSOLE_DELIVERY__MAX_ATTEMPTS", "9")
    loaded = load_settings(path)
    changed = loaded.settings.model_copy(deep=True)
    changed.audience.id = 42  # an edit of a key the environment does not set
    save_settings(changed, loaded)
    monkeypatch.delenv("FIREHOSE_CONSOLE_CONNECTIONS__TRAVEL__REGION")
    monkeypatch.delenv("FIREHOSE_CONSOLE_DELIVERY__MAX_ATTEMPTS")
    on_its_own = load_settings(path).settings
    assert on_its_own.connections["travel"].region == "eu-west-1"  # the file's own
    assert "max_attempts" not in path.read_text()  # the file had none: the default stays
    assert on_its_own.audience.id == 42


def test_a_key_edited_after_the_environment_set_it_is_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, GOOD)
    monkeypatch.setenv("FIREHOSE_CONSOLE_CONNECTIONS__TRAVEL__REGION", "us-west-2")
    loaded = load_settings(path)
    changed = loaded.settings.model_copy(deep=True)
    changed.connections["travel"].region = "ap-south-1"  # an edit in the console
    save_settings(changed, loaded)
    assert 'region = "ap-south-1"' in path.read_text()


@pytest.mark.parametrize(
    "environment",
    [
        {
            "FIREHOSE_CONSOLE_ACCOUNT__ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
            "FIREHOSE_CONSOLE_ACCOUNT__SECRET_ACCESS_KEY": "env-canary-secret",
        },
        {"FIREHOSE_CONSOLE_ACCOUNT": SECRET_TABLE},
    ],
    ids=["one variable a key", "one table"],
)
def test_a_file_saved_with_both_keys_from_the_environment_loads_on_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]
) -> None:
    path = write(tmp_path, '[connections.travel]\ndelivery_stream_name = "s"\n')
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    loaded = load_settings(path)
    assert loaded.settings.account.access_key_id == "AKIAIOSFODNN7EXAMPLE"
    save_settings(loaded.settings, loaded)
    for name in environment:
        monkeypatch.delenv(name)
    text = path.read_text()
    assert "AKIAIOSFODNN7EXAMPLE" not in text and "env-canary-secret" not in text
    assert load_settings(path).settings.account.access_key_id == ""  # the credential chain


def test_a_save_removes_only_its_own_leftovers(tmp_path: Path, capsys) -> None:
    # `init new.toml` once deleted a user's two-hour-old `.new.toml.original`.
    from console.cli import main

    leftover = tmp_path / ".new.toml.firehose-console-tmp-abcd1234"  # a killed save's
    users = [tmp_path / ".new.toml.original", tmp_path / ".new.toml.abcd1234"]
    for path in [leftover, *users]:
        path.write_text("x")
        os.utime(path, (1, 1))
    assert main(["init", str(tmp_path / "new.toml")]) == 0
    assert not leftover.exists() and all(path.exists() for path in users)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["new.toml", *(path.name for path in users)]
    )


def test_journal_rewrites_follow_the_same_rule(tmp_path: Path) -> None:
    from engine.atomic_files import replace_atomically, temporary_leftovers

    journal = tmp_path / "letters.jsonl"
    stale = tmp_path / ".letters.jsonl.firehose-console-tmp-abcd1234"
    stale.write_text("{}")
    os.utime(stale, (1, 1))
    replace_atomically(journal, "{}\n")
    assert journal.read_text() == "{}\n" and temporary_leftovers(journal) == []


def test_malformed_file_is_never_overwritten(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    loaded = load_settings(path)
    path.write_text("[account\n")
    with pytest.raises(SettingsError):
        save_settings(loaded.settings, loaded, force=True)
    assert path.read_text() == "[account\n"


def test_file_changed_on_disk_is_not_overwritten_without_force(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    loaded = load_settings(path)
    path.write_text(GOOD + "\n# edited elsewhere\n")
    os.utime(path, ns=(1, 1))
    with pytest.raises(SettingsChangedOnDisk):
        save_settings(loaded.settings, loaded)
    save_settings(loaded.settings, loaded, force=True)
    assert "edited elsewhere" not in path.read_text()


def test_secret_is_masked_in_reprs() -> None:
    settings = Settings(
        account={"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "canary-xyz"}
    )
    assert "canary-xyz" not in repr(settings) and "canary-xyz" not in str(settings)


def test_a_save_keeps_the_file_documented_and_the_identities_in_order(tmp_path: Path) -> None:
    """The comments `init` writes survive a save, the identities keep the order given, and
    the file reads back as exactly what was saved (README: "Settings")."""
    path = tmp_path / "settings.toml"
    path.write_text(render_example_settings(), encoding="utf-8")
    loaded = load_settings(path)
    changed = loaded.settings.model_copy(deep=True)
    changed.active_connection = "travel"
    changed.test_user.identities = {"Other3": "b", "CustomerId": "a", "Email": "e@example.com"}
    save_settings(changed, loaded)
    text = path.read_text()
    for name, field in TestUserSettings.model_fields.items():
        assert f"# {field.description}\n{name} = " in text, name
    assert "# Attempts per record, first included.\nmax_attempts = 5\n" in text
    assert "[account]  # the IAM user" in text
    assert 'active_connection = "travel"' in text
    assert '\nidentities = { Other3 = "b", CustomerId = "a", Email = "e@example.com" }\n' in text
    again = load_settings(path)
    assert again.settings == changed
    assert list(again.settings.test_user.identities) == ["Other3", "CustomerId", "Email"]


def test_a_documented_save_keeps_every_value_it_cannot_comment() -> None:
    """A key no model knows is written anyway (plain TOML then): comments never cost a value."""
    document = {"connections": {"travel": {"delivery_stream_name": "S"}}, "mystery": {"x": 1}}
    assert tomllib.loads(render_settings_document(document)) == document
    awkward = {
        "connections": {"travel": {"delivery_stream_name": "S"}},
        "test_user": {"identities": {"Other 2": "x"}},
    }
    assert tomllib.loads(render_settings_document(awkward)) == awkward


def test_a_top_level_key_in_another_case_names_its_section_with_or_without_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without a FIREHOSE_CONSOLE_ variable, pydantic-settings is not used at all; the keys are
    # still matched to the sections as it matches them.
    path = tmp_path / "settings.toml"
    path.write_text(GOOD + "\n[Delivery]\nmax_attempts = 7\n\n[DELIVERY]\nmax_attempts = 1\n")
    without = load_settings(path).settings
    assert without.delivery.max_attempts == 7  # the first of the two tables counts
    monkeypatch.setenv("FIREHOSE_CONSOLE_SANDBOX__FAILURE_RATE", "0.5")
    with_environment = load_settings(path).settings
    assert without.delivery == with_environment.delivery
    assert with_environment.sandbox.failure_rate == 0.5
    # The same class either way: settings compare equal by their values.
    assert type(with_environment) is Settings
    monkeypatch.delenv("FIREHOSE_CONSOLE_SANDBOX__FAILURE_RATE")
    assert load_settings(path).settings == without


def test_settings_load_without_pydantic_settings_when_no_variable_is_set(tmp_path: Path) -> None:
    # It costs a tenth of the console's launch (README: "Performance").
    path = write(tmp_path, GOOD)
    probe = (
        "import sys\nfrom engine.settings_file import load_settings\n"
        f"load_settings({str(path)!r})\n"
        "print('pydantic_settings' in sys.modules)"
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FIREHOSE_CONSOLE_")}
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.split() == ["False"]
