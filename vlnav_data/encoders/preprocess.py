"""Image preprocessing as torch tensor ops, on the encoder's device, matching the Hugging Face processors.

The Hugging Face processors resize with PIL on the CPU, one image at a time. :func:`preprocess_images`
does the same arithmetic on a whole uint8 batch on the GPU (or CPU): antialiased resize (torch's
antialiased bicubic/bilinear use PIL's kernels), rounding back to uint8 levels as PIL does, centre
crop, rescale and normalise. ``tests/encoders`` checks the embeddings agree with the HF processor's
(cosine >= 0.999) for SigLIP, CLIP and ViLT geometry, and for SigLIP 2's NaFlex patches.

SigLIP 2 (NaFlex) takes no fixed-size image: the processor resizes each image (aspect kept) so that it
holds at most ``max_num_patches`` patches of ``patch_size`` pixels, cuts it into flattened patches and pads
the patch sequence to ``max_num_patches`` with an attention mask. :func:`image_model_inputs` does the same
for a batch (frames of one batch share a size, so they share the patch grid).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from vlnav_data.errors import ConfigError, EncoderError

if TYPE_CHECKING:
    import torch

RESIZE_MODES: tuple[str, ...] = ("fixed", "shortest_edge", "vilt", "naflex")
_PIL_RESAMPLE = {2: "bilinear", 3: "bicubic"}  # PIL.Image.Resampling values


@dataclasses.dataclass(frozen=True, kw_only=True)
class ImagePreprocess:
    """Geometry and normalisation of one model's image input.

    Attributes:
        resize_mode: ``fixed`` (to ``height`` x ``width``; SigLIP), ``shortest_edge`` (short side to
            ``shortest_edge``, aspect kept, then optional centre crop; CLIP), ``vilt`` (short side to
            ``shortest_edge``, long side at most ``longest_edge``, both rounded down to multiples of
            ``size_divisor``) or ``naflex`` (SigLIP 2: aspect kept, at most ``max_num_patches`` patches of
            ``patch_size``; the model receives flattened patches, a patch mask and the grid shape).
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
        patch_size: NaFlex patch side in pixels.
        max_num_patches: NaFlex patch budget (the sequence is padded to it).
        rescale_offset: subtracted right after rescaling (EfficientNet's ``rescale_offset=True`` is 1.0).
        post_std: a second per-channel division after normalising (EfficientNet's ``include_top``).
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
    patch_size: int = 0
    max_num_patches: int = 0
    rescale_offset: float = 0.0
    post_std: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def __post_init__(self) -> None:
        if self.resize_mode not in RESIZE_MODES:
            raise ConfigError(f"resize_mode must be one of {RESIZE_MODES}; received {self.resize_mode!r}.")
        if self.resample not in ("bicubic", "bilinear"):
            raise ConfigError(f"resample must be 'bicubic' or 'bilinear'; received {self.resample!r}.")
        if self.resize_mode == "fixed" and (self.height <= 0 or self.width <= 0):
            raise ConfigError(f"fixed resize needs positive height and width; received {self.height}x{self.width}.")
        if self.resize_mode in ("shortest_edge", "vilt") and self.shortest_edge <= 0:
            raise ConfigError(f"{self.resize_mode} resize needs shortest_edge > 0; received {self.shortest_edge}.")
        if self.resize_mode == "naflex" and (self.patch_size <= 0 or self.max_num_patches <= 0):
            raise ConfigError(
                "naflex resize needs positive patch_size and max_num_patches; received "
                f"{self.patch_size} and {self.max_num_patches}."
            )

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """``(H', W')`` of the resized image (before cropping) for an ``height`` x ``width`` input."""
        if self.resize_mode == "fixed":
            return self.height, self.width
        if self.resize_mode == "naflex":
            return naflex_size(height, width, self.patch_size, self.max_num_patches)
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


def naflex_size(height: int, width: int, patch_size: int, max_num_patches: int) -> tuple[int, int]:
    """SigLIP 2's resized ``(H', W')``: transformers' own ``get_image_size_for_max_num_patches``."""
    try:  # transformers 5: the PIL backend module defines it
        from transformers.models.siglip2.image_processing_pil_siglip2 import get_image_size_for_max_num_patches
    except ImportError:  # transformers 4.x
        from transformers.models.siglip2.image_processing_siglip2 import get_image_size_for_max_num_patches
    h, w = get_image_size_for_max_num_patches(height, width, patch_size, max_num_patches)
    return int(h), int(w)


def record_of(preprocess: ImagePreprocess) -> dict[str, Any]:
    """The preprocessing as a JSON object (what the file records).

    The fields added after the first release (``patch_size``, ``max_num_patches``, ``rescale_offset``,
    ``post_std``) appear only when they differ from their defaults, so the records of the built-in
    encoders are unchanged.
    """
    record = dataclasses.asdict(preprocess)
    for key in ("mean", "std", "post_std"):
        record[key] = [float(v) for v in record[key]]
    defaults = ImagePreprocess(resize_mode="fixed", height=1, width=1)
    for key in ("patch_size", "max_num_patches", "rescale_offset", "post_std"):
        default = getattr(defaults, key)
        if record[key] == (list(default) if isinstance(default, tuple) else default):
            del record[key]
    return record


def preprocess_from_hf(image_processor: Any, resize_mode: str) -> ImagePreprocess:
    """Read an :class:`ImagePreprocess` off a Hugging Face image processor.

    Args:
        image_processor: a loaded ``SiglipImageProcessor``/``CLIPImageProcessor``/``ViltImageProcessor``/
            ``Siglip2ImageProcessor``/``EfficientNetImageProcessor``/... (PIL or torchvision backend).
        resize_mode: ``fixed`` (SigLIP), ``shortest_edge`` (CLIP), ``vilt`` or ``naflex`` (SigLIP 2).

    Raises:
        EncoderError: when the processor asks for something this module does not implement.
    """
    proc = image_processor
    name = type(proc).__name__
    for flag in ("do_resize", "do_rescale", "do_normalize"):
        if getattr(proc, flag, True) is False:
            raise EncoderError(f"{name} has {flag}=False; the on-device preprocessing assumes it is True.")
    resample = getattr(proc, "resample", 3)
    resample_value = int(getattr(resample, "value", resample))
    if resample_value not in _PIL_RESAMPLE:
        raise EncoderError(f"{name} resamples with PIL mode {resample!r}; only bicubic and bilinear are implemented.")
    std = tuple(float(v) for v in proc.image_std)
    common: dict[str, Any] = {
        "resample": _PIL_RESAMPLE[resample_value],
        "rescale_factor": float(proc.rescale_factor),
        "mean": tuple(float(v) for v in proc.image_mean),
        "std": std,
        # EfficientNet (ALIGN): rescale to [-1, 1] and divide by std once more ("include_top")
        "rescale_offset": 1.0 if getattr(proc, "rescale_offset", False) else 0.0,
        "post_std": std if getattr(proc, "include_top", False) else (1.0, 1.0, 1.0),
    }
    if resize_mode == "naflex":
        return ImagePreprocess(
            resize_mode="naflex",
            patch_size=int(proc.patch_size),
            max_num_patches=int(proc.max_num_patches),
            **common,
        )
    size = _as_dict(proc.size)
    crop = _as_dict(proc.crop_size) if getattr(proc, "do_center_crop", False) else {}
    crop_fields = {"crop_height": int(crop.get("height", 0) or 0), "crop_width": int(crop.get("width", 0) or 0)}
    if resize_mode == "fixed":
        return ImagePreprocess(
            resize_mode="fixed", height=int(size["height"]), width=int(size["width"]), **crop_fields, **common
        )
    if resize_mode == "shortest_edge":
        return ImagePreprocess(
            resize_mode="shortest_edge", shortest_edge=int(size["shortest_edge"]), **crop_fields, **common
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
    if spec.rescale_offset or spec.post_std != (1.0, 1.0, 1.0):
        post = torch.tensor(spec.post_std, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
        x = ((x * spec.rescale_factor - spec.rescale_offset) - mean) / std / post
        return x.to(dtype).contiguous()
    # (x * s - mean) / std as one fused affine map.
    scale = spec.rescale_factor / std
    x = torch.addcmul(-mean / std, x, scale)
    return x.to(dtype).contiguous()


def image_model_inputs(images: torch.Tensor, spec: ImagePreprocess, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """uint8 frames -> the keyword arguments of the model's ``get_image_features``.

    Args:
        images: uint8 tensor ``(B, H, W, 3)`` on any device.
        spec: the model's :class:`ImagePreprocess`.
        dtype: the model's compute dtype.

    Returns:
        ``{"pixel_values": (B, 3, H', W')}``; for ``naflex``: ``{"pixel_values": (B, P, p*p*3)`` flattened
        patches (row-major over the grid, each patch ``(p, p, 3)`` channels last, as transformers'
        ``convert_image_to_patches``) zero-padded to ``P = max_num_patches``, ``"pixel_attention_mask":
        (B, P)`` int32 (1 = real patch), ``"spatial_shapes": (B, 2)`` int64 grid ``(rows, columns)``}.
    """
    import torch

    pixels = preprocess_images(images, spec, dtype)
    if spec.resize_mode != "naflex":
        return {"pixel_values": pixels}
    b, c, h, w = pixels.shape
    p = spec.patch_size
    rows, cols = h // p, w // p
    patches = pixels.reshape(b, c, rows, p, cols, p).permute(0, 2, 4, 3, 5, 1).reshape(b, rows * cols, p * p * c)
    num = rows * cols
    padded = torch.zeros((b, spec.max_num_patches, p * p * c), dtype=pixels.dtype, device=pixels.device)
    padded[:, :num] = patches
    mask = torch.zeros((b, spec.max_num_patches), dtype=torch.int32, device=pixels.device)
    mask[:, :num] = 1
    shapes = torch.tensor([[rows, cols]] * b, dtype=torch.int64, device=pixels.device)
    return {"pixel_values": padded, "pixel_attention_mask": mask, "spatial_shapes": shapes}
