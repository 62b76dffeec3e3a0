"""What every command shares: error handling, the output policy, result.json, common options.

Contract (docs/commands.md):

* **Errors.** A :class:`~vlnav_data.errors.VlnavError` becomes one line ``error: <message>`` on stderr
  and exit code 2 (:func:`run_command`); parser errors take the same shape (``_app.VlnavGroup``); any
  other exception propagates with its traceback (never an error message with exit code 0).
* **Outputs.** Every command that writes takes ``--out`` and ``--overwrite`` and enters
  :func:`writing_to` before any work: an existing output (a file, or a non-empty directory) is refused
  without ``--overwrite``; a file where a directory belongs (or the reverse) and an output that would
  swallow an input are refused always. With ``--overwrite`` an existing directory is moved aside to
  ``<out>.previous`` and deleted only once the command succeeds (restored if it fails); a
  ``<out>.previous`` left by a killed run is refused, with or without ``--overwrite``, until the user
  restores or deletes it (the message says how); file outputs
  are replaced atomically by their writers (``.partial`` + rename), so the old file stays until the new
  one is complete. Nothing is written into the working directory unless ``--out`` points there.
* **result.json.** A directory output holds ``<out>/result.json``; a file output gets
  ``<out>.result.json`` beside it (``demos.h5.result.json``), so two commands writing into one folder
  never clobber each other's result. ``--json`` also prints it to stdout.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

import typer

from vlnav_data.devices import DEVICE_HELP, resolve_device  # noqa: F401  re-exported for the command modules
from vlnav_data.errors import ConfigError, VlnavError
from vlnav_data.jsonio import (
    dataclass_from,
    dumps,
    to_jsonable,  # noqa: F401  re-exported for the command modules
    write_json_atomic,
)

T = TypeVar("T")

PREVIOUS_SUFFIX = ".previous"
"""Where ``--overwrite`` keeps an existing output directory until the command succeeds."""

RESULT_SUFFIX = ".result.json"
"""The result of a command that writes one file ``OUT`` is ``OUT.result.json``."""

# Options every command spells the same way (Typer option objects can be shared between commands).
OVERWRITE = typer.Option(
    False,
    "--overwrite",
    help="Replace an existing output; the old one is kept until the command succeeds.",
)
JSON_OUT = typer.Option(False, "--json", help="Also print result.json to stdout.")
DEVICE = typer.Option("auto", "--device", help=f"Torch device: {DEVICE_HELP}.")
NO_PROGRESS = typer.Option(False, "--no-progress", help="Do not draw the progress bar.")
# the options of the commands that run encoders over a file's frames (build, embed)
ALLOW_MIXED_PRECISION = typer.Option(
    False, "--allow-mixed-precision", help="Let --resume continue in another dtype/device type (recorded)."
)
CROSS_EPISODE_BATCHING = typer.Option(
    None,
    "--cross-episode-batching/--per-episode-batching",
    help="Fill encoder batches with frames of several episodes [default: on CUDA only].",
)
TRUST_REMOTE_CODE = typer.Option(
    False, "--trust-remote-code", help="Let hf: checkpoints run their own code (recorded in the file)."
)
RESOLVE_DEVICE = {"device": resolve_device}
"""``run_config(..., convert=RESOLVE_DEVICE)``: ``--device auto|cpu|cuda:N`` to the device it names, checked."""


def seed_option(help: str, default: int = 0) -> Any:
    """A ``--seed`` option: a non-negative integer, checked by the parser before any work.

    Args:
        help: what the seed determines, for ``--help``.
        default: the default seed.

    Returns:
        The Typer option.
    """
    return typer.Option(default, "--seed", min=0, help=help)


def progress_printer(command: str) -> Callable[[str], None]:
    """A callback printing ``<command> [  12.3 s] <line>`` on stderr: progress of a long run, off stdout."""
    import time

    started = time.perf_counter()

    def say(line: str) -> None:
        typer.echo(f"{command} [{time.perf_counter() - started:7.1f} s] {line}", err=True)

    return say


def fail(message: str) -> None:
    """Print ``error: message`` (one line) on stderr and exit with code 2."""
    first_line = " ".join(str(message).split())
    typer.echo(f"error: {first_line}", err=True)
    raise typer.Exit(code=2)


def run_command(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call a library function, turning user errors into ``error: ...`` and exit code 2."""
    try:
        return fn(*args, **kwargs)
    except VlnavError as exc:
        fail(str(exc))
        raise AssertionError("unreachable") from exc


