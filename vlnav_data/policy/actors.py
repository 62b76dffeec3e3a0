"""The policies an evaluation runs: the student rebuilt from its model directory (BC or kNN, its encoder
applied to live frames and instructions) and the expert it is paired with on the same starts.

``vlnav-policy eval`` and ``vlnav-policy dagger`` build them here; the evaluation itself is
:mod:`vlnav_data.policy.evaluate`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vlnav_data.errors import CheckpointError, ConfigError
from vlnav_data.policy.features import online_features
from vlnav_data.policy.model_dir import PolicySpec, load_model_dir, read_policy_spec
from vlnav_data.policy.threads import torch_threads

if TYPE_CHECKING:
    from vlnav_data.policy.evaluate import EvalConfig


def check_encoder_matches(spec: PolicySpec, encoder: Any, model_dir: Path) -> None:
    """The live encoder must be the one the policy was trained on (name and width).

    Weights, revision and preprocessing are checked by :func:`vlnav_data.encoders.rebuild_encoder`.

    Raises:
        CheckpointError: another encoder or another embedding width.
    """
    live = encoder.spec
    if live.name != spec.encoder:
        raise CheckpointError(
            f"model '{model_dir}' was trained on encoder '{spec.encoder}', but the live encoder is '{live.name}'"
        )
    width = int(live.dim)
    if width != spec.embedding_dim:
        raise CheckpointError(
            f"model '{model_dir}' expects {spec.embedding_dim}-D '{spec.encoder}' features, but the live encoder "
            f"produces {width}-D embeddings; it is a different model than the dataset's. Rebuild the dataset "
            "and retrain with this encoder, or pass the original weights with --encoder-model-path."
        )


def live_encoder(spec: PolicySpec, config: Any, model_dir: Path) -> Any:
    """The policy's encoder, rebuilt from the record in its model directory (the one round trip).

    ``config`` needs ``device``, ``encoder_model_path``, ``encoder_dtype`` and ``trust_remote_code``.

    Raises:
        EncoderError: other weights than the training file's, a missing plugin, remote code not allowed.
    """
    from vlnav_data.encoders import rebuild_encoder

    compiled = bool(getattr(config, "compile", False))
    encoder = rebuild_encoder(
        {"name": spec.encoder, **spec.encoder_spec},
        device=config.device,
        dtype=config.encoder_dtype,
        model_path=config.encoder_model_path,
        trust_remote_code=config.trust_remote_code,
        num_threads=1 if config.device == "cpu" else None,
        where=f"the training data of model '{model_dir}'",
        compile=compiled,
        # compiled: one batch = one step's frames, so no step is padded to a larger graph
        batch_size=_frames_per_step(config) if compiled else None,
    )
    check_encoder_matches(spec, encoder, model_dir)
    return encoder


def _frames_per_step(config: Any) -> int | None:
    """Frames the student encodes per step: the number of arenas (None when the config does not say)."""
    if not hasattr(config, "num_envs"):
        return None
    return int(min(config.num_envs, getattr(config, "num_episodes", config.num_envs)))


def make_expert_policy(kind: str, spec: PolicySpec, checkpoint: Path | None, config: Any) -> tuple[Any, str]:
    """The expert to pair with: returns ``(policy_fn, name)``.

    Raises:
        ConfigError: ``dataset`` was asked but the dataset names no known expert.
    """
    from vlnav_data.expert import PursuitController, load_expert

    name = spec.dataset_expert if kind == "dataset" else kind
    if name == "pursuit":
        return PursuitController.for_arena(config), "pursuit"
    if name == "ppo":
        path = checkpoint if checkpoint is not None else spec.expert_checkpoint
        return load_expert(path, action_mapping=config.action_mapping), "ppo"
    raise ConfigError(
        f"the dataset's demos were labelled by expert '{name}', which eval cannot rebuild; "
        "pass --expert ppo|pursuit|none"
    )


def make_student_policy(
    predict: Callable[[np.ndarray], np.ndarray],
    encoder: Any,
    features: str,
    on_features: Callable[[np.ndarray, dict[str, Any], dict[str, Any]], None] | None = None,
) -> Callable[[dict[str, Any], dict[str, Any]], np.ndarray]:
    """Wrap a feature->action predictor as ``policy_fn(obs, info)`` over live frames and instructions.

    The privileged state reaches only a privileged encoder (the oracle), never ``predict``.

    Args:
        predict: float32 (N, E) -> float (N, 2).
        encoder: the live encoder.
        features: ``joint``, ``image`` or ``text``.
        on_features: optional hook receiving each step's features (DAgger stores them).
    """

    def policy_fn(obs: dict[str, Any], info: dict[str, Any]) -> np.ndarray:
        feats = online_features(
            encoder, features, obs.get("rgb"), obs.get("privileged_state"), list(info["instruction"])
        )
        if on_features is not None:
            on_features(feats, obs, info)
        return np.asarray(predict(feats), dtype=np.float32)

    return policy_fn


def history_student_policy(
    predict: Callable[[np.ndarray], np.ndarray], encoder: Any, base: str, steps: int
) -> Callable[[dict[str, Any], dict[str, Any]], np.ndarray]:
    """``policy_fn`` of a ``history:K`` policy: each slot's last K live feature vectors, newest first, its
    history zeroed whenever the slot starts an episode (reset or autoreset: :func:`history.episode_starts`)."""
    from vlnav_data.policy.history import HistoryStacker, episode_starts

    stacker = HistoryStacker(steps)

    def policy_fn(obs: dict[str, Any], info: dict[str, Any]) -> np.ndarray:
        feats = online_features(encoder, base, obs.get("rgb"), obs.get("privileged_state"), list(info["instruction"]))
        return np.asarray(predict(stacker.push(feats, episode_starts(info))), dtype=np.float32)

    return policy_fn


def pixel_student_policy(
    model: Any, encoder: Any, device: str, num_threads: int | None = 1
) -> Callable[[dict[str, Any], dict[str, Any]], np.ndarray]:
    """``policy_fn`` of a ``pixels`` policy: the live frames (resized to the training size when they differ;
    :func:`evaluate_policy` refuses that unless told to resize) and the live instruction's text embedding."""
    import torch

    from vlnav_data.policy.pixels import frames_to_input

    def policy_fn(obs: dict[str, Any], info: dict[str, Any]) -> np.ndarray:
        rgb = torch.as_tensor(obs["rgb"]).to(device)
        text = torch.from_numpy(np.asarray(encoder.encode_texts(list(info["instruction"])), dtype=np.float32))
        with torch.no_grad(), torch_threads(num_threads, device):
            if tuple(rgb.shape[1:3]) != tuple(model.image_hw):  # same preprocessing, then back to uint8 frames
                rgb = (frames_to_input(rgb, model.image_hw) * 255.0).round().clamp(0, 255).to(torch.uint8)
                rgb = rgb.permute(0, 2, 3, 1)
            return model(rgb, text.to(device)).cpu().numpy()

    return policy_fn


