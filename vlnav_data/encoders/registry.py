"""The encoder registry: ``make_encoder(name, ...)`` and ``ENCODER_NAMES``."""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vlnav_data.encoders.fused import FusedEncoder
from vlnav_data.encoders.oracle import OracleEncoder
from vlnav_data.encoders.preprocess import preprocess_from_hf
from vlnav_data.encoders.runtime import dtype_name, resolve_device, resolve_dtype, set_cpu_threads
from vlnav_data.encoders.spec import Encoder, EncoderSpec
from vlnav_data.encoders.two_tower import TwoTowerEncoder
from vlnav_data.encoders.weights import load_pretrained, weights_revision
from vlnav_data.errors import ConfigError, EncoderError, unknown_name


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Entry:
    family: str  # siglip | clip | vilt | oracle
    model_id: str
    note: str
    tiny: bool = False


TINY_NOTE = (
    "TESTS AND OFFLINE SMOKE RUNS ONLY: {arch} architecture, tiny, random weights from seed {seed} and a "
    "tokenizer built locally; its embeddings carry no visual or language meaning."
)

_REGISTRY: dict[str, _Entry] = {
    "siglip": _Entry(
        family="siglip",
        model_id="google/siglip-so400m-patch14-384",
        note="SigLIP so400m/14 at 384 px: the paper's encoder (text2nav spec §4).",
    ),
    "clip": _Entry(
        family="clip",
        model_id="openai/clip-vit-base-patch32",
        note="CLIP ViT-B/32: the paper's comparison encoder.",
    ),
    "vilt": _Entry(
        family="vilt",
        model_id="dandelin/vilt-b32-finetuned-vqa",
        note="ViLT B/32 (ViltModel, not the VQA head): a fused model; its joint vector is l2(pooler_output) "
        "of the image+text pair (encode_pairs).",
    ),
    "siglip-tiny-random": _Entry(family="siglip", model_id="vlnav-data/siglip-tiny-random", note="", tiny=True),
    "clip-tiny-random": _Entry(family="clip", model_id="vlnav-data/clip-tiny-random", note="", tiny=True),
    "vilt-tiny-random": _Entry(family="vilt", model_id="vlnav-data/vilt-tiny-random", note="", tiny=True),
    "oracle": _Entry(family="oracle", model_id="vlnav-data/oracle-state-projection", note=""),
}

ENCODER_NAMES: tuple[str, ...] = tuple(_REGISTRY)
"""Every name :func:`make_encoder` accepts."""

DEFAULT_ENCODER = "siglip"

_ARCH = {"siglip": "SigLIP", "clip": "CLIP", "vilt": "ViLT"}
_TINY_DIRS: dict[tuple[str, int], Path] = {}


def make_encoder(
    name: str,
    device: str = "cpu",
    model_path: str | None = None,
    *,
    dtype: str = "auto",
    batch_size: int | None = None,
    compile: bool = False,
    num_threads: int | None = None,
    text_cache_size: int = 4096,
    seed: int = 0,
) -> Encoder:
    """Build a frozen encoder by registry name.

    Args:
        name: one of :data:`ENCODER_NAMES`.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (CUDA when available).
        model_path: local directory with the model's files (``config.json``, weights, tokenizer,
            ``preprocessor_config.json``); None resolves the Hugging Face model id in the HF cache
            (honouring ``HF_HOME``/``HF_HUB_CACHE`` and ``HF_HUB_OFFLINE``).
        dtype: ``auto`` (bf16 on CUDA, fp32 on CPU), ``fp32`` or ``bf16``. Outputs are float32 always.
        batch_size: frames per forward pass; default 8 on CPU, 256 on CUDA.
        compile: ``torch.compile`` the image path (two-tower models; worth it on CUDA only).
        num_threads: set torch's CPU intra-op threads; None leaves torch's default (one per physical core,
            or ``OMP_NUM_THREADS``).
        text_cache_size: LRU capacity of the text-embedding cache (0 disables it).
        seed: weights of the ``*-tiny-random`` models, the oracle's projection, ViLT's patch sampling.

    Returns:
        An :class:`Encoder`.

    Raises:
        ConfigError: unknown name (with a did-you-mean), bad device/dtype/batch size, or a model_path given
            to an encoder that has no weights.
        EncoderError: weights absent (the message says where it looked and how to fetch them), CUDA absent.
    """
    if name not in _REGISTRY:
        raise unknown_name("encoder", name, ENCODER_NAMES)
    entry = _REGISTRY[name]
    if batch_size is not None and batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1 or None; received {batch_size}.")
    if entry.family == "oracle":
        if model_path is not None:
            raise ConfigError(f"encoder 'oracle' has no weights; model_path must be None, received {model_path!r}.")
        return OracleEncoder(seed=seed, text_cache_size=text_cache_size)
    if entry.tiny and model_path is not None:
        raise ConfigError(
            f"encoder '{name}' builds its own random weights; model_path must be None, received {model_path!r}."
        )
    resolved = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, resolved)
    set_cpu_threads(num_threads)
    if batch_size is None:
        batch_size = 256 if resolved.startswith("cuda") else 8
    if entry.tiny:
        source = str(tiny_checkpoint(entry.family, seed))
        note = TINY_NOTE.format(arch=_ARCH[entry.family], seed=seed)
    else:
        source, note = model_path, entry.note
    with quiet_transformers() if entry.tiny else contextlib.nullcontext():
        parts = load_parts(entry.family, name=name, model_id=entry.model_id, model_path=source)
    model = parts["model"].to(device=resolved, dtype=torch_dtype)
    spec = EncoderSpec(
        name=name,
        model_id=entry.model_id if model_path is None else str(Path(model_path).expanduser()),
        revision=f"seed-{seed}" if entry.tiny else weights_revision(model, model_path),
        dim=feature_dim(entry.family, model.config),
        dtype=dtype_name(torch_dtype),
        device=resolved,
        privileged=False,
        note=note,
        fused=entry.family == "vilt",
        source="builtin",
        preprocessing=preprocessing_record(parts["preprocess"], text_max_length(entry.family, model.config)),
        library_versions=library_versions(),
    )
    if entry.family == "vilt":
        if compile:
            raise ConfigError("compile=True is implemented for the two-tower encoders (siglip, clip), not for vilt.")
        return FusedEncoder(
            spec=spec,
            model=model,
            tokenizer=parts["tokenizer"],
            preprocess=parts["preprocess"],
            text_max_length=text_max_length(entry.family, model.config),
            batch_size=batch_size,
            text_cache_size=text_cache_size,
            image_processor=parts["image_processor"],
            seed=seed,
        )
    return TwoTowerEncoder(
        spec=spec,
        model=model,
        tokenizer=parts["tokenizer"],
        preprocess=parts["preprocess"],
        text_max_length=text_max_length(entry.family, model.config),
        text_attention_mask=entry.family == "clip",
        batch_size=batch_size,
        text_cache_size=text_cache_size,
        image_processor=parts["image_processor"],
        compile=compile,
    )


