"""Single-stream (fused) encoders: ViLT, whose image+text vector is the model's own pooled output.

ViLT has no separate image or text embedding space; every forward pass sees an image *and* a text.
This wrapper defines:

- ``encode_pairs(images, texts)`` / ``encode_joint(rgb, state, texts)``: ``l2(pooler_output)`` of the
  (frame, instruction) pair, the published ViLT per-step vector (text2nav spec §4). The dataset builder
  stores this as ``vilt_joint``.
- ``encode_images(images)``: the pair with an empty text (``[CLS] [SEP]`` only): the image-only view.
- ``encode_texts(texts)``: the pair with a uniform mid-grey frame (value 128) at the model's input size:
  the text-only view, cached by string.

``fuse(encode_images(x), encode_texts(t))`` is therefore *not* ViLT's joint vector; ``spec.fused`` is
True to say so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from vlnav_data.encoders.model_base import ModelEncoder, stream_safe, to_device
from vlnav_data.encoders.preprocess import preprocess_images
from vlnav_data.encoders.spec import check_images, check_same_batch, check_texts

if TYPE_CHECKING:
    import torch

GREY_LEVEL = 128
"""Pixel value of the blank frame ViLT's text-only view is computed with."""


class FusedEncoder(ModelEncoder):
    """A ViLT ``ViltModel`` behind the :class:`Encoder` protocol (see the module docstring).

    Args:
        seed: ViLT samples its patch order with ``torch.multinomial``; every forward pass runs in a
            forked RNG seeded with this, so results are reproducible and the caller's RNG untouched.
        model_args: :class:`~vlnav_data.encoders.model_base.ModelEncoder`'s (``spec.fused`` True; a
            ``ViltModel`` with its BERT tokenizer, ``vilt`` resize mode, 40 text positions; the text cache
            holds the text-only views).
    """

    def __init__(self, *, seed: int = 0, **model_args: Any) -> None:
        super().__init__(**model_args)
        self.seed = seed

    def _forward(self, frames: torch.Tensor, texts: list[str]) -> torch.Tensor:
        import torch

        pixels = preprocess_images(frames, self.preprocess, self._dtype)
        tokens = self.tokenizer(
            texts, padding="max_length", max_length=self.text_max_length, truncation=True, return_tensors="pt"
        )
        device = self.spec.device
        devices = [torch.device(device).index or 0] if device.startswith("cuda") else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed)
            out = self.model(
                input_ids=tokens["input_ids"].to(device),
                attention_mask=tokens["attention_mask"].to(device),
                token_type_ids=tokens["token_type_ids"].to(device),
                pixel_values=pixels,
                pixel_mask=torch.ones(pixels.shape[0], *pixels.shape[2:], dtype=torch.long, device=device),
            )
        return torch.nn.functional.normalize(out.pooler_output.float(), dim=-1)

    def encode_pairs(self, images: np.ndarray | torch.Tensor, texts: Sequence[str]) -> np.ndarray:
        """ViLT's own joint vector ``l2(pooler_output)`` of each (frame, text) pair: float32 ``(B, 768)``.

        ``images`` may be a uint8 tensor (best on the encoder's device); the host reads the vectors once
        per call.
        """
        import torch

        texts = check_texts(texts)
        images = check_images(images, tensors=True)
        check_same_batch(len(images), len(texts))
        if not isinstance(images, np.ndarray):
            images = to_device(images, self.spec.device)
            stream_safe(images, self.spec.device)
        if len(images) == 0:
            return np.empty((0, self.spec.dim), dtype=np.float32)
        with torch.inference_mode():
            parts = [
                self._forward(
                    to_device(images[start : start + self.batch_size], self.spec.device),
                    texts[start : start + self.batch_size],
                )
                for start in range(0, len(images), self.batch_size)
            ]
            return np.ascontiguousarray(torch.cat(parts).cpu().numpy(), dtype=np.float32)

    def encode_images(self, images: np.ndarray | torch.Tensor) -> np.ndarray:
        """Image-only view: each frame paired with the empty text. float32 ``(B, E)``."""
        images = check_images(images, tensors=True)
        return self.encode_pairs(images, [""] * len(images))

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Text-only view: each text paired with a uniform grey frame, cached by string. float32 ``(B, E)``."""
        texts = check_texts(texts)
        return self.text_cache.lookup(texts, self._encode_texts_uncached, self.spec.dim)

    def _encode_texts_uncached(self, texts: list[str]) -> np.ndarray:
        side = self.preprocess.shortest_edge or self.preprocess.height
        grey = np.full((len(texts), side, side, 3), GREY_LEVEL, dtype=np.uint8)
        return self.encode_pairs(grey, texts)

    def encode_joint(self, rgb: Any, privileged_state: Any, texts: Sequence[str]) -> np.ndarray:
        """ViLT's joint vector: :meth:`encode_pairs` of the frames and instructions."""
        if rgb is None:
            return super().encode_joint(rgb, privileged_state, texts)  # raises: ViLT needs frames
        return self.encode_pairs(rgb, texts)
