"""`vlnav-probe spatial`: does the embedding encode where the target is?

Two tests:

1. **Published protocol** (reference spec §5) on the file's valid rows: random frame pairs with the
   same target colour (and from different episodes), cosine distance between their embeddings,
   grouped by whether the target sits in the same coarse position cell. We have no detector, so the
   "cell" is the target's robot-frame bearing in thirds of the horizontal field of view (left /
   centre / right, frames with the target outside the view are left out) × distance band
   (``distance_edges_m``). Published SigLIP: same cell 0.0245 vs different cell 0.0310.
2. **Controlled renders**: the arena is rendered (``sim.render_views``) from poses that vary *only*
   the target's bearing (the robot turns in place, distance fixed) or *only* its distance (the robot
   moves along the line of sight, bearing 0), embedded with the file's encoder, and cosine distance
   to the reference view (bearing 0 / distance ``reference_distance_m``) is plotted against the
   bearing and distance differences. Left vs right: a logistic-regression classifier on the
   embeddings of mirrored views (bearing +b vs -b at the same spot), trained on some robot positions
   and tested on held-out positions, with a Wilson 95% interval; chance is 0.5. Turning in place also
   moves the walls in the view, so a classifier above chance shows that *something* in the view tells
   left from right, not necessarily the ball.

For the joint features the text is the published analysis prompt ``"Go to the {colour} ball"`` (it
states no direction, so any spatial signal comes from the image).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vlnav_data.devices import check_device_name, resolve_device
from vlnav_data.errors import ConfigError, SchemaError
from vlnav_data.figures import subplots
from vlnav_data.probes import labels as lab
from vlnav_data.probes.cosine import PUBLISHED_SIGLIP, PairTestResult, cosine_distance, pair_test
from vlnav_data.probes.fitting import fit_logistic
from vlnav_data.probes.linear import check_common
from vlnav_data.probes.report import fmt, markdown_table, save_figure, write_report
from vlnav_data.probes.rows import load_probe_data
from vlnav_data.stats import wilson_interval

ANALYSIS_PROMPT = "Go to the {colour} ball"
#: Largest cosine distance between stored and re-computed image embeddings accepted as "same encoder".
ENCODER_CHECK_TOLERANCE = 0.01


@dataclass(frozen=True, kw_only=True)
class SpatialProbeConfig:
    """Configuration of ``vlnav-probe spatial``.

    Attributes:
        path: the dataset file.
        out_dir: where result.json, report.md and figures go.
        encoder: encoder to probe; ``None``: the file's only encoder. The controlled part rebuilds it from the
            file's record with ``vlnav_data.encoders.rebuild_encoder`` (same weights, or refused).
        features: ``joint`` or ``image`` (``text`` has no spatial content to test).
        num_pairs: random pairs drawn for the published protocol (published: 400,000).
        distance_edges_m: distance band edges of the coarse cell.
        controlled: also run the controlled renders (needs the simulator and the encoder's weights).
        preset: arena preset to render; ``None`` = the file's recorded sim config.
        positions_per_colour: robot positions per target sphere in the controlled renders.
        bearing_steps: bearings in the sweep (odd, so that 0 is included), spanning ±``max_bearing_frac``
            of the half field of view.
        max_bearing_frac: how far into the field of view the sweep goes (the ball stays in view).
        distance_steps: distances in the distance sweep, from ``min_distance_m`` to ``max_distance_m``.
        reference_distance_m: distance of the bearing sweep and the distance sweep's reference view.
        min_distance_m, max_distance_m: distance sweep range.
        model_path: local weights directory for the encoder (real encoders; must hash to the recorded
            content hash).
        encoder_dtype: ``fp32``, ``bf16`` or ``auto`` for the rebuilt encoder; None: the file's recorded dtype.
        trust_remote_code: allow an ``hf:`` encoder recorded with ``trust_remote_code`` to run its code.
        seed: seeds the pair draw, the robot positions and the classifier split.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` for rendering and encoding.
    """

    path: Path
    out_dir: Path
    encoder: str | None = None
    features: str = "joint"
    num_pairs: int = 400_000
    distance_edges_m: tuple[float, ...] = (0.8, 1.6)
    controlled: bool = True
    preset: str | None = None
    positions_per_colour: int = 6
    bearing_steps: int = 11
    max_bearing_frac: float = 0.8
    distance_steps: int = 7
    reference_distance_m: float = 1.5
    min_distance_m: float = 0.5
    max_distance_m: float = 2.3
    model_path: Path | None = None
    encoder_dtype: str | None = None
    trust_remote_code: bool = False
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        check_common(self.path, self.out_dir, self.features, self.seed)
        if self.features == "text":
            raise ConfigError(
                "--features text has no spatial content (one text embedding per instruction); use joint or image"
            )
        if self.num_pairs < 1:
            raise ConfigError(f"--num-pairs must be >= 1, got {self.num_pairs}")
        if self.positions_per_colour < 2:
            raise ConfigError(
                f"--positions-per-colour must be >= 2 (train and test positions), got {self.positions_per_colour}"
            )
        if self.bearing_steps < 3 or self.bearing_steps % 2 == 0:
            raise ConfigError(f"--bearing-steps must be odd and >= 3 (0 in the middle), got {self.bearing_steps}")
        if self.distance_steps < 2:
            raise ConfigError(f"--distance-steps must be >= 2, got {self.distance_steps}")
        if not 0.0 < self.max_bearing_frac <= 1.0:
            raise ConfigError(f"max_bearing_frac must be in (0, 1], got {self.max_bearing_frac}")
        if not 0.0 < self.min_distance_m < self.max_distance_m:
            raise ConfigError(
                f"need 0 < min_distance_m < max_distance_m, got {self.min_distance_m}, {self.max_distance_m}"
            )
        if list(self.distance_edges_m) != sorted(self.distance_edges_m):
            raise ConfigError(f"distance_edges_m must be increasing, got {self.distance_edges_m}")
        check_device_name(self.device, "--device")
        if self.encoder_dtype not in (None, "auto", "fp32", "bf16"):
            raise ConfigError(
                f"--encoder-dtype must be auto, fp32 or bf16 (default: the file's recorded dtype), got "
                f"'{self.encoder_dtype}'"
            )


@dataclass(frozen=True, kw_only=True)
class ControlledResult:
    """The controlled-render part.

    Attributes:
        bearing_deg: the sweep's bearings (deg, + = left); bearing_cosine_distance: mean over colours and
            positions of the distance to the bearing-0 view, same order.
        distance_m: the distance sweep; distance_cosine_distance: mean distance to the reference view.
        left_right_accuracy: held-out accuracy of the left/right classifier; left_right_ci95: Wilson interval;
            left_right_n: held-out views; chance 0.5.
        num_renders: views rendered and embedded.
        encoder_check_max_cosine_distance: the rebuilt encoder re-embeds the first frames of the file's first
            valid episode; the largest cosine distance to the stored ``obs/<enc>_image`` rows (near 0 = same
            encoder and weights as the file; above :data:`ENCODER_CHECK_TOLERANCE`, or ``None`` when the
            widths differ, the report flags it: the curves then describe the rebuilt encoder, not the file).
    """

    preset: str
    bearing_deg: list[float]
    bearing_cosine_distance: list[float]
    distance_m: list[float]
    distance_cosine_distance: list[float]
    left_right_accuracy: float
    left_right_ci95: tuple[float, float]
    left_right_n: int
    num_renders: int
    render_s: float
    encode_s: float
    encoder_check_max_cosine_distance: float | None


@dataclass(frozen=True, kw_only=True)
class SpatialProbeResult:
    """What ``vlnav-probe spatial`` found (result.json)."""

    dataset: str
    encoder: str
    features: str
    cell_definition: str
    pairs: PairTestResult
    published_siglip: dict[str, dict[str, float]]
    controlled: ControlledResult | None
    figures: list[Path]
    report: Path
    elapsed_s: float
    config: dict[str, Any] = field(default_factory=dict)


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


def _encoder_reproduces_file(enc: Any, path: Path, encoder_name: str, num_frames: int = 4) -> float | None:
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


def _controlled(
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
    check = _encoder_reproduces_file(enc, config.path, encoder_name)
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


def run_spatial_probe(config: SpatialProbeConfig) -> SpatialProbeResult:
    """Run the published pair protocol on valid rows and (optionally) the controlled renders.

    Raises:
        ConfigError: an encoder the file lacks, an unrenderable sim config without ``--preset``.
        SchemaError: no privileged state (the position cells need it), empty split, shared episodes.
    """
    t0 = time.perf_counter()
    data = load_probe_data(config.path, encoder=config.encoder, features=config.features, need_state=True)
    rows = data.valid
    if rows.privileged_state is None:
        raise SchemaError(f"'{config.path}' has no obs/privileged_state; the position cells need it")
    bearing, distance = lab.robot_frame_target(rows.privileged_state, data.state_names)
    hfov = float(data.sim_config.get("camera_hfov_rad", math.radians(114.9)))
    half_deg = math.degrees(hfov / 2)
    visible = np.abs(np.degrees(bearing)) < half_deg
    if not np.any(visible):
        raise SchemaError(
            f"no valid frame of '{config.path}' has its target inside the {2 * half_deg:.0f}° field of view"
        )
    third = 2 * half_deg / 3
    cells = lab.coarse_cell(bearing, distance, (-third / 2, third / 2), config.distance_edges_m)
    colours = rows.target_colour
    pairs, dists = pair_test(
        rows.features[visible],
        colours[visible],
        cells[visible],
        rows.episode_index[visible],
        num_pairs=config.num_pairs,
        seed=config.seed,
    )
    cell_def = (
        f"bearing thirds of the {2 * half_deg:.1f}° view (edges ±{third / 2:.1f}°; target outside the view left out) "
        f"× distance bands at {', '.join(f'{e:g}' for e in config.distance_edges_m)} m"
    )
    controlled = curves = None
    if config.controlled:
        controlled, curves = _controlled(config, data.encoder, data.encoder_spec, data.sim_config)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = [_plot_pairs(dists, out / "spatial_pairs.png")]
    if controlled is not None and curves is not None:
        figures.append(_plot_controlled(controlled, curves, out / "spatial_controlled.png"))
    published = {k: {"n": v[0], "mean": v[1], "std": v[2]} for k, v in PUBLISHED_SIGLIP.items()}
    result = SpatialProbeResult(
        dataset=str(config.path),
        encoder=data.encoder,
        features=data.features,
        cell_definition=cell_def,
        pairs=pairs,
        published_siglip=published,
        controlled=controlled,
        figures=figures,
        report=out / "report.md",
        elapsed_s=time.perf_counter() - t0,
        config={k: getattr(config, k) for k in config.__dataclass_fields__},
    )
    _write_spatial_report(out, result)
    return result


def _plot_pairs(dists: dict[str, np.ndarray], path: Path) -> Path:
    fig, ax = subplots(figsize=(6, 4))
    both = np.concatenate([dists["same_cell"], dists["different_cell"]])
    bins = np.linspace(0, float(both.max()) if len(both) else 1.0, 50)
    for key, colour in (("same_cell", "C0"), ("different_cell", "C1")):
        if len(dists[key]):
            ax.hist(dists[key], bins=bins, density=True, alpha=0.5, color=colour, label=key.replace("_", " "))
    ax.set_xlabel("cosine distance between same-colour frames")
    ax.set_ylabel("density")
    ax.legend()
    ax.set_title("Published pair protocol (valid split)")
    return save_figure(fig, path)


def _plot_controlled(c: ControlledResult, curves: dict[str, np.ndarray], path: Path) -> Path:
    fig, axes = subplots(1, 2, figsize=(10, 4))
    for k, colour in enumerate(curves["colours"]):
        axes[0].plot(c.bearing_deg, curves["bearing_per_colour"][k], "-o", ms=3, label=str(colour))
        axes[1].plot(c.distance_m, curves["distance_per_colour"][k], "-o", ms=3, label=str(colour))
    axes[0].set_xlabel("target bearing (deg, + = left); reference = 0°")
    axes[1].set_xlabel("distance to target (m)")
    for ax in axes:
        ax.set_ylabel("cosine distance to the reference view")
        ax.legend(fontsize=7)
    axes[0].set_title("only bearing varies")
    axes[1].set_title("only distance varies")
    return save_figure(fig, path)


def _write_spatial_report(out: Path, r: SpatialProbeResult) -> Path:
    p = r.pairs
    pub = r.published_siglip
    table = markdown_table(
        ["", "same cell: n", "mean", "std", "different cell: n", "mean", "std", "gap"],
        [
            [
                f"ours ({r.encoder}, {r.features})",
                p.same_cell.n,
                p.same_cell.mean,
                p.same_cell.std,
                p.different_cell.n,
                p.different_cell.mean,
                p.different_cell.std,
                p.gap,
            ],
            [
                "published SigLIP so400m (spec §5)",
                pub["same_cell"]["n"],
                pub["same_cell"]["mean"],
                pub["same_cell"]["std"],
                pub["different_cell"]["n"],
                pub["different_cell"]["mean"],
                pub["different_cell"]["std"],
                pub["different_cell"]["mean"] - pub["same_cell"]["mean"],
            ],
        ],
        digits=4,
    )
    per_colour = markdown_table(
        ["colour", "same n", "same mean", "different n", "different mean"],
        [
            [c, v["same_cell"].n, v["same_cell"].mean, v["different_cell"].n, v["different_cell"].mean]
            for c, v in p.per_colour.items()
        ],
        digits=4,
    )
    sections = [
        f"Dataset `{r.dataset}`, encoder `{r.encoder}` ({r.features} features).",
        "## Published protocol\n\n"
        f"{p.pairs_drawn} random pairs of valid frames; {p.pairs_evaluated} had the same target colour, came from "
        f"different episodes and showed the target. Position cell: {r.cell_definition}. Effect size (Cohen's d) "
        f"{fmt(p.cohens_d)}.\n\n{table}\n\n{per_colour}",
    ]
    if r.controlled is not None:
        c = r.controlled
        lo, hi = c.left_right_ci95
        verdict = (
            "separates left from right (interval above chance 0.5)"
            if lo > 0.5
            else "does NOT separate left from right reliably (interval includes or is below chance 0.5)"
        )
        sections.append(
            "## Controlled renders\n\n"
            f"{c.num_renders} views of preset `{c.preset}` rendered and embedded (render {c.render_s:.1f} s, "
            f"encode {c.encode_s:.1f} s). Cosine distance to the reference view, averaged over colours and "
            "positions:\n\n"
            + markdown_table(
                ["bearing (deg)", *[f"{v:.0f}" for v in c.bearing_deg]],
                [["cos. dist.", *c.bearing_cosine_distance]],
                digits=4,
            )
            + "\n\n"
            + markdown_table(
                ["distance (m)", *[f"{v:.2f}" for v in c.distance_m]],
                [["cos. dist.", *c.distance_cosine_distance]],
                digits=4,
            )
            + f"\n\nLeft vs right on mirrored views (held-out robot positions): accuracy {c.left_right_accuracy:.3f} "
            f"(Wilson 95% [{lo:.3f}, {hi:.3f}], n = {c.left_right_n}): the embedding {verdict}. Turning in place "
            "also moves the walls in view, so this tests the whole view, not only the ball."
        )
        check = c.encoder_check_max_cosine_distance
        mismatch = (
            "the rebuilt encoder is not the one that built the file (other weights, width, --model-path or dtype), "
            "so the controlled renders describe the rebuilt encoder, not this file's embeddings."
        )
        if check is None:
            line = f"Encoder check: the rebuilt encoder's width differs from the file's embeddings: {mismatch}"
        elif check > ENCODER_CHECK_TOLERANCE:
            line = f"Encoder check: cosine distance {check:.2e} to the stored embeddings, "
            line += f"above {ENCODER_CHECK_TOLERANCE}: {mismatch}"
        else:
            line = (
                f"Encoder check: re-embedding stored frames with the rebuilt encoder gives cosine distance ≤ "
                f"{check:.2e} to the file's embeddings."
            )
        sections.append(line)
    sections.append("\n".join(f"![{f.stem}]({f.name})" for f in r.figures))
    return write_report(out, "Spatial content of the embeddings", sections)
