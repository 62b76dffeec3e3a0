"""What every encoder promises: its metadata (:class:`EncoderSpec`) and its methods (:class:`Encoder`)."""

from __future__ import annotations

import abc
import dataclasses
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from vlnav_data.encoders.fusion import joint_embedding
from vlnav_data.errors import ConfigError, EncoderError

_SEEDED_REVISION = re.compile(r"seed-(\d+)")


def seeded_revision(seed: int) -> str:
    """The ``revision`` recorded for weights drawn from a fixed seed (the oracle, the tiny random models)."""
    return f"seed-{int(seed)}"


def revision_seed(revision: str) -> int | None:
    """The seed of a :func:`seeded_revision`, or None for any other revision (commit, content hash, version)."""
    match = _SEEDED_REVISION.fullmatch(str(revision))
    return int(match.group(1)) if match else None


@dataclasses.dataclass(frozen=True, kw_only=True)
class EncoderSpec:
    """Metadata of a built encoder; the dataset builder stores it beside the embeddings.

    Attributes:
        name: the name in a file: a built-in name (``siglip``, ``siglip-tiny-random``, ``oracle``, ...), a
            plugin's name, or an ``hf:`` encoder's alias or derived name (``google--siglip2-base-patch16-naflex``).
        model_id: Hugging Face model id, the local directory the weights came from, or a descriptive
            id for encoders that have no downloadable weights (``oracle``, the tiny random models).
        revision: what identifies the weights: the Hugging Face cache snapshot's commit hash, ``sha256:<hex>``
            (content hash) for a local directory, ``"seed-N"`` for weights drawn from a fixed seed, a
            plugin's own version string. (Files written before content hashes hold ``"local"``, which
            :func:`~vlnav_data.encoders.rebuild_encoder` refuses as unverifiable.)
        dim: embedding width ``E`` of every ``(B, E)`` array the encoder returns.
        dtype: compute dtype of the model, ``"float32"`` or ``"bfloat16"``; outputs are always float32.
        device: torch device the model runs on (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
        privileged: True when the embedding is computed from simulator state the student must never
            see (``oracle``): a diagnostic upper bound, never a deployable input.
        note: one human-readable sentence on what the encoder is for.
        fused: True for single-stream models (ViLT) whose image+text vector is the model's own output;
            get it with :meth:`Encoder.encode_pairs` / :meth:`Encoder.encode_joint`, not by fusing
            separate image and text embeddings.
        source: where the encoder comes from: ``builtin`` (the registry), ``hf`` (any Hugging Face
            checkpoint by id or directory) or ``plugin`` (an entry point or ``register_encoder``).
        preprocessing: what the numbers depend on besides the weights: image size, mean/std, resampling,
            text max length (JSON-compatible; empty when the encoder has no image pipeline).
        library_versions: versions of the libraries that computed the embeddings (torch, transformers).
        trust_remote_code: True when the model's own code from its repository was executed.
    """

    name: str
    model_id: str
    revision: str
    dim: int
    dtype: str
    device: str
    privileged: bool
    note: str
    fused: bool = False
    source: str = "builtin"
    preprocessing: dict[str, Any] = dataclasses.field(default_factory=dict)
    library_versions: dict[str, str] = dataclasses.field(default_factory=dict)
    trust_remote_code: bool = False

    @property
    def device_type(self) -> str:
        """``cpu`` or ``cuda`` (the kind of device, without its index): what provenance compares."""
        return self.device.partition(":")[0]

    def __post_init__(self) -> None:
        if self.dim <= 0:
            raise ConfigError(f"EncoderSpec.dim must be positive; received {self.dim}.")
        if self.dtype not in ("float32", "bfloat16"):
            raise ConfigError(f"EncoderSpec.dtype must be 'float32' or 'bfloat16'; received {self.dtype!r}.")

    def to_dict(self) -> dict[str, Any]:
        """Return the spec as a JSON/HDF5-attribute friendly dict."""
        return dataclasses.asdict(self)


def check_images(images: object, *, tensors: bool = False) -> Any:
    """Validate a batch of frames.

    Args:
        images: uint8 numpy array ``(B, H, W, 3)``; with ``tensors=True`` also a uint8 torch tensor of that
            shape (on any device: the encoder moves it to its own, which costs nothing when it is there).
        tensors: whether the calling encoder accepts torch tensors (:attr:`Encoder.accepts_tensors`).

    Returns:
        The same array, C-contiguous (a tensor is returned as it is).

    Raises:
        ConfigError: when it is not a uint8 ``(B, H, W, 3)`` array (or tensor).
    """
    what = "a uint8 numpy array or torch tensor" if tensors else "a uint8 numpy array"
    if tensors and _is_tensor(images):
        dtype, shape = str(images.dtype).removeprefix("torch."), tuple(images.shape)  # type: ignore[attr-defined]
        if dtype != "uint8" or len(shape) != 4 or shape[-1] != 3:
            raise ConfigError(
                f"images must be {what} of shape (B, H, W, 3); received a tensor of dtype {dtype} shape {shape}. "
                "Pass RGB frames as rendered (uint8, channels last)."
            )
        if shape[1] == 0 or shape[2] == 0:
            raise ConfigError(f"images must have a positive height and width; received shape {shape}.")
        return images
    if not isinstance(images, np.ndarray):
        raise ConfigError(
            f"images must be {what} of shape (B, H, W, 3); received {type(images).__name__}. "
            "Convert with np.asarray(frames, dtype=np.uint8)."
        )
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ConfigError(
            f"images must be {what} of shape (B, H, W, 3); received "
            f"dtype {images.dtype} shape {images.shape}. Pass RGB frames as rendered (uint8, channels last)."
        )
    if images.shape[1] == 0 or images.shape[2] == 0:
        raise ConfigError(f"images must have a positive height and width; received shape {images.shape}.")
    return np.ascontiguousarray(images)


