"""The built-in encoders: their names, the models behind them and their notes (no model code).

The registry (:mod:`.registry`) builds them; the modules below it that only need to know which names are
taken (``hf:`` aliases, plugins) read :data:`ENCODER_NAMES` here, so nothing below the registry imports it.
"""

from __future__ import annotations

import dataclasses

from vlnav_data.encoders.oracle import ORACLE_DIM


@dataclasses.dataclass(frozen=True, kw_only=True)
class BuiltinEntry:
    family: str  # siglip | clip | vilt | oracle
    model_id: str
    note: str
    dim: int  # the published model's embedding width (tiny models: their config's)
    tiny: bool = False


TINY_NOTE = (
    "TESTS AND OFFLINE SMOKE RUNS ONLY: {arch} architecture, tiny, random weights from seed {seed} and a "
    "tokenizer built locally; its embeddings carry no visual or language meaning."
)

BUILTIN: dict[str, BuiltinEntry] = {
    "siglip": BuiltinEntry(
        family="siglip",
        model_id="google/siglip-so400m-patch14-384",
        note="SigLIP so400m/14 at 384 px: the paper's encoder (text2nav spec §4).",
        dim=1152,
    ),
    "clip": BuiltinEntry(
        family="clip",
        model_id="openai/clip-vit-base-patch32",
        note="CLIP ViT-B/32: the paper's comparison encoder.",
        dim=512,
    ),
    "vilt": BuiltinEntry(
        family="vilt",
        model_id="dandelin/vilt-b32-finetuned-vqa",
        note="ViLT B/32 (ViltModel, not the VQA head): a fused model; its joint vector is l2(pooler_output) "
        "of the image+text pair (encode_pairs).",
        dim=768,
    ),
    "siglip-tiny-random": BuiltinEntry(
        family="siglip", model_id="vlnav-data/siglip-tiny-random", note="", dim=64, tiny=True
    ),
    "clip-tiny-random": BuiltinEntry(family="clip", model_id="vlnav-data/clip-tiny-random", note="", dim=48, tiny=True),
    "vilt-tiny-random": BuiltinEntry(family="vilt", model_id="vlnav-data/vilt-tiny-random", note="", dim=64, tiny=True),
    "oracle": BuiltinEntry(family="oracle", model_id="vlnav-data/oracle-state-projection", note="", dim=ORACLE_DIM),
}

ENCODER_NAMES: tuple[str, ...] = tuple(BUILTIN)
"""The built-in names (``make_encoder`` also takes ``hf:`` references and plugin names)."""

DEFAULT_ENCODER = "siglip"
