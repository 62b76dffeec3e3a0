"""What the student sees: which embedding, read from a dataset or computed online, and nothing else.

Three feature sets per encoder: ``joint`` (the published ``l2(l2(image) + l2(text))``, stored as
``obs/<enc>_joint``), ``image`` (``obs/<enc>_image``) and ``text`` (the instruction's embedding,
``/meta/text_embeddings/<enc>[instruction_index]``). Online, the same encoder is applied to the live
frame and the live instruction, and per-step embeddings are rounded to the dataset's storage dtype
(float16) so that the policy sees at evaluation exactly the numbers it was trained on.

The student never sees a ``privileged_*`` input: :func:`check_student_inputs` is called on every key
the training reads, and the online path passes the privileged state only to an encoder whose spec is
marked privileged (the ``oracle``, a declared diagnostic upper bound).

Beyond one frozen vector per step (:func:`parse_features`): ``pixels`` (the stored frames, trained end to end
with the instruction's text embedding, :mod:`vlnav_data.policy.pixels`) and ``history:K`` (the last K steps
of the frozen ``joint`` features, ``history:K:image`` / ``history:K:text`` for another base,
:mod:`vlnav_data.policy.history`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vlnav_data.dataset import DatasetReader, schema
from vlnav_data.dataset.schema import FEATURE_SETS, check_feature_set
from vlnav_data.errors import ConfigError

__all__ = [
    "FEATURE_SETS",
    "FeatureSpec",
    "check_student_inputs",
    "load_split",
    "online_features",
    "parse_features",
    "student_input_keys",
]

MAX_HISTORY_STEPS = 64


@dataclass(frozen=True)
class FeatureSpec:
    """A parsed ``--features`` value.

    Attributes:
        name: as given (``joint``, ``pixels``, ``history:4``...).
        kind: ``frozen`` (one stored vector per step), ``pixels`` or ``history``.
        base: the frozen feature set read per step (``joint``/``image``/``text``; ``text`` for ``pixels``:
            the instruction's text embedding conditions the network).
        history_steps: K (1 unless ``history``).
    """

    name: str
    kind: str
    base: str
    history_steps: int = 1


def parse_features(name: str) -> FeatureSpec:
    """Parse ``joint``/``image``/``text``, ``pixels``, ``history:K`` or ``history:K:BASE``.

    Raises:
        ConfigError: anything else, with the accepted forms.
    """
    text = str(name)
    if text in FEATURE_SETS:
        return FeatureSpec(text, "frozen", text)
    if text == "pixels":
        return FeatureSpec(text, "pixels", "text")
    parts = text.split(":")
    if parts[0] == "history" and len(parts) in (2, 3) and parts[1].isdigit():
        steps = int(parts[1])
        base = parts[2] if len(parts) == 3 else "joint"
        if 1 <= steps <= MAX_HISTORY_STEPS and base in FEATURE_SETS:
            return FeatureSpec(text, "history", base, steps)
    raise ConfigError(
        f"--features must be one of {', '.join(FEATURE_SETS)}, pixels, history:K or history:K:BASE "
        f"(1 <= K <= {MAX_HISTORY_STEPS}, BASE one of {', '.join(FEATURE_SETS)}), got '{text}'"
    )


def student_input_keys(encoder: str, features: str) -> list[str]:
    """Dataset keys (relative to a demo) the student's input is made from.

    Raises:
        ConfigError: unknown feature set.
    """
    spec = parse_features(features)
    if spec.kind == "pixels":
        keys = [schema.RGB, schema.INSTRUCTION_INDEX]
    elif spec.base == "text":
        keys = [schema.INSTRUCTION_INDEX]
    else:
        keys = [schema.encoder_path(encoder, spec.base)]
    check_student_inputs(keys)
    return keys


def check_student_inputs(keys: Sequence[str]) -> None:
    """Refuse any privileged key among the student's inputs.

    Raises:
        ConfigError: a key names privileged information.
    """
    bad = [k for k in keys if "privileged" in k.lower()]
    if bad:
        raise ConfigError(
            f"the student policy must never see privileged inputs; received {bad}. "
            "Train on an encoder's embedding (--encoder NAME --features joint|image|text|pixels|history:K)."
        )


def load_split(reader: DatasetReader, encoder: str, features: str, split: str) -> dict[str, np.ndarray]:
    """Student inputs and expert actions of one split.

    Args:
        reader: an open dataset.
        encoder: encoder name in the file.
        features: one of :data:`FEATURE_SETS`.
        split: ``train`` or ``valid``.

    Returns:
        ``{"features": float32 (N, E), "actions": float32 (N, 2), "episode_index": int64 (N,)}``.
    """
    student_input_keys(encoder, features)  # refuses a privileged input
    rows = reader.feature_rows(encoder, features, [schema.ACTIONS], split=split)
    return {
        "features": rows["features"],
        "actions": np.asarray(rows[schema.ACTIONS], dtype=np.float32),
        "episode_index": rows["episode_index"],
    }


def online_features(
    encoder: Any, features: str, rgb: np.ndarray | None, privileged_state: np.ndarray | None, texts: Sequence[str]
) -> np.ndarray:
    """The student's input computed from live observations, as the dataset builder stored it.

    Args:
        encoder: a :class:`vlnav_data.encoders.Encoder`.
        features: one of :data:`FEATURE_SETS`.
        rgb: uint8 (N, H, W, 3) live frames: numpy, or a torch tensor (an arena with torch observations),
            which an encoder that takes tensors reads where it is and any other gets as a host copy.
        privileged_state: float32 (N, D); handed to the encoder only when its spec is privileged
            (the oracle), never to the policy.
        texts: N live instructions.

    Returns:
        float32 (N, E); ``image``/``joint`` rounded through float16 like the stored embeddings.
    """
    check_feature_set(features)
    state = privileged_state if bool(getattr(encoder.spec, "privileged", False)) else None
    if rgb is not None and not isinstance(rgb, np.ndarray) and not getattr(encoder, "accepts_tensors", False):
        rgb = rgb.detach().cpu().numpy()
    if features == "text":
        return np.asarray(encoder.encode_texts(list(texts)), dtype=np.float32)
    if features == "joint":
        emb = encoder.encode_joint(rgb, state, list(texts))
    else:
        emb = encoder.encode_observations(rgb, state)
    return np.asarray(emb, dtype=schema.EMBEDDING_DTYPE).astype(np.float32)
