"""The encoder registry: ``make_encoder(name, ...)`` for built-in names, ``hf:`` checkpoints and plugins.

``make_encoder`` accepts, in this order: ``hf:ORG/NAME[@REV]``, ``hf:/path/to/dir`` and ``ALIAS=hf:...``
(:mod:`.hf`); the seven built-in names of :data:`ENCODER_NAMES`; and the names of plugin encoders
(:mod:`.plugins`). :func:`encoder_name` turns any of these into the name stored in a file without
building anything; :func:`available_encoders` lists what this installation can build.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import shutil
import tempfile
from pathlib import Path
from typing import Any

from vlnav_data.encoders import hf, hf_cache, hf_ref, plugins
from vlnav_data.encoders.builtin import BUILTIN, ENCODER_NAMES, TINY_NOTE
from vlnav_data.encoders.fused import FusedEncoder
from vlnav_data.encoders.oracle import OracleEncoder
from vlnav_data.encoders.preprocess import preprocess_from_hf, record_of
from vlnav_data.encoders.runtime import (
    dtype_name,
    library_versions,
    prepare_runtime,
    quiet_transformers,
    resolve_device,
    resolve_dtype,
    set_cpu_threads,
)
from vlnav_data.encoders.spec import Encoder, EncoderSpec, seeded_revision
from vlnav_data.encoders.two_tower import TwoTowerEncoder
from vlnav_data.encoders.weights import ResolvedWeights, load_pretrained, resolve_weights
from vlnav_data.errors import ConfigError, EncoderError, did_you_mean

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
    trust_remote_code: bool = False,
    revision: str | None = None,
) -> Encoder:
    """Build a frozen encoder: a built-in name, an ``hf:`` reference or a plugin name.

    Args:
        name: one of :data:`ENCODER_NAMES`; ``hf:ORG/NAME[@REVISION]``, ``hf:/path/to/dir`` or
            ``ALIAS=hf:...`` (any Hugging Face two-tower checkpoint, :mod:`.hf`); or a plugin name
            (:mod:`.plugins`).
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (CUDA when available).
        model_path: local directory with a built-in model's files (``config.json``, weights, tokenizer,
            ``preprocessor_config.json``), identified by its content hash; None resolves the Hugging Face
            model id in the HF cache (``HF_HOME``/``HF_HUB_CACHE``) without network access.
        dtype: ``auto`` (bf16 on CUDA, fp32 on CPU), ``fp32`` or ``bf16``. Outputs are float32 always.
        batch_size: frames per forward pass; default 8 on CPU, 256 on CUDA.
        compile: ``torch.compile`` the image path (two-tower models; worth it on CUDA only).
        num_threads: set torch's CPU intra-op threads; None leaves torch's default (one per physical core,
            or ``OMP_NUM_THREADS``).
        text_cache_size: LRU capacity of the text-embedding cache (0 disables it).
        seed: weights of the ``*-tiny-random`` models, the oracle's projection, ViLT's patch sampling; passed
            to plugin factories.
        trust_remote_code: let an ``hf:`` checkpoint run its own code (recorded in ``spec.trust_remote_code``).
        revision: the cache revision (commit, branch or tag) of a built-in or ``hf:`` hub model; None: ``main``.

    Returns:
        An :class:`Encoder`.

    Raises:
        ConfigError: unknown name (with a did-you-mean), bad device/dtype/batch size, or a model_path given
            to an encoder that has no weights (or to an ``hf:``/plugin encoder).
        EncoderError: weights absent (the message says where it looked and how to fetch them), a model
            without image/text features, remote code without ``trust_remote_code``, CUDA absent.
    """
    if batch_size is not None and batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1 or None; received {batch_size}.")
    if hf_ref.is_hf_ref(name):
        if model_path is not None:
            raise ConfigError(
                f"encoder '{name}' names its files itself; drop model_path ({model_path!r}) or use hf:/path/to/dir"
            )
        return hf.make_hf_encoder(
            hf_ref.parse_hf_ref(name),
            device=device,
            dtype=dtype,
            batch_size=batch_size,
            compile=compile,
            num_threads=num_threads,
            text_cache_size=text_cache_size,
            trust_remote_code=trust_remote_code,
            revision=revision,
        )
    if name not in BUILTIN:
        if plugins.find_factory(name) is None:
            raise unknown_encoder(name)
        if model_path is not None:
            raise ConfigError(f"plugin encoder '{name}' loads its own weights; model_path must be None")
        resolved = resolve_device(device)
        resolve_dtype(dtype, resolved)  # validates the spelling
        set_cpu_threads(num_threads)
        return plugins.make_plugin_encoder(name, device=resolved, dtype=dtype, batch_size=batch_size, seed=seed)
    entry = BUILTIN[name]
    if entry.family == "oracle":
        if model_path is not None:
            raise ConfigError(f"encoder 'oracle' has no weights; model_path must be None, received {model_path!r}.")
        return OracleEncoder(seed=seed, text_cache_size=text_cache_size)
    if entry.tiny and model_path is not None:
        raise ConfigError(
            f"encoder '{name}' builds its own random weights; model_path must be None, received {model_path!r}."
        )
    resolved, torch_dtype, batch_size = prepare_runtime(device, dtype, num_threads, batch_size)
    local_flag = f"--model-path {name}=DIR (vlnav-policy eval/dagger: --encoder-model-path DIR)"
    if entry.tiny:
        weights = ResolvedWeights(
            directory=tiny_checkpoint(entry.family, seed), revision=seeded_revision(seed), local=True
        )
        note = TINY_NOTE.format(arch=_ARCH[entry.family], seed=seed)
    else:
        weights = resolve_weights(
            name=name, model_id=entry.model_id, revision=revision, model_path=model_path, local_flag=local_flag
        )
        note = entry.note
        if model_path is not None:
            note = (
                f"{_ARCH[entry.family]} architecture of the '{name}' entry with the weights of the local directory "
                f"{weights.directory}, identified by its content hash (not necessarily {entry.model_id})."
            )
    with quiet_transformers() if entry.tiny else contextlib.nullcontext():
        parts = load_parts(entry.family, name=name, model_id=entry.model_id, weights=weights, local_flag=local_flag)
    model = parts["model"].to(device=resolved, dtype=torch_dtype)
    spec = EncoderSpec(
        name=name,
        model_id=str(weights.directory) if model_path is not None else entry.model_id,
        revision=weights.revision,
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
    model_args: dict[str, Any] = {
        "spec": spec,
        "model": model,
        "tokenizer": parts["tokenizer"],
        "preprocess": parts["preprocess"],
        "text_max_length": text_max_length(entry.family, model.config),
        "batch_size": batch_size,
        "text_cache_size": text_cache_size,
        "image_processor": parts["image_processor"],
    }
    if entry.family == "vilt":
        if compile:
            raise ConfigError("compile=True is implemented for the two-tower encoders (siglip, clip), not for vilt.")
        return FusedEncoder(seed=seed, **model_args)
    text_inputs = ("input_ids", "attention_mask") if entry.family == "clip" else ("input_ids",)
    return TwoTowerEncoder(text_inputs=text_inputs, compile=compile, **model_args)


def compile_supported(name: str) -> bool:
    """Whether ``make_encoder(name, compile=True)`` compiles something: the two-tower models (built-in SigLIP
    and CLIP, every ``hf:`` reference). ViLT runs eager (its patch sampling draws random numbers, which a
    compiled graph would draw differently), the oracle has no model, plugins build themselves."""
    if hf_ref.is_hf_ref(name):
        return True
    entry = BUILTIN.get(name)
    return entry is not None and entry.family in ("siglip", "clip")


def warm_up_compiled(encoders: Any, height_px: int, width_px: int) -> tuple[float, tuple[str, ...]]:
    """Compile the image path of every compiled encoder for ``height_px`` x ``width_px`` frames now.

    ``torch.compile`` compiles at the first call; doing it here, before a command starts its clock, keeps the
    compile time out of the throughput it reports (the commands report it apart, as ``compile_s``).

    Returns:
        ``(seconds, names of the compiled encoders)``.
    """
    seconds, names = 0.0, []
    for encoder in encoders:
        if getattr(encoder, "compiled", False):
            seconds += float(encoder.warm_up(height_px, width_px))
            names.append(encoder.spec.name)
    return seconds, tuple(names)


def unknown_encoder(name: str) -> ConfigError:
    """The error for a name that is neither built-in, ``hf:`` nor a plugin (with a did-you-mean)."""
    known = sorted(ENCODER_NAMES) + list(plugins.plugin_names())
    return ConfigError(
        f"unknown encoder '{name}'; expected one of: {', '.join(known)}, or hf:ORG/NAME[@REVISION] / "
        f"hf:/path/to/dir for any Hugging Face two-tower model.{did_you_mean(name, known)}"
    )


def encoder_name(text: str) -> str:
    """The name an ``--encoder`` value gets in a file, checked without building anything.

    Built-in and plugin names are their own names; ``hf:`` references get their alias or a name derived
    from the id (:attr:`vlnav_data.encoders.hf_ref.HFRef.name`).

    Raises:
        ConfigError: malformed ``hf:`` reference or unknown name.
    """
    if hf_ref.is_hf_ref(text):
        return hf_ref.parse_hf_ref(text).name
    if text in BUILTIN or plugins.find_factory(text) is not None:
        return text
    raise unknown_encoder(text)


def text_max_length(family: str, config: Any) -> int:
    """Tokens every text is padded (and truncated) to: the model's position-embedding count."""
    if family == "vilt":
        return int(config.max_position_embeddings)
    return int(config.text_config.max_position_embeddings)


