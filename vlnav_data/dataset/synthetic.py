"""Valid ``vlnav-demos`` files from a tiny kinematic stand-in, for tests of packages that read datasets.

The episodes are plausible, not random noise: a differential-drive robot pursues one of five coloured
targets (the text2nav layout), actions come from a pursuit law, frames show the targets at their
bearing, and each encoder's image embedding is a fixed random projection of the robot-frame target
geometry plus noise, so probes and policies trained on the file have signal to find. Nothing here
imports torch, the simulator or an encoder.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from vlnav_data.dataset.layout import DatasetLayout, EncoderEntry
from vlnav_data.dataset.splits import episode_seed, episode_split, shard_indices
from vlnav_data.dataset.writer import DatasetWriter, EpisodeRecord
from vlnav_data.vectors import l2_normalize

SYNTHETIC_COLORS = ("red", "green", "blue", "yellow", "pink")
SYNTHETIC_RGB = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [255, 0, 255]], dtype=np.uint8)
SYNTHETIC_TARGETS_XY = np.array([[2.5, 0.0], [2.5, 0.5], [2.5, -0.5], [2.5, 1.0], [2.5, -1.0]])
SYNTHETIC_STATE_NAMES = (
    "x_m",
    "y_m",
    "cos_yaw",
    "sin_yaw",
    "target_x_m",
    "target_y_m",
    "target_distance_m",
    "target_bearing_rad",
)
_WHEEL_RADIUS_M = 0.03
_WHEEL_BASE_M = 0.1125
_WHEEL_LIMIT_RADPS = 20.0
_SUCCESS_RADIUS_M = 0.3


def write_synthetic_dataset(
    path: str | os.PathLike,
    num_episodes: int = 6,
    encoders: Mapping[str, int] | None = None,
    *,
    image_size: tuple[int, int] = (32, 32),
    max_steps: int = 40,
    dt_s: float = 0.1,
    seed: int = 0,
    valid_fraction: float = 0.25,
    expert: str = "pursuit",
    shard: tuple[int, int] = (0, 1),
    overwrite: bool = False,
) -> Path:
    """Write a complete, valid ``vlnav-demos`` file of synthetic episodes.

    Args:
        path: output file (``.h5``).
        num_episodes: number of demos.
        encoders: encoder name -> embedding dim (default ``{"siglip-tiny-random": 32}``).
        image_size: ``(H, W)`` of ``obs/rgb``.
        max_steps: time limit per episode (steps).
        dt_s: control period; ``fps = 1 / dt_s``.
        seed: build seed; episode seeds and splits derive from it and the episode index.
        valid_fraction: share of episodes in ``/mask/valid`` (at least one valid and one train episode
            are guaranteed when ``num_episodes >= 2``).
        expert: value of the demos' ``expert`` attribute.
        shard: ``(i, n)``: write only the episodes of shard i of n (indices i, i+n, ...), as
            ``vlnav-data build --shard i/n`` does; merging all shards gives the unsharded file.
        overwrite: replace an existing file.

    Returns:
        The path written.
    """
    encoders = dict(encoders or {"siglip-tiny-random": 32})
    h, w = image_size
    layout = DatasetLayout(
        image_height=h,
        image_width=w,
        state_names=SYNTHETIC_STATE_NAMES,
        encoders=tuple(EncoderEntry(name=n, dim=int(d), note="synthetic test data") for n, d in encoders.items()),
        fps=1.0 / dt_s,
        wheel_speed_limit_radps=_WHEEL_LIMIT_RADPS,
        build_config={
            "synthetic": True,
            "seed": seed,
            "num_episodes": num_episodes,
            "max_steps": max_steps,
            "shard_index": shard[0],
            "num_shards": shard[1],
        },
        sim_config={"preset": "synthetic", "image_height": h, "image_width": w, "dt_s": dt_s},
        rebuild_command=(
            'python -c "from vlnav_data.dataset.synthetic import write_synthetic_dataset as w; '
            f"w('{Path(path).name}', {num_episodes}, {encoders!r}, image_size={tuple(image_size)!r}, "
            f'max_steps={max_steps}, dt_s={dt_s}, seed={seed})"'
        ),
    )
    # Fixed per-encoder projections: 6 geometric features -> E; per-colour text vectors.
    proj = {}
    text = {}
    for k, (name, dim) in enumerate(encoders.items()):
        rng = np.random.default_rng([seed, 7919, k])
        proj[name] = rng.standard_normal((6, dim))
        text[name] = l2_normalize(rng.standard_normal((len(SYNTHETIC_COLORS), dim)))
    splits = [episode_split(seed, i, valid_fraction) for i in range(num_episodes)]
    if num_episodes >= 2 and "valid" not in splits:
        splits[-1] = "valid"
    if num_episodes >= 2 and "train" not in splits:
        splits[0] = "train"
    with DatasetWriter(path, layout, mode="overwrite" if overwrite else "create") as writer:
        for i in shard_indices(num_episodes, shard[0], shard[1]):
            ep_seed = episode_seed(seed, i)
            writer.append_episode(_episode(ep_seed, i, splits[i], proj, text, image_size, max_steps, dt_s, expert))
        return writer.finalize()


def _episode(
    ep_seed: int,
    index: int,
    split: str,
    proj: Mapping[str, np.ndarray],
    text: Mapping[str, np.ndarray],
    image_size: tuple[int, int],
    max_steps: int,
    dt_s: float,
    expert: str,
) -> EpisodeRecord:
    rng = np.random.default_rng(ep_seed)
    target = int(rng.integers(len(SYNTHETIC_COLORS)))
    x, y = rng.uniform(-0.05, 0.75), rng.uniform(-0.2, 0.25)
    yaw = rng.uniform(-np.pi, np.pi)
    tx, ty = SYNTHETIC_TARGETS_XY[target]
    states, actions, wheels, rewards, frames = [], [], [], [], []
    termination = "time_limit"
    for _ in range(max_steps):
        dx, dy = tx - x, ty - y
        dist = float(np.hypot(dx, dy))
        bearing = float(np.arctan2(dy, dx) - yaw)
        bearing = (bearing + np.pi) % (2 * np.pi) - np.pi
        states.append([x, y, np.cos(yaw), np.sin(yaw), tx, ty, dist, bearing])
        frames.append(_frame(x, y, yaw, image_size))
        turn = np.clip(2.0 * bearing, -1.0, 1.0)
        fwd = 1.0 - min(1.0, abs(bearing) / (np.pi / 2))
        a = np.clip(np.array([fwd - turn, fwd + turn]), -1.0, 1.0).astype(np.float32)
        actions.append(a)
        wl, wr = a * _WHEEL_LIMIT_RADPS
        wheels.append([wl, wr])
        v = _WHEEL_RADIUS_M * (wl + wr) / 2.0
        omega = _WHEEL_RADIUS_M * (wr - wl) / _WHEEL_BASE_M
        yaw = (yaw + omega * dt_s + np.pi) % (2 * np.pi) - np.pi
        x, y = x + v * np.cos(yaw) * dt_s, y + v * np.sin(yaw) * dt_s
        new_dist = float(np.hypot(tx - x, ty - y))
        rewards.append(dist - new_dist)
        if new_dist < _SUCCESS_RADIUS_M:
            termination = "success"
            break
        if not (-0.2 <= x <= 2.5) or abs(y) > 1.45:
            termination = "out_of_bounds_" + (
                "front" if x > 2.5 else "back" if x < -0.2 else "left" if y > 0 else "right"
            )
            break
    t = len(actions)
    state = np.asarray(states, dtype=np.float32)
    geo = np.stack(
        [
            np.cos(state[:, 7]),
            np.sin(state[:, 7]),
            state[:, 6],
            state[:, 0],
            state[:, 1],
            np.full(t, target / 4.0),
        ],
        axis=1,
    )
    color = SYNTHETIC_COLORS[target]
    instruction = f"navigate to the {color} ball"
    image_emb, joint_emb, text_emb = {}, {}, {}
    for name, p in proj.items():
        img = l2_normalize(geo @ p + 0.05 * rng.standard_normal((t, p.shape[1])))
        txt = text[name][target]
        image_emb[name] = img.astype(np.float32)
        joint_emb[name] = l2_normalize(img + txt[None, :]).astype(np.float32)
        text_emb[name] = {instruction: txt.astype(np.float32)}
    dones = np.zeros(t, dtype=np.uint8)
    dones[-1] = 1
    return EpisodeRecord(
        actions=np.asarray(actions, dtype=np.float32),
        wheel_vel_radps=np.asarray(wheels, dtype=np.float32),
        rewards=np.asarray(rewards, dtype=np.float32),
        dones=dones,
        rgb=np.stack(frames),
        privileged_state=state,
        instructions=[instruction] * t,
        image_embeddings=image_emb,
        joint_embeddings=joint_emb,
        text_embeddings=text_emb,
        seed=ep_seed,
        episode_index=index,
        target_index=target,
        target_color=color,
        termination=termination,
        success=termination == "success",
        expert=expert,
        split=split,
    )


def _frame(x: float, y: float, yaw: float, image_size: tuple[int, int]) -> np.ndarray:
    """Black sky, light-blue floor, each target a coloured block at its bearing (HFOV ~115 deg)."""
    h, w = image_size
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[h // 2 :] = (150, 200, 230)
    half_fov = np.deg2rad(57.5)
    for k, (tx, ty) in enumerate(SYNTHETIC_TARGETS_XY):
        b = (np.arctan2(ty - y, tx - x) - yaw + np.pi) % (2 * np.pi) - np.pi
        if abs(b) >= half_fov:
            continue
        col = int((0.5 - 0.5 * np.tan(b) / np.tan(half_fov)) * (w - 1))
        size = int(np.clip(0.6 * w / max(np.hypot(tx - x, ty - y), 0.2) / 4, 1, w // 3))
        r0, r1 = max(0, h // 2 - size), min(h, h // 2 + size)
        c0, c1 = max(0, col - size), min(w, col + size + 1)
        img[r0:r1, c0:c1] = SYNTHETIC_RGB[k]
    return img
