"""The one dataset-card renderer (``vlnav-data card`` and ``vlnav-data publish`` both use it).

A card is a Hugging Face ``README.md``: YAML front matter (license, ``task_categories: [robotics]``, tags,
``size_categories``), then what the data is, a strip of sample frames, statistics, the schema tree, how
to load it and the exact command that rebuilds it. h5py + numpy only; PIL is imported lazily to write
the frame strip.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vlnav_data.dataset import schema
from vlnav_data.dataset.reader import DatasetReader
from vlnav_data.dataset.summary import DatasetSummary, schema_tree, summarize_dataset

DEFAULT_TAGS = ("robotics", "navigation", "vision-language", "embeddings", "hdf5", "robomimic", "vlnav-demos")
STRIP_NAME = "sample_frames.png"


def size_category(n: int) -> str:
    """Hugging Face ``size_categories`` bucket of ``n`` rows (here: steps)."""
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")]
    bounds += [(10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]
    for bound, label in bounds:
        if n < bound:
            return label
    return "n>1T" if n >= 1_000_000_000_000 else "1B<n<10B"


STRIP_MIN_HEIGHT_PX = 192
"""Frames in the card's strip are enlarged (nearest neighbour, an integer factor) to at least this height,
so a 64-pixel build shows at 192 px instead of a 64-pixel sliver; every stored pixel becomes a block."""


@dataclass(frozen=True)
class FrameSample:
    """Frames of one demo for the card: which demo, which steps, the instruction at the first one."""

    demo: str
    steps: tuple[int, ...]
    frames: tuple[np.ndarray, ...]
    instruction: str


def sample_frames(path: str | os.PathLike, num_frames: int = 6, demo: str | None = None) -> FrameSample:
    """Evenly spaced frames (first and last included) of one demo (default: the first successful one)."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    with DatasetReader(path) as r:
        if not r.demo_names:
            raise ValueError(f"'{path}' has no demos to take frames from")
        if demo is None:
            demo = next((n for n in r.demo_names if r.attrs(n).get("success")), r.demo_names[0])
        group = r.file["data"][demo]
        rgb = group[schema.RGB]
        t = rgb.shape[0]
        steps = tuple(int(x) for x in np.unique(np.linspace(0, t - 1, num_frames).round().astype(int)))
        frames = tuple(np.asarray(rgb[s]) for s in steps)
        instruction = ""
        if schema.INSTRUCTION_INDEX in group and r.instructions:
            instruction = r.instructions[int(group[schema.INSTRUCTION_INDEX][steps[0]])]
    return FrameSample(demo=demo, steps=steps, frames=frames, instruction=instruction)


