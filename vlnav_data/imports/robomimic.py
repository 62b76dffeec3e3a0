"""Read a robomimic HDF5 file episode by episode (``dataset-ecosystem.md`` §1.1)::

    data  attrs: total, env_args (JSON)
      demo_N  attrs: num_samples      actions (T, A)   rewards (T,)   dones (T,)
              obs/<key> (T, ...)      (image keys uint8 (T, H, W, 3); low-dim keys (T, D))
    mask/<filter key>  byte-string demo names (``train``, ``valid``)

Mapping: ``actions`` -> ``actions`` (any width, as stored); the chosen image key -> ``obs/rgb``; every other
numeric ``obs/<key>`` of one vector per step -> ``obs/<key>`` float32; ``rewards``/``dones`` as stored (zeros /
the last step when absent); ``mask/valid`` -> the validation split. ``states`` (the simulator's flattened
state) and ``next_obs`` are not observations a student sees and are left out (listed in ``source_json``).

robomimic files carry no language of their own (robomimic 0.5 gives one instruction per file in its training
config): the instruction is ``--instruction``, else the first of :data:`INSTRUCTION_ATTRS` found.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from vlnav_data.dataset import schema
from vlnav_data.dataset.episode_record import ImportedEpisode
from vlnav_data.dataset.layout import ImportedFeature, ImportedLayout
from vlnav_data.errors import ConfigError, SchemaError
from vlnav_data.imports.config import RobomimicImportConfig
from vlnav_data.imports.run import assign_splits, choose_camera

INSTRUCTION_ATTRS = (
    ("demo", "lang"),
    ("demo", "language_instruction"),
    ("demo", "instruction"),
    ("demo", "ep_meta", "lang"),
    ("data", "language_instruction"),
    ("data", "problem_info", "language_instruction"),
)
"""Where an instruction is read when ``--instruction`` is not given, in this order: a demo attribute
``lang`` / ``language_instruction`` / ``instruction``, the ``lang`` of a demo's JSON ``ep_meta`` (RoboCasa),
a ``/data`` attribute ``language_instruction``, or the ``language_instruction`` of ``/data``'s JSON
``problem_info`` (LIBERO)."""

SKIPPED_DATASETS = {
    "states": "the simulator's flattened state, not an observation",
    "next_obs": "next-step copies of obs",
}
FIXED_FPS_ATTR = "fps"


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _demo_sort_key(name: str) -> int:
    return int(name[5:]) if name.startswith("demo_") and name[5:].isdigit() else -1


class RobomimicSource:
    """A checked robomimic file, read one demo at a time (see the module docstring)."""

    kind = "robomimic"

    def __init__(self, config: RobomimicImportConfig) -> None:
        path = Path(config.file)
        if not path.is_file():
            raise SchemaError(f"no such robomimic file: '{path}'; pass the .hdf5 file robomimic trains on")
        try:
            f = h5py.File(path, "r")
        except OSError as exc:
            raise SchemaError(f"'{path}' cannot be opened as HDF5 ({exc}); expected a robomimic .hdf5 file") from exc
        self._file = f
        try:
            self._open(path, config)
        except BaseException:
            f.close()
            raise

    def _open(self, path: Path, config: RobomimicImportConfig) -> None:
        f = self._file
        if f.attrs.get("format") == schema.FORMAT_NAME:
            raise SchemaError(f"'{path}' is already a {schema.FORMAT_NAME} file; nothing to import")
        data = f.get("data")
        if not isinstance(data, h5py.Group):
            raise SchemaError(
                f"'{path}' has no /data group; expected robomimic's layout data/demo_N/{{actions, obs/<key>}}"
            )
        names = sorted((n for n in data if n.startswith("demo_") and _demo_sort_key(n) >= 0), key=_demo_sort_key)
        if not names:
            raise SchemaError(f"'{path}' has no data/demo_N groups; expected robomimic's layout")
        self.demo_names = names
        first = data[names[0]]
        if "actions" not in first or "obs" not in first:
            raise SchemaError(f"'{path}' {names[0]} lacks actions or obs/; expected data/demo_N/{{actions, obs/<key>}}")
        obs = first["obs"]
        cameras = [k for k, ds in obs.items() if ds.dtype == np.uint8 and ds.ndim == 4 and ds.shape[-1] == 3]
        if not cameras:
            raise SchemaError(
                f"'{path}' has no image observation (uint8 (T, H, W, 3) under obs/); the toolkit embeds frames"
            )
        self.camera = choose_camera(f"'{path}'", "image observations", config.camera, cameras)
        h, w = (int(x) for x in obs[self.camera].shape[1:3])
        numeric, self.skipped = self._numeric(obs, cameras)
        self.skipped.update({k: v for k, v in SKIPPED_DATASETS.items() if k in first})
        self.instructions = [self._instruction(config, path, data, data[n]) for n in names]
        for name in names:  # every demo: the same keys and widths, rows for every step
            self._check_demo(path, data[name], numeric, (h, w))
        self.lengths = [int(data[n]["actions"].shape[0]) for n in names]
        self.selection = list(range(len(names)))
        self.splits = assign_splits(
            self.selection, self._named_valid(f, names), config.valid_fraction, config.split_seed
        )
        env_args = json.loads(_text(data.attrs["env_args"])) if "env_args" in data.attrs else {}
        fps = float(env_args.get("env_kwargs", {}).get("control_freq", 0) or data.attrs.get(FIXED_FPS_ATTR, 0) or 20.0)
        a = first["actions"]
        self.source_id = path.name
        self._has_rewards = all("rewards" in data[n] for n in names)
        self._has_dones = all("dones" in data[n] for n in names)
        self.layout = ImportedLayout(
            image_height=h,
            image_width=w,
            fps=fps,
            action_names=tuple(f"action_{i}" for i in range(int(a.shape[1]))),
            action_source_key="actions",
            numeric=tuple(numeric),
            source={
                "kind": self.kind,
                "id": self.source_id,
                "revision": _text(data.attrs.get("repository_version", "")),
                "date": _text(data.attrs.get("date", "")),
                "camera": self.camera,
                "fps_from": "env_args.env_kwargs.control_freq"
                if env_args.get("env_kwargs", {}).get("control_freq")
                else "default 20 Hz",
                "skipped_features": self.skipped,
                "info": {"env_args": env_args, "total": int(data.attrs.get("total", sum(self.lengths)))},
            },
            rewards_note="" if self._has_rewards else "zeros: the source has no rewards",
            dones_note="" if self._has_dones else "1 at the last step: the source has no dones",
            camera={"source_key": f"obs/{self.camera}"},
            build_config=config.build_config(),
            rebuild_command=_command(config),
        )

    def _numeric(self, obs: h5py.Group, cameras: list[str]) -> tuple[list[ImportedFeature], dict[str, str]]:
        numeric: list[ImportedFeature] = []
        skipped: dict[str, str] = {}
        for key, ds in obs.items():
            if key in cameras:
                if key != self.camera:
                    skipped[f"obs/{key}"] = "another camera (choose it with --camera)"
                continue
            if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "fiub" or ds.ndim not in (1, 2):
                skipped[f"obs/{key}"] = "not one numeric vector per step"
                continue
            width = 1 if ds.ndim == 1 else int(ds.shape[1])
            numeric.append(
                ImportedFeature(key=key, path=f"obs/{key}", shape=(width,), names=None, source_key=f"obs/{key}")
            )
        reserved = {"actions", "rewards", "dones", "timestamps", "instruction_index", "rgb"}
        taken = [ft.key for ft in numeric if ft.key in reserved]
        if taken:
            raise SchemaError(f"obs key(s) {taken} collide with the vlnav-demos layout; rename them in the source")
        return numeric, skipped

    def _instruction(self, config: RobomimicImportConfig, path: Path, data: h5py.Group, demo: h5py.Group) -> str:
        if config.instruction is not None:
            return config.instruction
        for where, attr, *field in INSTRUCTION_ATTRS:
            group = demo if where == "demo" else data
            if attr not in group.attrs:
                continue
            value = _text(group.attrs[attr])
            if field:
                try:
                    value = str(json.loads(value).get(field[0], ""))
                except (ValueError, AttributeError):
                    continue
            if value.strip():
                return value
        looked = ", ".join(f"{w} attr {a}" + (f"['{x[0]}']" if x else "") for w, a, *x in INSTRUCTION_ATTRS)
        raise ConfigError(
            f"'{path}' {demo.name} has no instruction (looked for {looked}); pass one with --instruction TEXT"
        )

    def _check_demo(self, path: Path, g: h5py.Group, numeric: list[ImportedFeature], hw: tuple[int, int]) -> None:
        where = f"'{path}' {g.name}"
        if "actions" not in g or g["actions"].ndim != 2:
            raise SchemaError(f"{where}: actions must be (T, A)")
        t = int(g["actions"].shape[0])
        if t < 1:
            raise SchemaError(f"{where} has no steps")
        if int(g["actions"].shape[1]) != int(self._file["data"][self.demo_names[0]]["actions"].shape[1]):
            raise SchemaError(f"{where}: actions are {g['actions'].shape}, other demos have another width")
        cam = g.get(f"obs/{self.camera}")
        if cam is None or cam.shape != (t, *hw, 3):
            raise SchemaError(
                f"{where}: obs/{self.camera} must be ({t}, {hw[0]}, {hw[1]}, 3), "
                f"got {None if cam is None else cam.shape}"
            )
        for ft in numeric:
            ds = g.get(ft.path)
            if ds is None or ds.shape[0] != t or (1 if ds.ndim == 1 else ds.shape[1]) != ft.shape[0]:
                raise SchemaError(
                    f"{where}: {ft.path} must be ({t}, {ft.shape[0]}), got {None if ds is None else ds.shape}"
                )
        for key in ("rewards", "dones"):
            if key in g and g[key].shape[0] != t:
                raise SchemaError(f"{where}: {key} has {g[key].shape[0]} rows for {t} actions")

    def _named_valid(self, f: h5py.File, names: list[str]) -> set[int] | None:
        mask = f.get("mask")
        if not isinstance(mask, h5py.Group) or "valid" not in mask:
            return None
        valid = {_text(n) for n in mask["valid"][()]}
        return {i for i, n in enumerate(names) if n in valid}

    def read(self, k: int) -> ImportedEpisode:
        name = self.demo_names[self.selection[k]]
        g = self._file["data"][name]
        t = self.lengths[k]
        numeric = {
            ft.path: np.asarray(g[ft.path][()], dtype=np.float32).reshape(t, ft.shape[0]) for ft in self.layout.numeric
        }
        return ImportedEpisode(
            actions=np.asarray(g["actions"][()], dtype=np.float32),
            numeric=numeric,
            rgb=g[f"obs/{self.camera}"][()],
            instructions=[self.instructions[k]] * t,
            timestamps_s=np.arange(t, dtype=np.float64) / self.layout.fps,
            rewards=np.asarray(g["rewards"][()], dtype=np.float32).reshape(t)
            if self._has_rewards
            else np.zeros(t, np.float32),
            dones=(np.asarray(g["dones"][()]).reshape(t) != 0).astype(np.uint8)
            if self._has_dones
            else (np.arange(t) == t - 1).astype(np.uint8),
            episode_index=self.selection[k],
            split=self.splits[k],
            extra_attrs={"source_demo": name},
        )

    def close(self) -> None:
        self._file.close()


def _command(config: RobomimicImportConfig) -> str:
    parts = ["vlnav-data import robomimic", config.file, "--out", config.out]
    if config.camera:
        parts += ["--camera", config.camera]
    if config.instruction:
        parts += ["--instruction", repr(config.instruction)]
    return " ".join(parts)