def preprocessing_record(preprocess: Any, max_length: int) -> dict[str, Any]:
    """The preprocessing an embedding depends on, as a JSON object (image geometry, mean/std, text length)."""
    record = record_of(preprocess)
    record["text_max_length"] = int(max_length)
    return record


def feature_dim(family: str, config: Any) -> int:
    """Embedding width of a loaded model: SigLIP's hidden size, CLIP's projection, ViLT's hidden size."""
    if family == "siglip":
        return int(config.vision_config.hidden_size)
    if family == "clip":
        return int(config.projection_dim)
    return int(config.hidden_size)


def load_parts(family: str, *, name: str, model_id: str, weights: ResolvedWeights, local_flag: str) -> dict[str, Any]:
    """Load model, tokenizer and image preprocessing of ``family`` with ``from_pretrained`` (no network).

    Args:
        family: ``siglip``, ``clip`` or ``vilt``.
        name: registry name (for messages).
        model_id: Hugging Face model id (for messages).
        weights: the directory to load (:func:`~vlnav_data.encoders.weights.resolve_weights`).
        local_flag: the flag that points at a local copy (for messages).

    Returns:
        ``{"model", "tokenizer", "image_processor", "preprocess"}``; the model is in eval mode, on CPU, fp32.
    """
    import transformers

    model_cls = {"siglip": "SiglipModel", "clip": "CLIPModel", "vilt": "ViltModel"}[family]
    model_kwargs: dict[str, Any] = {} if family == "vilt" else {"attn_implementation": "sdpa"}
    load = {"name": name, "model_id": model_id, "local_flag": local_flag}
    model = load_pretrained(getattr(transformers, model_cls).from_pretrained, weights, **load, **model_kwargs)
    try:
        tokenizer = load_pretrained(transformers.AutoTokenizer.from_pretrained, weights, **load)
    except ImportError as exc:
        raise EncoderError(
            f"encoder '{name}' cannot build its tokenizer: {exc}. SigLIP's sentencepiece tokenizer needs the "
            "protobuf package: pip install protobuf."
        ) from exc
    image_processor = load_pretrained(transformers.AutoImageProcessor.from_pretrained, weights, **load)
    resize_mode = {"siglip": "fixed", "clip": "shortest_edge", "vilt": "vilt"}[family]
    return {
        "model": model.eval(),
        "tokenizer": tokenizer,
        "image_processor": image_processor,
        "preprocess": preprocess_from_hf(image_processor, resize_mode),
    }


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
    for name, entry in BUILTIN.items():
        if entry.family == "oracle":
            out[name] = "privileged state through a fixed random projection (diagnostic upper bound)"
        elif entry.tiny:
            out[name] = f"tiny random-weight {_ARCH[entry.family]} for tests and offline smoke runs"
        else:
            out[name] = f"{entry.model_id}: {entry.note}"
    return out


