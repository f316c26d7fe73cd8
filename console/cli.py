"""The command-line front: the same verify, preview and send as the TUI, printed.

Exit status: 0 all good; 1 a check failed or something was not delivered; 2 bad usage or bad
settings (one message on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from console.malloc_arenas import limit_malloc_arenas
from console.version import VersionAction
from engine.events import ignore_events
from engine.records import MAX_BURST_COUNT, Action, preview_document
from engine.settings import ALL_AUDIENCES
from engine.settings_file import (
    LoadedSettings,
    SettingsError,
    load_settings,
    permission_warning,
    redact,
    secrets_of,
)

if TYPE_CHECKING:
    from console import cli_output
    from engine.landed import LandedReport
    from engine.session import ConsoleSession

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_SETTINGS_PATH = Path("settings.toml")
# Slower than one record in 100 s is a typo (and 1e-300 would overflow the pacing's sleep).
MIN_RATE = 0.01
# Output into a closed pipe (`… | head -1`) ends quietly with the status a shell gives a
# process killed by SIGPIPE (128 + 13), as `cat` or `yes` would end.
EXIT_CLOSED_PIPE = 141
EXIT_SIGINT, EXIT_SIGTERM = 130, 143  # 128 + the signal's number, as shells report it


class UsageError(Exception):
    """Bad usage: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--settings",
        type=Path,
        # None tells "not given" from "given": only the default path may be missing.
        default=argparse.SUPPRESS if suppress else None,
        help="settings file (default ./settings.toml; only that one may be missing: "
        "then the embedded sandbox runs)",
    )
    parser.add_argument("--connection", default=default, help="connection to use")
    parser.add_argument(
        "--sandbox",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="force the embedded sandbox (moto, in-process)",
    )
    parser.add_argument(
        "--audience",
        default=default,
        help="named audience ([audiences.NAME]) to build records for; all: spread across them",
    )


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    if value > MAX_BURST_COUNT:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_BURST_COUNT:,}")
    return value


def _rate(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < MIN_RATE:
        raise argparse.ArgumentTypeError(
            f"must be a number of records per second, {MIN_RATE} or more"
        )
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError("must be a number of seconds, 0 or more")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="firehose-console",
        description="Operations console for an audience → Amazon Kinesis Data Firehose "
        "integration. With no command, opens the console (TUI).",
    )
    parser.add_argument("--version", action=VersionAction)
    _global_options(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)
    actions = [action.value for action in Action]

    verify = commands.add_parser("verify", help="check the stream and keys; print the IAM policy")
    preview = commands.add_parser("preview", help="show the records an action would send")
    preview.add_argument("action", choices=actions)
    send = commands.add_parser("send", help="send test messages into the stream")
    send.add_argument("action", choices=actions)
    send.add_argument("--count", type=_count, default=1, help="messages to send (N users)")
    send.add_argument("--rate", type=_rate, help="records per second at most")
    send.add_argument("--batch", action="store_true", help="use PutRecordBatch (≤500 a call)")
    dead = commands.add_parser(
        "dead-letters", help="list, show, drop or re-send undelivered messages"
    )
    dead_letters = _dead_letters_commands(dead)
    landed = commands.add_parser("landed", help="where each acknowledged record landed")
    landed.add_argument(
        "--wait",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="poll until every record landed or SECONDS passed",
    )
    landed.add_argument("--last", type=_count, help="only the N newest acknowledged records")
    init = commands.add_parser("init", help="write a commented settings file to start from")
    init.add_argument("path", nargs="?", type=Path, help="where (default: --settings)")
    for sub in (verify, preview, send, landed, *dead_letters):
        sub.add_argument("--json", action="store_true", help="print one JSON document")
    for sub in (verify, preview, send, dead, *dead_letters, landed, init):
        _global_options(sub, suppress=True)
    return parser


