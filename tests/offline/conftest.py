"""Files without an arena (issue 26, DESIGN §11 "Past the arena"), written here by h5py to the contract of
``vlnav_data/dataset/schema.py`` (``NO_ARENA``, ``SOURCE_ATTR``, ``STATE``) until the importers land.

The numbers have a known generating function, so a probe or a policy has a computable answer:

- the image embedding of step t (``E = 16``) is one of ``C`` cluster centres in its first 14 columns
  (plus a small jitter), the episode's progress ``t / (T - 1)`` plus noise in column 14, and pure noise in
  column 15;
- ``actions = z @ W + noise`` with ``z`` the first 14 columns and a per-dimension noise std
  (:data:`ACTION_NOISE`), so the best predictor's R² on any rows is ``1 - sum(noise²) / sum((y - ȳ)²)``;
- ``obs/state``: column 0 is ``z @ V + N(0, 0.3²)`` (readable), column 1 pure noise (unreadable);
- the task (one per episode) is in the text embedding only: the ``image`` features say nothing about it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest

from vlnav_data.dataset import schema

DIM = 16
SIGNAL_DIMS = 14
ACTION_NOISE = (0.2, 0.5, 1.0)
ACTION_NAMES = ("joint_0", "joint_1", "gripper")
STATE_NOISE = 0.3
STATE_NAMES = ("proprio_readable", "proprio_noise")
PROGRESS_NOISE = 0.05
TASKS = ("pick up the red cube", "open the top drawer", "push the blue block left")
ENCODER = "toy"


@dataclass
class Truth:
    """What generated a file: per-row noise of each action and state column, in file row order."""

    action_noise: dict[int, np.ndarray]
    state_noise: dict[int, np.ndarray]
    progress_noise: dict[int, np.ndarray]
    task: dict[int, int]
    splits: dict[int, str]


def write_imported_file(
    path: Path,
    *,
    num_episodes: int = 40,
    steps: tuple[int, int] = (20, 31),
    num_clusters: int = 12,
    jitter: float = 0.05,
    action_scale: float = 1.0,
    kind: str = "lerobot",
    seed: int = 0,
) -> Truth:
    """Write a complete arena-less ``vlnav-demos`` file; return the noise that went into it."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((num_clusters, SIGNAL_DIMS))
    w = rng.standard_normal((SIGNAL_DIMS, len(ACTION_NAMES))) / np.sqrt(SIGNAL_DIMS)
    v = rng.standard_normal((SIGNAL_DIMS, 1)) / np.sqrt(SIGNAL_DIMS)
    text = rng.standard_normal((len(TASKS), DIM))
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    truth = Truth({}, {}, {}, {}, {})
    features = {
        "actions": {"path": "actions", "dtype": "float32", "shape": [3], "names": list(ACTION_NAMES)},
        "state": {"path": schema.STATE, "dtype": "float32", "shape": [2], "names": list(STATE_NAMES)},
        "rgb": {"path": schema.RGB, "dtype": "uint8", "shape": [8, 8, 3], "names": None},
    }
    spec = {
        "name": ENCODER, "dim": DIM, "dtype": "", "device_type": "", "fusion": "l2(l2(image) + l2(text))",
        "library_versions": {}, "model_id": "", "note": "test: known generating function", "preprocessing": {},
        "privileged": False, "revision": "", "source": "builtin", "trust_remote_code": False,
    }  # fmt: skip
    total = 0
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        for i in range(num_episodes):
            t = int(rng.integers(*steps))
            split = "valid" if i % 4 == 3 else "train"
            task = int(rng.integers(len(TASKS)))
            cluster = rng.integers(num_clusters, size=t)
            z = centres[cluster] + jitter * rng.standard_normal((t, SIGNAL_DIMS))
            progress = np.arange(t) / max(t - 1, 1)
            p_noise = PROGRESS_NOISE * rng.standard_normal(t)
            image = np.concatenate([z, (progress + p_noise)[:, None], rng.standard_normal((t, 1))], axis=1)
            a_noise = rng.standard_normal((t, 3)) * np.array(ACTION_NOISE)
            actions = action_scale * (z @ w + a_noise)
            s_noise = STATE_NOISE * rng.standard_normal(t)
            state = np.stack([(z @ v)[:, 0] + s_noise, rng.standard_normal(t)], axis=1)
            unit = image / np.linalg.norm(image, axis=1, keepdims=True)
            joint = unit + text[task]
            joint /= np.linalg.norm(joint, axis=1, keepdims=True)
            g = data.create_group(f"demo_{i}")
            g["actions"] = actions.astype(np.float32)
            g[schema.STATE] = state.astype(np.float32)
            g[schema.RGB] = np.broadcast_to((cluster * 20 % 256).astype(np.uint8)[:, None, None, None], (t, 8, 8, 3))
            g[schema.INSTRUCTION_INDEX] = np.full(t, task, dtype=np.int32)
            g[schema.TIMESTAMPS] = np.arange(t) / 10.0
            g[schema.REWARDS] = np.zeros(t, np.float32)
            g[schema.DONES] = (np.arange(t) == t - 1).astype(np.uint8)
            g[schema.encoder_path(ENCODER, "image")] = image.astype(np.float16)
            g[schema.encoder_path(ENCODER, "joint")] = joint.astype(np.float16)
            g.attrs["episode_index"] = i
            g.attrs["split"] = split
            g.attrs["num_samples"] = t
            truth.action_noise[i] = action_scale * a_noise
            truth.state_noise[i] = s_noise
            truth.progress_noise[i] = p_noise
            truth.task[i] = task
            truth.splits[i] = split
            total += t
        data.attrs["total"] = total
        data.attrs["num_demos"] = num_episodes
        data.attrs["env_args"] = json.dumps({"env_name": "", "type": schema.ROBOMIMIC_GYM_ENV_TYPE, "env_kwargs": {}})
        for split in schema.SPLITS:
            names = [f"demo_{i}" for i, s in truth.splits.items() if s == split]
            f.create_dataset(f"mask/{split}", data=np.array(names, dtype="S"))
        f.create_dataset(schema.META_INSTRUCTIONS, data=np.array(TASKS, dtype=h5py.string_dtype()))
        f.create_dataset(f"{schema.META_TEXT_EMBEDDINGS}/{ENCODER}", data=text.astype(np.float32))
        f.attrs["format"] = schema.FORMAT_NAME
        f.attrs["format_version"] = schema.FORMAT_VERSION
        f.attrs["complete"] = True
        f.attrs["created_utc"] = "2026-12-06T00:00:00Z"
        f.attrs["writer"] = "tests/offline/conftest.py"
        f.attrs["fps"] = 10.0
        f.attrs["features_json"] = json.dumps(features)
        f.attrs["build_config_json"] = json.dumps({})
        f.attrs["sim_config_json"] = json.dumps(schema.NO_ARENA)
        f.attrs["encoders_json"] = json.dumps([spec])
        f.attrs[schema.SOURCE_ATTR] = json.dumps({"kind": kind, "id": "test/known-function", "revision": "v0"})
    return truth


def rows_of(truth_part: dict[int, np.ndarray], split: str, truth: Truth) -> np.ndarray:
    """Concatenate one per-episode array over the episodes of a split, in file order."""
    return np.concatenate([truth_part[i] for i in sorted(truth_part) if truth.splits[i] == split])


def best_r2(y: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """R² per column of the true generating function on these rows: ``1 - SSE(noise) / SS(y)``."""
    y2, n2 = y.reshape(len(y), -1), noise.reshape(len(noise), -1)
    return 1.0 - (n2**2).sum(0) / ((y2 - y2.mean(0)) ** 2).sum(0)


@pytest.fixture(scope="session")
def imported(tmp_path_factory) -> tuple[Path, Truth]:
    """An arena-less file imported 'from lerobot', with its generating noise."""
    path = tmp_path_factory.mktemp("offline") / "imported.h5"
    return path, write_imported_file(path)
