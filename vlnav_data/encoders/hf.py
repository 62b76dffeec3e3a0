"""Any Hugging Face two-tower vision-language checkpoint as an encoder: ``hf:ORG/NAME[@REV]``, ``hf:/dir``.

```python
enc = make_encoder("hf:google/siglip2-base-patch16-naflex")   # from the Hugging Face cache (never downloads)
enc = make_encoder("hf:/models/my-clip-finetune")             # a local directory (save_pretrained layout)
enc = make_encoder("mine=hf:/models/my-clip-finetune")        # stored in the file as 'mine'
```

**Which models.** Any checkpoint whose ``AutoModel`` class offers ``get_image_features`` and
``get_text_features`` returning one vector per input (``(B, E)``, the same ``E`` for both). Found with
transformers 5.24 by listing every class of ``MODEL_MAPPING_NAMES`` that has both methods: AIMv2,
ALIGN, AltCLIP, BLIP, BLIP-2, CLIP, CLIPSeg, Chinese-CLIP, FLAVA, GroupViT, MetaCLIP 2, OWL-ViT,
OWLv2, SigLIP, SigLIP 2, TIPSv2 and VisionTextDualEncoder. Of these, BLIP-2 (its text features are a
language model's output) and FLAVA (per-token features) are refused when their features turn out not
to be ``(B, E)``, and OWL-ViT, OWLv2 and TIPSv2 are refused for their image processors (below). Tested
end to end with tiny random checkpoints against transformers' own processor + model: CLIP, SigLIP and
SigLIP 2 (cosine >= 0.9999 in fp32); the pixels of the other supported processors (BiT, BLIP,
Chinese-CLIP, EfficientNet for ALIGN, ViT) are checked against transformers' own.

**Preprocessing.** Frames go through the on-device preprocessing of :mod:`.preprocess`, configured
from the checkpoint's own image processor. Supported processors (their arithmetic is resize, optional
centre crop, rescale, normalise, which :mod:`.preprocess` reproduces): :data:`SUPPORTED_IMAGE_PROCESSORS`;
SigLIP 2's NaFlex processor is reproduced patch by patch. Anything else is refused with a message.

**Text.** Every text is padded (and truncated) to one fixed length, so its embedding never depends on
the other texts of its batch: the text tower's position-embedding count, capped by the tokenizer's
``model_max_length``. The text tower receives exactly what the checkpoint's tokenizer returns
(``model_input_names``) among the arguments ``get_text_features`` names, as transformers' pipeline
does, except SigLIP and SigLIP 2: their text tower was trained on max-length padded ids without an
attention mask and pools the last position (big_vision; transformers' docs: ``padding="max_length"``,
"as that's how the model was trained"), so they get ``input_ids`` only, exactly as the built-in
``siglip`` entry (:data:`~vlnav_data.encoders.two_tower.TEXT_TRAINED_WITHOUT_MASK`): built-in and
``hf:`` SigLIP of the same weights give the same text embeddings. The spec records the convention
(``preprocessing["text_attention_mask"]``); files embedded with the mask by earlier versions are refused
when rebuilt. Texts are LRU-cached by string.

**Identity.** The stored name is the reference's (:attr:`~vlnav_data.encoders.hf_ref.HFRef.name`: the
alias, or one derived from the id or the directory). The revision is the cache snapshot's commit hash or
the directory's content hash. Remote code (a checkpoint whose ``config.json`` maps ``AutoModel`` to its
own Python files) runs only with ``trust_remote_code=True``, and the spec records that it ran.

Siblings: parsing ``hf:`` references and their names is :mod:`vlnav_data.encoders.hf_ref`, listing the
cached two-tower models :mod:`vlnav_data.encoders.hf_cache`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
from pathlib import Path
from typing import Any

from vlnav_data.encoders.hf_ref import HFRef
from vlnav_data.encoders.preprocess import preprocess_from_hf, record_of
from vlnav_data.encoders.runtime import (
    dtype_name,
    library_versions,
    prepare_runtime,
    quiet_transformers,
)
from vlnav_data.encoders.spec import EncoderSpec
from vlnav_data.encoders.two_tower import TwoTowerEncoder, pooled, text_inputs_for
from vlnav_data.encoders.weights import ResolvedWeights, load_pretrained, resolve_weights
from vlnav_data.errors import ConfigError, EncoderError

LOCAL_FLAG = "--encoder hf:/path/to/dir"

SUPPORTED_IMAGE_PROCESSORS: tuple[str, ...] = (
    "BitImageProcessor",
    "BlipImageProcessor",
    "CLIPImageProcessor",
    "ChineseCLIPImageProcessor",
    "EfficientNetImageProcessor",
    "SiglipImageProcessor",
    "Siglip2ImageProcessor",
    "ViTImageProcessor",
)
"""Image processors (any backend: PIL, torchvision) whose arithmetic :mod:`.preprocess` reproduces."""

TWO_TOWER_EXAMPLES = "CLIP, SigLIP, SigLIP 2, ALIGN, MetaCLIP 2, ..."

_MAX_SANE_LENGTH = 100_000  # tokenizers without a limit report model_max_length = 1e30


def read_model_config(directory: Path, ref: HFRef) -> dict[str, Any]:
    """``config.json`` of a checkpoint directory as a dict.

    Raises:
        EncoderError: the file is missing or not JSON.
    """
    path = directory / "config.json"
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise EncoderError(
            f"encoder '{ref.name}' ({ref.source}): {directory} has no config.json; expected a model directory "
            "written by save_pretrained or `hf download` (config.json, weights, tokenizer, preprocessor_config.json)"
        ) from exc
    except ValueError as exc:
        raise EncoderError(f"encoder '{ref.name}' ({ref.source}): {path} is not valid JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise EncoderError(f"encoder '{ref.name}' ({ref.source}): {path} is not a JSON object")
    return raw


def uses_remote_code(raw_config: dict[str, Any]) -> bool:
    """True when ``config.json`` maps ``AutoModel`` to the checkpoint's own code (``auto_map``)."""
    auto_map = raw_config.get("auto_map") or {}
    return isinstance(auto_map, dict) and "AutoModel" in auto_map


