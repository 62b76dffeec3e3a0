"""Tiny random-weight checkpoints (SigLIP, SigLIP 2, CLIP, ViLT) built offline, and the so400m architecture config.

A tiny checkpoint is written to a directory exactly like a downloaded one (``config.json``, weights,
tokenizer files, ``preprocessor_config.json``) and then loaded through the same ``from_pretrained``
code as the real models, so tests and offline smoke runs exercise the real loading path. Everything is
a pure function of the seed: weights are drawn under ``torch.manual_seed(seed)`` in a forked RNG, the
SigLIP sentencepiece model is trained single-threaded on a fixed corpus, the CLIP BPE merges, the SigLIP 2
(Gemma-style) BPE vocabulary and the BERT vocabulary are derived deterministically from the same corpus.

The SigLIP 2 checkpoint has no registry name: tests load it as ``hf:/dir`` (the NaFlex family).
"""

from __future__ import annotations

import collections
import io
import json
import re
from pathlib import Path
from typing import Any

COLOURS: tuple[str, ...] = ("red", "green", "blue", "yellow", "pink")
"""Target colours of the text2nav arena (spec §3)."""


def instruction_corpus() -> list[str]:
    """Sentences the tiny tokenizers are built from: every instruction template of text2nav spec §3."""
    sentences = []
    cells = ("top-left", "top", "top-right", "left", "centre", "right", "bottom-left", "bottom", "bottom-right")
    for colour in COLOURS:
        for cue in ("to your left", "to your right", "straight ahead"):
            for base in ("Move toward the ball.", "Move towards the ball."):
                sentences.append(f"The target is {colour} ball which is {cue}. {base}")
        sentences.append(f"Move towards {colour} ball")
        sentences.append(f"Go to the {colour} ball")
        sentences.extend(f"Navigate to the {cell} {colour} ball" for cell in cells)
        sentences.append(f"{colour} not in frame, move around to see")
    sentences.append("No balls in frame, move around")
    sentences.append("abcdefghijklmnopqrstuvwxyz 0123456789")
    return sentences


# --- SigLIP ---------------------------------------------------------------------------------------


def train_siglip_sentencepiece() -> bytes:
    """Train the tiny unigram sentencepiece model (ids: 0 ``<pad>``, 1 ``</s>``, 2 ``<unk>`` as SigLIP's).

    The corpus is canonicalised as ``SiglipTokenizer`` does (lower case, no punctuation).
    Single-threaded training on a fixed corpus gives byte-identical models in every process.
    """
    import sentencepiece as spm

    corpus = [re.sub(r"[^\w\s]", "", s.lower()).strip() for s in instruction_corpus()]
    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus),
        model_writer=buffer,
        vocab_size=96,
        hard_vocab_limit=False,
        model_type="unigram",
        character_coverage=1.0,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        pad_piece="<pad>",
        eos_piece="</s>",
        unk_piece="<unk>",
        num_threads=1,
        minloglevel=2,
    )
    return buffer.getvalue()


def write_tiny_siglip(directory: Path, seed: int) -> None:
    """Write a tiny random SigLIP checkpoint (embedding width 64, 32x32 input) into ``directory``."""
    from transformers import SiglipConfig, SiglipModel, SiglipTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    spiece = directory / "spiece.model"
    spiece.write_bytes(train_siglip_sentencepiece())
    tokenizer = SiglipTokenizer(vocab_file=str(spiece), model_max_length=64)
    tokenizer.save_pretrained(directory)
    config = SiglipConfig(
        text_config={
            "vocab_size": tokenizer.vocab_size,
            **_TINY_TOWER,
            "max_position_embeddings": 64,
            "pad_token_id": 1,
            "eos_token_id": 1,
            "bos_token_id": None,
        },
        vision_config={
            "image_size": 32,
            "patch_size": 8,
            **_TINY_TOWER,
        },
    )
    _save_seeded(SiglipModel, config, seed, directory)
    image_processor_for("siglip", size={"height": 32, "width": 32}).save_pretrained(directory)