@dataclasses.dataclass(frozen=True)
class AvailableEncoder:
    """One row of ``vlnav-data encoders``: the ``--encoder`` value, its source, width and a note."""

    name: str
    source: str
    dim: int | None
    note: str


def available_encoders() -> list[AvailableEncoder]:
    """What this installation can build: built-in names, plugins, and the ``hf:`` models in the cache.

    Nothing is built or downloaded; plugin widths are what their factories declare (``dim`` attribute),
    cached models' widths what their ``config.json`` states.
    """
    rows = [
        AvailableEncoder(name=name, source="builtin", dim=entry.dim, note=describe_encoders()[name])
        for name, entry in BUILTIN.items()
    ]
    for info in plugins.describe_plugins():
        note = f"{info.note} [{info.origin}]" if info.note else info.origin
        rows.append(AvailableEncoder(name=info.name, source="plugin", dim=info.dim, note=note))
    for model in hf_cache.cached_models():
        refs = f" ({', '.join(model.refs)})" if model.refs else ""
        note = f"{model.model_class}, cached commit {model.revision[:12]}{refs}"
        if model.model_class == "remote code":
            note += "; needs --trust-remote-code"
        rows.append(AvailableEncoder(name=model.ref, source="hf", dim=model.dim, note=note))
    return rows
