"""How every `vlnav-*` entry point is built: one-line usage errors, `--version`, help that explains.

Every app is made by :func:`make_app`, and every command registered on it inherits, with no code of
its own:

* **Usage errors** (unknown command or option, a typo, a missing argument, a value of the wrong type)
  become ONE line on stderr, ``error: <what was wrong>; see '<command> --help'``, and
  exit code 2 -- the same shape as the library's :class:`~vlnav_data.errors.VlnavError` messages
  (``_common.run_command``). Typer's multi-line boxes are never printed.
* ``--version`` on the entry point prints ``<program> <version>`` and exits 0.
* **Help** is plain text (no Rich markup: what a help string says is what the user reads, brackets
  included), every option shows its default, values show a type word (``INTEGER``, ``PATH``, ``TEXT``)
  instead of Typer's ``<int>`` / ``<list[str]>`` placeholders, and flags show none.

Choice: plain-text help rather than Rich panels, because Rich reads ``[default: x]`` in a help string
as a style tag and deletes it (that is how ``build --help`` came to show "Arena preset ."); plain help
cannot lose text. ``tests/cli/test_cli_app.py`` walks every command of every app and fails on an
option without help or with a dangling fragment, so new commands are checked automatically.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup

HELP_OPTION = "--help"

_TYPE_WORDS = {"int": "INTEGER", "float": "FLOAT", "str": "TEXT", "path": "PATH", "file": "FILE", "directory": "DIR"}


def version_string(prog_name: str) -> str:
    """``<prog_name> <installed version>``, e.g. ``vlnav-data 0.1.0``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        number = version("vlnav-data")
    except PackageNotFoundError:  # running from a source tree that was never installed
        from vlnav_data import __version__ as number
    return f"{prog_name} {number}"


#: The exit code of the parser's usage errors (unknown option, missing argument, bad value), as click's.
USAGE_EXIT_CODE = 2


def usage_error_line(exc: typer.TyperException) -> str:
    """The one line for a parser error: the parser's message, lower-cased, plus where to look.

    Args:
        exc: what the parser raised (``No such option: --ot``, ``Missing option '--out'``, ...).

    Returns:
        ``error: no such option: --ot (Possible options: --json, --out); see 'vlnav-data build --help'``
        -- a single line.
    """
    message = " ".join(exc.format_message().split()).rstrip(".")
    if message[:1].isupper() and message[1:2].islower():
        message = message[0].lower() + message[1:]
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        where = f"see '{ctx.command_path} {HELP_OPTION}'"
        message += f" {where[0].upper()}{where[1:]}." if message.endswith("?") else f"; {where}"
    return f"error: {message}"


class _Argument(TyperArgument):
    """A positional argument shown by its name alone (``DATASET``), as click shows it."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def _usage_display_name(self) -> str:
        return self.display_name_raw + ("..." if self.nargs != 1 else "")


class VlnavCommand(TyperCommand):
    """A command whose help shows type words, not placeholders (see the module docstring)."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        for param in params:
            if isinstance(param, TyperArgument):
                if param.metavar is None:  # FILE, DATASET: the usage line names what to pass
                    param.metavar = param.name.upper()
                param.__class__ = _Argument
                continue
            if param.metavar is not None or getattr(param, "is_flag", False):
                continue
            inner = param.display_type(ctx).strip("<>")  # Typer's placeholder: <int>, <path>, <list[str]>
            repeatable = inner.startswith("list[") and inner.endswith("]")
            if repeatable:
                inner = inner[len("list[") : -1]
            inner = inner.removesuffix(" range")  # a bounded number: the bounds are printed after the help
            word = _TYPE_WORDS.get(inner, inner.upper())
            param.metavar = f"{word} (repeatable)" if repeatable else word
        return params


class VlnavGroup(TyperGroup):
    """An entry point that reports usage errors as one ``error:`` line with exit code 2."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command; parser errors become one line on stderr and exit code 2.

        Args:
            args: command-line arguments (default: ``sys.argv[1:]``).
            prog_name: the program's name in messages.
            complete_var: the shell-completion variable (unused: completion is off).
            standalone_mode: exit the process with the command's code (the console scripts), or
                return it / raise (``standalone_mode=False``, as click's).
            **extra: passed to click's context.

        Returns:
            The command's return value when ``standalone_mode`` is false.
        """
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.TyperException as exc:  # what the parser raises: usage errors (exit 2) and others
            if type(exc).__name__ == "NoArgsIsHelpError":  # bare entry point: its help, not an error
                typer.echo(exc.format_message())
                return _finish(0, standalone_mode)
            if not standalone_mode:
                raise
            if exc.exit_code == USAGE_EXIT_CODE:
                typer.echo(usage_error_line(exc), err=True)
            else:  # e.g. a file option that cannot be opened
                typer.echo(f"error: {' '.join(exc.format_message().split())}", err=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            if not standalone_mode:
                raise
            typer.echo("error: aborted", err=True)
            sys.exit(1)
        return _finish(rv, standalone_mode)


def _finish(rv: Any, standalone_mode: bool) -> Any:
    """click's non-standalone ``main`` returns an exit code for ``Exit``; exit with it when standalone."""
    if not standalone_mode:
        return rv
    sys.exit(rv if isinstance(rv, int) else 0)


class VlnavTyper(typer.Typer):
    """``typer.Typer`` whose commands default to :class:`VlnavCommand`."""

    def command(self, *args: Any, cls: type[TyperCommand] | None = None, **kwargs: Any) -> Any:
        """Register a command (``typer.Typer.command``) with the project's command class."""
        return super().command(*args, cls=cls or VlnavCommand, **kwargs)


def make_group(name: str, help: str) -> VlnavTyper:
    """A group of commands (an entry point, or a sub-command such as ``vlnav-data import``) built the one way:
    one-line usage errors, type words in help, defaults shown, no shell-completion options."""
    return VlnavTyper(
        name=name,
        cls=VlnavGroup,
        help=help,
        no_args_is_help=True,
        add_completion=False,
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
        context_settings={"show_default": True, "max_content_width": 100},
    )


def make_app(prog_name: str, help: str) -> VlnavTyper:
    """The Typer app of one entry point, with the behaviour of the module docstring.

    Args:
        prog_name: the console script's name (``vlnav-data``); ``--version`` prints it.
        help: one sentence saying what the entry point does.

    Returns:
        The app; register commands with ``@app.command()``.
    """
    app = make_group(prog_name, help)

    def _print_version(value: bool) -> None:
        if value:
            typer.echo(version_string(prog_name))
            raise typer.Exit()

    @app.callback()
    def _entry_point(
        version: bool = typer.Option(
            False, "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
        ),
    ) -> None:
        pass

    _entry_point.__doc__ = help
    return app
