"""``vlnav-data view``: a Rerun recording of a dataset's episodes, step by step.

On the ``frame`` timeline (all viewed episodes end to end; also ``episode`` and ``episode_step``):

- ``camera``: the first-person frame (JPEG), every ``stride``-th step;
- ``map/...``: the arena bounds and walls, the spheres in their colours, the target ringed by its success
  disc, the robot's heading and its trail so far (from ``sim_config_json`` and ``obs/privileged_state``);
- ``instruction``: the instruction shown, logged when it changes;
- ``actions/left_wheel``, ``actions/right_wheel``: the expert's actions (``actions`` rows), every step;
- ``privileged/target_distance_m``, ``privileged/target_bearing_deg``: where the target was, every step;
- ``cosine/<encoder>/<colour>``: for every encoder of the file, the cosine similarity between the step's
  image embedding (``obs/<encoder>_image``) and the text embedding of the colour prompt ``Move toward the
  <colour> ball.`` of each sphere colour, every step. The prompt embeddings come from
  ``/meta/text_embeddings/<encoder>`` when the file's instruction table holds every prompt (``file``),
  otherwise from the encoder rebuilt from its record with :func:`vlnav_data.encoders.rebuild_encoder`
  (``rebuilt``); the result says which.
- ``events``: each episode's start (seed, target, split) and end (termination cause), as log markers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from vlnav_data.errors import ConfigError, SchemaError
from vlnav_data.jsonio import fields_of
from vlnav_data.viz import arena_map
from vlnav_data.viz.recording import (
    WHEELS,
    check_rrd_path,
    import_rerun,
    jpeg,
    open_recording,
    parse_indices,
    select_indices,
    send_scalars,
    series_style,
    set_step,
    side_panels,
    wait_until_interrupted,
)

FRAME_BLOCK = 64
"""Frames read from the file at once (one episode's frames are never all in memory)."""
REOPEN_EVERY = 32
"""Episodes read through one HDF5 handle before it is reopened (:class:`EpisodeFile`)."""


@dataclass(frozen=True, kw_only=True)
class ViewConfig:
    """Config of ``vlnav-data view``.

    Attributes:
        path: a ``vlnav-demos`` file with frames (``obs/rgb``).
        out: the ``.rrd`` recording to write (None with ``serve``).
        serve: serve the recording to Rerun's web viewer instead of writing a file.
        episodes: demo indices to record (with ``episode_range``: their union); both empty: every episode.
        episode_range: demo indices and ``START:STOP`` ranges (STOP excluded), comma-separated: ``0:10``, ``2,5``.
        stride: log the frame and the map every ``stride``-th step (scalars are logged at every step).
        cosine: log the image-embedding / colour-prompt cosines (rebuilds encoders whose prompts the file
            lacks).
        device: torch device of a rebuilt encoder.
    """

    path: Path
    out: Path | None = None
    serve: bool = False
    episodes: tuple[int, ...] = ()
    episode_range: str | None = None
    stride: int = 1
    cosine: bool = True
    device: str = "cpu"

    def __post_init__(self) -> None:
        if (self.out is None) == (not self.serve):
            raise ConfigError("give exactly one of --out REC.rrd (write a recording) and --serve (web viewer)")
        if self.out is not None:
            check_rrd_path(self.out)
        if isinstance(self.stride, bool) or not isinstance(self.stride, int) or self.stride < 1:
            raise ConfigError(f"--stride must be an integer >= 1, got {self.stride!r}")
        if any(i < 0 for i in self.episodes):
            raise ConfigError(f"--episode takes demo indices >= 0, got {min(self.episodes)}")
        if self.episode_range is not None:
            parse_indices(self.episode_range)


@dataclass(frozen=True, kw_only=True)
class ViewResult:
    """``OUT.rrd.result.json`` of ``vlnav-data view``.

    Attributes:
        episodes: demo indices recorded, in order; num_steps: their env steps; frames: camera frames logged.
        text_embeddings: encoder -> ``file`` or ``rebuilt`` (where the colour prompts' embeddings came from).
        colours: the sphere colours whose prompts the cosines compare against.
        map: ``arena`` (spheres from the recorded arena), ``target`` (no arena: the target alone) or ``none``.
    """

    file: str
    out: str | None
    url: str | None
    episodes: list[int]
    num_steps: int
    frames: int
    stride: int
    encoders: list[str]
    text_embeddings: dict[str, str]
    colours: list[str]
    map: str
    elapsed_s: float
    config: dict[str, Any] = field(default_factory=dict)


def colour_prompts(colours: list[str]) -> list[str]:
    """The simulator's colour-only instruction (``instructions="color"``) for each colour."""
    from vlnav_data.sim import get_preset
    from vlnav_data.sim.task import format_instructions

    return format_instructions(replace(get_preset("text2nav"), instructions="color"), [0] * len(colours), colours)


def prompt_embeddings(reader: Any, encoder: str, prompts: list[str], device: str) -> tuple[np.ndarray, str]:
    """float32 ``(C, E)`` text embeddings of ``prompts`` and where they came from (``file`` or ``rebuilt``).

    Raises:
        EncoderError: the encoder has to be rebuilt and cannot be (weights missing, another revision, ...).
    """
    table = reader.instructions
    if all(p in table for p in prompts):
        rows = reader.text_embeddings(encoder)
        return rows[[table.index(p) for p in prompts]], "file"
    from vlnav_data.encoders import rebuild_encoder

    entry = {"name": encoder, **reader.encoder_specs[encoder]}
    enc = rebuild_encoder(entry, device=device, where=f"'{reader.path}'")
    return np.asarray(enc.encode_texts(prompts), dtype=np.float32), "rebuilt"


def cosines(image_rows: np.ndarray, text_rows: np.ndarray) -> np.ndarray:
    """float64 ``(T, C)`` cosine similarity of every image row with every text row."""
    from vlnav_data.vectors import l2_normalize

    a = l2_normalize(np.asarray(image_rows, np.float64))
    b = l2_normalize(np.asarray(text_rows, np.float64))
    return a @ b.T


class StateColumns:
    """Named columns of ``obs/privileged_state`` the view reads (any of them may be absent)."""

    def __init__(self, names: list[str]) -> None:
        col = {n: i for i, n in enumerate(names)}
        pose = ("x_m", "y_m", "cos_yaw", "sin_yaw")
        self.pose = tuple(col[n] for n in pose) if set(pose) <= set(col) else None
        self.target = (col["target_x_m"], col["target_y_m"]) if {"target_x_m", "target_y_m"} <= set(col) else None
        self.distance = col.get("target_distance_xy_m", col.get("target_distance_m"))
        self.bearing_cs = (
            (col["target_bearing_cos"], col["target_bearing_sin"])
            if {"target_bearing_cos", "target_bearing_sin"} <= set(col)
            else None
        )
        self.bearing_rad = col.get("target_bearing_rad")

    def bearing_deg(self, state: np.ndarray) -> np.ndarray | None:
        """Robot-frame bearing to the target in degrees (+ = left), or None."""
        if self.bearing_cs is not None:
            return np.degrees(np.arctan2(state[:, self.bearing_cs[1]], state[:, self.bearing_cs[0]]))
        if self.bearing_rad is not None:
            return np.degrees(state[:, self.bearing_rad])
        return None


class EpisodeFile:
    """The demos of a file, read through an HDF5 handle that is reopened every :data:`REOPEN_EVERY` episodes.

    HDF5 keeps what it has read of every object (headers, attributes, chunk indexes) until the file closes:
    one handle that reads through thousands of demos grows by about 0.1 MB per demo (measured, 128 px frames),
    which a recording of every episode would add up. Reopening drops it (bench/viz_view_memory.py).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.file: Any = None
        self.opened = 0

    def demo(self, index: int) -> tuple[Any, dict[str, Any]]:
        """``(group, attributes)`` of ``demo_<index>`` (attributes as Python values)."""
        import h5py

        if self.file is None or self.opened >= REOPEN_EVERY:
            self.close()
            self.file, self.opened = h5py.File(self.path, "r"), 0
        self.opened += 1
        group = self.file["data"][f"demo_{index}"]
        return group, {k: _plain(v) for k, v in group.attrs.items()}

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def _plain(value: Any) -> Any:
    """An HDF5 attribute as a Python value (bytes decoded, numpy scalars unwrapped)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value.item() if isinstance(value, np.generic) else value


def blueprint(encoders: list[str], with_map: bool) -> Any:
    """Frame, instruction and events on the left; the map in the middle; the plots on the right."""
    import rerun.blueprint as rrb

    rr = import_rerun()
    left = rrb.Vertical(
        rrb.Spatial2DView(origin="camera", name="first-person frame"),
        rrb.TextDocumentView(origin="instruction", name="instruction"),
        rrb.TextLogView(origin="events", name="episodes"),
        row_shares=[4, 1, 2],
    )
    plots = [
        rrb.TimeSeriesView(origin="actions", name="expert actions (wheels)"),
        rrb.TimeSeriesView(origin="privileged", name="target distance (m) and bearing (deg)"),
        *[
            rrb.TimeSeriesView(origin=f"cosine/{rr.escape_entity_path_part(e)}", name=f"{e}: image vs colour prompt")
            for e in encoders
        ],
    ]
    columns = [left]
    if with_map:
        columns.append(rrb.Spatial2DView(origin=arena_map.MAP, name="top-down map"))
    columns.append(rrb.Vertical(*plots))
    return rrb.Blueprint(
        rrb.Horizontal(*columns, column_shares=[2, 3, 3] if with_map else [2, 3]),
        *side_panels(),
    )


def view_dataset(config: ViewConfig, *, on_serving: Callable[[str], None] | None = None) -> ViewResult:
    """Write (or serve) the recording of ``config.path``'s chosen episodes.

    Args:
        config: what to record.
        on_serving: with ``serve``: called with the viewer's address once everything is logged; the
            function then blocks until Ctrl-C.

    Raises:
        ConfigError: Rerun missing, an episode out of range. SchemaError: not a dataset, no frames.
        EncoderError: an encoder whose colour prompts must be embedded cannot be rebuilt.
    """
    from vlnav_data.dataset import DatasetReader
    from vlnav_data.sim import COLOR_PALETTE

    import_rerun()  # before any work: a missing extra is one error line
    t0 = time.perf_counter()
    with DatasetReader(config.path) as reader:
        if not reader.demo_names:
            raise SchemaError(f"'{config.path}' holds no episodes; build one with `vlnav-data build`")
        where = f"'{config.path}'"
        episodes = select_indices(config.episodes, config.episode_range, len(reader), where) or list(range(len(reader)))
        demos = EpisodeFile(config.path)
        frameless = [f"demo_{i}" for i in episodes if "obs/rgb" not in demos.demo(i)[0]]
        if frameless:
            demos.close()
            raise SchemaError(
                f"'{config.path}' holds no frames (obs/rgb) in {len(frameless)} of the {len(episodes)} episodes to "
                f"view (e.g. {frameless[0]}): it is state-only, and view shows the first-person frames; build the "
                "dataset with frames (`vlnav-data build`)"
            )
        arena = arena_map.recorded_arena(reader.sim_config)
        cols = StateColumns(reader.state_names)
        if arena is not None:
            colours = list(arena.random_sphere_palette if arena.randomize_spheres else arena.sphere_colors)
        else:
            colours = sorted({str(reader.attrs(i).get("target_color", "")) for i in range(len(reader))} - {""})
        colours = [c for c in colours if c in COLOR_PALETTE]
        prompts = colour_prompts(colours)
        encoders = list(reader.encoders) if config.cosine and colours else []
        text: dict[str, tuple[np.ndarray, str]] = {
            e: prompt_embeddings(reader, e, prompts, config.device) for e in encoders
        }
        with_map = cols.pose is not None
        map_kind = "none" if not with_map else ("arena" if arena is not None else "target")
        bp = blueprint(encoders, with_map)
        frames_logged = steps_total = 0
        table = reader.instructions
        with open_recording("vlnav-data-view", config.out, bp, serve=config.serve) as (rec, url):
            _log_styles(rec, encoders, colours, cols)
            if arena is not None and with_map:
                arena_map.log_arena(rec, arena)
            for demo in episodes:
                group, attrs = demos.demo(demo)
                n, k = _log_episode(
                    rec, group, attrs, table, demo, steps_total, config.stride, arena, cols, text, colours
                )
                steps_total += n
                frames_logged += k
                rec.flush()
            demos.close()
            if config.serve:
                assert url is not None
                if on_serving is not None:
                    on_serving(url)
                wait_until_interrupted()
    return ViewResult(
        file=str(config.path),
        out=None if config.out is None else str(config.out),
        url=url,
        episodes=episodes,
        num_steps=steps_total,
        frames=frames_logged,
        stride=config.stride,
        encoders=encoders,
        text_embeddings={e: src for e, (_, src) in text.items()},
        colours=colours,
        map=map_kind,
        elapsed_s=time.perf_counter() - t0,
        config=fields_of(config),
    )


def _log_styles(rec: Any, encoders: list[str], colours: list[str], cols: StateColumns) -> None:
    from vlnav_data.sim import COLOR_PALETTE

    rr = import_rerun()
    series_style(rec, "actions/left_wheel", "left wheel", (0.12, 0.47, 0.71))
    series_style(rec, "actions/right_wheel", "right wheel", (1.0, 0.5, 0.05))
    if cols.distance is not None:
        series_style(rec, "privileged/target_distance_m", "target distance (m)", (0.2, 0.6, 0.2))
    if cols.bearing_cs is not None or cols.bearing_rad is not None:
        series_style(rec, "privileged/target_bearing_deg", "target bearing (deg, + = left)", (0.5, 0.3, 0.7))
    for e in encoders:
        for c in colours:
            series_style(rec, f"cosine/{rr.escape_entity_path_part(e)}/{c}", c, COLOR_PALETTE[c])


def _log_episode(
    rec: Any,
    group: Any,
    attrs: dict[str, Any],
    table: list[str],
    demo: int,
    frame0: int,
    stride: int,
    arena: Any,
    cols: StateColumns,
    text: dict[str, tuple[np.ndarray, str]],
    colours: list[str],
) -> tuple[int, int]:
    """Log one demo (its HDF5 group) from ``frame0`` on the frame timeline; returns ``(steps, frames logged)``."""
    rr = import_rerun()
    n = int(attrs["num_samples"])
    steps = np.arange(n)
    frames = frame0 + steps
    state = np.asarray(group["obs/privileged_state"][()], np.float64) if "obs/privileged_state" in group else None
    actions = np.asarray(group["actions"][()], np.float64)
    for w, wheel in enumerate(WHEELS):
        send_scalars(rec, f"actions/{wheel}", frames, demo, steps, actions[:, w])
    if state is not None and cols.distance is not None:
        send_scalars(rec, "privileged/target_distance_m", frames, demo, steps, state[:, cols.distance])
    bearing = cols.bearing_deg(state) if state is not None else None
    if bearing is not None:
        send_scalars(rec, "privileged/target_bearing_deg", frames, demo, steps, bearing)
    for enc, (rows, _) in text.items():
        cos = cosines(group[f"obs/{enc}_image"][()], rows)
        for c, colour in enumerate(colours):
            send_scalars(rec, f"cosine/{rr.escape_entity_path_part(enc)}/{colour}", frames, demo, steps, cos[:, c])
    set_step(rec, frame0, demo, 0)
    split = attrs.get("split", "")
    rec.log(
        "events",
        rr.TextLog(
            f"episode {demo} starts: seed {attrs.get('seed')}, target {attrs.get('target_color')}"
            + (f", {split} split" if split else ""),
            level=rr.TextLogLevel.INFO,
        ),
    )
    with_map = state is not None and cols.pose is not None
    if with_map:
        _log_layout(rec, arena, attrs, state, cols)
    instruction_index = group["instruction_index"][()]
    shown = None
    logged = 0
    rgb = group["obs/rgb"]
    for block in range(0, n, FRAME_BLOCK * stride):
        idx = np.arange(block, min(n, block + FRAME_BLOCK * stride), stride)
        pixels = rgb[idx[0] : idx[-1] + 1 : stride]
        for t, frame in zip(idx.tolist(), pixels, strict=True):
            set_step(rec, frame0 + t, demo, t)
            rec.log("camera", jpeg(frame))
            logged += 1
            instruction = table[int(instruction_index[t])] if table else ""
            if instruction != shown:
                rec.log("instruction", rr.TextDocument(instruction))
                shown = instruction
            if with_map:
                p = cols.pose
                trail = state[: t + 1 : stride, [p[0], p[1]]]  # t is a multiple of stride: it ends at step t
                yaw = float(np.arctan2(state[t, p[3]], state[t, p[2]]))
                arena_map.log_robot(rec, f"{arena_map.MAP}/robot", trail, yaw, arena_map.TRAIL_RGB, "robot")
    set_step(rec, frame0 + n - 1, demo, n - 1)
    cause = str(attrs.get("termination", "")) or "unknown"
    ok = bool(attrs.get("success", False))
    rec.log(
        "events",
        rr.TextLog(
            f"episode {demo} ends after {n} steps: {cause}",
            level=rr.TextLogLevel.INFO if ok else rr.TextLogLevel.WARN,
        ),
    )
    return n, logged


def _log_layout(rec: Any, arena: Any, attrs: dict[str, Any], state: np.ndarray, cols: StateColumns) -> None:
    """The episode's spheres (from its seed and the recorded arena) or, failing that, its target alone."""
    from vlnav_data.sim import COLOR_PALETTE, sample_episode_start

    target = state[0, list(cols.target)] if cols.target is not None else None
    if arena is not None and "seed" in attrs:
        start = sample_episode_start(arena, int(attrs["seed"]))
        names = [arena.color_names[i] for i in start.sphere_color_indices]
        sphere_xy = np.asarray(start.sphere_positions_xy_m, np.float64)
        if target is None or np.allclose(sphere_xy[start.target_index], target, atol=1e-3):
            rgb = np.array([COLOR_PALETTE[c] for c in names])
            arena_map.log_spheres(
                rec, sphere_xy, rgb, names, start.target_index, arena.sphere_radius_m, arena.success_radius_xy_m
            )
            return
    if target is not None:
        radius = arena.success_radius_xy_m if arena is not None else 0.3
        arena_map.log_target_only(rec, target, radius, f"target: {attrs.get('target_color', '?')}")
