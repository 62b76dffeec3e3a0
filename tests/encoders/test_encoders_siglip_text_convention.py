"""One SigLIP, one set of numbers: built-in and hf: text embeddings of the same weights agree (no attention mask)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vlnav_data.encoders import make_encoder, rebuild_encoder
from vlnav_data.encoders.registry import tiny_checkpoint
from vlnav_data.errors import EncoderError

TEXTS = ["go to the red sphere", "the blue one on your left", "green", "move towards the yellow ball ahead"]


def _transformers_text(directory, texts, max_length, *, mask: bool) -> np.ndarray:
    import transformers

    model = transformers.AutoModel.from_pretrained(directory).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(directory)
    tokens = tokenizer(texts, padding="max_length", max_length=max_length, truncation=True, return_tensors="pt")
    inputs = {"input_ids": tokens["input_ids"]}
    if mask:
        inputs["attention_mask"] = tokens["attention_mask"]
    with torch.no_grad():
        out = model.get_text_features(**inputs)
    feats = out if isinstance(out, torch.Tensor) else out.pooler_output
    return torch.nn.functional.normalize(feats, dim=-1).numpy()


def test_builtin_and_hf_siglip_give_the_same_text_embeddings():
    directory = tiny_checkpoint("siglip", 0)  # the weights of the built-in siglip-tiny-random, seed 0
    builtin = make_encoder("siglip-tiny-random", device="cpu", dtype="fp32")
    hf = make_encoder(f"hf:{directory}", device="cpu", dtype="fp32")
    a, b = builtin.encode_texts(TEXTS), hf.encode_texts(TEXTS)
    assert np.sum(a * b, axis=1).min() >= 0.9999
    # The same holds for the full-size entry's code path: built-in 'siglip' pointed at these weights.
    local = make_encoder("siglip", device="cpu", dtype="fp32", model_path=str(directory))
    assert np.sum(local.encode_texts(TEXTS) * b, axis=1).min() >= 0.9999
    for enc in (builtin, hf, local):
        assert enc.spec.preprocessing["text_attention_mask"] is False
    assert hf.spec.preprocessing["text_inputs"] == ["input_ids"]


def test_the_convention_is_the_unmasked_one_and_it_matters():
    directory = tiny_checkpoint("siglip", 0)
    builtin = make_encoder("siglip-tiny-random", device="cpu", dtype="fp32")
    length = builtin.text_max_length
    unmasked = _transformers_text(directory, TEXTS, length, mask=False)
    masked = _transformers_text(directory, TEXTS, length, mask=True)
    ours = builtin.encode_texts(TEXTS)
    # The built-in's numbers are what they were: transformers on the padded ids, no mask.
    assert np.sum(ours * unmasked, axis=1).min() >= 0.9999
    # ...and the mask is not a detail: with it, the same weights give other embeddings.
    assert np.sum(ours * masked, axis=1).min() < 0.999


def test_clip_keeps_its_attention_mask(tiny_checkpoint_dir):
    enc = make_encoder(f"hf:{tiny_checkpoint_dir('clip')}", device="cpu")
    assert enc.spec.preprocessing["text_attention_mask"] is True
    assert "attention_mask" in enc.text_inputs


def test_a_file_embedded_with_the_mask_is_refused_on_rebuild(tmp_path):
    import shutil

    directory = tmp_path / "my-siglip"
    shutil.copytree(tiny_checkpoint("siglip", 0), directory)
    record = make_encoder(f"hf:{directory}", device="cpu").spec.to_dict()
    assert rebuild_encoder(record, where="'demos.h5'").spec.preprocessing["text_attention_mask"] is False
    # A record written before this version: text_inputs with the mask, no text_attention_mask key.
    old = {k: v for k, v in record["preprocessing"].items() if k != "text_attention_mask"}
    old["text_inputs"] = ["input_ids", "attention_mask"]
    with pytest.raises(EncoderError) as info:
        rebuild_encoder({**record, "preprocessing": old}, where="'demos.h5'")
    message = str(info.value)
    assert message.startswith(
        "'demos.h5' holds text embeddings of encoder 'my-siglip' computed with the attention mask, but this "
        "version computes them without the attention mask"
    )
    assert "--replace" in message
    # Built-in records from before the key existed carry no convention: their numbers never changed.
    builtin = make_encoder("siglip-tiny-random", device="cpu").spec.to_dict()
    legacy = {k: v for k, v in builtin["preprocessing"].items() if k != "text_attention_mask"}
    assert rebuild_encoder({**builtin, "preprocessing": legacy}).spec.name == "siglip-tiny-random"
