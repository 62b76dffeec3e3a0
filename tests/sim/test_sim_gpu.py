"""The simulator on CUDA: device-resident observations, host synchronisations, rollout's host copies.

Skipped without a GPU (``bench/gpu_check.sh`` runs them on a lent one). Tolerances, CUDA against the CPU:

* privileged state within 1e-5 (float64 poses; sin/cos may differ by an ulp between the two libraries);
* frames: at least 99 % of the values identical, the bound ``test_sim_render.py`` holds CUDA frames to (a
  pixel at a sphere's silhouette or a grid line can fall the other way when a float32 rounds differently,
  so a few pixels differ by more than one level);
* episodes (pursuit expert from the same seeds): the same termination causes and step counts.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from vlnav_data.expert import PursuitController
from vlnav_data.sim import make_arena, rollout

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
SMALL = {"image_height_px": 64, "image_width_px": 64, "max_episode_steps": 80}
FRAME_AGREEMENT = 0.99  # as tests/sim/test_sim_render.py bounds CUDA against CPU frames


def _frames_agree(a: np.ndarray, b: np.ndarray) -> float:
    return float((a == b).mean())


def test_torch_observations_stay_on_the_gpu_and_match_the_cpu():
    envs = {
        d: make_arena("text2nav-random", num_envs=8, device=d, obs_backend="torch", **SMALL) for d in ("cpu", "cuda")
    }
    outs = {d: e.reset(seed=4) for d, e in envs.items()}
    rng = np.random.default_rng(0)
    for _ in range(40):
        actions = rng.uniform(-1, 1, (8, 2))
        outs = {d: e.step(actions) for d, e in envs.items()}
        gpu_obs = outs["cuda"][0]
        assert gpu_obs["rgb"].device.type == "cuda" and gpu_obs["privileged_state"].device.type == "cuda"
        np.testing.assert_allclose(
            outs["cpu"][0]["privileged_state"].numpy(), gpu_obs["privileged_state"].cpu().numpy(), atol=1e-5
        )
        assert _frames_agree(outs["cpu"][0]["rgb"].numpy(), gpu_obs["rgb"].cpu().numpy()) >= FRAME_AGREEMENT
        np.testing.assert_array_equal(outs["cpu"][4]["termination"], outs["cuda"][4]["termination"])


def _count_syncs(fn) -> tuple[int, list[str]]:
    """Synchronising CUDA calls made by ``fn`` (``torch.cuda.set_sync_debug_mode('warn')``)."""
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fn()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    found = [str(w.message) for w in caught if "synchroniz" in str(w.message).lower()]
    return len(found), found


@pytest.mark.parametrize(("backend", "budget"), [("torch", 2), ("numpy", 3)])
def test_a_step_without_finished_episodes_synchronises_as_counted_on_the_cpu(backend, budget):
    """The CPU proxy (tests/sim/test_sim_syncs.py) counts reads; here CUDA itself counts synchronisations:
    the bookkeeping read and the renderer's candidate count (+ the frames with numpy observations)."""
    env = make_arena("text2nav", num_envs=64, device="cuda", obs_backend=backend, **SMALL)
    env.reset(seed=0)
    actions = np.zeros((64, 2))  # standing still: nothing finishes before the time limit
    env.step(actions)  # first call: camera constants, allocator
    n, found = _count_syncs(lambda: env.step(actions))
    assert n <= budget, found


def test_rollout_keeps_device_frames_and_copies_them_to_the_host_once():
    env = make_arena("text2nav", num_envs=4, device="cuda", obs_backend="torch", **SMALL)
    ref = make_arena("text2nav", num_envs=4, device="cpu", **SMALL)
    policy = PursuitController.for_arena(env.config)
    got = sorted(rollout(env, policy, [1, 2, 3, 4, 5], max_ahead=8), key=lambda e: e.episode_index)
    want = sorted(rollout(ref, policy, [1, 2, 3, 4, 5], max_ahead=8), key=lambda e: e.episode_index)
    for g, w in zip(got, want, strict=True):
        assert isinstance(g.rgb, np.ndarray) and g.rgb_device.device.type == "cuda"
        np.testing.assert_array_equal(g.rgb_device.cpu().numpy(), g.rgb)  # host copy == device frames
        assert (g.termination, g.num_steps) == (w.termination, w.num_steps)
        np.testing.assert_allclose(g.privileged_state, w.privileged_state, atol=1e-5)
        assert _frames_agree(g.rgb, w.rgb) >= FRAME_AGREEMENT


def test_compiled_renderer_on_cuda_matches_eager():
    eager = make_arena("text2nav", num_envs=16, device="cuda", obs_backend="torch", **SMALL)
    compiled = make_arena("text2nav", num_envs=16, device="cuda", obs_backend="torch", compile_renderer=True, **SMALL)
    assert compiled.compile_warm_up() > 0
    a, b = eager.reset(seed=9)[0]["rgb"], compiled.reset(seed=9)[0]["rgb"]
    diff = (a.int() - b.int()).abs()
    assert int(diff.max()) <= 1 and float((diff > 0).float().mean()) < 0.01
