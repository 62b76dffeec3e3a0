"""`--device cuda:N` is accepted wherever a device is: configs take it, commands resolve it with the one rule."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from vlnav_data.cli.data import app as data_app
from vlnav_data.cli.policy import app as policy_app
from vlnav_data.cli.probe import app as probe_app
from vlnav_data.errors import ConfigError

SAMPLE = Path(__file__).resolve().parents[2] / "datasets" / "samples" / "tiny.h5"
NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the messages of a machine without a GPU")
runner = CliRunner()


def _configs(tmp_path, device):
    from vlnav_data.collect import BuildConfig
    from vlnav_data.expert.config import EvalConfig as ExpertEvalConfig
    from vlnav_data.expert.config import TrainConfig as ExpertTrainConfig
    from vlnav_data.policy.dagger import DaggerConfig
    from vlnav_data.policy.evaluate import EvalConfig
    from vlnav_data.policy.train import TrainConfig
    from vlnav_data.probes.knn import KnnProbeConfig
    from vlnav_data.probes.spatial import SpatialProbeConfig

    return {
        "build": lambda: BuildConfig(out=str(tmp_path / "x.h5"), device=device),
        "policy eval": lambda: EvalConfig(model_dir=tmp_path, out_dir=tmp_path, device=device),
        "dagger": lambda: DaggerConfig(dataset=SAMPLE, out_dir=tmp_path, device=device),
        "policy train": lambda: TrainConfig(dataset=SAMPLE, out_dir=tmp_path, device=device),
        "probe knn": lambda: KnnProbeConfig(path=SAMPLE, out_dir=tmp_path / "k", device=device),
        "probe spatial": lambda: SpatialProbeConfig(path=SAMPLE, out_dir=tmp_path / "s", device=device),
        "expert train": lambda: ExpertTrainConfig(out_dir=tmp_path / "ppo", device=device),
        "expert eval": lambda: ExpertEvalConfig(device=device),
    }


def test_every_config_takes_cuda_n_and_checks_the_name_with_the_one_rule(tmp_path):
    """Every config accepts ``cuda:N`` (a GPU need not be here to configure one) and refuses a name the one
    device rule does not know, with that rule's message, when it is made (before any work)."""
    for name, make in _configs(tmp_path, "cuda:1").items():
        assert make().device == "cuda:1", name
    for name, make in _configs(tmp_path, "gpu:1").items():
        with pytest.raises(ConfigError, match=r"cpu, cuda or cuda:N; received 'gpu:1'"):
            make()
            pytest.fail(f"the {name} config accepted device 'gpu:1'")


@NO_GPU
def test_commands_resolve_cuda_n_and_say_when_the_gpu_is_absent(tmp_path):
    expected = (
        f"error: device 'cuda:1' was requested but torch {torch.__version__} sees no CUDA GPU here; use --device cpu "
        "(or auto)."
    )
    commands = [
        (policy_app, ["train", str(SAMPLE), "--out", str(tmp_path / "m"), "--device", "cuda:1"]),
        (policy_app, ["eval", str(tmp_path), "--out", str(tmp_path / "e"), "--device", "cuda:1"]),
        (
            data_app,
            ["build", "--out", str(tmp_path / "x.h5"), "--device", "cuda:1", "--encoder", "oracle", "--no-progress"],
        ),
    ]
    for app, args in commands:
        r = runner.invoke(app, args)
        assert r.exit_code == 2 and r.stderr.strip() == expected, (args, r.output)
    spatial = runner.invoke(probe_app, ["spatial", str(SAMPLE), "--out", str(tmp_path / "s"), "--device", "cuda:1",
                                        "--num-pairs", "10"])  # fmt: skip
    assert spatial.exit_code == 2 and "--device 'cuda:1' was requested but torch" in spatial.stderr


@NO_GPU
def test_arena_and_faiss_take_cuda_n():
    from vlnav_data.knn_index import build_index, to_search_device
    from vlnav_data.sim import make_arena

    with pytest.raises(ConfigError, match=r"device 'cuda:2' was requested but torch .* sees no CUDA GPU here"):
        make_arena("text2nav", num_envs=1, device="cuda:2", render=False)
    with pytest.raises(ConfigError, match=r"received 'gpu'"):
        make_arena("text2nav", num_envs=1, device="gpu", render=False)
    index, _ = build_index(torch.nn.functional.normalize(torch.randn(8, 4), dim=1).numpy())
    assert to_search_device(index, "cpu") is index
    with pytest.raises(ConfigError, match=r"--device cuda:1 asks for GPU FAISS, but the installed faiss has no GPU"):
        to_search_device(index, "cuda:1")
