"""The command-line front: the same verify, preview and send as the TUI, printed.

Exit status: 0 all good; 1 a check failed or something was not delivered; 2 bad usage or bad
settings (one message on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from engine.records import MAX_BURST_COUNT, Action, preview_document
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
    from engine.session import ConsoleSession

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_SETTINGS_PATH = Path("settings.toml")
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
        default=argparse.SUPPRESS if suppress else DEFAULT_SETTINGS_PATH,
        help="settings file (default ./settings.toml; missing: the embedded sandbox)",
    )
    parser.add_argument("--connection", default=default, help="connection to use")
    parser.add_argument(
        "--sandbox",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="force the embedded sandbox (moto, in-process)",
    )


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    if value > MAX_BURST_COUNT:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_BURST_COUNT:,}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError("must be a number above 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="firehose-console",
        description="Operations console for an audience → Amazon Kinesis Data Firehose "
        "integration. With no command, opens the console (TUI).",
    )
    _global_options(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)
    actions = [action.value for action in Action]

    verify = commands.add_parser("verify", help="check the stream and keys; print the IAM policy")
    preview = commands.add_parser("preview", help="show the records an action would send")
    preview.add_argument("action", choices=actions)
    send = commands.add_parser("send", help="send test messages into the stream")
    send.add_argument("action", choices=actions)
    send.add_argument("--count", type=_count, default=1, help="messages to send (N users)")
    send.add_argument("--rate", type=_positive_float, help="records per second at most")
    send.add_argument("--batch", action="store_true", help="use PutRecordBatch (≤500 a call)")
    dead = commands.add_parser("dead-letters", help="list or re-send undelivered messages")
    dead.add_argument("what", choices=["list", "replay"])
    init = commands.add_parser("init", help="write a commented settings file to start from")
    init.add_argument("path", nargs="?", type=Path, help="where (default: --settings)")
    for sub in (verify, preview, send, dead):
        sub.add_argument("--json", action="store_true", help="print one JSON document")
    for sub in (verify, preview, send, dead, init):
        _global_options(sub, suppress=True)
    return parser


def _print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def _load(arguments: argparse.Namespace) -> LoadedSettings:
    loaded = load_settings(arguments.settings)
    arguments.loaded = loaded  # so every error message can mask its secret
    warning = permission_warning(loaded)
    if warning:
        print(f"firehose-console: {warning}", file=sys.stderr)
    if arguments.connection and arguments.connection not in loaded.settings.connections:
        known = ", ".join(loaded.settings.connections)
        raise UsageError(f"no connection named {arguments.connection!r}; known: {known}")
    return loaded


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
    if path.exists():
        raise UsageError(f"{path} already exists; init never overwrites a file (pick another path)")
    write_atomically(path, render_example_settings(), private=False)
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
        sink=progress.on_event if progress else lambda event: None,
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
        if arguments.what == "list":
            letters = session.dead_letters()
            if as_json:
                _print_json(
                    {
                        "journal": str(session.dead_letter_journal().path),
                        "dead_letters": [letter.document() for letter in letters],
                    }
                )
            else:
                print(cli_output.render_dead_letters(letters, session.dead_letter_journal().path))
            return EXIT_OK
        duplicates = sum(1 for letter in session.dead_letters() if letter.possible_duplicate)
        replay = session.replay_dead_letters()
        if as_json:
            _print_json({**replay.document(), "possible_duplicates": duplicates})
        else:
            print(cli_output.render_send_report(replay, session.dead_letter_journal().path))
            if duplicates:
                print(cli_output.render_possible_duplicates(duplicates))
        return EXIT_OK if replay.ok else EXIT_FAILED
    finally:
        session.close()


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
    from console.app import run_console

    loaded = _load(arguments)
    return run_console(loaded, connection_name=arguments.connection, use_sandbox=arguments.sandbox)


def _fail(message: str, status: int, arguments: argparse.Namespace | None) -> int:
    """Print an error on stderr, any secret masked, and return the exit status."""
    loaded: LoadedSettings | None = getattr(arguments, "loaded", None)
    print(f"firehose-console: {redact(message, secrets_of(loaded))}", file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``firehose-console`` script; returns the exit status."""
    arguments: argparse.Namespace | None = None
    try:
        arguments = build_parser().parse_args(argv)
        if arguments.command == "init":
            return _run_init(arguments)
        if arguments.command is None:
            return _run_console(arguments)
        return _run_session_command(arguments)
    except UsageError as error:
        return _fail(str(error), EXIT_USAGE, arguments)
    except SettingsError as error:
        return _fail(f"bad settings:\n{error}", EXIT_USAGE, arguments)
    except KeyboardInterrupt:
        return _fail("interrupted", 130, arguments)
    except Exception as error:  # the last line of defence: one line, never a traceback
        text = " ".join(f"{type(error).__name__}: {error}".split())
        return _fail(text, EXIT_FAILED, arguments)


if __name__ == "__main__":
    sys.exit(main())