def text_max_length(family: str, config: Any) -> int:
    """Tokens every text is padded (and truncated) to: the model's position-embedding count."""
    if family == "vilt":
        return int(config.max_position_embeddings)
    return int(config.text_config.max_position_embeddings)


def preprocessing_record(preprocess: Any, max_length: int) -> dict[str, Any]:
    """The preprocessing an embedding depends on, as a JSON object (image geometry, mean/std, text length)."""
    record = dataclasses.asdict(preprocess)
    record["mean"], record["std"] = list(record["mean"]), list(record["std"])
    record["text_max_length"] = int(max_length)
    return record


def library_versions() -> dict[str, str]:
    """Versions of the libraries that compute embeddings."""
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__}


def feature_dim(family: str, config: Any) -> int:
    """Embedding width of a loaded model: SigLIP's hidden size, CLIP's projection, ViLT's hidden size."""
    if family == "siglip":
        return int(config.vision_config.hidden_size)
    if family == "clip":
        return int(config.projection_dim)
    return int(config.hidden_size)


def load_parts(family: str, *, name: str, model_id: str, model_path: str | None) -> dict[str, Any]:
    """Load model, tokenizer and image preprocessing of ``family`` with ``from_pretrained``.

    Args:
        family: ``siglip``, ``clip`` or ``vilt``.
        name: registry name (for messages).
        model_id: Hugging Face model id.
        model_path: local directory, or None for the Hugging Face cache.

    Returns:
        ``{"model", "tokenizer", "image_processor", "preprocess"}``; the model is in eval mode, on CPU, fp32.
    """
    import transformers

    model_cls = {"siglip": "SiglipModel", "clip": "CLIPModel", "vilt": "ViltModel"}[family]
    model_kwargs: dict[str, Any] = {} if family == "vilt" else {"attn_implementation": "sdpa"}
    load = {"name": name, "model_id": model_id, "model_path": model_path}
    model = load_pretrained(getattr(transformers, model_cls).from_pretrained, **load, **model_kwargs)
    try:
        tokenizer = load_pretrained(transformers.AutoTokenizer.from_pretrained, **load)
    except ImportError as exc:
        raise EncoderError(
            f"encoder '{name}' cannot build its tokenizer: {exc}. SigLIP's sentencepiece tokenizer needs the "
            "protobuf package: pip install protobuf."
        ) from exc
    image_processor = load_pretrained(transformers.AutoImageProcessor.from_pretrained, **load)
    resize_mode = {"siglip": "fixed", "clip": "shortest_edge", "vilt": "vilt"}[family]
    return {
        "model": model.eval(),
        "tokenizer": tokenizer,
        "image_processor": image_processor,
        "preprocess": preprocess_from_hf(image_processor, resize_mode),
    }


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' progress bars and warnings (used for the tiny checkpoints, whose
    defaults-derived config warnings and per-call loading bars are noise), restoring them after."""
    from transformers.utils import logging as hf_logging

    bar_was_enabled = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bar_was_enabled:
            hf_logging.enable_progress_bar()


def tiny_checkpoint(family: str, seed: int) -> Path:
    """Directory of the tiny random ``family`` checkpoint for ``seed``, written once per process."""
    from vlnav_data.encoders.random_models import TINY_WRITERS

    key = (family, seed)
    if key not in _TINY_DIRS:
        directory = Path(tempfile.mkdtemp(prefix=f"vlnav-{family}-tiny-random-{seed}-"))
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        with quiet_transformers():
            TINY_WRITERS[family](directory, seed)
        _TINY_DIRS[key] = directory
    return _TINY_DIRS[key]


def describe_encoders() -> dict[str, str]:
    """``name -> one-line description`` for CLI help and docs."""
    out = {}
    for name, entry in _REGISTRY.items():
        if entry.family == "oracle":
            out[name] = "privileged state through a fixed random projection (diagnostic upper bound)"
        elif entry.tiny:
            out[name] = f"tiny random-weight {_ARCH[entry.family]} for tests and offline smoke runs"
        else:
            out[name] = f"{entry.model_id}: {entry.note}"
    return out
