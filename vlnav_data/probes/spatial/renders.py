"""Controlled renders of ``vlnav-probe spatial``: views that vary only the target's bearing or its distance.

The arena the file recorded (or ``--preset``) is rendered by ``sim.render_views`` from poses that turn the
robot in place (bearing only) or move it along the line of sight (distance only); the file's encoder, rebuilt
from its record, embeds them; the cosine distances to the reference view and a left/right classifier on
mirrored views are measured (the protocol: :mod:`vlnav_data.probes.spatial`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from vlnav_data.devices import resolve_device
from vlnav_data.errors import ConfigError
from vlnav_data.probes.cosine import cosine_distance
from vlnav_data.probes.fitting import fit_logistic
from vlnav_data.probes.spatial.config import ControlledResult, SpatialProbeConfig
from vlnav_data.stats import wilson_interval

ANALYSIS_PROMPT = "Go to the {colour} ball"


def arena_config_from_record(sim_config: dict[str, Any], preset: str | None) -> Any:
    """The ``ArenaConfig`` to render: ``preset`` when given, else the file's recorded sim config.

    Raises:
        ConfigError: the file's sim config is not an arena config (pass ``--preset``).
    """
    from vlnav_data.sim import PRESET_NAMES, arena_config_from_json, get_preset

    if preset is not None:
        return get_preset(preset)
    name = sim_config.get("name")
    if name not in PRESET_NAMES:
        raise ConfigError(
            f"the file's sim config (name={name!r}) is not an arena preset, so its scene cannot be re-rendered; "
            f"pass --preset (one of {', '.join(PRESET_NAMES)}) or --no-controlled"
        )
    return arena_config_from_json(sim_config)


def sweep_poses(
    target_xy: np.ndarray,
    *,
    rng: np.random.Generator,
    num_positions: int,
    bearings_rad: np.ndarray,
    distances_m: np.ndarray,
    reference_distance_m: float,
    bounds_y_m: float = 1.3,
    min_x_m: float = -0.2,
) -> tuple[np.ndarray, np.ndarray]:
    """Poses that vary only bearing, and poses that vary only distance, for one target.

    Each position is a line of sight at angle ``phi`` (drawn in ±40°, rejecting lines whose far end
    leaves the arena) towards the target. Bearing sweep: robot at ``reference_distance_m`` on the line,
    yaw ``phi - b`` for each ``b`` (target at bearing ``b``). Distance sweep: robot at each distance on
    the line, yaw ``phi`` (target dead ahead).

    Returns:
        ``(bearing_poses (P, B, 3), distance_poses (P, D, 3))`` float64 ``[x_m, y_m, yaw_rad]``.
    """
    tx, ty = float(target_xy[0]), float(target_xy[1])
    far = max(float(np.max(distances_m)), reference_distance_m)
    phis: list[float] = []
    for _ in range(10_000):
        phi = rng.uniform(-np.radians(40), np.radians(40))
        x, y = tx - far * np.cos(phi), ty - far * np.sin(phi)
        if abs(y) <= bounds_y_m and x >= min_x_m:
            phis.append(phi)
        if len(phis) == num_positions:
            break
    if len(phis) < num_positions:
        raise ConfigError(
            f"cannot place {num_positions} lines of sight {far} m long to target ({tx}, {ty}) in the arena"
        )
    phi = np.asarray(phis)[:, None]
    rx, ry = tx - reference_distance_m * np.cos(phi), ty - reference_distance_m * np.sin(phi)
    b = np.asarray(bearings_rad)[None, :]
    bearing_poses = np.stack(np.broadcast_arrays(rx, ry, phi - b), axis=-1)
    d = np.asarray(distances_m)[None, :]
    dx, dy = tx - d * np.cos(phi), ty - d * np.sin(phi)
    distance_poses = np.stack(np.broadcast_arrays(dx, dy, phi + 0 * d), axis=-1)
    return bearing_poses, distance_poses


def encoder_reproduces_file(enc: Any, path: Path, encoder_name: str, num_frames: int = 4) -> float | None:
    """Max cosine distance between the file's stored image embeddings and the rebuilt encoder's.

    Returns None when the widths differ (the file was built by another configuration of the encoder).
    """
    from vlnav_data.dataset import DatasetReader

    with DatasetReader(path) as r:
        demo = r.split("valid")[0]
        keys = ["obs/rgb", f"obs/{encoder_name}_image"]
        has_state = "obs/privileged_state" in r.keys(demo)
        ep = r.episode(demo, keys=keys + (["obs/privileged_state"] if has_state else []))
    rgb = ep["obs/rgb"][:num_frames]
    state = ep["obs/privileged_state"][:num_frames] if has_state else None
    stored = np.asarray(ep[f"obs/{encoder_name}_image"][:num_frames], dtype=np.float32)
    again = np.asarray(enc.encode_observations(rgb, state), dtype=np.float32)
    if again.shape != stored.shape:
        return None
    return float(np.max(cosine_distance(stored, again)))


def run_controlled_renders(
    config: SpatialProbeConfig, encoder_name: str, encoder_spec: dict[str, Any], sim_config: dict
) -> tuple[ControlledResult, dict[str, np.ndarray]]:
    import torch

    from vlnav_data.encoders import rebuild_encoder
    from vlnav_data.sim import render_views
    from vlnav_data.sim.task import privileged_state

    arena = arena_config_from_record(sim_config, config.preset)
    device = resolve_device(config.device, "--device")
    model_path = str(config.model_path) if config.model_path is not None else None
    enc = rebuild_encoder(
        {"name": encoder_name, **encoder_spec},
        device=device,
        dtype=config.encoder_dtype,
        model_path=model_path,
        trust_remote_code=config.trust_remote_code,
        where=f"'{config.path}'",
    )
    check = encoder_reproduces_file(enc, config.path, encoder_name)
    half_fov = arena.camera_hfov_rad / 2
    bearings = np.linspace(-1, 1, config.bearing_steps) * config.max_bearing_frac * half_fov
    distances = np.linspace(config.min_distance_m, config.max_distance_m, config.distance_steps)
    rng = np.random.default_rng(config.seed)
    spheres = np.asarray(arena.sphere_positions_xy_m, dtype=np.float64)
    colours = list(arena.sphere_colors)
    b_poses, d_poses = [], []
    for k in range(len(spheres)):
        bp, dp = sweep_poses(
            spheres[k],
            rng=rng,
            num_positions=config.positions_per_colour,
            bearings_rad=bearings,
            distances_m=distances,
            reference_distance_m=config.reference_distance_m,
            bounds_y_m=float(min(abs(v) for v in arena.bounds_y_m)) - 0.15,
            min_x_m=float(arena.bounds_x_m[0]),
        )
        b_poses.append(bp)
        d_poses.append(dp)
    b_poses_a, d_poses_a = np.stack(b_poses), np.stack(d_poses)  # (K, P, B, 3), (K, P, D, 3)
    poses = np.concatenate([b_poses_a.reshape(-1, 3), d_poses_a.reshape(-1, 3)])
    n_b = b_poses_a[..., 0].size
    target_idx = np.concatenate(
        [
            np.repeat(np.arange(len(spheres)), b_poses_a[0, ..., 0].size),
            np.repeat(np.arange(len(spheres)), d_poses_a[0, ..., 0].size),
        ]
    )
    t0 = time.perf_counter()
    rgb = np.concatenate([render_views(arena, poses[s : s + 64], device=device) for s in range(0, len(poses), 64)])
    render_s = time.perf_counter() - t0
    state = (
        privileged_state(torch.as_tensor(poses), torch.as_tensor(spheres[target_idx])).cpu().numpy().astype(np.float32)
    )
    texts = [ANALYSIS_PROMPT.format(colour=colours[i]) for i in target_idx]
    t0 = time.perf_counter()
    if config.features == "image":
        emb = enc.encode_observations(rgb, state)
    else:
        emb = enc.encode_joint(rgb, state, texts)
    encode_s = time.perf_counter() - t0
    emb = np.asarray(emb, dtype=np.float32)
    e_b = emb[:n_b].reshape(*b_poses_a.shape[:3], -1)  # (K, P, B, E)
    e_d = emb[n_b:].reshape(*d_poses_a.shape[:3], -1)  # (K, P, D, E)
    mid = config.bearing_steps // 2
    cd_b = cosine_distance(e_b, np.broadcast_to(e_b[:, :, mid : mid + 1], e_b.shape))  # (K, P, B)
    ref = int(np.argmin(np.abs(distances - config.reference_distance_m)))
    cd_d = cosine_distance(e_d, np.broadcast_to(e_d[:, :, ref : ref + 1], e_d.shape))
    # left/right on mirrored views: bearing +b (left, label 1) vs -b (right, label 0), b != 0
    side = np.sign(bearings)
    keep = side != 0
    x_lr = e_b[:, :, keep].reshape(-1, e_b.shape[-1])
    y_lr = np.broadcast_to((side[keep] > 0).astype(int), e_b[:, :, keep].shape[:3]).reshape(-1)
    position = np.broadcast_to(
        np.arange(e_b.shape[0] * e_b.shape[1]).reshape(e_b.shape[:2])[:, :, None], e_b[:, :, keep].shape[:3]
    ).reshape(-1)
    test_pos = rng.permutation(np.unique(position))[: max(1, len(np.unique(position)) // 3)]
    test = np.isin(position, test_pos)
    model = fit_logistic(x_lr[~test], y_lr[~test], position[~test], n_folds=3, seed=config.seed)
    correct = int(np.sum(model.predict(x_lr[test]) == y_lr[test]))
    n_test = int(test.sum())
    result = ControlledResult(
        preset=arena.name,
        bearing_deg=[float(v) for v in np.degrees(bearings)],
        bearing_cosine_distance=[float(v) for v in cd_b.mean(axis=(0, 1))],
        distance_m=[float(v) for v in distances],
        distance_cosine_distance=[float(v) for v in cd_d.mean(axis=(0, 1))],
        left_right_accuracy=correct / n_test,
        left_right_ci95=wilson_interval(correct, n_test) if n_test else (float("nan"), float("nan")),
        left_right_n=n_test,
        num_renders=len(poses),
        render_s=render_s,
        encode_s=encode_s,
        encoder_check_max_cosine_distance=check,
    )
    curves = {
        "bearing_per_colour": cd_b.mean(axis=1),
        "distance_per_colour": cd_d.mean(axis=1),
        "colours": np.array(colours),
    }
    return result, curves
