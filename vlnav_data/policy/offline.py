"""``vlnav-policy eval-offline``: a trained policy's actions on held-out episodes, where no simulator runs.

A file imported from LeRobot or robomimic has no arena to roll a policy out in (DESIGN §11, "Past the
arena"), so its policy is evaluated offline: on every step of the held-out episodes (the dataset's
``valid`` split, which training never fit), the policy's action is compared with the demonstrated one,
beside two baselines computed from the training split alone:

- ``train_mean``: the mean training action, predicted for every step (R² ≈ 0 by construction);
- ``knn``: the mean action of the ``k`` training steps whose frozen features are nearest (cosine, FAISS,
  :mod:`vlnav_data.knn_index`; the lookup ``vlnav-probe knn`` scores).

Scores, per action dimension and pooled over dimensions: R² (``1 - SSE / SS``; pooled as
``1 - sum SSE / sum SS``, the variance-weighted R² of the probes) and MSE, in the actions' own units.
Steps of one episode are not independent, so the intervals treat the **episode** as the unit: a 95%
bootstrap (``scipy.stats.bootstrap``, percentile method) resamples held-out episodes with replacement and
recomputes every figure from the resampled episodes' sums; the differences student − kNN and
student − train mean are computed on the same resamples (paired by episode). With fewer than
:data:`MIN_INTERVAL_EPISODES` held-out episodes, or where a resample leaves a dimension without variance,
the interval is ``null`` and ``interval_note`` says why — never NaN.

Why a command of its own rather than a mode of ``vlnav-policy eval``: every option of ``eval`` describes
rollouts (episodes from seeded starts, arenas stepped together, the expert on the same starts, the
preset, compiling the renderer), none of which exist here, while this evaluation has inputs ``eval``
lacks (the file whose held-out episodes it reads, the kNN baseline's ``k``, the bootstrap). One config per
command keeps each honest; ``eval`` on a model trained without an arena refuses with the no-arena line
and names this command. It also runs on a model trained in the arena (its held-out action error beside
its closed-loop success).

Result (``result.json``, the evaluation family of :mod:`vlnav_data.policy.evaluate`: ``policy``,
``model_dir``, ``encoder``, ``features``, one summary per predictor under ``student`` and its references,
``sim_config``/``arena``/``trained_arena``, ``files``)::

    "evaluation": "offline", "unit": "episode", "split": "valid", "num_episodes", "num_steps",
    "action_names": [...],
    "student" | "train_mean" | "knn": {
        "r2":  {"value", "low", "high", "confidence"},           pooled over dimensions
        "mse": {"value", "low", "high", "confidence"},
        "per_dimension": [{"name", "r2": {...}, "mse": {...}}, ...]},
    "student_minus_knn" | "student_minus_train_mean": {"r2": {...}, "mse": {...}, "per_dimension": [...]}

and ``offline_episodes.npz``: per held-out episode its index, steps and the sums every figure is computed
from (``sse_<predictor>`` per dimension, ``sum_y``, ``sum_y2``), so a figure can be recomputed or
re-bootstrapped without the model; ``offline_r2.png`` draws the R²s with their intervals.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vlnav_data.devices import check_device_name
from vlnav_data.errors import CheckpointError, ConfigError, SchemaError
from vlnav_data.jsonio import write_json_atomic
from vlnav_data.policy.records import EVAL_META  # the sidecar name of every evaluation directory

PREDICTORS = ("student", "knn", "train_mean")
#: Fewer held-out episodes than this: values only, no interval (a bootstrap over 1-4 units says nothing).
MIN_INTERVAL_EPISODES = 5
OFFLINE_RECORDS = "offline_episodes.npz"
OFFLINE_FIGURE = "offline_r2.png"

CONFIDENCE = 0.95


@dataclass(frozen=True, kw_only=True)
class OfflineEvalConfig:
    """Config of ``vlnav-policy eval-offline``.

    Attributes:
        model_dir: a directory written by ``vlnav-policy train`` (frozen features: joint, image, text, history:K).
        out_dir: where result.json, offline_episodes.npz and eval_meta.json go.
        dataset: the file whose held-out episodes are scored; None: the one the model was trained on.
        split: the held-out split (``valid``); the baselines always fit on ``train``.
        knn_k: neighbours of the kNN baseline.
        resamples: bootstrap resamples of the held-out episodes.
        seed: seeds the bootstrap.
        device: where the policy runs (``cpu``, ``cuda``, ``cuda:N``; resolved).
    """

    model_dir: Path
    out_dir: Path
    dataset: Path | None = None
    split: str = "valid"
    knn_k: int = 8
    resamples: int = 2000
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.split not in ("valid", "train"):
            raise ConfigError(f"--split must be valid (held-out episodes) or train, got '{self.split}'")
        if self.knn_k < 1:
            raise ConfigError(f"--k must be >= 1, got {self.knn_k}")
        if self.resamples < 100:
            raise ConfigError(f"--resamples must be >= 100 for a 95% interval, got {self.resamples}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"--seed must be an integer >= 0, got {self.seed!r}")
        if self.device == "auto":
            raise ConfigError("device must be resolved (cpu, cuda or cuda:N) before the config is built; got 'auto'")
        check_device_name(self.device)


@dataclass(frozen=True, kw_only=True)
class OfflineEvalResult:
    """``result.json`` of ``vlnav-policy eval-offline`` (see the module docstring for the summaries).

    Attributes:
        evaluation: ``offline`` (closed-loop results are rollouts of :mod:`vlnav_data.policy.evaluate`).
        policy, model_dir, encoder, features, privileged_encoder: what was evaluated.
        dataset, split, unit: which held-out steps, and the unit of the intervals (``episode``).
        num_episodes, num_steps, num_train_steps: held-out episodes and steps; training steps behind the baselines.
        action_names: one per dimension.
        student, knn, train_mean: one summary per predictor.
        student_minus_knn, student_minus_train_mean: paired differences (same resamples).
        knn_k, resamples, seed, bootstrap_method, interval_note: how the intervals were made (note: why one
            is missing, else "").
        sim_config, arena, trained_arena: ``{"arena": "none"}``/``none`` for a model trained without an arena.
        source: the training file's provenance (an imported file), else None.
        wall_s, device, files.
    """

    evaluation: str
    policy: str
    model_dir: str
    encoder: str
    features: str
    privileged_encoder: bool
    dataset: str
    split: str
    unit: str
    num_episodes: int
    num_steps: int
    num_train_steps: int
    action_names: list[str]
    student: dict[str, Any]
    knn: dict[str, Any]
    train_mean: dict[str, Any]
    student_minus_knn: dict[str, Any]
    student_minus_train_mean: dict[str, Any]
    knn_k: int
    resamples: int
    seed: int
    bootstrap_method: str
    interval_note: str
    sim_config: dict[str, Any]
    arena: str
    trained_arena: str
    source: dict[str, Any] | None
    wall_s: float
    device: str
    files: dict[str, str]


def evaluate_offline(config: OfflineEvalConfig) -> OfflineEvalResult:
    """Score the policy, the kNN and the train-mean actions on held-out episodes; write the records.

    Raises:
        CheckpointError: the model directory; a model whose features are not frozen vectors (``pixels``).
        ConfigError / SchemaError: the dataset lacks the model's encoder, its width or its action width
            differ from the model's, or the held-out split is empty.
    """
    import torch

    from vlnav_data.dataset import DatasetReader
    from vlnav_data.dataset.schema import NO_ARENA
    from vlnav_data.policy.features import load_split
    from vlnav_data.policy.model_dir import load_model_dir, read_policy_spec

    t0 = time.perf_counter()
    spec = read_policy_spec(config.model_dir)  # before anything loads
    feature = spec.feature_spec
    if feature.kind == "pixels":
        raise CheckpointError(
            f"'{config.model_dir}' is a pixels policy; offline evaluation reads frozen features (joint, image, text, "
            "history:K); evaluate it in closed loop with `vlnav-policy eval`"
        )
    dataset = Path(config.dataset) if config.dataset is not None else Path(spec.dataset)
    if not dataset.is_file():
        raise ConfigError(
            f"the dataset '{dataset}' ({'--dataset' if config.dataset else 'recorded in the model'}) does not exist; "
            "pass the file the model was trained on with --dataset FILE"
        )
    with DatasetReader(dataset) as reader:
        encoder = reader.choose_encoder(spec.encoder)
        recorded = reader.encoder_specs[encoder]
        for key in ("model_id", "revision"):
            if recorded.get(key) != spec.encoder_spec.get(key):
                raise ConfigError(
                    f"'{dataset}' stores '{encoder}' embeddings of {key} {recorded.get(key)!r}, the model was trained "
                    f"on {spec.encoder_spec.get(key)!r}; pass a file embedded with the model's encoder (--dataset)"
                )
        if reader.encoder_dim(encoder) != spec.embedding_dim:
            raise ConfigError(
                f"'{dataset}' stores {reader.encoder_dim(encoder)}-d '{encoder}' embeddings, the model reads "
                f"{spec.embedding_dim}-d ones; pass the file it was trained on with --dataset"
            )
        held_out = reader.split(config.split)
        if not held_out:
            raise SchemaError(f"the '{config.split}' split of '{dataset}' is empty; there is nothing held out to score")
        train = load_split(reader, encoder, feature.base, "train")
        test = load_split(reader, encoder, feature.base, config.split)
        sim_config = reader.sim_config
    width = test["actions"].shape[1] if test["actions"].ndim == 2 else 1
    if width != spec.action_dim:
        raise ConfigError(
            f"the model predicts {spec.action_dim} action dimension(s), '{dataset}' holds {width}; pass the file it "
            "was trained on with --dataset"
        )
    model, _ = load_model_dir(config.model_dir, device=config.device)
    x = test["features"]
    if feature.kind == "history":
        from vlnav_data.policy.history import history_index, stack_history

        x = stack_history(x, history_index(test["episode_index"], feature.history_steps))
    with torch.no_grad():
        student = np.concatenate(
            [
                model(torch.as_tensor(x[i : i + 65536], dtype=torch.float32, device=config.device)).cpu().numpy()
                for i in range(0, len(x), 65536)
            ]
        ).astype(np.float64)
    knn = knn_actions(train["features"], train["actions"], test["features"], config.knn_k)
    mean = np.broadcast_to(train["actions"].astype(np.float64).mean(axis=0), student.shape)
    y = test["actions"].astype(np.float64).reshape(len(student), -1)
    sums = episode_sums(y, {"student": student, "knn": knn, "train_mean": mean}, test["episode_index"])
    summaries, note = bootstrap_summaries(sums, config.resamples, config.seed)
    names = list(spec.action_names) or (
        ["left_wheel", "right_wheel"] if spec.action_dim == 2 else [f"action_{j}" for j in range(spec.action_dim)]
    )
    summaries = {k: name_dimensions(v, names) for k, v in summaries.items()}
    constant = [d["name"] for d in summaries["student"]["per_dimension"] if d["r2"]["value"] is None]
    if constant:
        why = f"R² undefined for {', '.join(constant)}: constant on the held-out episodes (MSE still reported)"
        note = f"{note}; {why}" if note else why
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / OFFLINE_RECORDS, **{k: v for k, v in sums.items()})
    trained = "none" if spec.sim_config == NO_ARENA else str(spec.sim_config.get("name", "?"))
    result = OfflineEvalResult(
        evaluation="offline",
        policy="bc",
        model_dir=str(config.model_dir),
        encoder=spec.encoder,
        features=spec.features,
        privileged_encoder=bool(spec.encoder_spec.get("privileged", False)),
        dataset=str(dataset),
        split=config.split,
        unit="episode",
        num_episodes=len(held_out),
        num_steps=len(y),
        num_train_steps=len(train["actions"]),
        action_names=names,
        student=summaries["student"],
        knn=summaries["knn"],
        train_mean=summaries["train_mean"],
        student_minus_knn=summaries["student_minus_knn"],
        student_minus_train_mean=summaries["student_minus_train_mean"],
        knn_k=config.knn_k,
        resamples=config.resamples,
        seed=config.seed,
        bootstrap_method="percentile",
        interval_note=note,
        sim_config=sim_config,
        arena="none" if sim_config == NO_ARENA else str(sim_config.get("name", "?")),
        trained_arena=trained,
        source=spec.source,
        wall_s=time.perf_counter() - t0,
        device=config.device,
        files={"episodes": OFFLINE_RECORDS, "meta": EVAL_META, "figure": OFFLINE_FIGURE},
    )
    plot_offline(summaries, names, out / OFFLINE_FIGURE)
    write_json_atomic(out / EVAL_META, result)
    return result


def plot_offline(summaries: dict[str, Any], names: list[str], path: Path) -> Path:
    """R² per dimension (and pooled) of the policy, the kNN lookup and the train mean, with their 95% intervals.

    An undefined R² (a constant dimension) is left blank; an interval missing (too few episodes) has no bar.
    """
    from vlnav_data.figures import save_png, subplots

    labels = ["all", *names]
    fig, ax = subplots(figsize=(max(5.0, 1.1 * len(labels) + 2.5), 4.0))
    width = 0.8 / len(PREDICTORS)
    x = np.arange(len(labels))
    for k, (name, colour) in enumerate(zip(PREDICTORS, ("C0", "C2", "C7"), strict=True)):
        block = summaries[name]
        cells = [block["r2"], *(d["r2"] for d in block["per_dimension"])]
        values = np.array([np.nan if c["value"] is None else c["value"] for c in cells])
        low = np.array([np.nan if c["low"] is None else c["value"] - c["low"] for c in cells])
        high = np.array([np.nan if c["high"] is None else c["high"] - c["value"] for c in cells])
        errors = None if np.isnan(low).all() else np.nan_to_num(np.stack([low, high]))
        label = {"student": "policy", "knn": "kNN lookup", "train_mean": "train mean"}[name]
        ax.bar(x + (k - 1) * width, values, width, yerr=errors, capsize=2, label=label, color=colour)
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xticks(x, labels, rotation=30 if len(labels) > 6 else 0)
    ax.set_ylabel("R² on held-out episodes")
    ax.set_title("Offline evaluation: R² with 95% intervals over episodes", fontsize=10)
    ax.legend(fontsize=8)
    return save_png(fig, path)


def knn_actions(train_x: np.ndarray, train_y: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Mean action of the ``k`` nearest training rows (cosine, exact search), float64 ``(Q, A)``.

    Raises:
        ConfigError: ``k`` exceeds the training rows.
    """
    from vlnav_data.knn_index import build_index, predict_actions, search

    if k > len(train_x):
        raise ConfigError(f"--k {k} exceeds the {len(train_x)} training steps; use a smaller --k")
    index, _ = build_index(train_x, ivf_threshold=len(train_x) + 1)
    sims, ids = search(index, queries, k)
    actions = np.asarray(train_y, np.float32).reshape(len(train_y), -1)
    return predict_actions(actions, ids, sims).astype(np.float64)