def frame_strip(
    path: str | os.PathLike, num_frames: int = 6, demo: str | None = None, min_height_px: int = STRIP_MIN_HEIGHT_PX
) -> np.ndarray:
    """Evenly spaced frames of one demo side by side, enlarged to ``min_height_px`` (:data:`STRIP_MIN_HEIGHT_PX`).

    Returns:
        uint8 ``(s * H, num_frames * s * W + (num_frames - 1) * 2 * s, 3)`` with ``s = ceil(min_height_px / H)``
        (at least 1); white gaps of ``2 * s`` pixels between frames.
    """
    sample = sample_frames(path, num_frames, demo)
    h = sample.frames[0].shape[0]
    scale = max(1, -(-int(min_height_px) // h))
    big = [np.repeat(np.repeat(fr, scale, axis=0), scale, axis=1) for fr in sample.frames]
    gap = np.full((h * scale, 2 * scale, 3), 255, dtype=np.uint8)
    parts: list[np.ndarray] = []
    for i, fr in enumerate(big):
        if i:
            parts.append(gap)
        parts.append(fr)
    return np.concatenate(parts, axis=1)


def render_card(
    path: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    num_frames: int = 6,
    license: str = "apache-2.0",
    repo_id: str | None = None,
    extra_tags: Sequence[str] = (),
    file_name: str | None = None,
) -> str:
    """Render the Markdown dataset card of a ``vlnav-demos`` file.

    Args:
        path: the dataset file.
        out: when given, the card is written there and the frame strip as ``sample_frames.png`` beside it.
        num_frames: frames in the strip.
        license: Hugging Face license id.
        repo_id: Hub repository id used in the download snippet (e.g. ``user/vlnav-text2nav``).
        extra_tags: tags added to the defaults.
        file_name: the file's name as published (default: its current name).

    Returns:
        The card text.
    """
    p = Path(path)
    s = summarize_dataset(p)
    with DatasetReader(p) as r:
        build = r.build_config
        sim = r.sim_config
        instructions = r.instructions
        specs = r.encoder_specs
        rebuild = r.rebuild_command
        state_names = r.state_names
        source = r.source
        features = r.features
    name = file_name or p.name
    tags = list(dict.fromkeys([*DEFAULT_TAGS, *extra_tags]))
    privileged = [n for n, spec in specs.items() if spec.get("privileged")]
    # the usage snippets show a deployable input: the first encoder that does not read simulator state
    student_encoder = next((n for n in specs if n not in privileged), "ENC")
    lines = [
        "---",
        f"license: {license}",
        "task_categories:",
        "- robotics",
        "tags:",
        *[f"- {t}" for t in tags],
        "size_categories:",
        f"- {size_category(s.num_steps)}",
        f"pretty_name: vlnav-demos {sim.get('preset', build.get('preset', ''))}".rstrip(),
        "---",
        "",
        f"# {name}",
        "",
        _imported_intro(source, features, s.format_version)
        if source is not None
        else "Language-guided navigation demonstrations: a differential-drive robot (JetBot) drives to the coloured "
        "sphere named in an instruction. Each step stores the camera frame, the privileged state, the "
        "expert's action and frozen vision-language embeddings of the frame and of the frame fused with "
        "the instruction. Built with vlnav-data in the "
        f"`{schema.FORMAT_NAME}` {s.format_version} HDF5 format, which robomimic's `SequenceDataset` reads unchanged.",
        "",
    ]
    if out is not None:
        sample = sample_frames(p, num_frames)
        lines += [
            f"![Sample frames]({STRIP_NAME})",
            "",
            f"*Camera frames of `{sample.demo}` at steps {', '.join(map(str, sample.steps))}"
            + (f': "{sample.instruction}"' if sample.instruction else "")
            + f" ({s.image_shape[1]}x{s.image_shape[0]} px, shown enlarged).*",
            "",
        ]
    lines += [
        "## Summary",
        "",
        "| | |",
        "|---|---|",
        f"| episodes | {s.num_episodes} ({', '.join(f'{k}: {v}' for k, v in s.splits.items())}) |",
        f"| steps | {s.num_steps} (per episode: min {s.steps_min}, mean {s.steps_mean:.1f}, max {s.steps_max}) |",
        f"| control rate | {s.fps:g} Hz |",
        *(
            [
                f"| source | {source.get('kind')} `{source.get('id')}` {source.get('revision') or ''} |",
                "| arena | none |",
            ]
            if source is not None
            else [
                f"| expert success rate | {100 * s.success_rate:.1f}% |",
                f"| experts | {', '.join(f'{k} ({v})' for k, v in s.experts.items())} |",
            ]
        ),
        f"| image | {' x '.join(map(str, s.image_shape))} uint8 |",
        f"| encoders | {', '.join(f'`{k}` ({v}-d)' for k, v in s.encoders.items())} |",
        f"| distinct instructions | {s.num_instructions} |",
        f"| file size | {s.file_bytes / 1e6:.2f} MB ({s.bytes_per_frame / 1e3:.1f} kB per step) |",
        f"| created | {s.created_utc} by {s.writer} |",
        "",
    ]
    if source is None:
        lines += [
            "### Termination causes",
            "",
            "| cause | episodes |",
            "|---|---|",
            *[f"| {k or '(none)'} | {v} |" for k, v in s.terminations.items()],
            "",
            "### Targets",
            "",
            "| colour | episodes |",
            "|---|---|",
            *[f"| {k} | {v} |" for k, v in s.targets.items()],
            "",
        ]
    lines += [
        "### Example instructions",
        "",
        *[f'- "{t}"' for t in instructions[:8]],
        "",
        "## Encoders",
        "",
        "| name | model | revision | dim | joint fusion | note |",
        "|---|---|---|---|---|---|",
        *[
            f"| `{n}` | {sp.get('model_id', '')} | {sp.get('revision', '') or '-'} | {sp.get('dim')} | "
            f"{sp.get('fusion', '')} | {sp.get('note', '')} |"
            for n, sp in specs.items()
        ],
        "",
    ]
    if privileged:
        lines += [
            f"**Privileged encoders** ({', '.join(privileged)}) see simulator state: a diagnostic upper bound, "
            "never an input to a deployable policy.",
            "",
        ]
    lines += [
        "## Layout",
        "",
        "```",
        schema_tree(p),
        "```",
        "",
        _imported_columns(features)
        if source is not None
        else f"`obs/privileged_state` columns: {', '.join(f'`{c}`' for c in state_names)}. "
        "Privileged: for experts and probes, never for the student policy.",
        "",
        "## Usage",
        "",
        "```python",
        "from vlnav_data.dataset import DatasetReader",
        "",
        f'with DatasetReader("{name}") as r:',
        f'    rows = r.stack(["actions", "obs/{student_encoder}_joint"], split="train")',
        "```",
        "",
        'robomimic (0.3+), a student policy\'s inputs: `observation.modalities.obs.rgb = ["rgb"]`, '
        f'`low_dim = ["{student_encoder}_joint"]`, '
        '`train.hdf5_filter_key = "train"`, `train.hdf5_validation_filter_key = "valid"`, '
        "`hdf5_load_next_obs = False`."
        + (
            ""
            if source is not None
            else " Leave `privileged_state`"
            + (f" and the privileged encoders ({', '.join(f'`{n}_joint`' for n in privileged)})" if privileged else "")
            + " out of `low_dim`: they are simulator state the student must never see."
        ),
        "",
    ]
    if repo_id:
        lines += [
            "```python",
            "from huggingface_hub import hf_hub_download",
            "",
            f'path = hf_hub_download("{repo_id}", "{name}", repo_type="dataset")',
            "```",
            "",
        ]
    lines += [
        "## Reproduce",
        "",
        "```bash",
        rebuild or "# (this file does not record the command that built it)",
        "```",
        "",
        "Same seed and configuration give identical arrays (on the same device type). The resolved build "
        "configuration is stored in the file's `build_config_json` attribute.",
        "",
        "## Source",
        "",
        f"Imported from the {source.get('kind')} dataset `{source.get('id')}`; its own metadata is kept in the "
        "file's `source_json` attribute. Validate the file with `vlnav-data validate FILE`."
        if source is not None
        else "The `text2nav` preset follows the code of *Can Pretrained Vision-Language Embeddings Alone Guide "
        "Robot Navigation?* (arXiv:2506.14507). Validate the file with `vlnav-data validate FILE`.",
        "",
    ]
    text = "\n".join(lines)
    if out is not None:
        o = Path(out)
        o.parent.mkdir(parents=True, exist_ok=True)
        write_png(frame_strip(p, num_frames), o.parent / STRIP_NAME)
        partial = o.with_name(o.name + ".partial")
        partial.write_text(text)
        os.replace(partial, o)  # an existing card stays until the new one is complete
    return text


def _imported_intro(source: dict, features: dict, format_version: str) -> str:
    """The opening paragraph of an imported file's card: where it came from, what a step holds, no arena."""
    camera = features.get("rgb", {}).get("source_key") or "the chosen camera"
    revision = f" (revision `{source['revision']}`)" if source.get("revision") else ""
    return (
        f"Demonstrations imported from the {source.get('kind')} dataset `{source.get('id')}`{revision} with "
        f"`vlnav-data import {source.get('kind')}`. There is no simulator behind them (`arena: none`): closed-loop "
        f"evaluation, DAgger and the spatial probe refuse this file; evaluation is offline, on held-out episodes. "
        f"Each step stores the frame of `{camera}`, the source's actions and numeric features and the task "
        f"string as its instruction, in the `{schema.FORMAT_NAME}` {format_version} HDF5 format."
    )


def _imported_columns(features: dict) -> str:
    """The columns of an imported file's actions and numeric features, with their names in the source."""
    parts = []
    for key, ft in features.items():
        if "source_key" in ft and key != "rgb":
            names = ", ".join(f"`{c}`" for c in ft.get("names") or []) or f"{ft.get('shape')}"
            parts.append(f"`{ft['path']}` (from `{ft['source_key']}`): {names}")
    notes = [f"`{k}`: {features[k]['units']}" for k in ("rewards", "dones") if features.get(k, {}).get("units")]
    return "; ".join(parts + notes) + "."


def write_png(image: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a uint8 ``(H, W, 3)`` image as PNG (PIL, imported here), atomically (``.partial`` + rename)."""
    from PIL import Image

    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(partial, format="PNG")
    os.replace(partial, path)
    return path


__all__ = ["DatasetSummary", "FrameSample", "frame_strip", "render_card", "sample_frames", "size_category", "write_png"]
