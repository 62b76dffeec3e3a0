"""Per-episode embeddings: the one computation `build` and `embed` share.

For every encoder an episode gets

- ``image``: ``encode_observations(rgb, privileged_state)`` per step (the oracle embeds the state);
- ``text``: ``encode_texts`` of the episode's distinct instructions, in first-appearance order;
- ``joint``: ``fuse(image, text[step], "joint")`` = ``l2(l2(image) + l2(text))`` for two-tower encoders
  and the oracle; the model's own pair vector ``encode_pairs(rgb, instructions)`` for fused ones (ViLT).

Because `build` and `embed` both go through :class:`EpisodeEmbedder`, embedding an existing file gives
the arrays a build with that encoder would have written (same device, dtype and batching).

Frames on the device. A build whose arena returns torch observations (``obs_backend="torch"``) hands
the episode's frames over twice: ``EpisodeFrames.rgb`` (numpy, what the writer stores) and
``EpisodeFrames.rgb_device`` (the same frames as a tensor where they were rendered). Encoders that take
tensors (``Encoder.accepts_tensors``: the built-in SigLIP, CLIP, ViLT and ``hf:`` models) get the device
frames, so on one GPU the frames go renderer -> encoder without visiting host memory; every other encoder
(plugins) gets the numpy frames. The numbers are the same (``tests/collect``: datasets built from both
arena backends are identical array for array).

Texts are encoded one string per call (through the encoder's cache, so once per distinct string): a
batched text forward differs from a single one by float rounding (~1e-7 here), so a text embedding
that depended on which other strings happened to be missing from the cache at the time would depend on
the order episodes finished in, on ``--num-envs``, on resumes, and ``embed`` could not reproduce it. One
string per call makes it a function of the string alone.

Batching. ``per episode`` (the CPU default): one ``encode_*`` call per episode, so each array depends on
its episode alone and a CPU file is bit-identical however the build was sharded, resumed or
parallelised. ``across episodes`` (the CUDA default): frames from consecutive episodes fill the
encoder's batch (an episode is ~106 frames, a CUDA batch 256), carrying the remainder to the next
batch; a frame's embedding then comes from a different batch composition. Encoders promise that an
item's embedding does not depend on the rest of its batch up to float rounding: the tests hold them to
1e-5 per fp32 component; after float16 storage that is at most one float16 step more (|x| < 1, so
< 1e-3). Text embeddings are computed per episode in both modes, so they and the instruction table are
unaffected.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vlnav_data.dataset import EncoderEntry

CROSS_EPISODE_TOLERANCE = 1e-3
"""Largest difference, per stored float16 component, between per-episode and cross-episode batching:
the encoders' batch invariance (1e-5 in fp32) plus one float16 rounding step for |x| < 1."""

DEFAULT_BATCH_FRAMES = 256
"""Frames per cross-episode batch when neither the config nor any encoder names a batch size."""

#: How ``joint`` is computed (:func:`embed_episode`), as the file records it (``EncoderEntry.fusion``), by whether
#: the encoder is fused (``EncoderSpec.fused``).
FUSION = {False: "l2(l2(image) + l2(text))", True: "the model's own pooled image+text output (encode_pairs)"}


@dataclass(frozen=True, eq=False)
class EpisodeFrames:
    """What embeddings are computed from: one episode's frames, states and per-step instructions.

    Attributes:
        rgb: uint8 ``(T, H, W, 3)``, or None when not recorded (only the oracle can do without).
        privileged_state: float32 ``(T, D)``.
        instructions: T strings.
        rgb_device: the same frames as a uint8 torch tensor on the simulator's device, or None; encoders
            that accept tensors read these (module docstring).
    """

    rgb: np.ndarray | None
    privileged_state: np.ndarray
    instructions: Sequence[str]
    rgb_device: Any = None

    def frames_for(self, encoder: Any) -> Any:
        """The frames ``encoder`` reads: the device tensor when it takes tensors and there is one, else numpy."""
        if self.rgb_device is not None and getattr(encoder, "accepts_tensors", False):
            return self.rgb_device
        return self.rgb

    @property
    def num_steps(self) -> int:
        return int(np.shape(self.privileged_state)[0])


@dataclass(eq=False)
class EpisodeEmbeddings:
    """One episode's embeddings, keyed by encoder name.

    Attributes:
        image: ``(T, E)`` float32 per encoder.
        joint: ``(T, E)`` float32 per encoder.
        text: {instruction -> ``(E,)``} per encoder, for the episode's distinct instructions.
    """

    image: dict[str, np.ndarray] = field(default_factory=dict)
    joint: dict[str, np.ndarray] = field(default_factory=dict)
    text: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


