"""docs/encoders.md "Bring your own encoder" stays true: bash lines run (scaled), the plugin works."""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vlnav_data.cli.data import app as data_app
from vlnav_data.cli.policy import app as policy_app

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "encoders.md"
APPS = {"vlnav-data": data_app, "vlnav-policy": policy_app}
runner = CliRunner()


def section_blocks() -> list[tuple[str, str]]:
    """``(language, code)`` of every fenced block of the section."""
    text = GUIDE.read_text() + "\n## "  # the section may be the guide's last
    start = text.index("## Bring your own encoder\n")
    end = text.index("\n## ", start + 1)
    return re.findall(r"```(\w+)\n(.*?)```", text[start:end], flags=re.S)


def commands(code: str) -> list[str]:
    """Command lines of a block, comments dropped."""
    out = []
    for line in code.splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def scaled(argv: list[str]) -> list[str]:
    """Fewer training steps and evaluation episodes: the same commands, smaller (the build keeps its episodes,
    so that its validation split is not empty)."""
    out = list(argv)
    for flag, most in (("--num-episodes", 2 if out[0] == "eval" else 10**9), ("--steps", 20)):
        if flag in out:
            i = out.index(flag) + 1
            out[i] = str(min(int(out[i]), most))
    return out


def invoke(line: str) -> None:
    argv = shlex.split(line)
    if argv[0] in APPS:
        args = scaled(argv[1:])
        if args[0] == "build":
            args.append("--no-progress")
        r = runner.invoke(APPS[argv[0]], args)
        assert r.exit_code == 0, (line, r.output)
    else:
        subprocess.run(argv, check=True)


def test_bash_blocks_run_offline(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    blocks = [code for lang, code in section_blocks() if lang == "bash"]
    assert blocks, "the section has a bash block"
    lines = [line for code in blocks for line in commands(code)]
    assert lines[0].startswith("python -c")  # the tiny checkpoint comes first
    lines[0] = lines[0].replace("python", shlex.quote(sys.executable), 1)
    for line in lines:
        invoke(line)
    from vlnav_data.dataset import DatasetReader

    with DatasetReader(tmp_path / "byo.h5") as reader:
        entry = reader.encoder_specs["naflex"]
    assert entry["source"] == "hf" and entry["preprocessing"]["resize_mode"] == "naflex"
    assert (tmp_path / "runs" / "bc-naflex-eval" / "result.json").is_file()


def test_plugin_block_registers_an_encoder_the_cli_builds_with(tmp_path):
    from vlnav_data.encoders import make_encoder, unregister_encoder

    [code] = [code for lang, code in section_blocks() if lang == "python"]
    module_path = tmp_path / "my_encoders.py"
    module_path.write_text(code)
    spec = importlib.util.spec_from_file_location("my_encoders", module_path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        enc = make_encoder("mean-colour")
        frames = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
        v = frames.reshape(2, -1, 3).mean(axis=1) + 1.0
        np.testing.assert_allclose(enc.encode_images(frames), v / np.linalg.norm(v, axis=1, keepdims=True), rtol=1e-6)
        out = tmp_path / "mean.h5"
        r = runner.invoke(data_app, ["build", "--out", str(out), "--encoder", "mean-colour", "--num-episodes", "1",
                                     "--expert", "pursuit", "--image-size-px", "16", "--max-episode-steps", "10",
                                     "--device", "cpu", "--no-progress"])  # fmt: skip
        assert r.exit_code == 0, r.output
    finally:
        unregister_encoder("mean-colour")


@pytest.mark.parametrize("app_name", sorted(APPS))
def test_sh_lines_use_existing_flags(app_name):
    lines = [part.strip() for lang, code in section_blocks() if lang == "sh" for line in commands(code)
             for part in line.split("&&")]  # fmt: skip
    checked = 0
    for line in lines:
        argv = shlex.split(line)
        if argv[0] != app_name:
            continue
        help_text = runner.invoke(APPS[app_name], [argv[1], "--help"], terminal_width=200).output
        for flag in (a for a in argv if a.startswith("--")):
            assert flag in help_text, (line, flag)
        checked += 1
    assert checked or app_name != "vlnav-data"
