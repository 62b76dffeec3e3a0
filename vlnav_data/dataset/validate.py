"""Check a file against every ``vlnav-demos`` rule (dataset-ecosystem.md §7, DESIGN §5) and list ALL violations.

The validator never stops at the first problem: each rule adds :class:`Violation` entries and the
caller decides what to do (``vlnav-data validate`` prints them and exits 1 when there are any).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from vlnav_data.dataset import schema

MAX_VIOLATIONS_PER_RULE = 20
"""At most this many violations of one rule are listed individually; the rest are counted."""


@dataclass(frozen=True, kw_only=True)
class Violation:
    """One broken rule.

    Attributes:
        rule: short rule id (``root-attrs``, ``demo-names``, ``lengths``, ...).
        where: HDF5 object path (or the file path for file-level problems).
        message: what was expected and what was found.
        fatal: the file cannot be read as a ``vlnav-demos`` file at all (missing, not HDF5, truncated,
            another format, a newer major version); no other rule was checked.
    """

    rule: str
    where: str
    message: str
    fatal: bool = False

    def __str__(self) -> str:
        return f"[{self.rule}] {self.where}: {self.message}"


class _Collector:
    def __init__(self) -> None:
        self.items: list[Violation] = []
        self._counts: dict[str, int] = {}

    def add(self, rule: str, where: str, message: str, fatal: bool = False) -> None:
        n = self._counts.get(rule, 0) + 1
        self._counts[rule] = n
        if n <= MAX_VIOLATIONS_PER_RULE:
            self.items.append(Violation(rule=rule, where=where, message=message, fatal=fatal))

    def finish(self) -> list[Violation]:
        for rule, n in self._counts.items():
            if n > MAX_VIOLATIONS_PER_RULE:
                self.items.append(
                    Violation(rule=rule, where="(file)", message=f"{n - MAX_VIOLATIONS_PER_RULE} more of this rule")
                )
        return self.items


def _s(value: Any) -> Any:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def validate_dataset(path: str | os.PathLike) -> list[Violation]:
    """Return every rule the file at ``path`` breaks (an empty list means valid).

    A missing file, a file that is not HDF5 or is truncated, and a newer major format version are
    reported as violations, not raised.
    """
    p = Path(path)
    out = _Collector()
    if not p.exists():
        out.add("file", str(p), "no such file", fatal=True)
        return out.finish()
    if p.name.endswith(schema.PARTIAL_SUFFIX):
        out.add("partial", str(p), "a .partial file is an unfinished build; finish it with `vlnav-data build --resume`")
    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        out.add(
            "hdf5", str(p), f"cannot be opened as HDF5 ({exc}); the file is truncated, damaged or not HDF5", fatal=True
        )
        return out.finish()
    try:
        _validate_open(f, out)
    except (OSError, KeyError, RuntimeError) as exc:  # damaged object headers or chunks mid-file
        out.add("hdf5", str(p), f"reading stopped on damaged data ({type(exc).__name__}: {exc})", fatal=True)
    finally:
        f.close()
    return out.finish()


def _validate_open(f: h5py.File, out: _Collector) -> None:
    # ---- root attributes
    fmt = _s(f.attrs.get("format"))
    if fmt != schema.FORMAT_NAME:
        out.add("format", "/", f"attribute format must be '{schema.FORMAT_NAME}', got {fmt!r}", fatal=True)
        return  # not our file: nothing else is meaningful
    raw_version = _s(f.attrs.get("format_version"))
    try:
        version = schema.parse_version(raw_version)
    except ValueError as exc:
        out.add("format-version", "/", str(exc), fatal=True)
        return
    if version[0] > schema.FORMAT_MAJOR:
        out.add(
            "format-version",
            "/",
            f"format_version {raw_version} is newer than the {schema.FORMAT_VERSION} this vlnav-data reads; "
            "upgrade vlnav-data",
            fatal=True,
        )
        return
    if version[0] < schema.FORMAT_MAJOR:
        out.add("format-version", "/", f"format_version {raw_version} is older than {schema.FORMAT_VERSION}")
    missing = [a for a in schema.ROOT_ATTRS if a not in f.attrs]
    if missing:
        out.add("root-attrs", "/", f"missing root attributes: {', '.join(missing)}")
    if "complete" in f.attrs and not bool(f.attrs["complete"]):
        out.add("complete", "/", "complete is not True: the build did not finish (resume it with --resume)")
    parsed: dict[str, Any] = {}
    for a in schema.JSON_ROOT_ATTRS:
        if a in f.attrs:
            try:
                parsed[a] = json.loads(_s(f.attrs[a]))
            except (ValueError, TypeError) as exc:
                out.add("root-attrs", "/", f"{a} is not valid JSON ({exc})")
    if "fps" in f.attrs and not (np.isfinite(f.attrs["fps"]) and float(f.attrs["fps"]) > 0):
        out.add("root-attrs", "/", f"fps must be a positive number, got {f.attrs['fps']}")
    imported = schema.is_imported(parsed.get("sim_config_json"))
    _validate_source(f, imported, out)
    encoders: dict[str, int] = {}
    enc_json = parsed.get("encoders_json")
    if enc_json is not None:
        if not isinstance(enc_json, list) or not all(
            isinstance(e, dict) and "name" in e and "dim" in e for e in enc_json
        ):
            out.add("encoders", "/", "encoders_json must be a list of {name, dim, ...} objects")
        else:
            encoders = {str(e["name"]): int(e["dim"]) for e in enc_json}
            if not encoders and not imported:
                out.add("encoders", "/", "encoders_json lists no encoder; a dataset carries at least one")

    # ---- /meta
    n_instr = _validate_meta(f, encoders, out)

    # ---- /data
    if "data" not in f or not isinstance(f["data"], h5py.Group):
        out.add("data", "/data", "missing /data group")
        return
    data = f["data"]
    _validate_data_attrs(data, out)
    names = list(data.keys())
    indices = []
    for n in names:
        idx = schema.demo_index(n)
        if idx is None:
            out.add(
                "demo-names", f"/data/{n}", "only demo_<i> groups may live under /data (robomimic, diffusion_policy)"
            )
        elif not isinstance(data.get(n, getlink=True), h5py.HardLink) or not isinstance(data[n], h5py.Group):
            out.add("demo-names", f"/data/{n}", "must be a group (hard link)")
        else:
            indices.append(idx)
    indices.sort()
    if indices != list(range(len(indices))):
        missing_idx = sorted(set(range(max(indices, default=-1) + 1)) - set(indices))
        out.add(
            "demo-names",
            "/data",
            f"demo indices must be contiguous demo_0..demo_{len(indices) - 1}; missing: "
            + ", ".join(f"demo_{i}" for i in missing_idx[:10]),
        )
    image_shape = None
    feats = parsed.get("features_json")
    if isinstance(feats, dict) and isinstance(feats.get("rgb"), dict):
        image_shape = tuple(feats["rgb"].get("shape", ()))
    contract = _imported_contract(feats, encoders, out) if imported else _arena_contract(encoders)
    total = 0
    for idx in indices:
        total += _validate_demo(data[schema.demo_name(idx)], contract, n_instr, image_shape, out)
    if "total" in data.attrs and int(data.attrs["total"]) != total:
        out.add("total", "/data", f"attribute total = {int(data.attrs['total'])}, but the demos hold {total} samples")
    if "num_demos" in data.attrs and int(data.attrs["num_demos"]) != len(indices):
        out.add("total", "/data", f"attribute num_demos = {int(data.attrs['num_demos'])}, but there are {len(indices)}")

    # ---- /mask
    _validate_masks(f, {schema.demo_name(i) for i in indices}, out)

    # ---- storage: portable filters, no virtual datasets, no strings under /data
    def visit(name: str, obj: Any) -> None:
        if not isinstance(obj, h5py.Dataset):
            return
        where = "/" + name
        if obj.is_virtual:
            out.add("virtual", where, "virtual datasets are not allowed (sources are absolute paths)")
            return
        plist = obj.id.get_create_plist()
        for i in range(plist.get_nfilters()):
            fid = plist.get_filter(i)[0]
            if fid not in schema.PORTABLE_FILTER_IDS:
                out.add(
                    "filters",
                    where,
                    f"HDF5 filter id {fid} needs a plugin; use only {', '.join(schema.PORTABLE_FILTER_IDS.values())}",
                )
        if name.startswith("data/") and obj.dtype.kind in ("S", "U", "O"):
            out.add("strings", where, "string datasets under /data break Isaac Lab and robomimic loaders")

    f.visititems(visit)


def _validate_meta(f: h5py.File, encoders: dict[str, int], out: _Collector) -> int:
    if schema.META_INSTRUCTIONS not in f:
        out.add("meta", "/" + schema.META_INSTRUCTIONS, "missing instruction table")
        return -1
    instr = f[schema.META_INSTRUCTIONS]
    if instr.ndim != 1 or h5py.check_string_dtype(instr.dtype) is None:
        out.add("meta", instr.name, f"must be a 1-D UTF-8 string dataset, got {instr.dtype} {instr.shape}")
        return -1
    k = instr.shape[0]
    for name, dim in encoders.items():
        where = f"/{schema.META_TEXT_EMBEDDINGS}/{name}"
        if where[1:] not in f:
            out.add("meta", where, f"missing text embeddings of encoder '{name}'")
            continue
        ds = f[where[1:]]
        if ds.shape != (k, dim) or ds.dtype.kind != "f":
            out.add("meta", where, f"expected float ({k}, {dim}) (one row per instruction), got {ds.dtype} {ds.shape}")
    return k


def _validate_data_attrs(data: h5py.Group, out: _Collector) -> None:
    missing = [a for a in schema.DATA_ATTRS if a not in data.attrs]
    if missing:
        out.add("data-attrs", "/data", f"missing attributes: {', '.join(missing)}")
    if "env_args" in data.attrs:
        try:
            env_args = json.loads(_s(data.attrs["env_args"]))
        except (ValueError, TypeError) as exc:
            out.add("env-args", "/data", f"env_args is not valid JSON ({exc})")
            return
        if not isinstance(env_args, dict):
            out.add("env-args", "/data", "env_args must be a JSON object")
            return
        lack = [k for k in ("env_name", "type", "env_kwargs") if k not in env_args]
        if lack:
            out.add("env-args", "/data", f"env_args lacks {', '.join(lack)} (robomimic reads all three)")
        elif not isinstance(env_args["env_kwargs"], dict):
            out.add("env-args", "/data", "env_args['env_kwargs'] must be an object (robomimic >= 0.5 indexes it)")


@dataclass(frozen=True)
class _DemoContract:
    """What every demo of a file must hold: an arena file's (:data:`schema.BASE_DATASETS`) or an imported one's."""

    datasets: dict[str, str]  # path -> dtype
    row_shapes: dict[str, tuple[int, ...]]  # path -> shape of one step, where the file fixes it
    attrs: tuple[str, ...]
    forbidden_attrs: tuple[str, ...] = ()
    forbidden_datasets: tuple[str, ...] = ()
    bounded_actions: bool = True


def _arena_contract(encoders: dict[str, int]) -> _DemoContract:
    datasets = dict(schema.BASE_DATASETS)
    shapes: dict[str, tuple[int, ...]] = {schema.ACTIONS: (schema.ACTION_DIM,), schema.WHEEL_VEL: (2,)}
    for enc, dim in encoders.items():
        for kind in schema.EMBEDDING_KINDS:
            datasets[schema.encoder_path(enc, kind)] = schema.EMBEDDING_DTYPE
            shapes[schema.encoder_path(enc, kind)] = (dim,)
    return _DemoContract(datasets=datasets, row_shapes=shapes, attrs=schema.DEMO_ATTRS)


def _imported_contract(feats: Any, encoders: dict[str, int], out: _Collector) -> _DemoContract:
    """An imported file's demos: :data:`schema.IMPORTED_DATASETS` plus the float32 features ``features_json`` lists."""
    datasets = dict(schema.IMPORTED_DATASETS)
    shapes: dict[str, tuple[int, ...]] = {}
    if not isinstance(feats, dict) or not isinstance(feats.get("actions"), dict):
        out.add("features", "/", "features_json of an imported file must describe 'actions' (its width and names)")
        feats = {}
    encoder_paths = {schema.encoder_path(e, k) for e in encoders for k in schema.EMBEDDING_KINDS}
    for key, ft in feats.items():
        path = ft.get("path") if isinstance(ft, dict) else None
        if not isinstance(path, str) or not isinstance(ft.get("shape"), list):
            out.add("features", "/", f"features_json['{key}'] needs a path and a shape")
            continue
        if path == schema.ACTIONS:
            shapes[path] = tuple(int(x) for x in ft["shape"])
        elif path.startswith("obs/") and path != schema.RGB and path not in encoder_paths:
            if path in schema.ARENA_ONLY_DATASETS:
                out.add("arena-only", "/", f"features_json lists {path}, which only an arena file has")
                continue
            datasets[path] = "float32"
            shapes[path] = tuple(int(x) for x in ft["shape"])
    for enc, dim in encoders.items():
        for kind in schema.EMBEDDING_KINDS:
            datasets[schema.encoder_path(enc, kind)] = schema.EMBEDDING_DTYPE
            shapes[schema.encoder_path(enc, kind)] = (dim,)
    return _DemoContract(
        datasets=datasets,
        row_shapes=shapes,
        attrs=schema.IMPORTED_DEMO_ATTRS,
        forbidden_attrs=schema.ARENA_ONLY_DEMO_ATTRS,
        forbidden_datasets=schema.ARENA_ONLY_DATASETS,
        bounded_actions=False,
    )


