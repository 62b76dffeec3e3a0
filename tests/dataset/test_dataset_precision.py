"""One encoder, one precision: the rule, merge's refusal, recorded mixes, files from before precision was recorded."""

from __future__ import annotations

import json

import h5py
import pytest

from vlnav_data.dataset import DatasetReader, EncoderEntry
from vlnav_data.dataset.merge import merge_datasets
from vlnav_data.dataset.precision import combine_precision, describe_precision, precisions
from vlnav_data.dataset.synthetic import write_synthetic_dataset
from vlnav_data.dataset.validate import validate_dataset
from vlnav_data.errors import ConfigError

FP32_CPU = dict(dtype="float32", device_type="cpu")
BF16_CUDA = dict(dtype="bfloat16", device_type="cuda")


def test_same_precision_combines_silently_and_a_mix_is_refused_with_the_exact_message():
    a = EncoderEntry(name="siglip", dim=4, **FP32_CPU)
    assert combine_precision(a, a, held_by="'x' holds", new_by="this run computes", allow_mixed=False) is a
    b = EncoderEntry(name="siglip", dim=4, **BF16_CUDA)
    with pytest.raises(ConfigError) as info:
        combine_precision(a, b, held_by="'demos.h5.partial' holds", new_by="this run computes", allow_mixed=False)
    assert str(info.value) == (
        "encoder 'siglip' would mix precisions: 'demos.h5.partial' holds float32 on cpu, this run computes "
        "bfloat16 on cuda; use the same --device and --encoder-dtype throughout, or pass "
        "--allow-mixed-precision to accept the mix (it is then recorded in the encoder's entry as mixed_precision)"
    )
    mixed = combine_precision(a, b, held_by="", new_by="", allow_mixed=True)
    assert (mixed.dtype, mixed.device_type) == ("float32", "cpu")  # the first contributor
    assert precisions(mixed) == (("float32", "cpu"), ("bfloat16", "cuda"))
    # A recorded mix stays a mix: adding either precision again needs the flag again, and is not repeated.
    with pytest.raises(ConfigError, match="holds float32 on cpu \\+ bfloat16 on cuda, this run computes float32"):
        combine_precision(mixed, a, held_by="'f' holds", new_by="this run computes", allow_mixed=False)
    assert precisions(combine_precision(mixed, a, held_by="", new_by="", allow_mixed=True)) == precisions(mixed)
    # JSON round trip; one precision writes no mixed_precision key at all (files look as before).
    again = EncoderEntry(**json.loads(json.dumps(mixed.to_json())))
    assert again == mixed
    assert "mixed_precision" not in a.to_json()


def test_text_attention_mask_conventions_never_mix_whatever_the_flag_says():
    """SigLIP text embeddings with and without the attention mask differ; one file holds one text table."""
    without = EncoderEntry(name="s", dim=4, preprocessing={"text_attention_mask": False}, **FP32_CPU)
    legacy_hf = EncoderEntry(
        name="s", dim=4, preprocessing={"text_inputs": ["input_ids", "attention_mask"]}, **FP32_CPU
    )
    unrecorded = EncoderEntry(name="s", dim=4, **FP32_CPU)  # built-in entries before the key: never changed
    for allow in (False, True):
        with pytest.raises(ConfigError) as info:
            combine_precision(legacy_hf, without, held_by="'a.h5' holds", new_by="this run computes", allow_mixed=allow)
        assert str(info.value) == (
            "encoder 's' would mix text conventions: 'a.h5' holds text embeddings computed with the attention "
            "mask, this run computes them without it (as SigLIP was trained); recompute the older ones with this "
            "version (vlnav-data embed FILE --encoder ... --replace --out NEW) before combining"
        )
    assert combine_precision(without, without, held_by="", new_by="", allow_mixed=False) is without
    assert combine_precision(unrecorded, without, held_by="", new_by="", allow_mixed=False) is unrecorded