def student_policy_fn(
    model: Any, spec: PolicySpec, encoder: Any, device: str
) -> Callable[[dict[str, Any], dict[str, Any]], np.ndarray]:
    """The closed-loop ``policy_fn`` of a trained network for its feature set (frozen, history or pixels)."""
    feature = spec.feature_spec
    if feature.kind == "pixels":
        return pixel_student_policy(model, encoder, device)
    predict = torch_predictor(model, device)
    if feature.kind == "history":
        return history_student_policy(predict, encoder, feature.base, feature.history_steps)
    return make_student_policy(predict, encoder, spec.features)


def check_knn_index(config: EvalConfig, spec: PolicySpec) -> None:
    """``--policy knn``: the index must hold the model's encoder and feature set (read from its metadata only).

    Raises:
        CheckpointError: no metadata, another encoder or feature set, or a policy that reads no single vector.
    """
    import json

    from vlnav_data.knn_index import META_FILE

    if spec.feature_spec.kind != "frozen":
        raise ConfigError(
            f"--policy knn averages the actions of stored single-step vectors; model '{config.model_dir}' reads "
            f"{spec.features} features, which a kNN index does not hold. Evaluate it with --policy bc"
        )
    path = Path(config.index_dir) / META_FILE  # type: ignore[arg-type]
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(
            f"'{path}' is missing or unreadable ({exc.__class__.__name__}); --index must be a directory written by "
            "`vlnav-probe knn`"
        ) from exc
    if meta.get("encoder") != spec.encoder or meta.get("features") != spec.features:
        raise CheckpointError(
            f"kNN index '{config.index_dir}' holds '{meta.get('encoder')}' {meta.get('features')} features, "
            f"but model '{config.model_dir}' uses '{spec.encoder}' {spec.features}; build the index with "
            f"`vlnav-probe knn FILE --encoder {spec.encoder}`"
        )
    if meta.get("dim") is not None and int(meta["dim"]) != spec.input_dim:
        raise CheckpointError(
            f"kNN index '{config.index_dir}' has {meta['dim']}-D vectors, the model's features are {spec.input_dim}-D"
        )


def torch_predictor(model: Any, device: str, num_threads: int | None = 1) -> Callable[[np.ndarray], np.ndarray]:
    """features -> actions through a torch module, without gradients (one CPU thread: ``threads.py``)."""
    import torch

    def predict(features: np.ndarray) -> np.ndarray:
        with torch.no_grad(), torch_threads(num_threads, device):
            return model(torch.from_numpy(features).to(device)).cpu().numpy()

    return predict


def check_student(config: EvalConfig) -> PolicySpec:
    """The checks of :func:`load_student` that read only small files (run before anything loads or prints).

    Raises:
        CheckpointError: missing files, another encoder than ``--encoder``, a kNN index of other features.
    """
    spec = read_policy_spec(config.model_dir)
    if config.encoder is not None and config.encoder != spec.encoder:
        raise CheckpointError(
            f"model '{config.model_dir}' was trained on encoder '{spec.encoder}' ({spec.features} features); "
            f"--encoder {config.encoder} does not match. Train a model on '{config.encoder}' embeddings first."
        )
    if config.policy == "knn":
        check_knn_index(config, spec)
    return spec


def load_student(config: EvalConfig) -> tuple[PolicySpec, Any, Callable[[dict[str, Any], dict[str, Any]], np.ndarray]]:
    """Read the model directory, build the live encoder and the closed-loop ``policy_fn`` (BC or kNN).

    Raises:
        CheckpointError: missing files, another encoder/feature set/width than the model's.
    """
    spec = check_student(config)
    encoder = live_encoder(spec, config, config.model_dir)
    if config.policy == "bc":
        model, _ = load_model_dir(config.model_dir, device=config.device)
        return spec, encoder, student_policy_fn(model, spec, encoder, config.device)
    from vlnav_data.policy.knn import load_knn_policy

    knn = load_knn_policy(config.index_dir, config.knn_k)  # type: ignore[arg-type]
    if knn.dim != spec.input_dim:
        raise CheckpointError(
            f"kNN index '{config.index_dir}' has {knn.dim}-D vectors, the model's features are {spec.input_dim}-D"
        )
    return spec, encoder, make_student_policy(knn, encoder, spec.features)
