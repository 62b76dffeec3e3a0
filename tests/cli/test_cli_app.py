"""What every entry point and command inherits from `cli._app.make_app`: help, `--version`, usage errors.

The walk covers every command of every app, so a command added later is checked without a new test.
"""

from __future__ import annotations

import dataclasses
import re

import pytest
import typer
from typer.testing import CliRunner

from vlnav_data.cli import data, expert, policy, probe, study
from vlnav_data.cli._app import VlnavGroup

runner = CliRunner()
APPS = {
    "vlnav-data": data.app,
    "vlnav-expert": expert.app,
    "vlnav-policy": policy.app,
    "vlnav-probe": probe.app,
    "vlnav-study": study.app,
}
# Commands whose --device default is not `auto`, and why (README, "Command contract").
DEVICE_DEFAULT_EXCEPTIONS = {("vlnav-expert", "train"): "cpu"}
PLACEHOLDER = re.compile(r"<(bool|int|str|float|path|list\[[^\]]*\])>|\{[A-Z_]+\}")
DANGLING = re.compile(r"\w \.(\s|$)|\(\s*\)|\[\s*\]|\[default: ?\]| ,")


def _commands() -> list[tuple[str, str, object]]:
    found = []
    for prog, app in APPS.items():
        group = typer.main.get_command(app)
        assert isinstance(group, VlnavGroup), f"{prog} is not built by cli._app.make_app"
        found += [(prog, name, cmd) for name, cmd in group.commands.items()]
    return found


COMMANDS = _commands()
IDS = [f"{prog} {name}" for prog, name, _ in COMMANDS]


def _help(prog: str, name: str) -> str:
    res = runner.invoke(APPS[prog], [name, "--help"], terminal_width=100)
    assert res.exit_code == 0, res.output
    return res.stdout


def _squash(text: str) -> str:
    return "".join(text.split())


@pytest.mark.parametrize(("prog", "name", "cmd"), COMMANDS, ids=IDS)
def test_every_option_is_described_without_placeholders_or_fragments(prog: str, name: str, cmd) -> None:
    text = _help(prog, name)
    assert cmd.help, f"`{prog} {name}` has no description"
    assert not PLACEHOLDER.search(text), f"`{prog} {name} --help` shows a placeholder: {PLACEHOLDER.search(text)}"
    assert not DANGLING.search(text), f"`{prog} {name} --help` has a dangling fragment: {DANGLING.search(text)}"
    for param in cmd.params:
        label = "/".join(param.opts)
        assert param.help and param.help.strip(), f"`{prog} {name}` {label} has no help text"
        # what the code says is what the user reads (no markup may eat part of it)
        assert _squash(param.help) in _squash(text), f"`{prog} {name}` {label}: help text not shown verbatim"
        if getattr(param, "is_flag", False) or param.param_type_name == "argument" or param.required:
            continue
        if param.default is not None and param.default != () and param.default != []:
            flat = " ".join(text.split())
            assert f"[default: {param.default}" in flat or f"default: {param.default}" in flat, (
                f"`{prog} {name}` {label}: default {param.default!r} not shown"
            )


@pytest.mark.parametrize(("prog", "name", "cmd"), COMMANDS, ids=IDS)
def test_writers_take_overwrite_and_shared_options_agree(prog: str, name: str, cmd) -> None:
    options = {opt: param for param in cmd.params for opt in param.opts}
    writes = "--out" in options or any(p.name == "out" for p in cmd.params)
    if writes:
        assert "--overwrite" in options, f"`{prog} {name}` writes --out but has no --overwrite"
    if "--seed" in options:
        assert options["--seed"].min == 0, f"`{prog} {name}` --seed accepts negative values"
    if "--device" in options:
        want = DEVICE_DEFAULT_EXCEPTIONS.get((prog, name), "auto")
        assert options["--device"].default in (want, None), f"`{prog} {name}` --device defaults to something else"


@pytest.mark.parametrize("prog", sorted(APPS))
def test_version_on_every_entry_point(prog: str) -> None:
    from importlib.metadata import version

    res = runner.invoke(APPS[prog], ["--version"])
    assert res.exit_code == 0 and res.stdout == f"{prog} {version('vlnav-data')}\n"


@pytest.mark.parametrize("prog", sorted(APPS))
def test_bare_entry_point_prints_its_commands(prog: str) -> None:
    res = runner.invoke(APPS[prog], [])
    assert res.exit_code == 0 and "Commands:" in res.stdout and "--version" in res.stdout


def test_build_help_states_the_build_config_defaults_and_lists_presets_and_encoders() -> None:
    from vlnav_data.collect import BuildConfig
    from vlnav_data.encoders import ENCODER_NAMES
    from vlnav_data.sim import PRESET_NAMES

    text = " ".join(_help("vlnav-data", "build").split())
    defaults = {f.name: f.default for f in dataclasses.fields(BuildConfig)}
    for option, field in [
        ("preset", "preset"),
        ("num-episodes", "num_episodes"),
        ("expert", "expert"),
        ("instructions", "instructions"),
        ("noise-std", "noise_std"),
        ("valid-fraction", "valid_fraction"),
        ("num-envs", "num_envs"),
        ("seed", "seed"),
        ("device", "device"),
        ("encoder-dtype", "encoder_dtype"),
    ]:
        shown = re.search(rf"--{option} \S+ .*?\[default: ([^\]]+)\]", text)
        assert shown is not None and shown.group(1) == str(defaults[field]), (option, shown and shown.group(1))
    assert "[default: siglip]" in text and defaults["encoders"] == ("siglip",)
    for name in (*PRESET_NAMES, *ENCODER_NAMES):
        assert name in _squash(text), f"build --help does not mention '{name}'"


@pytest.mark.parametrize(
    ("prog", "args", "first_line"),
    [
        (
            "vlnav-data",
            ["build", "--ot", "x.h5"],
            "error: no such option: --ot (Possible options: --json, --out); see 'vlnav-data build --help'",
        ),
        ("vlnav-data", ["buidl"], "error: no such command 'buidl'. Did you mean 'build'? See 'vlnav-data --help'."),
        ("vlnav-probe", ["linear"], "error: missing argument 'FILE'; see 'vlnav-probe linear --help'"),
        ("vlnav-policy", ["train", "d.h5"], "error: missing option '--out'; see 'vlnav-policy train --help'"),
        (
            "vlnav-data",
            ["build", "--num-episodes", "ten"],
            "error: invalid value for '--num-episodes': Input should be a valid integer, unable to parse string as "
            "an integer; see 'vlnav-data build --help'",
        ),
        (
            "vlnav-expert",
            ["eval", "--seed", "-3"],
            "error: invalid value for '--seed': Input should be greater than or equal to 0; "
            "see 'vlnav-expert eval --help'",
        ),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(prog: str, args: list[str], first_line: str) -> None:
    res = runner.invoke(APPS[prog], args)
    assert res.exit_code == 2, res.output
    assert res.stdout == "" and res.stderr == first_line + "\n"


def test_console_script_usage_error_is_one_line(tmp_path) -> None:
    """The installed entry point (a real process), not only the test runner."""
    import subprocess
    import sys

    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "from vlnav_data.cli.policy import main; main()",
            "eval",
            "m",
            "--out",
            "o",
            "--sed",
            "1",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.startswith("error: no such option: --sed") and run.stderr.count("\n") == 1
