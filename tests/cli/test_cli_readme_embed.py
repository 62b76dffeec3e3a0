"""docs/encoders.md "Add an encoder to an existing dataset" stays true: bash lines run (scaled), sh flags exist."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from typer.testing import CliRunner

from vlnav_data.cli.data import app

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "encoders.md"
runner = CliRunner()


def section_blocks() -> list[tuple[str, str]]:
    """``(language, code)`` of every fenced block of the section."""
    text = GUIDE.read_text() + "\n## "  # the section may be the guide's last
    start = text.index("## Add an encoder to an existing dataset\n")
    end = text.index("\n## ", start + 1)
    return re.findall(r"```(\w+)\n(.*?)```", text[start:end], flags=re.S)


def command_lines(lang: str) -> list[list[str]]:
    """argv of every command of the section's ``lang`` blocks (comments dropped, ``&&`` split)."""
    out = []
    for block_lang, code in section_blocks():
        if block_lang != lang:
            continue
        for line in code.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            out += [shlex.split(part) for part in line.split("&&") if part.strip() and not line.startswith("#")]
    return out


def test_bash_lines_run_offline_and_do_what_they_say(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    lines = command_lines("bash")
    assert [argv[:2] for argv in lines] == [["vlnav-data", "build"]] + [["vlnav-data", "embed"]] * 2 + [
        ["vlnav-data", "validate"],
        ["vlnav-data", "info"],
    ]
    for argv in lines:
        args = argv[1:]
        if args[0] == "build":  # scaled down: fewer, shorter episodes, smaller frames
            for flag, value in (("--num-episodes", "3"), ("--image-size-px", "32")):
                args[args.index(flag) + 1] = value
            args += ["--max-episode-steps", "20", "--no-progress", "--device", "cpu"]
        if args[0] == "embed":
            args += ["--no-progress", "--device", "cpu"]
        r = runner.invoke(app, args)
        assert r.exit_code == 0, (argv, r.output)
    from vlnav_data.dataset import DatasetReader

    with DatasetReader(tmp_path / "both.h5") as both, DatasetReader(tmp_path / "base.h5") as base:
        assert both.encoders == ("oracle", "siglip-tiny-random")
        assert base.encoders == ("oracle", "clip-tiny-random")  # embedded in place


def test_sh_lines_use_existing_flags():
    lines = command_lines("sh")
    assert lines
    for argv in lines:
        assert argv[:2] == ["vlnav-data", "embed"]
        help_text = runner.invoke(app, ["embed", "--help"], terminal_width=200).output
        for flag in (a for a in argv if a.startswith("--")):
            assert flag in help_text, (argv, flag)
