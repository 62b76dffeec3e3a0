"""What the writer's tests share: a toy layout and toy episodes that fit it."""

from __future__ import annotations

import numpy as np
import pytest

from vlnav_data.dataset import DatasetLayout, EncoderEntry, EpisodeRecord

#: The toy layout's encoders and their widths.
TOY_ENCODERS = {"tiny": 8, "other": 4}


@pytest.fixture(scope="session")
def toy_layout():
    """``toy_layout(**fields) -> DatasetLayout``: 6x5 frames, three state columns, :data:`TOY_ENCODERS`;
    ``fields`` replace any of it."""

    def make(**over) -> DatasetLayout:
        kw = dict(
            image_height=6,
            image_width=5,
            state_names=("x_m", "y_m", "cos_yaw"),
            encoders=tuple(EncoderEntry(name=n, dim=d) for n, d in TOY_ENCODERS.items()),
            fps=30.0,
            build_config={"seed": 1, "num_episodes": 3, "expert": "pursuit"},
            sim_config={"preset": "text2nav"},
        )
        kw.update(over)
        return DatasetLayout(**kw)

    return make


@pytest.fixture(scope="session")
def toy_episode():
    """``toy_episode(i, instr, split="train", text_dims=None) -> EpisodeRecord``: episode ``i`` of the toy layout
    (random arrays seeded by ``i``), one step per instruction in ``instr``, or ``instr`` steps of "go to the red
    ball" when it is a number; ``text_dims`` gives an encoder's text embeddings another width (a misfit)."""

    def make(i: int, instr: list[str] | int, split: str = "train", text_dims: dict[str, int] | None = None):
        instr = ["go to the red ball"] * instr if isinstance(instr, int) else list(instr)
        rng = np.random.default_rng(i)
        t = len(instr)
        dims = {**TOY_ENCODERS, **(text_dims or {})}
        return EpisodeRecord(
            actions=rng.uniform(-1, 1, (t, 2)).astype(np.float32),
            wheel_vel_radps=rng.uniform(-20, 20, (t, 2)).astype(np.float32),
            rewards=rng.standard_normal(t).astype(np.float32),
            dones=np.r_[np.zeros(t - 1), 1].astype(np.uint8),
            rgb=rng.integers(0, 256, (t, 6, 5, 3), dtype=np.uint8),
            privileged_state=rng.standard_normal((t, 3)).astype(np.float32),
            instructions=instr,
            image_embeddings={n: rng.standard_normal((t, d)) for n, d in TOY_ENCODERS.items()},
            joint_embeddings={n: rng.standard_normal((t, d)) for n, d in TOY_ENCODERS.items()},
            text_embeddings={n: {s: np.full(dims[n], hash(s) % 7, dtype=np.float32) for s in set(instr)} for n in dims},
            seed=100 + i,
            episode_index=i,
            target_index=0,
            target_color="red",
            termination="success",
            success=True,
            expert="pursuit",
            split=split,
        )

    return make