def episode_sums(y: np.ndarray, predictions: dict[str, np.ndarray], episode_index: np.ndarray) -> dict[str, np.ndarray]:
    """Per-episode sufficient statistics: steps, ``sum_y``, ``sum_y2`` and each predictor's SSE, per dimension.

    Returns:
        ``{"episode_index" (E,), "num_steps" (E,), "sum_y" (E, A), "sum_y2" (E, A), "sse_<name>" (E, A)}``.
    """
    episodes, inverse = np.unique(episode_index, return_inverse=True)
    count = len(episodes)

    def per_episode(values: np.ndarray) -> np.ndarray:
        out = np.zeros((count, values.shape[1]))
        np.add.at(out, inverse, values)
        return out

    sums = {
        "episode_index": episodes.astype(np.int64),
        "num_steps": np.bincount(inverse, minlength=count).astype(np.int64),
        "sum_y": per_episode(y),
        "sum_y2": per_episode(y**2),
    }
    for name, pred in predictions.items():
        sums[f"sse_{name}"] = per_episode((np.asarray(pred, np.float64).reshape(y.shape) - y) ** 2)
    return sums


def figures(sums: dict[str, np.ndarray], idx: np.ndarray) -> np.ndarray:
    """Every figure of the episodes ``idx`` (``(..., E')`` indices into the sums), vectorised over leading axes.

    Returns:
        ``(..., P, 2, A + 1)``: for each predictor of :data:`PREDICTORS`, R² and MSE per dimension then pooled.
        R² is NaN where the episodes give a dimension no variance (callers turn it into ``None``).
    """
    n = sums["num_steps"][idx].sum(-1)[..., None]  # (..., 1)
    sy = sums["sum_y"][idx].sum(-2)  # (..., A)
    ss = sums["sum_y2"][idx].sum(-2) - sy**2 / n  # (..., A)
    ss = np.where(ss > 1e-12 * np.maximum(1.0, sums["sum_y2"][idx].sum(-2)), ss, 0.0)
    rows = []
    for name in PREDICTORS:
        sse = sums[f"sse_{name}"][idx].sum(-2)
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = np.where(ss > 0, 1.0 - sse / np.where(ss > 0, ss, 1.0), np.nan)
            total_ss = ss.sum(-1, keepdims=True)
            r2_all = np.where(
                total_ss > 0, 1.0 - sse.sum(-1, keepdims=True) / np.where(total_ss > 0, total_ss, 1), np.nan
            )
        mse = sse / n
        mse_all = sse.sum(-1, keepdims=True) / (n * sse.shape[-1])
        rows.append(np.stack([np.concatenate([r2, r2_all], -1), np.concatenate([mse, mse_all], -1)], -2))
    return np.stack(rows, -3)