# --- SigLIP 2 (NaFlex) ---------------------------------------------------------------------------


def siglip2_bpe_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A ``Siglip2Tokenizer`` vocabulary and merges covering the instruction corpus word by word.

    Ids 0-4 are ``<pad>``, ``<eos>``, ``<bos>``, ``<unk>``, ``<mask>`` (the tokenizer's defaults), then single
    characters, then every corpus word as ``▁word`` built by left-to-right merges (so each known word is one
    token and anything else falls back to characters).
    """
    words = sorted({w for s in instruction_corpus() for w in s.lower().split()})
    chars = sorted({c for w in words for c in w} | set("abcdefghijklmnopqrstuvwxyz0123456789"))
    tokens = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "\u2581", *chars]
    merges: list[tuple[str, str]] = []
    for word in words:
        piece = "\u2581"
        for c in word:
            merges.append((piece, c))
            piece += c
            tokens.append(piece)
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}
    return vocab, list(dict.fromkeys(merges))


def write_tiny_siglip2(directory: Path, seed: int, *, max_num_patches: int = 16) -> None:
    """Write a tiny random SigLIP 2 (NaFlex) checkpoint (width 64, 8-pixel patches) into ``directory``."""
    from transformers import Siglip2Config, Siglip2Model, Siglip2Tokenizer

    directory.mkdir(parents=True, exist_ok=True)
    vocab, merges = siglip2_bpe_vocab()
    tokenizer = Siglip2Tokenizer(vocab=vocab, merges=merges, model_max_length=64)
    tokenizer.save_pretrained(directory)
    config = Siglip2Config(
        text_config={
            "vocab_size": len(vocab),
            **_TINY_TOWER,
            "max_position_embeddings": 64,
            "pad_token_id": 0,
            "eos_token_id": 1,
            "bos_token_id": 2,
        },
        vision_config={
            "num_patches": max_num_patches,
            "patch_size": 8,
            **_TINY_TOWER,
        },
    )
    _save_seeded(Siglip2Model, config, seed, directory)
    image_processor_for("siglip2", patch_size=8, max_num_patches=max_num_patches).save_pretrained(directory)


# --- CLIP -----------------------------------------------------------------------------------------


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte -> printable unicode character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs], strict=True))


def clip_bpe_vocab(num_merges: int = 64) -> tuple[dict[str, int], list[str]]:
    """A CLIP-format byte-level BPE vocabulary and merges learned on the instruction corpus.

    Returns:
        ``(vocab, merges)``: ``vocab`` maps token -> id (256 bytes, 256 bytes + ``</w>``, merged
        tokens, then ``<|startoftext|>`` and ``<|endoftext|>``); ``merges`` are ``"a b"`` lines.
    """
    byte_chars = list(_bytes_to_unicode().values())
    words = collections.Counter(re.findall(r"[a-z]+|[0-9]", " ".join(instruction_corpus()).lower()))
    splits = {w: tuple(w[:-1]) + (w[-1] + "</w>",) for w in words}
    merges: list[str] = []
    for _ in range(num_merges):
        pairs: collections.Counter[tuple[str, str]] = collections.Counter()
        for word, parts in splits.items():
            for a, b in zip(parts, parts[1:], strict=False):
                pairs[(a, b)] += words[word]
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(f"{best[0]} {best[1]}")
        for word, parts in splits.items():
            merged, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and (parts[i], parts[i + 1]) == best:
                    merged.append(parts[i] + parts[i + 1])
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            splits[word] = tuple(merged)
    tokens = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m.split(" ")) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}
    return vocab, merges


def write_tiny_clip(directory: Path, seed: int) -> None:
    """Write a tiny random CLIP checkpoint (projection width 48, 32x32 crop) into ``directory``."""
    from transformers import AutoTokenizer, CLIPConfig, CLIPModel

    directory.mkdir(parents=True, exist_ok=True)
    vocab, merges = clip_bpe_vocab()
    (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    config = CLIPConfig(
        text_config={
            "vocab_size": len(vocab),
            **_TINY_TOWER,
            "max_position_embeddings": 77,
            "bos_token_id": vocab["<|startoftext|>"],
            "eos_token_id": vocab["<|endoftext|>"],
            "pad_token_id": vocab["<|endoftext|>"],
        },
        vision_config={
            "image_size": 32,
            "patch_size": 8,
            **_TINY_TOWER,
        },
        projection_dim=48,
    )
    _save_seeded(CLIPModel, config, seed, directory)  # config.json first: AutoTokenizer reads model_type from it
    tokenizer = AutoTokenizer.from_pretrained(directory, model_max_length=77)
    tokenizer.save_pretrained(directory)
    image_processor_for(
        "clip", size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}, do_center_crop=True
    ).save_pretrained(directory)


# --- ViLT -----------------------------------------------------------------------------------------


def bert_vocab() -> list[str]:
    """A BERT-format WordPiece vocabulary (one token a line) covering the instruction corpus."""
    words = sorted({w for s in instruction_corpus() for w in re.findall(r"[a-z]+|[0-9]", s.lower())})
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    punctuation = list(".,-!?'")
    tokens = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        *punctuation,
        *letters,
        *[f"##{c}" for c in letters],
        *words,
    ]
    return list(dict.fromkeys(tokens))


def write_tiny_vilt(directory: Path, seed: int) -> None:
    """Write a tiny random ViLT checkpoint (``ViltModel``, width 64, short side 32) into ``directory``."""
    from transformers import BertTokenizer, ViltConfig, ViltModel

    directory.mkdir(parents=True, exist_ok=True)
    vocab = bert_vocab()
    vocab_file = directory / "vocab.txt"
    vocab_file.write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizer(vocab=str(vocab_file), model_max_length=40)
    tokenizer.save_pretrained(directory)
    config = ViltConfig(
        vocab_size=len(vocab),
        **_TINY_TOWER,
        max_position_embeddings=40,
        image_size=32,
        patch_size=8,
        max_image_length=-1,
    )
    _save_seeded(ViltModel, config, seed, directory)
    image_processor_for("vilt", size={"shortest_edge": 32}, size_divisor=8).save_pretrained(directory)


# --- shared ---------------------------------------------------------------------------------------

_TINY_TOWER = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4}
"""Width and depth of every tiny tower (text and vision towers, ViLT's single stream)."""


def _save_seeded(model_class: Any, config: Any, seed: int, directory: Path) -> None:
    """Initialise ``model_class(config)`` from ``seed`` (the caller's RNG untouched) and save it in ``directory``."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_class(config)
    model.save_pretrained(directory)


def image_processor_for(family: str, **kwargs: Any) -> Any:
    """The PIL-backend image processor of ``family`` (transformers 5) or the classic one (4.x)."""
    import transformers

    names = {
        "siglip": "SiglipImageProcessor",
        "siglip2": "Siglip2ImageProcessor",
        "clip": "CLIPImageProcessor",
        "vilt": "ViltImageProcessor",
    }
    cls = getattr(transformers, names[family] + "Pil", None) or getattr(transformers, names[family])
    return cls(**kwargs)


TINY_WRITERS = {
    "siglip": write_tiny_siglip,
    "siglip2": write_tiny_siglip2,
    "clip": write_tiny_clip,
    "vilt": write_tiny_vilt,
}
"""family -> function(directory, seed) writing its tiny checkpoint."""


def so400m_vision_config() -> dict[str, Any]:
    """``SiglipVisionConfig`` fields of google/siglip-so400m-patch14-384 (for random-weight benchmarks)."""
    return {
        "hidden_size": 1152,
        "intermediate_size": 4304,
        "num_hidden_layers": 27,
        "num_attention_heads": 16,
        "patch_size": 14,
        "image_size": 384,
        "hidden_act": "gelu_pytorch_tanh",
        "layer_norm_eps": 1e-6,
    }