def _is_tensor(value: object) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def host_array(value: Any) -> Any:
    """A torch tensor as a host numpy array (anything else as it is): for inputs encoders read on the host."""
    if _is_tensor(value):
        return value.detach().cpu().numpy()  # type: ignore[attr-defined]
    return value


def check_texts(texts: object) -> list[str]:
    """Validate a batch of strings.

    Args:
        texts: a list (or tuple) of ``str``; a bare string is rejected because it is almost always a
            forgotten list.

    Returns:
        The texts as a list.

    Raises:
        ConfigError: when ``texts`` is not a sequence of strings.
    """
    if isinstance(texts, str) or not isinstance(texts, Sequence | np.ndarray):
        raise ConfigError(
            f"texts must be a list of strings; received {type(texts).__name__}. Wrap a single string: [text]."
        )
    out = [str(t) if isinstance(t, np.str_) else t for t in texts]
    bad = [type(t).__name__ for t in out if not isinstance(t, str)]
    if bad:
        raise ConfigError(f"texts must be a list of strings; received elements of type {sorted(set(bad))}.")
    return out


class Encoder(abc.ABC):
    """A frozen vision-language encoder.

    Every method returns a C-contiguous float32 numpy array ``(B, E)`` whose rows have unit L2 norm,
    with ``E == spec.dim``. An item's embedding never depends on the other items of its batch.

    ``accepts_tensors``: the image methods also take a uint8 torch tensor ``(B, H, W, 3)`` (best on the
    encoder's device: frames rendered there never visit host memory). The built-in SigLIP, CLIP, ViLT and
    ``hf:`` encoders do; callers hand other encoders (plugins) numpy arrays.
    """

    spec: EncoderSpec
    accepts_tensors: bool = False

    @abc.abstractmethod
    def encode_images(self, images: np.ndarray) -> np.ndarray:
        """Embed frames.

        Args:
            images: uint8 ``(B, H, W, 3)`` RGB frames.

        Returns:
            float32 ``(B, E)``, L2-normalised.
        """

    @abc.abstractmethod
    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Embed strings (LRU-cached by string).

        Args:
            texts: ``B`` strings.

        Returns:
            float32 ``(B, E)``, L2-normalised.
        """

    def encode_observations(self, rgb: np.ndarray | None, privileged_state: np.ndarray | None) -> np.ndarray:
        """Embed what the robot observes; what ``collect`` and ``policy`` call every step.

        Real encoders embed ``rgb`` and ignore ``privileged_state``; the ``oracle`` embeds the state.

        Args:
            rgb: uint8 ``(B, H, W, 3)`` frames (may be None for the oracle).
            privileged_state: float32 ``(B, D)`` simulator state (may be None for real encoders).

        Returns:
            float32 ``(B, E)``, L2-normalised.
        """
        if rgb is None:
            raise EncoderError(
                f"encoder '{self.spec.name}' embeds camera frames: encode_observations needs rgb "
                "(uint8 (B, H, W, 3)); received None. Build the environment with render=True."
            )
        return self.encode_images(rgb)

    def encode_pairs(self, images: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """Embed (frame, instruction) pairs into the per-step joint vector.

        Two-tower encoders return the published fusion ``l2(l2(image) + l2(text))``; fused models
        (``spec.fused``) return their own pooled image+text output.

        Args:
            images: uint8 ``(B, H, W, 3)``.
            texts: ``B`` strings.

        Returns:
            float32 ``(B, E)``, L2-normalised.
        """
        texts = check_texts(texts)
        images = check_images(images, tensors=self.accepts_tensors)
        check_same_batch(len(images), len(texts))
        return joint_embedding(self.encode_images(images), self.encode_texts(texts))

    def encode_joint(
        self, rgb: np.ndarray | None, privileged_state: np.ndarray | None, texts: Sequence[str]
    ) -> np.ndarray:
        """The per-step joint vector for any encoder: what the dataset builder stores as ``<name>_joint``.

        Two-tower and oracle encoders: ``joint_embedding(encode_observations(rgb, state), encode_texts(texts))``;
        fused encoders: ``encode_pairs(rgb, texts)``.

        Args:
            rgb: uint8 ``(B, H, W, 3)`` or None (oracle).
            privileged_state: float32 ``(B, D)`` or None (real encoders).
            texts: ``B`` instructions.

        Returns:
            float32 ``(B, E)``, L2-normalised.
        """
        texts = check_texts(texts)
        observations = self.encode_observations(rgb, privileged_state)
        check_same_batch(len(observations), len(texts))
        return joint_embedding(observations, self.encode_texts(texts))


def check_same_batch(num_images: int, num_texts: int) -> None:
    """Raise :class:`ConfigError` unless a pair batch has as many texts as images."""
    if num_images != num_texts:
        raise ConfigError(f"pairs need one text per image; received {num_images} images and {num_texts} texts.")
