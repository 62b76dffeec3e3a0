"""``--compile`` on ``build``, ``embed`` and ``policy eval``, on the CPU: compile time reported apart.

Each command compiles before its clock starts and writes ``compile_s`` (seconds) and ``compiled`` (what) to
its result.json; the throughput figures exclude it. Compiled and eager runs agree: the same episodes and
actions (the expert reads states), frames within one intensity level (the compiled shaders round a few
pixels the other way), float16 embeddings within 2e-3.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from vlnav_data.cli.data import app as data_app
from vlnav_data.cli.policy import app as policy_app

runner = CliRunner()
BUILD = [
    "build", "--num-episodes", "2", "--encoder", "siglip-tiny-random", "--encoder", "vilt-tiny-random",
    "--expert", "pursuit", "--image-size-px", "32", "--max-episode-steps", "25", "--num-envs", "2",
    "--device", "cpu", "--valid-fraction", "0.5", "--no-progress",
]  # fmt: skip

pytestmark = pytest.mark.slow  # torch.compile on 2 CPU cores: about a minute for the three commands


def _ok(result):
    assert result.exit_code == 0, result.output
    return result


def test_compile_on_build_embed_and_eval(tmp_path):
    eager, compiled = tmp_path / "eager.h5", tmp_path / "compiled.h5"
    _ok(runner.invoke(data_app, [*BUILD, "--out", str(eager)]))
    out = _ok(runner.invoke(data_app, [*BUILD, "--out", str(compiled), "--compile"])).stdout
    assert "compiled renderer, siglip-tiny-random in" in out
    res = json.loads((tmp_path / "compiled.h5.result.json").read_text())
    assert res["compiled"] == ["renderer", "siglip-tiny-random"] and res["compile_s"] > 0  # ViLT runs eager
    assert json.loads((tmp_path / "eager.h5.result.json").read_text())["compile_s"] == 0.0
    with h5py.File(eager) as a, h5py.File(compiled) as b:
        assert json.loads(b.attrs["build_config_json"])["compile"] is True
        assert "--compile" in b.attrs["rebuild_command"]
        for demo in a["data"]:
            x, y = a["data"][demo], b["data"][demo]
            np.testing.assert_array_equal(x["actions"][()], y["actions"][()])
            assert np.abs(x["obs/rgb"][()].astype(int) - y["obs/rgb"][()].astype(int)).max() <= 1
            for key in ("obs/siglip-tiny-random_joint", "obs/vilt-tiny-random_joint"):
                np.testing.assert_allclose(x[key][()].astype(np.float32), y[key][()].astype(np.float32), atol=2e-3)

    embedded = tmp_path / "embedded.h5"
    args = ["embed", str(eager), "--encoder", "clip-tiny-random", "--out", str(embedded), "--device", "cpu"]
    _ok(runner.invoke(data_app, [*args, "--compile", "--no-progress"]))
    res = json.loads((tmp_path / "embedded.h5.result.json").read_text())
    assert res["compiled"] == ["clip-tiny-random"] and res["compile_s"] > 0 and res["frames_per_s"] > 0

    model = tmp_path / "model"
    train = ["train", str(eager), "--out", str(model), "--encoder", "siglip-tiny-random", "--steps", "20"]
    _ok(runner.invoke(policy_app, [*train, "--device", "cpu"]))
    results = {}
    for flag in ((), ("--compile",)):
        out_dir = tmp_path / ("eval-compiled" if flag else "eval")
        cmd = ["eval", str(model), "--out", str(out_dir), "--num-episodes", "2", "--num-envs", "2", "--device", "cpu"]
        _ok(runner.invoke(policy_app, [*cmd, *flag, "--expert", "none"]))
        results[bool(flag)] = json.loads((out_dir / "result.json").read_text())
    assert results[True]["compiled"] == ["renderer", "siglip-tiny-random"] and results[True]["compile_s"] > 0
    assert results[False]["compiled"] == [] and results[True]["student_env_steps_per_s"] > 0