def native_model_class(raw_config: dict[str, Any]) -> str | None:
    """Name of transformers' own ``AutoModel`` class for the config's ``model_type`` (None when unknown)."""
    from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES

    name = MODEL_MAPPING_NAMES.get(str(raw_config.get("model_type", "")))
    if isinstance(name, (tuple, list)):
        name = name[0]
    return name


def has_two_tower_features(model_or_class: Any) -> bool:
    """True when the model (class) offers both ``get_image_features`` and ``get_text_features``."""
    return callable(getattr(model_or_class, "get_image_features", None)) and callable(
        getattr(model_or_class, "get_text_features", None)
    )


def no_features_error(ref: HFRef, class_name: str, model_type: str) -> EncoderError:
    """The error for a model without image and text features."""
    return EncoderError(
        f"encoder '{ref.name}' ({ref.source}): {class_name} (model_type '{model_type}') has no "
        "get_image_features/get_text_features; vlnav-data embeds frames and instructions with two-tower "
        f"vision-language models ({TWO_TOWER_EXAMPLES}). Choose such a checkpoint, or wrap this model as a plugin "
        "encoder (docs/encoders.md: Bring your own encoder)."
    )


def resize_mode_for(image_processor: Any, ref: HFRef) -> str:
    """The :mod:`.preprocess` resize mode that reproduces ``image_processor``.

    Raises:
        EncoderError: a processor (or a size rule) the on-device preprocessing does not reproduce.
    """
    cls = type(image_processor).__name__
    base = cls.removesuffix("Pil").removesuffix("Fast")
    if base not in SUPPORTED_IMAGE_PROCESSORS:
        raise EncoderError(
            f"encoder '{ref.name}' ({ref.source}): its image processor {cls} is not reproduced by the on-device "
            f"preprocessing (supported: {', '.join(SUPPORTED_IMAGE_PROCESSORS)}); wrap the model as a plugin "
            "encoder (docs/encoders.md: Bring your own encoder)."
        )
    if getattr(image_processor, "do_pad", False):
        raise EncoderError(
            f"encoder '{ref.name}' ({ref.source}): its image processor {cls} pads images (do_pad=True), which the "
            "on-device preprocessing does not implement"
        )
    if base == "Siglip2ImageProcessor":
        return "naflex"
    size = image_processor.size
    keys = {k for k in ("height", "width", "shortest_edge", "longest_edge") if _size_get(size, k)}
    if keys == {"height", "width"}:
        return "fixed"
    if keys == {"shortest_edge"}:
        return "shortest_edge"
    raise EncoderError(
        f"encoder '{ref.name}' ({ref.source}): {cls} resizes to {dict(size) if isinstance(size, dict) else size}; "
        "the on-device preprocessing implements a fixed height and width or a shortest edge"
    )


