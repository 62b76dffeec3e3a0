"""BC training and closed-loop evaluation on CUDA against the same runs on the CPU; skipped without a GPU.

Tolerances (stated, not tuned):

* a trained model's actions on identical features: within 1e-5 (fp32 matmuls on either device);
* training: the initial weights are the same (drawn on the CPU from the seed) but the batch indices are
  drawn by a generator on the training device, so the runs differ batch by batch; both must reach a
  validation MSE within 25 % of each other;
* closed loop with the tiny SigLIP encoder online (fp32 as recorded, on both devices): the episodes start
  from the same seeds; bang-bang actions can flip where the policy output is near 0, and a flip changes the
  rest of the episode, so at least 70 % of the episodes must end with the same cause and the success counts
  must be within 2 of 12.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vlnav_data.collect import build_dataset
from vlnav_data.policy.actors import torch_predictor
from vlnav_data.policy.evaluate import EvalConfig, evaluate_policy
from vlnav_data.policy.fit import BCRecipe, fit_bc
from vlnav_data.policy.records import EpisodeRecords
from vlnav_data.policy.train import TrainConfig, train_policy

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def _data(rows=4000, dim=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    w = rng.standard_normal((dim, 2)).astype(np.float32)
    y = np.tanh(x @ w).astype(np.float32)
    return x, y


def test_bc_training_on_cuda_matches_cpu_within_tolerance():
    x, y = _data()
    recipe = BCRecipe(name="gpu-test", hidden_sizes=(64, 64), num_steps=600, eval_every_steps=200)
    fits = {
        d: fit_bc(x[:3000], y[:3000], recipe=recipe, seed=0, device=d, valid_features=x[3000:], valid_actions=y[3000:])
        for d in ("cpu", "cuda")
    }
    a, b = fits["cpu"].best_valid_loss, fits["cuda"].best_valid_loss
    assert abs(a - b) <= 0.25 * max(a, b), (a, b)
    cpu_model = fits["cpu"].model
    gpu_copy = type(cpu_model)(x.shape[1], recipe.hidden_sizes, 2)
    gpu_copy.load_state_dict(cpu_model.state_dict())
    on_cpu = torch_predictor(cpu_model, "cpu")(x[:512])
    on_gpu = torch_predictor(gpu_copy.to("cuda").eval(), "cuda")(x[:512])
    np.testing.assert_allclose(on_cpu, on_gpu, atol=1e-5)


@pytest.fixture(scope="module")
def siglip_model(tmp_path_factory, small_build):
    d = tmp_path_factory.mktemp("gpu-policy")
    data = d / "demos.h5"
    build_dataset(
        small_build(
            data,
            num_episodes=8,
            encoders=("siglip-tiny-random",),
            image_size_px=64,
            max_episode_steps=80,
            num_envs=4,
            seed=2,
        )
    )
    model = d / "model"
    train_policy(TrainConfig(dataset=data, out_dir=model, encoder="siglip-tiny-random", num_steps=300, device="cpu"))
    return model


def test_closed_loop_eval_on_cuda_agrees_with_cpu(siglip_model, tmp_path):
    results, records = {}, {}
    for device in ("cpu", "cuda"):
        out = tmp_path / device
        cfg = EvalConfig(model_dir=siglip_model, out_dir=out, num_episodes=12, num_envs=6, device=device)
        results[device] = evaluate_policy(cfg)
        records[device] = EpisodeRecords.load(out / "episodes.npz")
    assert results["cuda"].encoder_dtype == "float32" == results["cpu"].encoder_dtype
    np.testing.assert_array_equal(records["cpu"].episode_seed, records["cuda"].episode_seed)
    same = float((records["cpu"].termination == records["cuda"].termination).mean())
    assert same >= 0.7, (records["cpu"].termination, records["cuda"].termination)
    a, b = results["cpu"].student.success["successes"], results["cuda"].student.success["successes"]
    assert abs(a - b) <= 2


def test_eval_with_compile_on_cuda_reports_compile_time_apart(siglip_model, tmp_path):
    cfg = EvalConfig(
        model_dir=siglip_model, out_dir=tmp_path / "c", num_episodes=4, num_envs=4, device="cuda", compile=True
    )
    res = evaluate_policy(cfg)
    assert res.compiled == ("renderer", "siglip-tiny-random") and res.compile_s > 0
    assert res.student_env_steps_per_s > 0