def check_output(
    out: Path,
    *,
    kind: Literal["file", "dir"],
    overwrite: bool,
    inputs: Iterable[Path | None] = (),
    option: str = "--out",
    example: str | None = None,
) -> Path:
    """Refuse an output that the command must not write (the rules of :func:`writing_to`).

    Args:
        out: the output path the user gave.
        kind: ``file`` (one file, e.g. ``demos.h5``) or ``dir`` (a directory of outputs).
        overwrite: whether ``--overwrite`` was given.
        inputs: the command's input paths; an output equal to one, or a directory holding one, is refused.
        option: the option's name in messages.
        example: for ``kind="file"``, a file name suggested when ``out`` is a directory.

    Returns:
        ``out``.

    Raises:
        ConfigError: with a message saying what was expected and what to do.
    """
    out = Path(out)
    resolved = out.resolve()
    for item in inputs:
        if item is None:
            continue
        src = Path(item).resolve()
        if resolved == src or (kind == "dir" and resolved in src.parents):
            raise ConfigError(
                f"{option} '{out}' {'is' if resolved == src else 'contains'} the input '{item}', which writing "
                f"there would destroy; choose another {option}"
            )
    for parent in resolved.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{option} '{out}' lies under '{parent}', which is a file; choose another {option}")
            break
    if kind == "file":
        if out.is_dir():
            hint = f" such as '{out / example}'" if example else ""
            raise ConfigError(f"{option} '{out}' is a directory; expected a file path{hint}")
        if out.exists() and not overwrite:
            raise ConfigError(
                f"{option} '{out}' already exists; pass --overwrite to replace it, or choose another {option}"
            )
        return out
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{option} '{out}' is a file; expected a directory (new or empty)")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ConfigError(
            f"output directory '{out}' already exists and is not empty; pass --overwrite to replace its "
            f"contents, or choose another {option}"
        )
    return out


@contextmanager
def writing_to(
    out: Path | None,
    *,
    kind: Literal["file", "dir"],
    overwrite: bool,
    inputs: Iterable[Path | None] = (),
    option: str = "--out",
    example: str | None = None,
) -> Iterator[Path | None]:
    """Check ``out`` before any work, then guard it while the command writes (module docstring).

    Use as ``with writing_to(out, kind="dir", overwrite=overwrite, inputs=[dataset]): ...`` around the
    library call. A refused output ends the command with one ``error:`` line and exit code 2.

    Args:
        out: the output path (``None``: the command writes nothing; no checks).
        kind: ``file`` or ``dir``.
        overwrite: whether ``--overwrite`` was given.
        inputs: the command's input paths (see :func:`check_output`).
        option: the option's name in messages.
        example: a file name suggested when a file output names a directory.

    Yields:
        ``out``.
    """
    if out is None:
        yield None
        return
    previous = Path(out).with_name(Path(out).name + PREVIOUS_SUFFIX)
    if kind == "dir" and previous.exists():  # before any other check: the user has a decision to make first
        fail(
            f"'{previous}' holds the old contents of '{out}', moved aside by an --overwrite run that was killed "
            f"before it finished, so '{out}' is missing or incomplete; to keep the old output delete '{out}' "
            f"(if present) and rename '{previous}' to '{out}', otherwise delete '{previous}'; then run again"
        )
    run_command(check_output, out, kind=kind, overwrite=overwrite, inputs=inputs, option=option, example=example)
    out = Path(out)
    moved = False
    if kind == "dir" and out.is_dir() and any(out.iterdir()):
        os.replace(out, previous)
        moved = True
    try:
        yield out
    except BaseException as exc:
        if moved and not (isinstance(exc, typer.Exit) and exc.exit_code == 0):
            if out.exists():
                shutil.rmtree(out) if out.is_dir() else out.unlink()
            os.replace(previous, out)
            moved = False
        raise
    finally:
        if moved:
            shutil.rmtree(previous)


