"""Two-tower encoders (SigLIP, CLIP): separate image and text embeddings in one space."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from vlnav_data.encoders.preprocess import ImagePreprocess, image_model_inputs
from vlnav_data.encoders.spec import Encoder, EncoderSpec, check_images, check_texts
from vlnav_data.encoders.text_cache import TextEmbeddingCache
from vlnav_data.errors import EncoderError

if TYPE_CHECKING:
    import torch


def pooled(output: Any) -> torch.Tensor:
    """The feature tensor of ``get_image_features``/``get_text_features`` across transformers versions.

    transformers < 5 returns the tensor itself; 5.x returns ``BaseModelOutputWithPooling`` whose
    ``pooler_output`` holds the (projected, for CLIP) features.
    """
    import torch

    return output if isinstance(output, torch.Tensor) else output.pooler_output


def to_device(chunk: np.ndarray, device: str) -> torch.Tensor:
    """Host uint8 array -> tensor on ``device``; CUDA copies go through pinned memory, asynchronously."""
    import torch

    host = torch.from_numpy(chunk)
    if device.startswith("cuda"):
        return host.pin_memory().to(device, non_blocking=True)
    return host


class TwoTowerEncoder(Encoder):
    """A two-tower model (SigLIP, SigLIP 2, CLIP, any ``hf:`` checkpoint) behind the :class:`Encoder` protocol.

    Args:
        spec: the encoder's metadata (``spec.dim`` is the feature width).
        model: a ``SiglipModel``/``CLIPModel``/... (anything with ``get_image_features`` and
            ``get_text_features``), already on ``spec.device`` in its compute dtype.
        tokenizer: the model's tokenizer.
        preprocess: the model's image geometry and normalisation.
        text_max_length: every text is padded (and truncated) to this many tokens, so a text's embedding
            never depends on the other texts of its batch (SigLIP was trained with 64).
        text_inputs: the tokenizer outputs passed to ``get_text_features`` (built-in CLIP: ``input_ids`` and
            ``attention_mask``; built-in SigLIP: ``input_ids`` only, as it was trained: its text tower pools
            the last position, a pad token; ``hf:`` checkpoints: what their tokenizer returns).
        batch_size: most frames (or texts) sent through the model at once.
        image_processor: the Hugging Face image processor the preprocessing was read from (kept as the
            reference the on-device preprocessing is tested against, and for the benchmark baseline).
        text_cache_size: LRU capacity of the text cache (0 disables it).
        compile: wrap the image path in ``torch.compile`` (CUDA: every chunk is padded to
            ``batch_size`` so one graph serves all calls).
    """

    def __init__(
        self,
        *,
        spec: EncoderSpec,
        model: Any,
        tokenizer: Any,
        preprocess: ImagePreprocess,
        text_max_length: int,
        text_inputs: Sequence[str],
        batch_size: int,
        text_cache_size: int,
        image_processor: Any = None,
        compile: bool = False,
    ) -> None:
        import torch

        self.spec = spec
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.preprocess = preprocess
        self.image_processor = image_processor
        self.text_max_length = text_max_length
        self.text_inputs = tuple(text_inputs)
        self.batch_size = batch_size
        self.text_cache = TextEmbeddingCache(text_cache_size)
        self.compiled = compile
        self._dtype = next(model.parameters()).dtype
        image_fn: Callable[[torch.Tensor], torch.Tensor] = self._image_features
        self._image_fn = torch.compile(image_fn, dynamic=False) if compile else image_fn

    def _image_features(self, frames: torch.Tensor) -> torch.Tensor:
        import torch

        inputs: Mapping[str, torch.Tensor] = image_model_inputs(frames, self.preprocess, self._dtype)
        feats = pooled(self.model.get_image_features(**inputs))
        return torch.nn.functional.normalize(feats.float(), dim=-1)

    def _check_width(self, feats: torch.Tensor, what: str) -> None:
        if feats.ndim != 2 or int(feats.shape[-1]) != self.spec.dim:
            raise EncoderError(
                f"encoder '{self.spec.name}': {type(self.model).__name__}.get_{what}_features returned shape "
                f"{tuple(feats.shape)}, not (B, {self.spec.dim}); its image and text features do not share one "
                "embedding space, so it cannot serve as a two-tower encoder"
            )

    def encode_images(self, images: np.ndarray) -> np.ndarray:
        """See :meth:`Encoder.encode_images`: uint8 ``(B, H, W, 3)`` -> float32 ``(B, E)``."""
        import torch

        images = check_images(images)
        out = np.empty((len(images), self.spec.dim), dtype=np.float32)
        pad = self.compiled and self.spec.device.startswith("cuda")
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                chunk = images[start : start + self.batch_size]
                n = len(chunk)
                if pad and n < self.batch_size:
                    chunk = np.concatenate([chunk, np.repeat(chunk[-1:], self.batch_size - n, axis=0)])
                feats = self._image_fn(to_device(chunk, self.spec.device))
                self._check_width(feats, "image")
                out[start : start + n] = feats[:n].cpu().numpy()
        return out

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """See :meth:`Encoder.encode_texts`: ``B`` strings -> float32 ``(B, E)``, cached by string."""
        texts = check_texts(texts)
        return self.text_cache.lookup(texts, self._encode_texts_uncached, self.spec.dim)

    def _encode_texts_uncached(self, texts: list[str]) -> np.ndarray:
        import torch

        out = np.empty((len(texts), self.spec.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                chunk = texts[start : start + self.batch_size]
                tokens = self.tokenizer(
                    chunk,
                    padding="max_length",
                    max_length=self.text_max_length,
                    truncation=True,
                    return_tensors="pt",
                )
                inputs = {k: tokens[k].to(self.spec.device) for k in self.text_inputs if k in tokens}
                feats = pooled(self.model.get_text_features(**inputs))
                self._check_width(feats, "text")
                out[start : start + len(chunk)] = torch.nn.functional.normalize(feats.float(), dim=-1).cpu().numpy()
        return out