def test_unrecorded_precision_is_a_precision_of_its_own():
    legacy = EncoderEntry(name="clip", dim=4)  # written before dtype/device were recorded
    assert combine_precision(legacy, legacy, held_by="", new_by="", allow_mixed=False) is legacy
    with pytest.raises(ConfigError) as info:
        combine_precision(
            legacy, EncoderEntry(name="clip", dim=4, **FP32_CPU), held_by="'old.h5' holds", new_by="'new.h5' holds",
            allow_mixed=False,
        )  # fmt: skip
    assert "'old.h5' holds an unrecorded precision (written before vlnav-data recorded it), 'new.h5' holds float32" in (
        str(info.value)
    )
    assert describe_precision((("", "cpu"),)) == "an unrecorded dtype on cpu"


def _set_entry(path, name, **fields):
    with h5py.File(path, "r+") as f:
        entries = json.loads(f.attrs["encoders_json"])
        for e in entries:
            if e["name"] == name:
                e.update(fields)
        f.attrs["encoders_json"] = json.dumps(entries, sort_keys=True)


def _shards(tmp_path):
    return [
        write_synthetic_dataset(tmp_path / f"s{i}.h5", 4, {"e": 4}, image_size=(8, 8), shard=(i, 2)) for i in range(2)
    ]


def test_merge_refuses_shards_computed_in_different_precisions(tmp_path):
    s0, s1 = _shards(tmp_path)
    _set_entry(s0, "e", **FP32_CPU)
    _set_entry(s1, "e", **BF16_CUDA)
    with pytest.raises(ConfigError) as info:
        merge_datasets([s0, s1], tmp_path / "m.h5")
    assert str(info.value) == (
        f"encoder 'e' would mix precisions: '{s0}' holds float32 on cpu, '{s1}' holds bfloat16 on cuda; use the "
        "same --device and --encoder-dtype throughout, or pass --allow-mixed-precision to accept the mix (it is "
        "then recorded in the encoder's entry as mixed_precision)"
    )
    assert not (tmp_path / "m.h5").exists()
    merged = merge_datasets([s0, s1], tmp_path / "m.h5", allow_mixed_precision=True)
    assert validate_dataset(merged.path) == []
    with DatasetReader(merged.path) as r:
        assert r.encoder_specs["e"]["mixed_precision"] == [FP32_CPU, BF16_CUDA]


def test_merge_of_shards_built_with_different_dtype_spellings_but_one_precision(tmp_path):
    s0, s1 = _shards(tmp_path)
    for path, spelling in ((s0, "auto"), (s1, "fp32")):
        _set_entry(path, "e", **FP32_CPU)
        with h5py.File(path, "r+") as f:
            build = json.loads(f.attrs["build_config_json"])
            build["encoder_dtype"] = spelling
            f.attrs["build_config_json"] = json.dumps(build, sort_keys=True)
    merged = merge_datasets([s0, s1], tmp_path / "m.h5")
    with DatasetReader(merged.path) as r:
        assert "mixed_precision" not in r.encoder_specs["e"] and r.encoder_specs["e"]["dtype"] == "float32"


def test_files_from_before_precision_was_recorded_open_merge_and_take_new_encoders(tmp_path):
    s0, s1 = _shards(tmp_path)
    for path in (s0, s1):  # strip every field added with provenance, as an old file had them
        with h5py.File(path, "r+") as f:
            old = [
                {k: e[k] for k in ("name", "dim", "model_id", "revision", "fusion", "privileged", "note")}
                for e in json.loads(f.attrs["encoders_json"])
            ]
            f.attrs["encoders_json"] = json.dumps(old)
    with DatasetReader(s0) as r:
        assert r.encoders == ("e",)
    merged = merge_datasets([s0, s1], tmp_path / "m.h5")
    assert validate_dataset(merged.path) == []
    from vlnav_data.collect.embed import embed_dataset
    from vlnav_data.collect.embed.config import EmbedConfig

    embed_dataset(EmbedConfig(file=str(merged.path), encoders=("oracle",), device="cpu"))
    with DatasetReader(merged.path) as r:
        assert r.encoders == ("e", "oracle")
        assert r.encoder_specs["e"]["dtype"] == "" and r.encoder_specs["oracle"]["dtype"] == "float32"
