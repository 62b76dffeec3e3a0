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


def to_device(chunk: np.ndarray | torch.Tensor, device: str) -> torch.Tensor:
    """uint8 frames -> tensor on ``device``.

    A tensor already there is used as it is (frames rendered on the encoder's GPU never visit the host);
    host frames (numpy or a CPU tensor) going to CUDA are copied through pinned memory, asynchronously.
    """
    import torch

    host = torch.from_numpy(chunk) if isinstance(chunk, np.ndarray) else chunk
    if host.device == torch.device(device):
        return host
    if device.startswith("cuda") and host.device.type == "cpu":
        return host.pin_memory().to(device, non_blocking=True)
    return host.to(device)


def stream_safe(images: torch.Tensor, device: str) -> None:
    """Frames on a CUDA device that another stream (the simulator's) produced: tell the caching allocator
    that this thread's stream uses them, so their memory is not reused while its kernels still read it."""
    import torch

    if images.device.type == "cuda" and images.device == torch.device(device):
        images.record_stream(torch.cuda.current_stream(images.device))


TEXT_TRAINED_WITHOUT_MASK = ("siglip", "siglip2")
"""Model types whose text tower was trained on max-length padded ids *without* an attention mask.

big_vision (``big_vision/models/proj/image_text/text_transformer.py``), where SigLIP and SigLIP 2 were
trained, runs the text encoder on the padded ids with no mask and pools the last position ("sticky"
EOS/pad padding: ``pool_type="last"``); transformers' SigLIP docs say to tokenize with
``padding="max_length"`` "as that's how the model was trained", and ``SiglipTextTransformer`` pools
``last_hidden_state[:, -1]``. Passing the mask changes what that last position attends to, hence every
text embedding, so both the built-in ``siglip`` and ``hf:`` SigLIP feed ``input_ids`` only (length 64
for the released checkpoints): one model, one set of numbers, the ones the model was trained to give.
"""


def text_inputs_for(model_type: str, names: Sequence[str]) -> tuple[str, ...]:
    """The tokenizer outputs a model's text tower receives: ``names`` without the attention mask for the
    model types of :data:`TEXT_TRAINED_WITHOUT_MASK`."""
    if model_type in TEXT_TRAINED_WITHOUT_MASK:
        return tuple(n for n in names if n != "attention_mask")
    return tuple(names)


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
        text_inputs: the tokenizer outputs passed to ``get_text_features``. CLIP: ``input_ids`` and
            ``attention_mask``. SigLIP and SigLIP 2, built-in or ``hf:``: ``input_ids`` only, as they were
            trained (:data:`TEXT_TRAINED_WITHOUT_MASK`). Other ``hf:`` checkpoints: what their tokenizer
            returns. Whether the mask is passed is recorded in the spec as ``preprocessing
            ["text_attention_mask"]``; a file embedded under the other convention is refused on rebuild.
        batch_size: most frames (or texts) sent through the model at once.
        image_processor: the Hugging Face image processor the preprocessing was read from (kept as the
            reference the on-device preprocessing is tested against, and for the benchmark baseline).
        text_cache_size: LRU capacity of the text cache (0 disables it).
        compile: wrap the image path in ``torch.compile``; every chunk is then padded to ``batch_size`` (by
            repeating its last frame), so one graph serves every call on CPU and CUDA alike and
            :meth:`warm_up` compiles it once, up front.
    """

    accepts_tensors = True

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
        import dataclasses

        import torch

        self.text_inputs = tuple(text_inputs)
        # The text convention is part of what the numbers depend on: recorded, and checked on rebuild.
        convention = {"text_attention_mask": "attention_mask" in self.text_inputs}
        self.spec = dataclasses.replace(spec, preprocessing={**spec.preprocessing, **convention})
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.preprocess = preprocess
        self.image_processor = image_processor
        self.text_max_length = text_max_length
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

    def encode_images(self, images: np.ndarray | torch.Tensor) -> np.ndarray:
        """See :meth:`Encoder.encode_images`: uint8 ``(B, H, W, 3)`` (numpy, or a tensor) -> float32 ``(B, E)``.

        Every chunk's features stay on the device until the last chunk is queued; the host reads them once
        (one synchronisation per call, so copies and kernels of successive chunks are queued back to back).
        """
        import torch

        images = check_images(images, tensors=True)
        tensor_input = not isinstance(images, np.ndarray)
        if tensor_input:
            images = to_device(images, self.spec.device)
            stream_safe(images, self.spec.device)
        if len(images) == 0:
            return np.empty((0, self.spec.dim), dtype=np.float32)
        parts = []
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                chunk = images[start : start + self.batch_size]
                n = len(chunk)
                if self.compiled and n < self.batch_size:  # one graph for every call (class docstring)
                    if tensor_input:
                        chunk = torch.cat([chunk, chunk[-1:].expand(self.batch_size - n, *chunk.shape[1:])])
                    else:
                        chunk = np.concatenate([chunk, np.repeat(chunk[-1:], self.batch_size - n, axis=0)])
                feats = self._image_fn(to_device(chunk, self.spec.device))
                self._check_width(feats, "image")
                parts.append(feats[:n])
            return np.ascontiguousarray(torch.cat(parts).cpu().numpy(), dtype=np.float32)

    def warm_up(self, height_px: int, width_px: int) -> float:
        """Compile the image path for ``height_px`` x ``width_px`` frames now (one padded batch); return the
        seconds it took. Nothing to do (0.0) when the encoder is not compiled."""
        import time

        if not self.compiled:
            return 0.0
        start = time.perf_counter()
        self.encode_images(np.zeros((1, height_px, width_px, 3), dtype=np.uint8))
        return time.perf_counter() - start

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
