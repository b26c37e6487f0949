"""`evalsuite` entry point: a typer app whose commands live one per module in this package.

Every command raises `UserError` for input a user can fix; `main()` turns it into one line on
stderr and exit code 2. A full disk (ENOSPC, EDQUOT, SQLite's "database or disk is full") is fixable
too and gets the same treatment. Anything else is a bug and keeps its traceback.

The command modules import the stages they drive inside the command function, not at the top:
`--help` imports every command module (`_register`), and with the stages at the top it would
import them all. Measured (2-core machine, 2026-12-06, three runs each): `evalsuite --help`
0.58-0.61 s as it is; importing the stages the commands use 1.58-1.74 s.
"""

from __future__ import annotations

import errno
import sqlite3
import sys
from typing import Optional

import typer

from evalsuite.errors import UserError

app = typer.Typer(
    name="evalsuite",
    help="Reproduce Open LLM Leaderboard v2 scores for a merged model and compare it with its parents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

# The registry: command name -> "module:function". Importing lazily keeps `evalsuite --help` fast
# and lets each command pull in heavy libraries (torch, lm-eval) only when it runs.
COMMANDS: dict[str, str] = {
    "run": "evalsuite.cli.run:run",
    "doctor": "evalsuite.cli.doctor:doctor",
    "fixtures": "evalsuite.cli.fixtures:app",
    "score": "evalsuite.cli.score:score",
    "merge": "evalsuite.cli.merge:merge",
    "compare": "evalsuite.cli.compare:compare",
    "report": "evalsuite.cli.report:report",
    "view": "evalsuite.cli.view:view",
    "history": "evalsuite.cli.history:history",
    "baseline": "evalsuite.cli.baseline:app",
    "regress": "evalsuite.cli.regress:regress",
    "import": "evalsuite.cli.import_:import_",
    "verify": "evalsuite.cli.verify:verify",
    "card": "evalsuite.cli.card:card",
    "sweep": "evalsuite.cli.sweep:sweep",
    "export": "evalsuite.cli.export:export",
    "plan": "evalsuite.cli.plan:plan",
}


_COMMAND = None  # the click command typer builds from `app`: once per process (see `command`)


def _register() -> None:
    """Add COMMANDS to `app`, once (typer keeps every registration: a second one would double it)."""
    import importlib

    if app.registered_commands or app.registered_groups:
        return
    for name, target in COMMANDS.items():
        module, func = target.split(":")
        obj = getattr(importlib.import_module(module), func)
        if isinstance(obj, typer.Typer):
            app.add_typer(obj, name=name)
        else:
            app.command(name)(obj)


def command():
    """The click command of `app` with every command registered. `app(...)` would rebuild it from
    the functions' signatures on each call (0.13 s): built once, for processes that call `main`
    many times (the tests, a notebook)."""
    global _COMMAND
    if _COMMAND is None:
        _register()
        _COMMAND = typer.main.get_command(app)
    return _COMMAND


def main(argv: list[str] | None = None) -> int:
    click = _click_exceptions()
    try:
        rv = command()(args=argv, standalone_mode=False, prog_name="evalsuite")
    except click.NoArgsIsHelpError as exc:  # `evalsuite` or a group alone: its help
        typer.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        return 0
    except click.UsageError as exc:  # typer/click's own checks (unknown option, bad choice, range): one line
        typer.echo(f"error: {usage_line(exc)}", err=True)
        return 2
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        return 130
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except (OSError, sqlite3.OperationalError) as exc:
        message = disk_full_message(exc)
        if message is None:
            raise
        typer.echo(f"error: {message}", err=True)
        return 2
    except SystemExit as exc:  # click's normal exit path
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return rv if isinstance(rv, int) else 0  # click returns typer.Exit's code when not standalone


def _click_exceptions():
    """The exceptions module of the click typer runs on: typer >= 0.24 carries its own copy."""
    try:
        import typer._click.exceptions as exceptions  # type: ignore[import-not-found]
    except ImportError:
        import click.exceptions as exceptions
    return exceptions


def usage_line(exc) -> str:
    """A click usage error as one line: the command, what is wrong, where the help is."""
    cmd = exc.ctx.command_path if exc.ctx is not None else "evalsuite"
    message = " ".join(exc.format_message().split())
    return f"{cmd}: {message} (see {cmd} --help)"


def disk_full_message(exc: BaseException) -> Optional[str]:
    """One line for an error that means the disk is full, naming what was being written; None
    for any other error. Writes are atomic, so what was there before is intact."""
    from evalsuite.fsio import disk_full

    if isinstance(exc, OSError) and disk_full(exc):
        what = " (disk quota exceeded)" if exc.errno == errno.EDQUOT else ""
        where = f": {exc.filename}" if exc.filename else ""
        return f"no space left on device{what}{where}"
    if isinstance(exc, sqlite3.OperationalError) and getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        return "no space left on device: history.sqlite (the run history in the results folder)"
    return None


if __name__ == "__main__":
    sys.exit(main())