def _dead_letters_commands(dead: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    commands = dead.add_subparsers(dest="what", required=True, parser_class=_Parser)
    listing = commands.add_parser("list", help="every dead letter of the connection")
    show = commands.add_parser("show", help="one letter: its decoded record, stream, reason")
    show.add_argument("id", help="its message id (a unique prefix will do)")
    drop = commands.add_parser("drop", help="remove letters for good (asks first)")
    drop.add_argument("ids", nargs="*", metavar="ID", help="message ids (unique prefixes)")
    drop.add_argument("--all", action="store_true", help="every letter of the connection")
    drop.add_argument("--yes", action="store_true", help="do not ask")
    replay = commands.add_parser("replay", help="send every letter again, byte for byte")
    replay.add_argument(
        "--to-current",
        action="store_true",
        help="send them to the current connection's stream instead of the one they failed on",
    )
    return [listing, show, drop, replay]


def _print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def _parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    arguments = build_parser().parse_args(argv)
    arguments.settings_given = arguments.settings is not None
    if not arguments.settings_given:
        arguments.settings = DEFAULT_SETTINGS_PATH
    return arguments


def _load(arguments: argparse.Namespace) -> LoadedSettings:
    loaded = load_settings(arguments.settings)
    arguments.loaded = loaded  # so every error message can mask its secret
    path = arguments.settings
    # A typo in --settings must not quietly run on the sandbox's defaults. `preview` sends
    # nothing: it shows the defaults and says so; the console (no command) still opens, and its
    # first save creates the file.
    if arguments.settings_given and not loaded.exists and not arguments.sandbox:
        if arguments.command == "preview":
            print(
                f"firehose-console: {path} does not exist: previewing the built-in defaults",
                file=sys.stderr,
            )
        elif arguments.command is not None:
            raise UsageError(
                f"{path} does not exist; create it with `firehose-console init {path}`, "
                "or add --sandbox to run on the embedded sandbox"
            )
    warning = permission_warning(loaded)
    if warning:
        print(f"firehose-console: {warning}", file=sys.stderr)
    if arguments.connection and arguments.connection not in loaded.settings.connections:
        known = ", ".join(loaded.settings.connections)
        raise UsageError(f"no connection named {arguments.connection!r}; known: {known}")
    _check_audience(arguments.audience, loaded)
    return loaded


def _check_audience(name: str | None, loaded: LoadedSettings) -> None:
    named = loaded.settings.audiences
    if not name or name in named:
        return
    if not named:
        raise UsageError(
            f"--audience {name}: the settings define no [audiences.NAME] table; "
            "add one, or leave --audience out to use [audience]"
        )
    if name != ALL_AUDIENCES:
        known = ", ".join(named)
        raise UsageError(f"no audience named {name!r}; known: {known} (or all)")


def _report_interrupted(session: ConsoleSession) -> None:
    """One notice when an interrupted run left messages behind: sent but unanswered (fate
    unknown: possible duplicates) or never sent."""
    letters = session.recover_interrupted()
    if not letters:
        return
    unknown = sum(1 for letter in letters if letter.possible_duplicate)
    unsent = len(letters) - unknown

    def messages(count: int) -> str:
        return f"{count} message" + ("" if count == 1 else "s")

    def plural(count: int, one: str, many: str) -> str:
        return one if count == 1 else many

    where = f"{messages(len(letters))} from an interrupted run"
    if not unsent:
        notice = f"{where} {plural(unknown, 'has', 'have')} unknown fate"
        advice = "re-sends them (possible duplicates)"
    elif not unknown:
        notice = f"{where} {plural(unsent, 'was', 'were')} never sent"
        advice = "sends them"
    else:
        notice = (
            f"{where} were not acknowledged: {unknown} {plural(unknown, 'has', 'have')} unknown "
            f"fate (possible duplicates), {unsent} {plural(unsent, 'was', 'were')} never sent"
        )
        advice = "re-sends them"
    print(
        f"firehose-console: {notice}; `firehose-console dead-letters replay` {advice}",
        file=sys.stderr,
    )


def _run_init(arguments: argparse.Namespace) -> int:
    from engine.settings_file import write_atomically
    from engine.settings_template import render_example_settings

    path: Path = arguments.path or arguments.settings
    if os.path.lexists(path):  # a dangling symlink too: init would write where it points
        raise UsageError(f"{path} already exists; init never overwrites a file (pick another path)")
    try:
        write_atomically(path, render_example_settings(), private=False)
    except OSError as error:
        raise UsageError(
            f"cannot write {path} ({error.strerror}); pick a directory you can write to"
        ) from None
    print(f"wrote {path}: edit it, then run `firehose-console --settings {path} verify`")
    return EXIT_OK


def _run_session_command(arguments: argparse.Namespace) -> int:
    from console import cli_output
    from engine.session import ConsoleSession

    loaded = _load(arguments)
    as_json: bool = arguments.json
    progress = None
    if arguments.command == "send" and not as_json:
        progress = cli_output.ProgressBar.for_terminal(sys.stderr)
    session = ConsoleSession(
        loaded,
        connection_name=arguments.connection,
        use_sandbox=arguments.sandbox,
        sink=progress.on_event if progress else ignore_events,
        audience_name=arguments.audience,
    )
    try:
        if arguments.command != "preview":  # preview stays pure: it touches no journal
            _report_interrupted(session)
        if arguments.command == "preview":
            messages = session.preview(Action(arguments.action))
            if as_json:
                _print_json({"messages": [preview_document(m) for m in messages]})
            else:
                print(cli_output.render_preview(messages))
            return EXIT_OK
        if not loaded.exists and not as_json:
            print("No settings file: running on the embedded sandbox.", file=sys.stderr)
        if arguments.command == "verify":
            report = session.verify()
            if as_json:
                _print_json(report.document())
            else:
                print(cli_output.render_verification(report))
            return EXIT_OK if report.ok else EXIT_FAILED
        if arguments.command == "send":
            return _send(session, arguments, progress)
        if arguments.command == "landed":
            landed_report = _wait_for_landing(session, arguments.wait, arguments.last)
            if as_json:
                _print_json(landed_report.document())
            else:
                print(cli_output.render_landed(landed_report))
            return EXIT_OK if landed_report.all_landed else EXIT_FAILED
        return _run_dead_letters(session, arguments)
    finally:
        session.close()
        for warning in session.journal_warnings():
            print(f"firehose-console: warning: {warning.describe()}", file=sys.stderr)


def _run_dead_letters(session: ConsoleSession, arguments: argparse.Namespace) -> int:
    from console import cli_output

    as_json: bool = arguments.json
    journal = session.dead_letter_journal().path
    if arguments.what == "list":
        letters = session.dead_letters()
        if as_json:
            _print_json(
                {"journal": str(journal), "dead_letters": [letter.document() for letter in letters]}
            )
        else:
            print(cli_output.render_dead_letters(letters, journal))
        return EXIT_OK
    if arguments.what == "show":
        letter = session.dead_letter(arguments.id)
        if letter is None:
            raise UsageError(
                f"no single dead letter matches {arguments.id!r} in {journal} "
                "(`firehose-console dead-letters list` shows the ids)"
            )
        if as_json:
            _print_json({"journal": str(journal), **cli_output.dead_letter_document(letter)})
        else:
            print(cli_output.render_dead_letter(letter))
        return EXIT_OK
    if arguments.what == "drop":
        return _drop_dead_letters(session, arguments, journal)
    duplicates = sum(1 for letter in session.dead_letters() if letter.possible_duplicate)
    replay = session.replay_dead_letters(to_current=arguments.to_current)
    if as_json:
        _print_json({**replay.document(), "possible_duplicates": duplicates})
    else:
        print(cli_output.render_send_report(replay, journal))
        if duplicates:
            print(cli_output.render_possible_duplicates(duplicates))
    return EXIT_OK if replay.ok else EXIT_FAILED


def _drop_dead_letters(
    session: ConsoleSession, arguments: argparse.Namespace, journal: Path
) -> int:
    if arguments.all == bool(arguments.ids):
        raise UsageError("dead-letters drop: give message ids or --all (not both)")
    if arguments.all:
        ids = [letter.message_id for letter in session.dead_letters()]
    else:
        unknown = [wanted for wanted in arguments.ids if session.dead_letter(wanted) is None]
        if unknown:
            raise UsageError(
                f"no single dead letter matches {', '.join(unknown)} in {journal}; nothing was "
                "dropped (`firehose-console dead-letters list` shows the ids)"
            )
        ids = list(arguments.ids)
    if ids and not arguments.yes:
        question = f"Drop {len(ids)} dead letter(s) from {journal} for good? [y/N] "
        if not sys.stdin or not sys.stdin.isatty():
            raise UsageError(
                f"dead-letters drop would remove {len(ids)} letter(s) and cannot ask without a "
                "terminal: add --yes to drop them"
            )
        print(question, end="", file=sys.stderr, flush=True)
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            print("Nothing dropped.", file=sys.stderr)
            return EXIT_OK
    dropped = session.drop_dead_letters(ids) if ids else []
    if arguments.json:
        _print_json({"journal": str(journal), "dropped": [letter.message_id for letter in dropped]})
    else:
        print(f"Dropped {len(dropped)} dead letter(s) from {journal}.")
    return EXIT_OK


LANDED_POLL_SECONDS = 10.0


def _wait_for_landing(session: ConsoleSession, wait: float, last: int | None) -> LandedReport:
    """The landing report, polled until every record landed, nothing can change any more
    (the destination cannot be read) or ``wait`` seconds passed."""
    deadline = time.monotonic() + wait
    report = session.landed(last=last)
    while not report.all_landed and not report.unreadable:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        time.sleep(min(LANDED_POLL_SECONDS, remaining))
        report = session.landed(last=last)
    return report


def _send(
    session: ConsoleSession,
    arguments: argparse.Namespace,
    progress: cli_output.ProgressBar | None,
) -> int:
    """``send``: Ctrl-C (SIGINT) or SIGTERM stops it cleanly — no new call starts, every
    message is accounted for — and the exit status is then 130 or 143. A second Ctrl-C
    abandons the calls in flight (the outbox keeps them: fate unknown at the next start)."""
    from console import cli_output

    action = Action(arguments.action)
    cancel = threading.Event()
    received: list[int] = []

    def stop(signal_number: int, _frame: object) -> None:
        received.append(signal_number)
        cancel.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = {}
    if threading.current_thread() is threading.main_thread():  # where Python runs handlers
        previous = {
            number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)
        }
    writer = cli_output.JsonSendWriter(sys.stdout) if arguments.json else None
    limit_malloc_arenas()  # before the send starts its threads
    try:
        if progress:
            progress.start(session.burst_size(action, arguments.count))
        report = session.send(
            action,
            count=arguments.count,
            rate=arguments.rate,
            batch=arguments.batch,
            cancel=cancel,
            on_outcome=writer.record if writer else None,
        )
    except BaseException as error:
        if writer:  # --json stays one valid document, even cut short
            if isinstance(error, KeyboardInterrupt):
                text = "interrupted twice: the calls in flight were abandoned (the next start "
                text += "lists their messages as fate unknown)"
            else:
                text = " ".join(f"{type(error).__name__}: {error}".split())
            writer.abort(redact(text, secrets_of(arguments.loaded)))
        raise
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if progress:
        progress.finish()
    if writer:
        writer.finish(report)
    else:
        print(cli_output.render_send_report(report, session.dead_letter_journal().path))
    if received:
        kept = report.not_sent - report.not_built
        never_built = (
            f"; {report.not_built} more were never built (send them again)"
            if report.not_built
            else ""
        )
        print(
            f"firehose-console: interrupted: {kept} message(s) not sent, kept as dead letters "
            f"(`firehose-console dead-letters replay` sends them){never_built}",
            file=sys.stderr,
        )
        return EXIT_SIGTERM if received[0] == signal.SIGTERM else EXIT_SIGINT
    return EXIT_OK if report.delivered == report.requested else EXIT_FAILED