def _distinct(texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    distinct = list(dict.fromkeys(texts))
    row = {s: i for i, s in enumerate(distinct)}
    return distinct, np.fromiter((row[s] for s in texts), dtype=np.int64, count=len(texts))


def encode_texts_one_by_one(encoder: Any, texts: Sequence[str]) -> np.ndarray:
    """``encoder.encode_texts`` one string per call: float32 ``(len(texts), E)``, each row a function of its
    string alone (see the module docstring); cached strings cost a lookup."""
    if not texts:
        return np.zeros((0, encoder.spec.dim), dtype=np.float32)
    return np.concatenate([encoder.encode_texts([s]) for s in texts])


def embed_episode(encoders: Sequence[Any], frames: EpisodeFrames) -> EpisodeEmbeddings:
    """Embed one episode with every encoder, one call per array (per-episode batching).

    Args:
        encoders: :class:`~vlnav_data.encoders.Encoder` objects.
        frames: the episode.

    Returns:
        :class:`EpisodeEmbeddings`.
    """
    from vlnav_data.encoders import fuse

    texts = list(frames.instructions)
    distinct, idx = _distinct(texts)
    out = EpisodeEmbeddings()
    for enc in encoders:
        name = enc.spec.name
        rgb = frames.frames_for(enc)
        img = enc.encode_observations(rgb, frames.privileged_state)
        txt = encode_texts_one_by_one(enc, distinct)
        out.image[name] = img
        out.joint[name] = enc.encode_pairs(rgb, texts) if enc.spec.fused else fuse(img, txt[idx], "joint")
        out.text[name] = {s: txt[i] for i, s in enumerate(distinct)}
    return out


def batch_frames_for(encoders: Sequence[Any], batch_size: int | None) -> int:
    """Frames per cross-episode batch: ``batch_size`` if given, else the largest encoder ``batch_size``."""
    if batch_size is not None:
        return int(batch_size)
    sizes = [int(getattr(e, "batch_size", 0) or 0) for e in encoders]
    return max(sizes, default=0) or DEFAULT_BATCH_FRAMES


def batches_across_episodes(setting: bool | None, device: str) -> bool:
    """The batching rule: ``setting`` when given, else across episodes on CUDA and per episode on CPU."""
    return bool(setting) if setting is not None else str(device).startswith("cuda")


@dataclass(frozen=True, kw_only=True)
class Batching:
    """Where the encoders run and how their batches fill: the rule of :func:`batches_across_episodes` with the
    size of :func:`batch_frames_for`, chosen once for a build, an ``embed`` run or one of its Ray tasks.

    Attributes:
        device: the resolved device.
        across_episodes: whether a batch holds frames of several episodes.
        batch_frames: frames per cross-episode batch (None: one batch per episode).
    """

    device: str
    across_episodes: bool
    batch_frames: int | None

    @classmethod
    def choose(cls, encoders: Sequence[Any], device: str, setting: bool | None, batch_size: int | None) -> Batching:
        """The batching of ``encoders`` on ``device`` for ``--cross-episode-batching`` ``setting`` (None: by
        device) and ``--encoder-batch-size`` ``batch_size`` (None: the largest encoder's)."""
        across = batches_across_episodes(setting, device)
        return cls(
            device=device,
            across_episodes=across,
            batch_frames=batch_frames_for(encoders, batch_size) if across else None,
        )


def encoder_entry(spec: Any) -> EncoderEntry:
    """What the file records about an encoder (:class:`~vlnav_data.encoders.EncoderSpec` ->
    :class:`~vlnav_data.dataset.EncoderEntry`): identity, precision, device type and provenance."""
    return EncoderEntry(
        name=spec.name,
        dim=spec.dim,
        model_id=spec.model_id,
        revision=spec.revision,
        fusion=FUSION[bool(spec.fused)],
        privileged=spec.privileged,
        note=spec.note,
        source=spec.source,
        dtype=spec.dtype,
        device_type=spec.device_type,
        preprocessing=dict(spec.preprocessing),
        library_versions=dict(spec.library_versions),
        trust_remote_code=spec.trust_remote_code,
    )


@dataclass(eq=False)
class _Pending:
    key: Any
    frames: EpisodeFrames
    done: int = 0
    image: dict[str, np.ndarray] = field(default_factory=dict)
    joint: dict[str, np.ndarray] = field(default_factory=dict)


class EpisodeEmbedder:
    """Embed a stream of episodes, per episode or in batches that span episodes.

    ``add(key, frames)`` returns the ``(key, EpisodeEmbeddings)`` of every episode finished by it, in the
    order they were added; ``flush()`` finishes the rest. Per episode, ``add`` returns its own episode at
    once (exactly :func:`embed_episode`). Across episodes, frames wait until ``batch_frames`` of them are
    pending, go through each encoder in one call (the encoder splits it into its own batches), and the
    remainder of the last episode waits for the next call.

    Args:
        encoders: :class:`~vlnav_data.encoders.Encoder` objects.
        batch_frames: frames per cross-episode call; None = per-episode batching.
    """

    def __init__(self, encoders: Sequence[Any], *, batch_frames: int | None = None) -> None:
        if batch_frames is not None and batch_frames < 1:
            raise ValueError(f"batch_frames must be >= 1 or None, got {batch_frames}")
        self.encoders = list(encoders)
        self.batch_frames = batch_frames
        self._queue: deque[_Pending] = deque()
        self._waiting = 0  # frames added but not yet encoded

    @property
    def across_episodes(self) -> bool:
        return self.batch_frames is not None

    def add(self, key: Any, frames: EpisodeFrames) -> list[tuple[Any, EpisodeEmbeddings]]:
        """Queue one episode; return the episodes this call finished."""
        if self.batch_frames is None:
            return [(key, embed_episode(self.encoders, frames))]
        t = frames.num_steps
        pending = _Pending(key=key, frames=frames)
        for enc in self.encoders:
            pending.image[enc.spec.name] = np.empty((t, enc.spec.dim), dtype=np.float32)
            if enc.spec.fused:
                pending.joint[enc.spec.name] = np.empty((t, enc.spec.dim), dtype=np.float32)
        self._queue.append(pending)
        self._waiting += t
        while self._waiting >= self.batch_frames:
            self._encode(self.batch_frames)
        return self._finished()

    def flush(self) -> list[tuple[Any, EpisodeEmbeddings]]:
        """Encode every waiting frame; return the episodes that finishes."""
        if self._waiting:
            self._encode(self._waiting)
        return self._finished()

    def _encode(self, n: int) -> None:
        """Run the next ``n`` waiting frames through every encoder in one call each."""
        parts: list[tuple[_Pending, int, int]] = []
        need = n
        for p in self._queue:
            if need == 0:
                break
            left = p.frames.num_steps - p.done
            if left == 0:
                continue
            take = min(left, need)
            parts.append((p, p.done, p.done + take))
            need -= take
        has_rgb = all(p.frames.rgb is not None for p, _, _ in parts)
        rgb_device = None
        if has_rgb and all(p.frames.rgb_device is not None for p, _, _ in parts):
            import torch

            rgb_device = torch.cat([p.frames.rgb_device[a:b] for p, a, b in parts])
        host_needed = rgb_device is None or not all(getattr(e, "accepts_tensors", False) for e in self.encoders)
        rgb = _joined([p.frames.rgb[a:b] for p, a, b in parts]) if has_rgb and host_needed else None
        state = _joined([np.asarray(p.frames.privileged_state)[a:b] for p, a, b in parts])
        texts = [s for p, a, b in parts for s in list(p.frames.instructions)[a:b]]
        batch = EpisodeFrames(rgb=rgb, privileged_state=state, instructions=texts, rgb_device=rgb_device)
        for enc in self.encoders:
            name = enc.spec.name
            frames = batch.frames_for(enc)
            img = enc.encode_observations(frames, state)
            pairs = enc.encode_pairs(frames, texts) if enc.spec.fused else None
            offset = 0
            for p, a, b in parts:
                p.image[name][a:b] = img[offset : offset + b - a]
                if pairs is not None:
                    p.joint[name][a:b] = pairs[offset : offset + b - a]
                offset += b - a
        for p, _, b in parts:
            p.done = b
        self._waiting -= n

    def _finished(self) -> list[tuple[Any, EpisodeEmbeddings]]:
        from vlnav_data.encoders import fuse

        out = []
        while self._queue and self._queue[0].done == self._queue[0].frames.num_steps:
            p = self._queue.popleft()
            distinct, idx = _distinct(list(p.frames.instructions))
            emb = EpisodeEmbeddings()
            for enc in self.encoders:
                name = enc.spec.name
                txt = encode_texts_one_by_one(enc, distinct)
                emb.image[name] = p.image[name]
                emb.joint[name] = p.joint[name] if enc.spec.fused else fuse(p.image[name], txt[idx], "joint")
                emb.text[name] = {s: txt[i] for i, s in enumerate(distinct)}
            out.append((p.key, emb))
        return out


def _joined(arrays: list[np.ndarray]) -> np.ndarray:
    """The rows of ``arrays`` as one array: a view of the only one (an episode encoded in one call, no copy)."""
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