def bootstrap_summaries(sums: dict[str, np.ndarray], resamples: int, seed: int) -> tuple[dict[str, Any], str]:
    """Observed figures and their 95% bootstrap intervals over episodes, per predictor and paired differences.

    Returns:
        ``({"student", "knn", "train_mean", "student_minus_knn", "student_minus_train_mean"} -> summary
        with ``r2``/``mse`` pooled and ``per_dimension`` lists (names added by :func:`name_dimensions`),
        note)``: the note says why an interval is missing ("" when none is).
    """
    import warnings

    from scipy.stats import DegenerateDataWarning, bootstrap

    count = len(sums["episode_index"])
    everything = np.arange(count)
    observed = with_differences(figures(sums, everything))
    low = high = None
    note = ""
    if count < MIN_INTERVAL_EPISODES:
        note = (
            f"{count} held-out episode(s): too few for an interval over episodes (needs {MIN_INTERVAL_EPISODES}); "
            "values only"
        )
    else:

        def statistic(idx: np.ndarray, axis: int = -1) -> np.ndarray:
            values = with_differences(figures(sums, np.moveaxis(idx, axis, -1).astype(np.int64)))
            return np.moveaxis(values.reshape(*values.shape[:-3], -1), -1, 0)

        with warnings.catch_warnings():
            # scipy warns (naming BCa whatever the method) when an interval is NaN: an R² undefined on some
            # resamples, which the result states itself (None and interval_note)
            warnings.simplefilter("ignore", DegenerateDataWarning)
            ci = bootstrap(
                (everything,),
                statistic,
                n_resamples=resamples,
                # resamples per vectorised call: about 2 million gathered sums each (flat memory in episodes x dims)
                batch=max(1, min(resamples, 2_000_000 // (count * sums["sum_y"].shape[1]))),
                confidence_level=CONFIDENCE,
                method="percentile",
                vectorized=True,
                rng=np.random.default_rng(seed),
            ).confidence_interval
        low, high = (np.asarray(v).reshape(observed.shape) for v in (ci.low, ci.high))
        if np.any((np.isnan(low) | np.isnan(high)) & np.isfinite(observed)):
            note = "some resamples leave a dimension without variance: its R² has no interval"
    out = {}
    for p, name in enumerate((*PREDICTORS, "student_minus_knn", "student_minus_train_mean")):
        block = {}
        for m, metric in enumerate(("r2", "mse")):
            block[metric] = [
                interval(
                    observed[p, m, j], None if low is None else low[p, m, j], None if high is None else high[p, m, j]
                )
                for j in range(observed.shape[-1])
            ]
        out[name] = block
    return out, note


def with_differences(values: np.ndarray) -> np.ndarray:
    """Append student − kNN and student − train mean to the predictor axis (``-3``) of :func:`figures`."""
    student, knn, mean = (np.take(values, p, axis=-3) for p in range(3))
    return np.concatenate([values, np.stack([student - knn, student - mean], axis=-3)], axis=-3)


def interval(value: float, low: float | None, high: float | None) -> dict[str, Any]:
    """``{"value", "low", "high", "confidence"}``; any NaN (an undefined R²) becomes None."""

    def clean(v: float | None) -> float | None:
        return None if v is None or not np.isfinite(v) else float(v)

    value_ = clean(value)
    lo, hi = (clean(low), clean(high)) if value_ is not None else (None, None)
    if lo is None or hi is None:
        lo = hi = None
    return {"value": value_, "low": lo, "high": hi, "confidence": CONFIDENCE}


def name_dimensions(block: dict[str, list[dict[str, Any]]], names: list[str]) -> dict[str, Any]:
    """``{"r2": pooled, "mse": pooled, "per_dimension": [{"name", "r2", "mse"}, ...]}`` from per-column lists."""
    return {
        "r2": block["r2"][-1],
        "mse": block["mse"][-1],
        "per_dimension": [{"name": name, "r2": block["r2"][j], "mse": block["mse"][j]} for j, name in enumerate(names)],
    }
