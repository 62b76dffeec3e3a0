"""What the encoders that wrap a transformers model share: :class:`ModelEncoder` (the constructor state of the
two-tower and the fused encoders) and the transfer of frames to the model's device."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from vlnav_data.encoders.preprocess import ImagePreprocess
from vlnav_data.encoders.spec import Encoder, EncoderSpec
from vlnav_data.encoders.text_cache import TextEmbeddingCache

if TYPE_CHECKING:
    import torch


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


class ModelEncoder(Encoder):
    """An :class:`Encoder` around a transformers model in eval mode, with its tokenizer and image geometry.

    Args:
        spec: the encoder's metadata.
        model: the model, already on ``spec.device`` in its compute dtype (put in eval mode, no gradients).
        tokenizer: the model's tokenizer.
        preprocess: the model's image geometry and normalisation.
        text_max_length: every text is padded (and truncated) to this many tokens.
        batch_size: most inputs sent through the model at once.
        text_cache_size: LRU capacity of the text cache (0 disables it).
        image_processor: the Hugging Face image processor the preprocessing was read from (kept as the
            reference the on-device preprocessing is tested against, and for the benchmark baseline).
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
        batch_size: int,
        text_cache_size: int,
        image_processor: Any = None,
    ) -> None:
        self.spec = spec
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.preprocess = preprocess
        self.image_processor = image_processor
        self.text_max_length = text_max_length
        self.batch_size = batch_size
        self.text_cache = TextEmbeddingCache(text_cache_size)
        self._dtype = next(model.parameters()).dtype