def _run_console(arguments: argparse.Namespace) -> int:
    limit_malloc_arenas()  # before the screen's, the sandbox's and the send's threads start
    # No garbage collection until the first screen is drawn (the app enables it again then):
    # Textual and the screen's widgets are made to last, and collections walking them while
    # they are made cost a fifth of the launch (README: "Performance").
    gc.disable()
    try:
        from console.app import run_console

        loaded = _load(arguments)
        return run_console(
            loaded,
            connection_name=arguments.connection,
            use_sandbox=arguments.sandbox,
            audience_name=arguments.audience,
        )
    finally:
        gc.enable()


def _refusals() -> tuple[type[Exception], ...]:
    """What the engine refuses with a message of its own (a journal it cannot write, a replay
    already running, dead letters that are not there): one line, status 1. Imported when a
    command has failed, not at every start (README: "Performance")."""
    from engine.dead_letters import ReplayInProgress, UnknownDeadLetters
    from engine.jsonl import JournalWriteFailed

    return (JournalWriteFailed, ReplayInProgress, UnknownDeadLetters)


def _fail(message: str, status: int, arguments: argparse.Namespace | None) -> int:
    """Print an error on stderr, any secret masked, and return the exit status."""
    loaded: LoadedSettings | None = getattr(arguments, "loaded", None)
    print(f"firehose-console: {redact(message, secrets_of(loaded))}", file=sys.stderr)
    return status


