"""Bad input never gets a traceback: every bad settings file, environment variable and command
line exits 2 with one message naming the problem (and nothing on stdout with --json); the
settings loader, fuzzed, either loads or raises SettingsError."""

from __future__ import annotations

import json
import math
import os
import shutil
import string
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.cli import main
from engine.settings_file import LoadedSettings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[1]
BASE = '[connections.travel]\ndelivery_stream_name = "mPTravelAudiences"\n'
KEYS = '[account]\naccess_key_id = "AKIAIOSFODNN7EXAMPLE"\nsecret_access_key = "bad-input-secret"\n'

# (settings file content, words the message must contain)
BAD_FILES: dict[str, tuple[str | bytes, str]] = {
    "malformed TOML": ("[account\n", "not valid TOML (Expected ']'"),
    "not UTF-8": (b"\xff\xfe" + BASE.encode(), "not UTF-8 text"),
    "unknown top-level key": ("colour = 1\n" + BASE, "colour: unknown key"),
    "pydantic-settings option as a key": (
        '_env_file = "/etc/passwd"\n' + BASE,
        "_env_file: unknown key",
    ),
    "CLI parsing option as a key": (
        "_cli_parse_args = true\n" + BASE,
        "_cli_parse_args: unknown key",
    ),
    "unknown connection key": (BASE + "bogus = 1\n", "connections.travel.bogus: unknown key"),
    "unknown region": (BASE + 'region = "mars-1"\n', "'mars-1' is not a region"),
    "bad stream name": (
        BASE.replace("mPTravelAudiences", "bad name!"),
        "not a valid delivery stream",
    ),
    "quoted boolean": (BASE + 'send_anonymous_users = "maybe"\n', "write true or false"),
    "unknown identity excluded": (
        BASE + 'identities_to_exclude = ["Shoe"]\n',
        "'Shoe' is not an identity",
    ),
    "exclusions not a list": (BASE + 'identities_to_exclude = "Other3"\n', "write a list"),
    "endpoint not http": (BASE + 'endpoint_url = "ftp://x"\n', "not an http(s) URL"),
    "secret without key id": (
        '[account]\nsecret_access_key = "abcdefgh"\n' + BASE,
        "access_key_id is empty",
    ),
    "key id without secret": (
        '[account]\naccess_key_id = "AKIAIOSFODNN7EXAMPLE"\n' + BASE,
        "secret_access_key is empty",
    ),
    "malformed key id": (KEYS.replace("AKIAIOSFODNN7EXAMPLE", "akia-lower") + BASE, "like AKIA"),
    "no connection": (KEYS, "no connection is defined"),
    "active connection unknown": ('active_connection = "eu"\n' + BASE, "active_connection 'eu'"),
    "unusable connection name": (
        '[connections."a b"]\ndelivery_stream_name = "x"\n',
        "not a usable connection name",
    ),
    "connections not a table": ("connections = 5\n", "make it a table"),
    "zero attempts": (BASE + "[delivery]\nmax_attempts = 0\n", "delivery.max_attempts"),
    "backoff cap below base": (
        BASE + "[delivery]\nbackoff_base_seconds = 5\nbackoff_cap_seconds = 1\n",
        "backoff_cap_seconds is below",
    ),
    "batch over 500": (BASE + "[delivery]\nbatch_size = 501\n", "delivery.batch_size"),
    "unknown chaos kind": (
        BASE + '[sandbox]\nfailures = ["gremlins"]\n',
        "'gremlins' is not a sandbox",
    ),
    "failure rate over 1": (BASE + "[sandbox]\nfailure_rate = 1.5\n", "sandbox.failure_rate"),
    "failure rate nan": (BASE + "[sandbox]\nfailure_rate = nan\n", "sandbox.failure_rate"),
    "unknown identity key": (
        BASE + '[test_user]\nidentities = { Shoe = "x" }\n',
        "'Shoe' is not an identity key",
    ),
    "MPID among identities": (
        BASE + '[test_user]\nidentities = { MPID = "1" }\n',
        "test_user.mpid",
    ),
    "negative audience id": (BASE + "[audience]\nid = -1\n", "audience.id"),
    "audience without a name": (
        BASE + '[audience]\nexternal_name = ""\ninternal_name = ""\n',
        "neither an external nor an internal name",
    ),
}
COMMANDS = [
    ["verify", "--json"],
    ["preview", "add", "--json"],
    ["send", "add", "--json"],
    ["dead-letters", "list", "--json"],
]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_settings_file_exits_2_naming_the_problem(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, words = BAD_FILES[name]
    path = tmp_path / "settings.toml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    command = COMMANDS[sorted(BAD_FILES).index(name) % len(COMMANDS)]
    status, out, err = run(capsys, "--settings", str(path), *command)
    assert (status, out) == (2, "")
    assert words in err and str(path) in err and "Fix:" in err
    assert "Traceback" not in err and "bad-input-secret" not in err
    assert path.read_bytes() == (content if isinstance(content, bytes) else content.encode())


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        (
            "FIREHOSE_CONSOLE_DELIVERY__MAX_ATTEMPTS",
            "many",
            "FIREHOSE_CONSOLE_DELIVERY__MAX_ATTEMPTS",
        ),
        (
            "FIREHOSE_CONSOLE_CONNECTIONS",
            "not json",
            "FIREHOSE_CONSOLE_CONNECTIONS: connections: not valid JSON",
        ),
        ("FIREHOSE_CONSOLE_ACCOUNT__COLOUR", "red", "account.colour: unknown key"),
        ("FIREHOSE_CONSOLE_CONNECTIONS__TRAVEL__REGION", "mars-1", "'mars-1' is not a region"),
    ],
)
def test_bad_environment_variable_exits_2_naming_it(
    variable: str,
    value: str,
    words: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(BASE)
    monkeypatch.setenv(variable, value)
    status, out, err = run(capsys, "--settings", str(path), "verify", "--json")
    assert (status, out) == (2, "") and words in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["preview", "explode"], "invalid choice: 'explode'"),
        (["send"], "required: action"),
        (["send", "add", "--count", "0", "--json"], "--count: must be 1 or more"),
        (["send", "add", "--count", "10000001", "--json"], "--count: must be at most 10,000,000"),
        (["send", "add", "--count", "many", "--json"], "--count: invalid"),
        (["send", "add", "--rate", "-1", "--json"], "--rate: must be a number of records"),
        (["send", "add", "--rate", "nan", "--json"], "--rate: must be a number of records"),
        (["send", "add", "--rate", "inf", "--json"], "--rate: must be a number of records"),
        # 1e-300 overflowed the pacing's sleep and was reported as a 500 from Firehose.
        (["send", "add", "--rate", "1e-300", "--json"], "per second, 0.01 or more"),
        (["send", "add", "--rate", "0.009", "--json"], "per second, 0.01 or more"),
        (["verify", "--bogus"], "unrecognized arguments: --bogus"),
        (["--connection", "nope", "preview", "add", "--json"], "no connection named 'nope'"),
        (["dead-letters", "burn", "--json"], "invalid choice: 'burn'"),
    ],
)
def test_bad_command_line_exits_2_with_one_line(
    argv: list[str], words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text(BASE)
    status, out, err = run(capsys, "--settings", str(settings), *argv)
    assert (status, out) == (2, "")
    assert words in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


# -- what --settings names ----------------------------------------------------------------


def _dangling(directory: Path) -> Path:
    (directory / "link.toml").symlink_to(directory / "nowhere.toml")
    return directory / "link.toml"


def _loop(directory: Path) -> Path:
    (directory / "a.toml").symlink_to(directory / "b.toml")
    (directory / "b.toml").symlink_to(directory / "a.toml")
    return directory / "a.toml"


def _fifo(directory: Path) -> Path:
    os.mkfifo(directory / "pipe.toml")
    return directory / "pipe.toml"


NOT_A_SETTINGS_FILE: dict[str, tuple[Callable[[Path], Path], str]] = {
    "dangling symlink": (_dangling, "is a symbolic link to "),
    "symlink loop": (_loop, "is a symbolic link loop"),
    "FIFO": (_fifo, "is a named pipe (FIFO)"),
    "device": (lambda directory: Path(os.devnull), "is a device"),
    "directory": (lambda directory: directory, "is a directory"),
}


@pytest.mark.parametrize("kind", list(NOT_A_SETTINGS_FILE))
def test_settings_path_that_is_not_a_file_exits_2_at_once(kind: str, tmp_path: Path) -> None:
    # A real process: a FIFO opened for reading would block it until the timeout fails the test.
    make, words = NOT_A_SETTINGS_FILE[kind]
    path = make(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "console", "--settings", str(path), "send", "add", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.count("\n") == 1 and words in result.stderr and str(path) in result.stderr


@pytest.mark.parametrize(
    "command", [["verify"], ["send", "add"], ["dead-letters", "replay"], ["dead-letters", "list"]]
)
def test_a_named_settings_file_that_does_not_exist_is_refused(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "settngs.toml"  # a typo must not quietly send to the sandbox
    status, out, err = run(capsys, "--settings", str(path), *command, "--json")
    assert (status, out) == (2, "") and len(err.splitlines()) == 1
    assert f"{path} does not exist" in err and "init" in err and "--sandbox" in err


def test_preview_of_a_missing_named_file_shows_the_defaults_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "settngs.toml"
    status, out, err = run(capsys, "--settings", str(path), "preview", "add", "--json")
    assert status == 0 and json.loads(out)["messages"]
    assert f"{path} does not exist: previewing the built-in defaults" in err


def test_only_the_default_path_falls_back_to_the_sandbox(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./settings.toml here
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    status, out, _ = run(capsys, "send", "add", "--json")
    assert status == 0 and json.loads(out)["delivered"] == 1
    status, out, _ = run(capsys, "--settings", "settings.toml", "send", "add", "--json")
    assert (status, out) == (2, "")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("a = " + "{x=" * 5000 + "1" + "}" * 5000, "nested too deeply"),
        ("a = " + "[" * 5000 + "1" + "]" * 5000, "nested too deeply"),
        (BASE + "[audience]\nid = true\n", "audience.id: true is a boolean, not a number"),
        (BASE + "[delivery]\nmax_attempts = false\n", "delivery.max_attempts: false is a"),
        (BASE + "[sandbox]\nseed = true\n", "sandbox.seed: true is a boolean"),
        (BASE + "[audience]\nid = 9223372036854775808\n", "at most 9223372036854775807"),
    ],
    ids=["deep tables", "deep lists", "id true", "attempts false", "seed true", "id over 2^63-1"],
)
def test_more_bad_settings_exit_2(
    content: str, words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(content)
    status, out, err = run(capsys, "--settings", str(path), "preview", "add", "--json")
    assert (status, out) == (2, "") and words in err and "Traceback" not in err


def test_the_largest_audience_id_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(BASE + f"[audience]\nid = {2**63 - 1}\n")
    assert load_settings(path).settings.audience.id == 2**63 - 1


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("FIREHOSE_CONSOLE_AUDIENCE__INTERNAL_NAME", "ab\udcff", "not UTF-8 text"),
        ("FIREHOSE_CONSOLE_CONNECTIONS", "[" * 5000 + "]" * 5000, "nested too deeply"),
        ("FIREHOSE_CONSOLE_ACCOUNT", '{"access_key_id": "akia-lower"}', "like AKIA"),
        ("FIREHOSE_CONSOLE_AUDIENCE", '{"id": true}', "true is a boolean, not a number"),
        ("firehose_console_connections", "not json", "not valid JSON for a table"),
    ],
    ids=["not UTF-8", "deep JSON", "key in a JSON table", "boolean in a JSON table", "lower case"],
)
def test_bad_environment_values_exit_2_naming_the_variable(
    variable: str,
    value: str,
    words: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(BASE)
    monkeypatch.setenv(variable, value)  # os.environ keeps undecodable bytes as surrogates
    status, out, err = run(capsys, "--settings", str(path), "preview", "add", "--json")
    assert (status, out) == (2, "") and words in err
    assert f"environment variable {variable}" in err and str(path) not in err


def run_unprivileged(*argv: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a real process that file permissions apply to: as root, one without the
    capabilities that override them."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: permissions cannot apply")
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search"]
    return subprocess.run(
        [*prefix, sys.executable, "-m", "console", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_settings_file_in_an_unreadable_directory_exits_2(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "settings.toml").write_text(BASE)
    locked.chmod(0o000)
    result = run_unprivileged("--settings", str(locked / "settings.toml"), "preview", "add")
    assert (result.returncode, result.stdout) == (2, "")
    assert "cannot be reached (Permission denied)" in result.stderr
    assert result.stderr.count("\n") == 1


def test_init_into_a_read_only_directory_exits_2(tmp_path: Path) -> None:
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    read_only.chmod(0o555)
    result = run_unprivileged("init", str(read_only / "new.toml"))
    assert (result.returncode, result.stdout) == (2, "")
    assert "cannot write" in result.stderr and "Permission denied" in result.stderr
    assert result.stderr.count("\n") == 1 and list(read_only.iterdir()) == []


def test_output_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    # The reader is gone before the first byte is written, as after `| head -1`.
    reader, writer = os.pipe()
    os.close(reader)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "console", "--sandbox", "preview", "add"],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(writer)
    assert (result.returncode, result.stderr) == (141, "")


def test_init_over_an_existing_file(tmp_path: Path, capsys) -> None:
    (tmp_path / "mine.toml").write_text(BASE)
    status, out, err = run(capsys, "init", str(tmp_path / "mine.toml"))
    assert (status, out) == (2, "") and "already exists" in err


# -- fuzzing the loader -------------------------------------------------------------------

SECTION_KEYS = {
    "account": ["access_key_id", "secret_access_key", "send_remove_on_identity_change"],
    "audience": ["id", "internal_name", "external_name"],
    "test_user": ["mpid", "identities", "new_identities"],
    "delivery": [
        "max_attempts",
        "backoff_base_seconds",
        "backoff_cap_seconds",
        "read_timeout_seconds",
        "record_delimiter",
        "concurrency",
        "batch_size",
        "state_dir",
    ],
    "sandbox": ["failure_rate", "failures", "seed"],
}
CONNECTION_KEYS = [
    "delivery_stream_name",
    "region",
    "endpoint_url",
    "send_anonymous_users",
    "forward_idfas",
    "identities_to_exclude",
]
names = st.sampled_from(
    [*SECTION_KEYS, *CONNECTION_KEYS, *(k for ks in SECTION_KEYS.values() for k in ks)]
    + ["connections", "active_connection", "_env_file", "_cli_parse_args", "__pydantic_self__"]
) | st.text(string.ascii_letters + "_-.", min_size=1, max_size=12)
scalars = (
    st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(
        ["us-east-1", "mPTravelAudiences", "Other3", "throttling", "AKIAIOSFODNN7EXAMPLE"]
    )
    | st.dates()
    | st.datetimes()
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(names, inner, max_size=4),
    max_leaves=12,
)
connection = st.dictionaries(st.sampled_from(CONNECTION_KEYS) | names, values, max_size=6)
documents = st.fixed_dictionaries(
    {},
    optional={
        "connections": st.dictionaries(names, connection, max_size=3) | values,
        **{
            section: st.dictionaries(st.sampled_from(keys) | names, values, max_size=5) | values
            for section, keys in SECTION_KEYS.items()
        },
        "active_connection": values,
    },
) | st.dictionaries(names, values, max_size=5)


def loads_or_refuses(path: Path) -> None:
    try:
        loaded = load_settings(path)
    except SettingsError as error:
        assert error.problems and all(problem.problem for problem in error.problems)
    else:
        assert isinstance(loaded, LoadedSettings)


FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def fuzz_path(tmp_path: Path) -> Path:
    return tmp_path / "fuzzed.toml"


@FUZZ
@given(document=documents)
def test_fuzzed_documents_load_or_raise_settings_error(tmp_path: Path, document: dict) -> None:
    path = fuzz_path(tmp_path)
    path.write_text(tomli_w.dumps(document))
    loads_or_refuses(path)


@FUZZ
@given(document=documents, cut=st.integers(min_value=0), junk=st.text(max_size=3))
def test_damaged_documents_load_or_raise_settings_error(
    tmp_path: Path, document: dict, cut: int, junk: str
) -> None:
    text = tomli_w.dumps(document)
    position = cut % (len(text) + 1)
    path = fuzz_path(tmp_path)
    path.write_text(
        text[:position] + junk + text[position:], encoding="utf-8", errors="surrogatepass"
    )
    loads_or_refuses(path)


@FUZZ
@given(
    raw=st.binary(max_size=200)
    | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass"))
)
def test_random_bytes_load_or_raise_settings_error(tmp_path: Path, raw: bytes) -> None:
    path = fuzz_path(tmp_path)
    path.write_bytes(raw)
    loads_or_refuses(path)


@FUZZ
@given(
    variable=st.sampled_from(
        [
            "CONNECTIONS",
            "ACCOUNT",
            "DELIVERY",
            "SANDBOX__FAILURES",
            "CONNECTIONS__TRAVEL",
            "TEST_USER__IDENTITIES",
            "DELIVERY__MAX_ATTEMPTS",
            "AUDIENCE__ID",
            "ACTIVE_CONNECTION",
        ]
    ),
    value=st.text(
        st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=40
    )
    | values.map(lambda v: __import__("json").dumps(v, default=str) if not _has_nan(v) else "[]"),
)
def test_fuzzed_environment_loads_or_raises_settings_error(
    tmp_path: Path, variable: str, value: str
) -> None:
    path = fuzz_path(tmp_path)
    path.write_text(BASE)
    name = "FIREHOSE_CONSOLE_" + variable
    os.environ[name] = value
    try:
        loads_or_refuses(path)
    finally:
        del os.environ[name]


def _has_nan(value: object) -> bool:
    if isinstance(value, float):
        return math.isnan(value) or math.isinf(value)
    if isinstance(value, list):
        return any(_has_nan(item) for item in value)
    if isinstance(value, dict):
        return any(_has_nan(item) for item in value.values())
    return False
