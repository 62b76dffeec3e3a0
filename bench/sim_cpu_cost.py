"""CPU milliseconds per frame of the renderer and of a rendering ``step()``: a load-robust A/B figure.

On a shared CPU, wall-clock frames/s move with the other jobs; the CPU time this process spends per frame
(one torch thread, so waiting for a core is not counted) moves much less. Compare two versions of the
simulator in the same session by running this script against each, interleaved, e.g. the previous commit
from a ``git archive`` of it::

    git archive HEAD~1 vlnav_data | tar -x -C /tmp/prev
    for i in 1 2 3 4 5; do PYTHONPATH=/tmp/prev python bench/sim_cpu_cost.py; python bench/sim_cpu_cost.py; done

Prints one JSON line: ``render_64``, ``render_1024`` (``render_batch`` on random poses, ``text2nav``, 256 px),
``step_numpy_64`` and, where the simulator has it, ``step_torch_64`` (``ArenaVecEnv.step`` with rendering,
numpy or torch observations), each in CPU ms per frame, plus the load average.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import torch

from vlnav_data.sim import get_preset, make_arena
from vlnav_data.sim.render import render_batch
from vlnav_data.sim.render.scene import default_scene


def cpu_ms_per_frame(fn, frames: int, reps: int) -> float:
    fn()  # warm-up
    start = time.process_time()
    for _ in range(reps):
        fn()
    return 1e3 * (time.process_time() - start) / (reps * frames)


def main() -> None:
    torch.set_num_threads(1)
    cfg = get_preset("text2nav")
    out: dict[str, float] = {}
    for n, reps in ((64, 6), (1024, 1)):
        rng = np.random.default_rng(0)
        xy = [rng.uniform(-0.2, 2.3, n), rng.uniform(-1.3, 1.3, n), rng.uniform(-np.pi, np.pi, n)]
        poses, scene = torch.tensor(np.stack(xy, 1)), default_scene(cfg, n)
        out[f"render_{n}"] = cpu_ms_per_frame(lambda p=poses, s=scene: render_batch(cfg, p, s), n, reps)
    actions = np.random.default_rng(0).uniform(-1, 1, (64, 2))
    for backend in ("numpy", "torch"):
        try:
            env = make_arena(cfg, num_envs=64, obs_backend=backend)
        except TypeError:  # a simulator from before obs_backend
            continue
        env.reset(seed=0)
        out[f"step_{backend}_64"] = cpu_ms_per_frame(lambda e=env: e.step(actions), 64, 6)
    out = {k: round(v, 3) for k, v in out.items()}
    out["load"] = round(os.getloadavg()[0], 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
