"""The ``oracle`` encoder: privileged simulator state through a fixed random projection.

A diagnostic upper bound ("what if the embedding contained exactly what the expert sees?"), never a
deployable input: ``spec.privileged`` is True. For each row of ``privileged_state`` (columns named by
``vlnav_data.sim.PRIVILEGED_STATE_NAMES``, which start ``x_m, y_m, cos_yaw, sin_yaw, target_x_m,
target_y_m``) it builds the feature vector

    [forward_m, lateral_m, distance_m, cos(bearing), sin(bearing), *state_columns, 1]

(the target in the robot frame, its distance and bearing, every raw column, and a constant), maps it
with a fixed Gaussian matrix ``(K, 1152)`` drawn from ``(seed, D)``, and L2-normalises. Because the
matrix has full column rank and the constant survives the projection, the features are recoverable
from the embedding up to one common scale that the constant's coordinate reveals: an MLP can read the
target's bearing and distance back (``tests/encoders`` checks it with a least-squares read-out).
Text embeddings are deterministic pseudo-random unit vectors seeded by the SHA-256 of the string.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from vlnav_data.encoders.spec import Encoder, EncoderSpec, check_texts, host_array, seeded_revision
from vlnav_data.encoders.text_cache import TextEmbeddingCache
from vlnav_data.errors import ConfigError, EncoderError
from vlnav_data.vectors import l2_normalize

ORACLE_DIM = 1152
"""Width of the oracle embedding (SigLIP so400m's, so policies and probes are drop-in)."""

NUM_DERIVED_FEATURES = 5
"""forward_m, lateral_m, distance_m, cos(bearing), sin(bearing)."""

MIN_STATE_COLUMNS = 6
"""The oracle needs at least x_m, y_m, cos_yaw, sin_yaw, target_x_m, target_y_m."""


def oracle_features(privileged_state: np.ndarray) -> np.ndarray:
    """Robot-frame target features, the raw columns and a constant.

    Args:
        privileged_state: float ``(B, D)``, ``D >= 6``, columns as ``PRIVILEGED_STATE_NAMES``.

    Returns:
        float64 ``(B, 5 + D + 1)``: ``[forward_m, lateral_m, distance_m, cos(bearing), sin(bearing),
        *state, 1]``, where forward/lateral is the target in the robot frame (x forward, y left) and
        bearing = atan2(lateral, forward).
    """
    state = np.asarray(privileged_state, dtype=np.float64)
    x, y, cos_yaw, sin_yaw, tx, ty = (state[:, i] for i in range(MIN_STATE_COLUMNS))
    dx, dy = tx - x, ty - y
    forward = cos_yaw * dx + sin_yaw * dy
    lateral = -sin_yaw * dx + cos_yaw * dy
    bearing = np.arctan2(lateral, forward)
    derived = np.stack([forward, lateral, np.hypot(dx, dy), np.cos(bearing), np.sin(bearing)], axis=1)
    return np.concatenate([derived, state, np.ones((len(state), 1))], axis=1)


def oracle_projection(num_features: int, dim: int, seed: int) -> np.ndarray:
    """The fixed Gaussian projection ``(num_features, dim)``, a pure function of its arguments."""
    rng = np.random.default_rng([seed, num_features, dim])
    return rng.standard_normal((num_features, dim)) / np.sqrt(num_features)


def hashed_text_embedding(text: str, dim: int, seed: int) -> np.ndarray:
    """A unit float32 ``(dim,)`` vector seeded by SHA-256 of ``text`` (same in every process)."""
    digest = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:16], "little")
    vec = np.random.default_rng([seed, digest]).standard_normal(dim)
    return (vec / np.linalg.norm(vec)).astype(np.float32)


class OracleEncoder(Encoder):
    """Privileged state -> fixed random projection -> unit vector (see the module docstring).

    Args:
        seed: selects the projection matrix and the text vectors.
        dim: embedding width (1152 by default).
        text_cache_size: LRU capacity of the text cache.
    """

    def __init__(self, *, seed: int = 0, dim: int = ORACLE_DIM, text_cache_size: int = 4096) -> None:
        self.seed = seed
        self.spec = EncoderSpec(
            name="oracle",
            model_id="vlnav-data/oracle-state-projection",
            revision=seeded_revision(seed),
            dim=dim,
            dtype="float32",
            device="cpu",
            privileged=True,
            library_versions={"numpy": np.__version__},
            note=(
                "DIAGNOSTIC UPPER BOUND, PRIVILEGED: simulator state (robot-frame target bearing and distance, "
                "raw state columns) through a fixed random projection; not a vision-language embedding and "
                "never a deployable policy input."
            ),
        )
        self.text_cache = TextEmbeddingCache(text_cache_size)
        self._projections: dict[int, np.ndarray] = {}

    def encode_states(self, privileged_state: np.ndarray) -> np.ndarray:
        """Embed simulator states.

        Args:
            privileged_state: float ``(B, D)``, ``D >= 6`` (numpy, or a torch tensor: read on the host).

        Returns:
            float32 ``(B, 1152)``, L2-normalised.
        """
        state = np.asarray(host_array(privileged_state))
        if state.ndim != 2 or state.shape[1] < MIN_STATE_COLUMNS or not np.issubdtype(state.dtype, np.number):
            raise ConfigError(
                f"privileged_state must be a numeric (B, D) array with D >= {MIN_STATE_COLUMNS} "
                f"(x_m, y_m, cos_yaw, sin_yaw, target_x_m, target_y_m, ...); received dtype {state.dtype} "
                f"shape {state.shape}."
            )
        if not np.all(np.isfinite(state)):
            raise ConfigError("privileged_state contains NaN or infinite values; the oracle needs finite states.")
        feats = oracle_features(state)
        k = feats.shape[1]
        if k not in self._projections:
            self._projections[k] = oracle_projection(k, self.spec.dim, self.seed)
        return l2_normalize(feats @ self._projections[k])

    def encode_observations(self, rgb: np.ndarray | None, privileged_state: np.ndarray | None) -> np.ndarray:
        """The oracle ignores ``rgb`` and embeds ``privileged_state`` (see :meth:`encode_states`)."""
        if privileged_state is None:
            raise EncoderError(
                "encoder 'oracle' embeds privileged simulator state: encode_observations needs "
                "privileged_state (float (B, D)); received None."
            )
        return self.encode_states(privileged_state)

    def encode_images(self, images: np.ndarray) -> np.ndarray:
        """Not available: the oracle sees state, not pixels."""
        raise EncoderError(
            "encoder 'oracle' embeds privileged simulator state, not images; call "
            "encode_observations(rgb, privileged_state) or encode_states(privileged_state)."
        )

    def encode_pairs(self, images: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """Not available: use :meth:`encode_joint` with the privileged state."""
        raise EncoderError(
            "encoder 'oracle' embeds privileged simulator state, not images; call "
            "encode_joint(rgb, privileged_state, texts)."
        )

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Deterministic hash-seeded unit vectors, one per distinct string: float32 ``(B, 1152)``."""
        texts = check_texts(texts)
        return self.text_cache.lookup(
            texts,
            lambda batch: np.stack([hashed_text_embedding(t, self.spec.dim, self.seed) for t in batch]),
            self.spec.dim,
        )
