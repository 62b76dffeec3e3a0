"""Draw docs/images/backends_same_start.png: the same seeded starts rendered by both backends.

Run from the repository root: ``python docs/images/backends_same_start.py`` (needs the ``mujoco`` extra).
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from vlnav_data.sim import get_preset, instruction_texts, render_views, sample_episode_start  # noqa: E402

#: The first episode seeds whose start faces the spheres (|yaw| < 0.5 rad), so that they are in view.
SEEDS = (5, 17, 24)


def main() -> None:
    fig, axes = plt.subplots(len(SEEDS), 2, figsize=(6.4, 3.3 * len(SEEDS)))
    for row, seed in enumerate(SEEDS):
        for col, preset in enumerate(("text2nav", "text2nav-mujoco")):
            config = get_preset(preset)
            start = sample_episode_start(config, seed)
            frame = render_views(config, start.pose[None])[0]
            ax = axes[row, col]
            ax.imshow(frame)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title({"text2nav": "built-in ray caster", "text2nav-mujoco": "MuJoCo (OpenGL, shadows)"}[preset])
            if col == 0:
                import torch

                text = instruction_texts(
                    config,
                    torch.as_tensor(start.pose[None]),
                    torch.as_tensor(start.target_xy_m[None]),
                    [start.target_color],
                )[0]
                ax.set_ylabel(f"episode seed {seed}\n{start.target_color} target", fontsize=9)
                ax.set_xlabel(text, fontsize=7)
    fig.tight_layout()
    out = os.path.join(os.path.dirname(__file__), "backends_same_start.png")
    fig.savefig(out, dpi=80)
    print("wrote", out, np.round([sample_episode_start(get_preset("text2nav"), s).pose for s in SEEDS], 3).tolist())


if __name__ == "__main__":
    main()