def _validate_source(f: h5py.File, imported: bool, out: _Collector) -> None:
    """An imported file (no arena) carries ``source_json``; an arena file does not."""
    raw = f.attrs.get(schema.SOURCE_ATTR)
    if not imported:
        if raw is not None:
            out.add(
                "source",
                "/",
                f"{schema.SOURCE_ATTR} belongs to imported files, whose sim_config_json is "
                f"{json.dumps(schema.NO_ARENA)}; this file names an arena",
            )
        return
    if raw is None:
        out.add("source", "/", f"a file without an arena must say where it came from: missing {schema.SOURCE_ATTR}")
        return
    try:
        source = json.loads(_s(raw))
    except (ValueError, TypeError) as exc:
        out.add("source", "/", f"{schema.SOURCE_ATTR} is not valid JSON ({exc})")
        return
    if not isinstance(source, dict) or source.get("kind") not in schema.SOURCE_KINDS:
        out.add("source", "/", f"{schema.SOURCE_ATTR} must be an object with kind in {list(schema.SOURCE_KINDS)}")
    elif not source.get("id"):
        out.add("source", "/", f"{schema.SOURCE_ATTR} must name the source dataset (id)")


def _validate_demo(
    g: h5py.Group, contract: _DemoContract, n_instr: int, image_shape: tuple | None, out: _Collector
) -> int:
    where = g.name
    missing_attrs = [a for a in contract.attrs if a not in g.attrs]
    if missing_attrs:
        out.add("demo-attrs", where, f"missing attributes: {', '.join(missing_attrs)}")
    arena_attrs = [a for a in contract.forbidden_attrs if a in g.attrs]
    if arena_attrs:
        out.add("arena-only", where, f"a file without an arena has no {', '.join(arena_attrs)} attribute(s)")
    if "num_samples" not in g.attrs:
        return 0
    t = int(g.attrs["num_samples"])
    if t < 1:
        out.add("lengths", where, f"num_samples must be >= 1, got {t}")
    present: list[str] = []
    g.visititems(lambda n, o: present.append(n) if isinstance(o, h5py.Dataset) else None)
    for key in contract.forbidden_datasets:
        if key in present:
            out.add("arena-only", f"{where}/{key}", "a file without an arena has no such dataset")
    for key, dtype in contract.datasets.items():
        if key not in present:
            out.add("datasets", f"{where}/{key}", "missing")
            continue
        ds = g[key]
        if ds.dtype != np.dtype(dtype):
            out.add("dtypes", f"{where}/{key}", f"dtype must be {dtype}, got {ds.dtype}")
    for key in present:
        ds = g[key]
        if ds.ndim == 0 or ds.shape[0] != t:
            out.add("lengths", f"{where}/{key}", f"first axis must equal num_samples = {t}, got shape {ds.shape}")
    for key, row in contract.row_shapes.items():
        if key in present and key != schema.ACTIONS and g[key].shape[1:] != row:
            out.add("shapes", f"{where}/{key}", f"must be (T, {', '.join(map(str, row))}), got {g[key].shape}")
    # Shapes and values of the datasets that are present.
    if "actions" in present:
        a = g["actions"][()]
        width = contract.row_shapes.get(schema.ACTIONS)
        if a.ndim != 2 or (width is not None and a.shape[1:] != width):
            out.add("actions", f"{where}/actions", f"must be (T, {width[0] if width else 'A'}), got {a.shape}")
        elif a.size and not np.all(np.isfinite(a)):
            out.add("actions", f"{where}/actions", "values must be finite")
        elif a.size and contract.bounded_actions and float(np.abs(a).max()) > 1.0:
            out.add("actions", f"{where}/actions", f"values must be finite and in [-1, 1], got [{a.min()}, {a.max()}]")
    for key in (schema.REWARDS, schema.DONES, schema.TIMESTAMPS, schema.INSTRUCTION_INDEX):
        if key in present and g[key].ndim != 1:
            out.add("shapes", f"{where}/{key}", f"must be 1-D (T,), got {g[key].shape}")
    if schema.DONES in present:
        d = g[schema.DONES][()]
        if d.size and not np.isin(d, (0, 1)).all():
            out.add("dones", f"{where}/dones", "values must be 0 or 1")
    if schema.TIMESTAMPS in present:
        ts = g[schema.TIMESTAMPS][()]
        if ts.size > 1 and not np.all(np.diff(ts) > 0):
            out.add("timestamps", f"{where}/timestamps", "must increase strictly")
    if schema.INSTRUCTION_INDEX in present and n_instr >= 0:
        ii = g[schema.INSTRUCTION_INDEX][()]
        if ii.size and (int(ii.min()) < 0 or int(ii.max()) >= n_instr):
            out.add(
                "instruction-index",
                f"{where}/{schema.INSTRUCTION_INDEX}",
                f"values must index /meta/instructions (0..{n_instr - 1}), got [{ii.min()}, {ii.max()}]",
            )
    if schema.RGB in present:
        rgb = g[schema.RGB]
        if rgb.ndim != 4 or rgb.shape[3] != 3:
            out.add("images", f"{where}/{schema.RGB}", f"must be uint8 (T, H, W, 3), got {rgb.shape}")
        else:
            if image_shape and tuple(rgb.shape[1:]) != tuple(image_shape):
                out.add(
                    "images", f"{where}/{schema.RGB}", f"frame shape {rgb.shape[1:]} != features_json {image_shape}"
                )
            if rgb.chunks is not None and rgb.chunks[0] != 1:
                out.add("chunks", f"{where}/{schema.RGB}", f"one frame per chunk expected, got chunks {rgb.chunks}")
    if schema.PRIVILEGED_STATE in present and g[schema.PRIVILEGED_STATE].ndim != 2:
        out.add("shapes", f"{where}/{schema.PRIVILEGED_STATE}", "must be (T, D)")
    return t


