"""Read ``vlnav-demos`` files: the one reader probes, policy and publish use (ARCHITECTURE.md)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from vlnav_data.dataset import schema
from vlnav_data.errors import ConfigError, NoArenaError, SchemaError


def open_h5(path: str | os.PathLike) -> h5py.File:
    """Open an HDF5 file read-only, turning "missing" and "not HDF5" into :class:`SchemaError`."""
    p = Path(path)
    if not p.exists():
        raise SchemaError(f"no such dataset file: '{p}'; check the path (build one with `vlnav-data build`)")
    if p.is_dir():
        raise SchemaError(f"'{p}' is a directory; expected a {schema.FORMAT_NAME} .h5 file")
    try:
        return h5py.File(p, "r")
    except OSError as exc:
        raise SchemaError(
            f"'{p}' cannot be opened as HDF5 ({exc}); expected a {schema.FORMAT_NAME} file — it may be "
            "truncated, still being written, or not a dataset at all"
        ) from exc


def check_format(f: h5py.File, path: str | os.PathLike) -> tuple[int, int, int]:
    """Check the root ``format`` and ``format_version``; return the parsed version.

    Raises:
        SchemaError: another format, an unparsable version, or a newer major version than this reader.
    """
    fmt = f.attrs.get("format")
    if isinstance(fmt, bytes):
        fmt = fmt.decode()
    if fmt != schema.FORMAT_NAME:
        raise SchemaError(f"'{path}' is not a {schema.FORMAT_NAME} file (root attribute format={fmt!r})")
    raw = f.attrs.get("format_version")
    try:
        version = schema.parse_version(raw.decode() if isinstance(raw, bytes) else raw)
    except ValueError as exc:
        raise SchemaError(f"'{path}': {exc}") from exc
    if version[0] > schema.FORMAT_MAJOR:
        raise SchemaError(
            f"'{path}' has format_version {'.'.join(map(str, version))}, newer than the {schema.FORMAT_VERSION} "
            "this vlnav-data reads; upgrade vlnav-data (pip install -U vlnav-data)"
        )
    return version


class DatasetReader:
    """Read-only access to a ``vlnav-demos`` file.

    Args:
        path: the ``.h5`` file.
        allow_incomplete: also open files whose ``complete`` attribute is not True (``.partial`` builds).
        allow_damaged: also open a complete file that fails :meth:`integrity_problems` (``info`` reports it).

    Raises:
        SchemaError: missing file, not HDF5, another format, a newer format version, an incomplete file
            when ``allow_incomplete`` is False, or a damaged one (episodes deleted or added after the build,
            see :meth:`integrity_problems`) unless ``allow_damaged``.

    Example::

        with DatasetReader("demos.h5") as r:
            rows = r.stack(["actions", "obs/siglip_joint"], split="train")
            rows["obs/siglip_joint"].shape  # (sum T, 1152) float16
    """

    def __init__(self, path: str | os.PathLike, *, allow_incomplete: bool = False, allow_damaged: bool = False) -> None:
        self.path = Path(path)
        self.file = open_h5(self.path)
        try:
            self.version = check_format(self.file, self.path)
            if not allow_incomplete and not bool(self.file.attrs.get("complete", False)):
                raise SchemaError(
                    f"'{self.path}' is incomplete (complete != True): its build did not finish; "
                    "resume it with `vlnav-data build --resume` or run `vlnav-data validate` for details"
                )
            if "data" not in self.file:
                raise SchemaError(f"'{self.path}' has no /data group; run `vlnav-data validate` for details")
            names = [n for n in self.file["data"].keys() if schema.demo_index(n) is not None]
            names.sort(key=lambda n: schema.demo_index(n))
            if not allow_incomplete:
                names = [n for n in names if "num_samples" in self.file["data"][n].attrs]
            self._demo_names = tuple(names)
            self._encoder_specs = {e["name"]: e for e in self._json_attr("encoders_json", [])}
            if not allow_incomplete and not allow_damaged:
                problems = self.integrity_problems()
                if problems:
                    raise SchemaError(
                        f"'{self.path}' is damaged ({problems[0]}"
                        + (f"; {len(problems) - 1} more problem(s)" if len(problems) > 1 else "")
                        + f"): run `vlnav-data validate {self.path}` for every violation, and rebuild or restore it"
                    )
        except BaseException:
            self.file.close()
            raise

    def integrity_problems(self) -> list[str]:
        """What contradicts the file's own counts (cheap: attributes and masks, no frames read).

        A complete file records how many demos and samples it holds (``/data`` attributes ``num_demos``
        and ``total``) and which demos each split holds; an episode group deleted or added afterwards
        breaks these. :func:`vlnav_data.dataset.validate.validate_dataset` checks every rule.
        """
        data = self.file["data"]
        problems = []
        demos = [n for n in data.keys() if schema.demo_index(n) is not None]
        if "num_demos" in data.attrs and int(data.attrs["num_demos"]) != len(demos):
            problems.append(f"/data records {int(data.attrs['num_demos'])} demos but holds {len(demos)}")
        if "total" in data.attrs:
            held = sum(int(data[n].attrs.get("num_samples", 0)) for n in demos)
            if int(data.attrs["total"]) != held:
                problems.append(f"/data records {int(data.attrs['total'])} samples but its demos hold {held}")
        mask = self.file.get("mask")
        present = set(demos)
        for split in sorted(mask.keys()) if isinstance(mask, h5py.Group) else []:
            names = {n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in mask[split][()]}
            gone = sorted(names - present, key=lambda n: schema.demo_index(n) or 0)
            if gone:
                problems.append(f"/mask/{split} names demos that do not exist: {', '.join(gone[:5])}")
        return problems

    # ------------------------------------------------------------------ metadata
    def _json_attr(self, name: str, default: Any) -> Any:
        raw = self.file.attrs.get(name)
        if raw is None:
            return default
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise SchemaError(f"'{self.path}': root attribute {name} is not valid JSON ({exc})") from exc

    @property
    def demo_names(self) -> tuple[str, ...]:
        """``("demo_0", "demo_1", ...)`` in index order (committed demos only)."""
        return self._demo_names

    def __len__(self) -> int:
        return len(self._demo_names)

    @property
    def encoders(self) -> tuple[str, ...]:
        """Names of the encoders whose ``obs/<name>_image`` / ``obs/<name>_joint`` the demos carry."""
        return tuple(self._encoder_specs)

    @property
    def encoder_specs(self) -> dict[str, dict[str, Any]]:
        """Encoder name -> ``{name, dim, model_id, revision, fusion, privileged, note}``."""
        return {k: dict(v) for k, v in self._encoder_specs.items()}

    def choose_encoder(self, requested: str | None) -> str:
        """The encoder a command reads: the one named, or the file's only one (the rule of every command).

        A file with several encoders needs a name: picking one silently (the first, say) would train or
        probe on embeddings the user did not mean.

        Raises:
            SchemaError: the file holds no embeddings.
            ConfigError: ``requested`` is not in the file, or the file holds several and none was named.
        """
        have = self.encoders
        if not have:
            raise SchemaError(
                f"'{self.path}' holds no embeddings (its encoders_json is empty); build it with "
                "`vlnav-data build --encoder NAME` or add one with `vlnav-data embed`."
            )
        if requested is None:
            if len(have) == 1:
                return have[0]
            raise ConfigError(
                f"'{self.path}' holds embeddings of {len(have)} encoders ({', '.join(have)}); choose one with "
                "--encoder NAME"
            )
        if requested not in have:
            raise ConfigError(
                f"encoder '{requested}' is not in '{self.path}'; it holds embeddings of: {', '.join(have)}. Pass one "
                f"of those with --encoder, or add it with `vlnav-data embed {self.path} --encoder {requested}`."
            )
        return requested

    def feature_rows(
        self,
        encoder: str,
        features: str,
        keys: Sequence[str] = (),
        *,
        split: str | None = None,
        demos: Sequence[str] | None = None,
    ) -> dict[str, np.ndarray]:
        """One encoder's per-step features (:data:`~vlnav_data.dataset.schema.FEATURE_SETS`) beside other arrays.

        Args:
            encoder: an encoder of the file.
            features: ``joint``, ``image`` or ``text`` (the instruction's text embedding at each step).
            keys: further per-step datasets to stack alongside (e.g. ``actions``).
            split: restrict to a mask (``train``/``valid``); demos: explicit demo names (overrides ``split``).

        Returns:
            :meth:`stack` of ``keys`` plus ``"features"``: float32 ``(N, E)``.

        Raises:
            ConfigError: unknown feature set. SchemaError: the encoder is missing, or an ``instruction_index``
            points past the text-embedding table.
        """
        schema.check_feature_set(features)
        self._spec(encoder)
        own = schema.INSTRUCTION_INDEX if features == "text" else schema.encoder_path(encoder, features)
        rows = self.stack(list(dict.fromkeys([own, *keys])), split=split, demos=demos)
        if features == "text":
            table = self.text_embeddings(encoder)
            index = rows[schema.INSTRUCTION_INDEX].astype(np.int64)
            if len(index) and int(index.max()) >= len(table):
                raise SchemaError(
                    f"'{self.path}': instruction_index reaches {int(index.max())} but "
                    f"/{schema.META_TEXT_EMBEDDINGS}/{encoder} has {len(table)} rows; run `vlnav-data validate`."
                )
            feats = table[index]
        else:
            feats = rows[own] if own in keys else rows.pop(own)
        rows["features"] = np.asarray(feats, dtype=np.float32)
        return rows

    def encoder_dim(self, encoder: str) -> int:
        """Embedding width E of one encoder. Raises SchemaError for an encoder the file lacks."""
        return int(self._spec(encoder)["dim"])

    def _spec(self, encoder: str) -> dict[str, Any]:
        if encoder not in self._encoder_specs:
            raise SchemaError(
                f"'{self.path}' has no embeddings of encoder '{encoder}'; it holds: {', '.join(self.encoders)}"
            )
        return self._encoder_specs[encoder]

    @property
    def instructions(self) -> list[str]:
        """``/meta/instructions``: the instruction table ``instruction_index`` points into."""
        if schema.META_INSTRUCTIONS not in self.file:
            return []
        return [s.decode("utf-8") if isinstance(s, bytes) else str(s) for s in self.file[schema.META_INSTRUCTIONS][()]]

    def text_embeddings(self, encoder: str) -> np.ndarray:
        """``/meta/text_embeddings/<encoder>``: float32 ``(K, E)``, row k embeds ``instructions[k]``."""
        self._spec(encoder)
        return np.asarray(self.file[schema.META_TEXT_EMBEDDINGS][encoder][()], dtype=np.float32)

    @property
    def sim_config(self) -> dict[str, Any]:
        """The simulator configuration the demos were recorded with."""
        return self._json_attr("sim_config_json", {})

    @property
    def has_arena(self) -> bool:
        """False for a file recorded without the simulator (``sim_config_json`` is :data:`schema.NO_ARENA`)."""
        return self.sim_config != schema.NO_ARENA

    def require_arena(self, tool: str, why: str) -> None:
        """Refuse a file without an arena for ``tool`` (:class:`~vlnav_data.errors.NoArenaError`: what it needs the
        arena for and what to use instead, ``why``); return for a file the simulator recorded."""
        if not self.has_arena:
            raise NoArenaError(f"'{self.path}'", self.file.attrs.get(schema.SOURCE_ATTR), tool, why)

    @property
    def source(self) -> dict[str, Any] | None:
        """Where an imported file came from (``source_json``: kind, id, revision, the source's info); None for
        a file this toolkit's simulator recorded."""
        return self._json_attr(schema.SOURCE_ATTR, None)

    @property
    def action_names(self) -> list[str]:
        """Column names of ``actions`` (``left_wheel, right_wheel`` in an arena file; the source's when imported)."""
        return list(self.features.get("actions", {}).get("names") or [])

    @property
    def build_config(self) -> dict[str, Any]:
        """The resolved build configuration."""
        return self._json_attr("build_config_json", {})

    @property
    def features(self) -> dict[str, dict[str, Any]]:
        """Per-step features: key -> ``{path, dtype, shape, names, modality, units}``."""
        return self._json_attr("features_json", {})

    @property
    def env_args(self) -> dict[str, Any]:
        """robomimic ``env_args``: ``{"env_name", "type", "env_kwargs"}``."""
        raw = self.file["data"].attrs.get("env_args", "{}")
        return json.loads(raw)

    @property
    def fps(self) -> float:
        """Control rate (Hz)."""
        return float(self.file.attrs.get("fps", 0.0))

    @property
    def complete(self) -> bool:
        return bool(self.file.attrs.get("complete", False))

    @property
    def rebuild_command(self) -> str:
        raw = self.file.attrs.get("rebuild_command", "")
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    @property
    def state_names(self) -> list[str]:
        """Column names of ``obs/privileged_state``."""
        return list(self.features.get("privileged_state", {}).get("names") or [])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(H, W, 3)`` of ``obs/rgb``."""
        return tuple(self.features["rgb"]["shape"])  # type: ignore[return-value]

    @property
    def total_steps(self) -> int:
        return int(sum(self.num_samples(n) for n in self._demo_names))

    def num_samples(self, demo: str | int) -> int:
        """Steps T of one demo."""
        return int(self._group(demo).attrs["num_samples"])

    # ------------------------------------------------------------------ splits
    def split(self, name: str) -> list[str]:
        """Demo names of a filter key under ``/mask`` (``train``, ``valid``), in index order.

        Raises:
            SchemaError: the file has no such mask.
        """
        mask = self.file.get("mask")
        if mask is None or name not in mask:
            have = sorted(mask.keys()) if mask is not None else []
            raise SchemaError(f"'{self.path}' has no mask '{name}'; it has: {', '.join(have) or 'none'}")
        names = [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in mask[name][()]]
        return sorted(names, key=lambda n: schema.demo_index(n) if schema.demo_index(n) is not None else -1)

    # ------------------------------------------------------------------ arrays
    def _group(self, demo: str | int) -> h5py.Group:
        name = schema.demo_name(demo) if isinstance(demo, (int, np.integer)) else demo
        if name not in self._demo_names:
            raise SchemaError(
                f"'{self.path}' has no demo '{name}'; it has {len(self._demo_names)} demos "
                f"(demo_0..demo_{len(self._demo_names) - 1})"
            )
        return self.file["data"][name]

    def attrs(self, demo: str | int) -> dict[str, Any]:
        """The demo's attributes (seed, target_color, termination, success, expert, num_samples, ...)."""
        return {k: _attr(v) for k, v in self._group(demo).attrs.items()}

    def keys(self, demo: str | int = 0) -> list[str]:
        """Dataset paths under one demo, relative to it (``actions``, ``obs/rgb``, ...)."""
        out: list[str] = []
        self._group(demo).visititems(lambda n, o: out.append(n) if isinstance(o, h5py.Dataset) else None)
        return sorted(out)

    def episode(self, demo: str | int, keys: Iterable[str] | None = None) -> dict[str, Any]:
        """Arrays of one demo plus its attributes.

        Args:
            demo: ``"demo_3"`` or 3.
            keys: dataset paths to load (default: all, including ``obs/rgb``).

        Returns:
            ``{path: array for each key, "attrs": {...}, "instructions": [T strings]}``.
        """
        g = self._group(demo)
        wanted = list(keys) if keys is not None else self.keys(demo)
        out: dict[str, Any] = {k: self._read(g, k) for k in wanted}
        out["attrs"] = {k: _attr(v) for k, v in g.attrs.items()}
        table = self.instructions
        out["instructions"] = [table[i] for i in g[schema.INSTRUCTION_INDEX][()]]
        return out

    def _read(self, g: h5py.Group, key: str) -> np.ndarray:
        if key not in g:
            raise SchemaError(
                f"demo '{g.name}' in '{self.path}' has no dataset '{key}'; it has: {', '.join(self.keys(g.name[6:]))}"
            )
        return g[key][()]

    def stack(
        self,
        keys: Sequence[str],
        split: str | None = None,
        demos: Sequence[str] | None = None,
    ) -> dict[str, np.ndarray]:
        """Concatenate per-step arrays over demos.

        Args:
            keys: dataset paths relative to a demo, e.g. ``["actions", "obs/siglip_joint"]``.
            split: a mask name (``train``/``valid``) to restrict to; None for every demo.
            demos: explicit demo names (overrides ``split``).

        Returns:
            ``{key: (sum T, ...) array in the stored dtype}`` plus ``"episode_index"`` (int64, the demo's
            index i of ``demo_i``) and ``"step_index"`` (int64, step within the demo).
        """
        names = list(demos) if demos is not None else (self.split(split) if split is not None else self.demo_names)
        parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
        ep_idx: list[np.ndarray] = []
        step_idx: list[np.ndarray] = []
        for name in names:
            g = self._group(name)
            t = int(g.attrs["num_samples"])
            for k in keys:
                parts[k].append(self._read(g, k))
            ep_idx.append(np.full(t, schema.demo_index(name), dtype=np.int64))
            step_idx.append(np.arange(t, dtype=np.int64))
        out: dict[str, np.ndarray] = {}
        for k in keys:
            if parts[k]:
                out[k] = np.concatenate(parts[k], axis=0)
            else:
                out[k] = self._empty_like_key(k)
        out["episode_index"] = np.concatenate(ep_idx) if ep_idx else np.zeros(0, dtype=np.int64)
        out["step_index"] = np.concatenate(step_idx) if step_idx else np.zeros(0, dtype=np.int64)
        return out

    def _empty_like_key(self, key: str) -> np.ndarray:
        for feat in self.features.values():
            if feat["path"] == key:
                return np.zeros((0, *feat["shape"]), dtype=feat["dtype"])
        raise SchemaError(f"'{self.path}' has no per-step dataset '{key}'")

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> DatasetReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _attr(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    return value