def result_path(out: Path, kind: Literal["file", "dir"] = "dir") -> Path:
    """Where a command writing ``out`` puts its result: ``out/result.json`` or ``out.result.json``."""
    out = Path(out)
    return out / "result.json" if kind == "dir" else out.with_name(out.name + RESULT_SUFFIX)


def emit_result(
    result: Any, out: Path | None, as_json: bool = False, *, kind: Literal["file", "dir"] = "dir"
) -> Path | None:
    """Write the command's result (:func:`result_path`) and print it with ``--json``.

    Args:
        result: a dataclass or dict of the outcome.
        out: the command's output (a directory, or one file with ``kind="file"``); ``None``: print only.
        as_json: also print the JSON to stdout.
        kind: what ``out`` is.

    Returns:
        The path written, or ``None``.
    """
    path = None
    if out is not None:
        path = result_path(out, kind)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, result)
    if as_json:
        sys.stdout.write(dumps(result))
    return path


def command_config(config_type: type[T], parameters: Mapping[str, Any], /, **values: Any) -> T:
    """A command's config from the command's parameters: one config dataclass per command, filled by name.

    A command names its Python parameters after the fields of its config (the flag keeps the user's spelling:
    ``out_dir: Path = typer.Option(..., "--out")``) and hands its ``locals()`` as ``parameters``; only the
    names of fields are read (:func:`~vlnav_data.jsonio.dataclass_from`), so a command assigns no local of a
    field's name before the call. ``values`` gives the fields whose value the command converts first
    (``encoders=tuple(encoder)``); parameters that are no field (``overwrite`` where the config has none,
    ``as_json``) are the shell's own.

    Raises:
        TypeError: ``values`` names something that is not a field of ``config_type`` (a programming error).
        VlnavError: whatever the config's own checks raise (the command turns it into an ``error:`` line).
    """
    return dataclass_from(config_type, parameters, **values)


def run_config(
    run: Callable[[Any], T],
    config_type: type,
    parameters: Mapping[str, Any],
    /,
    *,
    out: Path | None,
    inputs: Iterable[Path | None] = (),
    kind: Literal["file", "dir"] = "dir",
    convert: Mapping[str, Callable[[Any], Any]] | None = None,
    **values: Any,
) -> T:
    """The whole shell of a command that writes ``out``: its config, the output policy, the run, the result.

    ``run(command_config(config_type, parameters, **values))`` inside :func:`run_writing`, so the output is
    checked before any work and a user error (a config's own check included) is one ``error:`` line, exit 2.
    ``parameters`` is the command's ``locals()`` (:func:`command_config`), which also hold the shell's own
    ``overwrite`` and ``as_json``; ``convert`` maps a parameter to the function that turns it into its field's
    value inside that guard (``convert=RESOLVE_DEVICE``, i.e. ``{"device": resolve_device}``: a GPU that is
    not there is an ``error:`` line, after the output check, as every other refusal). Returns ``run``'s result.
    """

    def go() -> T:
        converted = {name: fn(parameters[name]) for name, fn in (convert or {}).items()}
        return run(command_config(config_type, parameters, **converted, **values))

    overwrite, as_json = bool(parameters["overwrite"]), bool(parameters["as_json"])
    return run_writing(go, out, kind=kind, overwrite=overwrite, inputs=inputs, as_json=as_json)  # type: ignore[arg-type]


def run_writing(
    go: Callable[[], T],
    out: Path,
    *,
    kind: Literal["file", "dir"],
    overwrite: bool,
    as_json: bool = False,
    inputs: Iterable[Path | None] = (),
) -> T:
    """The shape of a command that writes one output: ``out`` checked before any work (:func:`writing_to`), the
    library call ``go()`` (:func:`run_command`: a user error is one ``error:`` line, exit 2), its result written
    beside the output and printed with ``--json`` (:func:`emit_result`). Returns the result."""
    with writing_to(out, kind=kind, overwrite=overwrite, inputs=inputs):
        result = run_command(go)
        emit_result(result, out, as_json, kind=kind)
    return result