def _validate_masks(f: h5py.File, demos: set[str], out: _Collector) -> None:
    if "mask" not in f:
        out.add("masks", "/mask", "missing /mask group (train/valid filter keys)")
        return
    members: dict[str, set[str]] = {}
    for split in schema.SPLITS:
        where = f"/mask/{split}"
        if split not in f["mask"]:
            out.add("masks", where, "missing")
            continue
        ds = f["mask"][split]
        if ds.dtype.kind != "S" or ds.ndim != 1:
            out.add("masks", where, f"must be a 1-D fixed-length byte-string ('S') array, got {ds.dtype} {ds.shape}")
            continue
        names = [n.decode("utf-8") for n in ds[()]]
        unknown = sorted(set(names) - demos)
        if unknown:
            out.add("masks", where, f"names demos that do not exist: {', '.join(unknown[:10])}")
        if len(set(names)) != len(names):
            out.add("masks", where, "lists a demo more than once")
        members[split] = set(names)
    if len(members) == 2:
        both = sorted(members["train"] & members["valid"])
        if both:
            out.add("masks", "/mask", f"train and valid must be disjoint; both hold: {', '.join(both[:10])}")
        uncovered = sorted(demos - members["train"] - members["valid"], key=lambda n: schema.demo_index(n) or 0)
        if uncovered:
            out.add("masks", "/mask", f"demos in neither train nor valid: {', '.join(uncovered[:10])}")
