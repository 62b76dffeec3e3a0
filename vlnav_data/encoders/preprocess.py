"""Image preprocessing as torch tensor ops, on the encoder's device, matching the Hugging Face processors.

The Hugging Face processors resize with PIL on the CPU, one image at a time. :func:`preprocess_images`
does the same arithmetic on a whole uint8 batch on the GPU (or CPU): antialiased resize (torch's
antialiased bicubic/bilinear use PIL's kernels), rounding back to uint8 levels as PIL does, centre
crop, rescale and normalise. ``tests/encoders`` checks the embeddings agree with the HF processor's
(cosine >= 0.999) for SigLIP, CLIP and ViLT geometry.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from vlnav_data.errors import ConfigError, EncoderError

if TYPE_CHECKING:
    import torch

RESIZE_MODES: tuple[str, ...] = ("fixed", "shortest_edge", "vilt")
_PIL_RESAMPLE = {2: "bilinear", 3: "bicubic"}  # PIL.Image.Resampling values


@dataclasses.dataclass(frozen=True, kw_only=True)
class ImagePreprocess:
    """Geometry and normalisation of one model's image input.

    Attributes:
        resize_mode: ``fixed`` (to ``height`` x ``width``; SigLIP), ``shortest_edge`` (short side to
            ``shortest_edge``, aspect kept, then optional centre crop; CLIP) or ``vilt`` (short side to
            ``shortest_edge``, long side at most ``longest_edge``, both rounded down to multiples of
            ``size_divisor``).
        height: output height for ``fixed``.
        width: output width for ``fixed``.
        shortest_edge: target short side for ``shortest_edge`` and ``vilt``.
        longest_edge: cap of the long side for ``vilt``.
        size_divisor: multiple for ``vilt``.
        crop_height: centre-crop height (``shortest_edge`` mode), 0 for none.
        crop_width: centre-crop width (``shortest_edge`` mode), 0 for none.
        resample: ``bicubic`` or ``bilinear``.
        rescale_factor: multiplier after resizing (1/255).
        mean: per-channel mean (RGB) subtracted after rescaling.
        std: per-channel standard deviation (RGB).
    """

    resize_mode: str
    height: int = 0
    width: int = 0
    shortest_edge: int = 0
    longest_edge: int = 0
    size_divisor: int = 1
    crop_height: int = 0
    crop_width: int = 0
    resample: str = "bicubic"
    rescale_factor: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    def __post_init__(self) -> None:
        if self.resize_mode not in RESIZE_MODES:
            raise ConfigError(f"resize_mode must be one of {RESIZE_MODES}; received {self.resize_mode!r}.")
        if self.resample not in ("bicubic", "bilinear"):
            raise ConfigError(f"resample must be 'bicubic' or 'bilinear'; received {self.resample!r}.")
        if self.resize_mode == "fixed" and (self.height <= 0 or self.width <= 0):
            raise ConfigError(f"fixed resize needs positive height and width; received {self.height}x{self.width}.")
        if self.resize_mode in ("shortest_edge", "vilt") and self.shortest_edge <= 0:
            raise ConfigError(f"{self.resize_mode} resize needs shortest_edge > 0; received {self.shortest_edge}.")

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """``(H', W')`` of the resized image (before cropping) for an ``height`` x ``width`` input."""
        if self.resize_mode == "fixed":
            return self.height, self.width
        if self.resize_mode == "shortest_edge":
            # transformers.image_transforms.get_resize_output_image_size(default_to_square=False)
            short, long = (height, width) if height <= width else (width, height)
            new_short, new_long = self.shortest_edge, int(self.shortest_edge * long / short)
            return (new_short, new_long) if height <= width else (new_long, new_short)
        # transformers.models.vilt.image_processing_pil_vilt.get_resize_output_image_size
        scale = self.shortest_edge / min(height, width)
        if height < width:
            new_h, new_w = float(self.shortest_edge), scale * width
        else:
            new_h, new_w = scale * height, float(self.shortest_edge)
        if max(new_h, new_w) > self.longest_edge:
            scale = self.longest_edge / max(new_h, new_w)
            new_h, new_w = scale * new_h, scale * new_w
        new_h, new_w = int(new_h + 0.5), int(new_w + 0.5)
        return new_h // self.size_divisor * self.size_divisor, new_w // self.size_divisor * self.size_divisor


def preprocess_from_hf(image_processor: Any, resize_mode: str) -> ImagePreprocess:
    """Read an :class:`ImagePreprocess` off a Hugging Face image processor.

    Args:
        image_processor: a loaded ``SiglipImageProcessor``/``CLIPImageProcessor``/``ViltImageProcessor``
            (PIL or torchvision backend).
        resize_mode: ``fixed`` (SigLIP), ``shortest_edge`` (CLIP) or ``vilt``.

    Raises:
        EncoderError: when the processor asks for something this module does not implement.
    """
    proc = image_processor
    name = type(proc).__name__
    for flag in ("do_resize", "do_rescale", "do_normalize"):
        if getattr(proc, flag, True) is False:
            raise EncoderError(f"{name} has {flag}=False; the on-device preprocessing assumes it is True.")
    size = _as_dict(proc.size)
    resample = getattr(proc, "resample", 3)
    resample_value = int(getattr(resample, "value", resample))
    if resample_value not in _PIL_RESAMPLE:
        raise EncoderError(f"{name} resamples with PIL mode {resample!r}; only bicubic and bilinear are implemented.")
    common: dict[str, Any] = {
        "resample": _PIL_RESAMPLE[resample_value],
        "rescale_factor": float(proc.rescale_factor),
        "mean": tuple(float(v) for v in proc.image_mean),
        "std": tuple(float(v) for v in proc.image_std),
    }
    if resize_mode == "fixed":
        return ImagePreprocess(resize_mode="fixed", height=int(size["height"]), width=int(size["width"]), **common)
    if resize_mode == "shortest_edge":
        crop = _as_dict(proc.crop_size) if getattr(proc, "do_center_crop", False) else {}
        return ImagePreprocess(
            resize_mode="shortest_edge",
            shortest_edge=int(size["shortest_edge"]),
            crop_height=int(crop.get("height", 0) or 0),
            crop_width=int(crop.get("width", 0) or 0),
            **common,
        )
    if resize_mode == "vilt":
        shortest = int(size["shortest_edge"])
        return ImagePreprocess(
            resize_mode="vilt",
            shortest_edge=shortest,
            longest_edge=int(1333 / 800 * shortest),
            size_divisor=int(getattr(proc, "size_divisor", 32) or 1),
            **common,
        )
    raise ConfigError(f"resize_mode must be one of {RESIZE_MODES}; received {resize_mode!r}.")


def _as_dict(size: Any) -> dict[str, Any]:
    if isinstance(size, dict):
        return size
    return {k: getattr(size, k) for k in ("height", "width", "shortest_edge", "longest_edge") if hasattr(size, k)}


def preprocess_images(images: torch.Tensor, spec: ImagePreprocess, dtype: torch.dtype) -> torch.Tensor:
    """uint8 frames -> normalised pixel values, all on the frames' device.

    Args:
        images: uint8 tensor ``(B, H, W, 3)`` on any device.
        spec: the model's :class:`ImagePreprocess`.
        dtype: dtype of the returned tensor (the model's compute dtype).

    Returns:
        ``(B, 3, H', W')`` tensor of ``dtype``: resized (antialiased, rounded to uint8 levels as PIL
        does), centre-cropped, rescaled and normalised.
    """
    import torch

    x = images.permute(0, 3, 1, 2).to(torch.float32)
    height, width = int(x.shape[-2]), int(x.shape[-1])
    out_h, out_w = spec.output_size(height, width)
    if (out_h, out_w) != (height, width):
        x = torch.nn.functional.interpolate(
            x, size=(out_h, out_w), mode=spec.resample, antialias=True, align_corners=False
        )
        x = x.round_().clamp_(0.0, 255.0)
    if spec.crop_height and spec.crop_width:
        top = (out_h - spec.crop_height) // 2
        left = (out_w - spec.crop_width) // 2
        if top < 0 or left < 0:
            raise EncoderError(
                f"centre crop {spec.crop_height}x{spec.crop_width} is larger than the resized image {out_h}x{out_w}."
            )
        x = x[..., top : top + spec.crop_height, left : left + spec.crop_width]
    mean = torch.tensor(spec.mean, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    # (x * s - mean) / std as one fused affine map.
    scale = spec.rescale_factor / std
    x = torch.addcmul(-mean / std, x, scale)
    return x.to(dtype).contiguous()