def _size_get(size: Any, key: str) -> Any:
    return size.get(key) if isinstance(size, dict) else getattr(size, key, None)


def text_length(model_config: Any, tokenizer: Any, ref: HFRef) -> int:
    """The fixed text length: the text tower's position-embedding count, capped by the tokenizer's limit."""
    text_config = getattr(model_config, "text_config", None) or model_config
    limits = [int(v) for v in (getattr(text_config, "max_position_embeddings", None),) if v]
    tok_max = getattr(tokenizer, "model_max_length", None)
    if tok_max and int(tok_max) < _MAX_SANE_LENGTH:
        limits.append(int(tok_max))
    if not limits:
        raise EncoderError(
            f"encoder '{ref.name}' ({ref.source}): neither its text config (max_position_embeddings) nor its "
            "tokenizer (model_max_length) states a text length; set model_max_length in tokenizer_config.json"
        )
    return min(limits)


def text_input_names(model: Any, tokenizer: Any) -> tuple[str, ...]:
    """The tokenizer outputs that ``model.get_text_features`` takes by name (``input_ids`` first)."""
    params = inspect.signature(model.get_text_features).parameters
    named = {n for n, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    names = [n for n in getattr(tokenizer, "model_input_names", ["input_ids"]) if n in named]
    if "input_ids" not in names:
        names.insert(0, "input_ids")
    return tuple(dict.fromkeys(names))


def make_hf_encoder(
    ref: HFRef,
    *,
    device: str = "cpu",
    dtype: str = "auto",
    batch_size: int | None = None,
    compile: bool = False,
    num_threads: int | None = None,
    text_cache_size: int = 4096,
    trust_remote_code: bool = False,
    revision: str | None = None,
    quiet: bool = False,
) -> TwoTowerEncoder:
    """Build the encoder of a Hugging Face checkpoint (see the module docstring).

    Args:
        ref: the parsed reference (:func:`~vlnav_data.encoders.hf_ref.parse_hf_ref`).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        dtype: ``auto`` (bf16 on CUDA, fp32 on CPU), ``fp32`` or ``bf16``.
        batch_size: frames per forward pass (default 8 on CPU, 256 on CUDA).
        compile: ``torch.compile`` the image path.
        num_threads: torch CPU intra-op threads (None: torch's default).
        text_cache_size: LRU capacity of the text cache.
        trust_remote_code: allow the checkpoint's own Python code to run (recorded in the spec).
        revision: pin a hub revision (a commit hash, branch or tag) instead of the reference's.
        quiet: silence transformers' loading bars and warnings.

    Returns:
        A :class:`~vlnav_data.encoders.two_tower.TwoTowerEncoder` whose ``spec.source`` is ``hf``.

    Raises:
        ConfigError: a bad device, dtype or batch size, or two different revisions asked for.
        EncoderError: files absent (says how to fetch them), no image/text features, remote code without
            ``trust_remote_code``, an unsupported image processor, features that are not ``(B, E)``.
    """
    if revision is not None and ref.revision is not None and revision != ref.revision:
        raise ConfigError(f"encoder '{ref.name}': revision {revision!r} given besides {ref.source}; give one")
    if revision is not None:
        if ref.path is not None:
            raise ConfigError(f"encoder '{ref.name}': a local directory ({ref.path}) has no revision to pin")
        ref = dataclasses.replace(ref, revision=revision)
    resolved, torch_dtype, batch_size = prepare_runtime(device, dtype, num_threads, batch_size)
    weights = resolve_weights(
        name=ref.name, model_id=ref.label, revision=ref.revision, model_path=ref.path, local_flag=LOCAL_FLAG
    )
    raw = read_model_config(weights.directory, ref)
    model_type = str(raw.get("model_type", ""))
    remote = uses_remote_code(raw)
    native = native_model_class(raw)
    if remote and not trust_remote_code and native is None:
        raise EncoderError(
            f"encoder '{ref.name}' ({ref.source}) needs the model's own code (config.json auto_map "
            f"{raw['auto_map'].get('AutoModel')!r}), which runs only with --trust-remote-code (recorded in the "
            "file); read that code, then pass --trust-remote-code"
        )
    if native is None and not remote:
        import transformers

        raise EncoderError(
            f"encoder '{ref.name}' ({ref.source}): transformers {transformers.__version__} does not know "
            f"model_type '{model_type}'; upgrade transformers, or use a checkpoint of a two-tower family "
            f"({TWO_TOWER_EXAMPLES})"
        )
    runs_remote = remote and trust_remote_code
    if not runs_remote:
        import transformers

        cls = getattr(transformers, native, None)  # type: ignore[arg-type]
        if cls is None or not has_two_tower_features(cls):
            raise no_features_error(ref, str(native), model_type)
    with quiet_transformers() if quiet else contextlib.nullcontext():
        parts = _load(ref, weights, trust_remote_code=runs_remote)
    model = parts["model"]
    if not has_two_tower_features(model):
        raise no_features_error(ref, type(model).__name__, model_type)
    tokenizer, image_processor = parts["tokenizer"], parts["image_processor"]
    preprocess = preprocess_from_hf(image_processor, resize_mode_for(image_processor, ref))
    max_length = text_length(model.config, tokenizer, ref)
    inputs = text_inputs_for(model_type, text_input_names(model, tokenizer))
    model = model.to(device=resolved, dtype=torch_dtype)
    dim = probe_text_dim(model, tokenizer, inputs, max_length, resolved, ref)
    record = record_of(preprocess)
    record.update(
        text_max_length=max_length,
        text_padding="max_length",
        text_inputs=list(inputs),
        image_processor=type(image_processor).__name__.removesuffix("Pil").removesuffix("Fast"),
        model_class=type(model).__name__,
    )
    spec = EncoderSpec(
        name=ref.name,
        model_id=ref.label,
        revision=weights.revision,
        dim=dim,
        dtype=dtype_name(torch_dtype),
        device=resolved,
        privileged=False,
        note=f"{type(model).__name__} from {ref.source}",
        fused=False,
        source="hf",
        preprocessing=record,
        library_versions=library_versions(),
        trust_remote_code=runs_remote,
    )
    return TwoTowerEncoder(
        spec=spec,
        model=model,
        tokenizer=tokenizer,
        preprocess=preprocess,
        text_max_length=max_length,
        text_inputs=inputs,
        batch_size=batch_size,
        text_cache_size=text_cache_size,
        image_processor=image_processor,
        compile=compile,
    )


def _load(ref: HFRef, weights: ResolvedWeights, *, trust_remote_code: bool) -> dict[str, Any]:
    import transformers

    load = {"name": ref.name, "model_id": ref.label, "local_flag": LOCAL_FLAG}
    try:
        model = load_pretrained(
            transformers.AutoModel.from_pretrained, weights, **load, trust_remote_code=trust_remote_code
        )
        tokenizer = load_pretrained(
            transformers.AutoTokenizer.from_pretrained, weights, **load, trust_remote_code=trust_remote_code
        )
        image_processor = load_pretrained(
            transformers.AutoImageProcessor.from_pretrained, weights, **load, trust_remote_code=trust_remote_code
        )
    except ImportError as exc:
        raise EncoderError(f"encoder '{ref.name}' ({ref.source}) cannot be loaded: {exc}") from exc
    return {"model": model.eval(), "tokenizer": tokenizer, "image_processor": image_processor}


def probe_text_dim(
    model: Any, tokenizer: Any, inputs: tuple[str, ...], max_length: int, device: str, ref: HFRef
) -> int:
    """Embed one short text to learn (and check) the feature width ``E``.

    Raises:
        EncoderError: the text features are not one ``(B, E)`` vector per text.
    """
    import torch

    try:
        tokens = tokenizer(["a"], padding="max_length", max_length=max_length, truncation=True, return_tensors="pt")
    except ValueError as exc:  # e.g. a tokenizer without a padding token
        raise EncoderError(
            f"encoder '{ref.name}' ({ref.source}): its tokenizer cannot pad texts to a fixed length ({exc}); "
            "fixed-length padding keeps a text's embedding independent of its batch"
        ) from exc
    with torch.inference_mode():
        out = model.get_text_features(**{k: tokens[k].to(device) for k in inputs if k in tokens})
    feats = pooled(out) if isinstance(out, torch.Tensor) or hasattr(out, "pooler_output") else None
    if feats is None or feats.ndim != 2 or feats.shape[0] != 1:
        shape = None if feats is None else tuple(feats.shape)
        raise EncoderError(
            f"encoder '{ref.name}' ({ref.source}): {type(model).__name__}.get_text_features returns "
            f"{type(out).__name__} with features of shape {shape}, not one (B, E) vector per text; this family is "
            f"not a two-tower embedding model ({TWO_TOWER_EXAMPLES})"
        )
    return int(feats.shape[1])