def _bad_settings(error: SettingsError) -> str:
    """One line for one problem; a heading and a line each for several."""
    if len(error.problems) == 1:
        return f"bad settings: {error.problems[0]}"
    return f"bad settings:\n{error}"


def _output_closed() -> int:
    """The reader of our output went away (`… | head -1`): end quietly. Both streams are
    pointed at /dev/null so the interpreter's last flush cannot complain either."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        # A stream that is not a real file (a test's capture) never flushes into the pipe.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(devnull, stream.fileno())
    os.close(devnull)
    return EXIT_CLOSED_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``firehose-console`` script; returns the exit status."""
    try:
        status = _main(argv)
        sys.stdout.flush()  # a closed pipe shows up here, not in the interpreter's last flush
        return status
    except BrokenPipeError:
        return _output_closed()


def _main(argv: Sequence[str] | None) -> int:
    arguments: argparse.Namespace | None = None
    try:
        arguments = _parse_arguments(argv)
        if arguments.command == "init":
            return _run_init(arguments)
        if arguments.command is None:
            return _run_console(arguments)
        return _run_session_command(arguments)
    except UsageError as error:
        return _fail(str(error), EXIT_USAGE, arguments)
    except SettingsError as error:
        return _fail(_bad_settings(error), EXIT_USAGE, arguments)
    except BrokenPipeError:
        raise  # not an error of ours: main ends quietly
    except _refusals() as error:
        return _fail(str(error), EXIT_FAILED, arguments)
    except KeyboardInterrupt:
        return _fail("interrupted", 130, arguments)
    except Exception as error:  # the last line of defence: one line, never a traceback
        text = " ".join(f"{type(error).__name__}: {error}".split())
        return _fail(text, EXIT_FAILED, arguments)


if __name__ == "__main__":
    sys.exit(main())
