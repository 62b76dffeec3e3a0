"""hf: encoders: references and names, equality with transformers' own pipeline, provenance, refusals."""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest
import torch

from vlnav_data.encoders import available_encoders, encoder_name, make_encoder
from vlnav_data.encoders.hf_ref import parse_hf_ref
from vlnav_data.encoders.weights import content_hash
from vlnav_data.errors import ConfigError, EncoderError

COMMIT_A = "a" * 40
COMMIT_B = "b" * 40
TEXTS = [
    "Go to the red ball",
    "The target is green ball which is to your right. Move toward the ball.",
    "Navigate to the top-left pink ball",
    "No balls in frame, move around",
]


@pytest.mark.parametrize(
    ("text", "name", "source"),
    [
        (
            "hf:google/siglip2-base-patch16-naflex",
            "google--siglip2-base-patch16-naflex",
            "hf:google/siglip2-base-patch16-naflex",
        ),
        ("hf:org/model@v1.0", "org--model--v1-0-c927dbf4", "hf:org/model@v1.0"),
        ("mine=hf:org/model", "mine", "hf:org/model"),
        ("hf:/models/my.clip", "my-clip-4daf7bc9", "hf:/models/my.clip"),
        ("hf:/models/clip", "hf-clip", "hf:/models/clip"),  # never looks like the built-in 'clip'
    ],
)
def test_reference_names_are_stable_and_valid(text, name, source):
    ref = parse_hf_ref(text)
    assert ref.name == name == encoder_name(text) and ref.source == source


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "hf:",
            "'hf:' is not a Hugging Face encoder; expected hf:ORG/NAME[@REVISION] (e.g. "
            "hf:google/siglip2-base-patch16-naflex) or hf:/path/to/dir (a directory starting with /, ./, ../ or ~)",
        ),
        (
            "my model=hf:org/x",
            "encoder alias 'my model' in 'my model=hf:org/x' must be letters, digits, '_' or '-' (starting with a "
            "letter or digit); e.g. --encoder mine=hf:/path/to/dir",
        ),
        (
            "clip=hf:org/x",
            "encoder alias 'clip' in 'clip=hf:org/x' is a built-in encoder's name; choose another (e.g. clip-hf)",
        ),
    ],
)
def test_bad_references(text, message):
    with pytest.raises(ConfigError) as info:
        parse_hf_ref(text)
    assert str(info.value) == message


def _reference_embeddings(directory, frames, texts, max_length):
    """transformers' own pipeline: the checkpoint's processor and tokenizer, then the model's feature methods."""
    import transformers

    model = transformers.AutoModel.from_pretrained(directory).eval()
    processor = transformers.AutoImageProcessor.from_pretrained(directory)
    tokenizer = transformers.AutoTokenizer.from_pretrained(directory)
    with torch.no_grad():
        image = model.get_image_features(**processor(images=list(frames), return_tensors="pt")).pooler_output
        tokens = tokenizer(texts, padding="max_length", max_length=max_length, truncation=True, return_tensors="pt")
        if model.config.model_type in ("siglip", "siglip2"):  # trained on padded ids without a mask (big_vision)
            tokens.pop("attention_mask", None)
        text = model.get_text_features(**tokens).pooler_output
    norm = torch.nn.functional.normalize
    return norm(image, dim=-1).numpy(), norm(text, dim=-1).numpy()


@pytest.mark.parametrize("family", ["clip", "siglip", "siglip2"])
def test_local_directory_matches_the_transformers_pipeline(family, tiny_checkpoint_dir, make_frames):
    directory = tiny_checkpoint_dir(family)
    enc = make_encoder(f"hf:{directory}")
    assert (
        enc.spec.source == "hf" and enc.spec.name == f"tiny-{family}" and enc.spec.dim == 48 + 16 * (family != "clip")
    )
    for size in [(32, 32), (64, 48), (256, 256)]:
        frames = make_frames(3, *size, seed=1)
        ref_image, ref_text = _reference_embeddings(directory, frames, TEXTS, enc.text_max_length)
        assert np.sum(ref_image * enc.encode_images(frames), axis=1).min() >= 0.9999
    assert np.sum(ref_text * enc.encode_texts(TEXTS), axis=1).min() >= 0.9999
    # batch-invariant text: padded to one fixed length, whatever else is in the batch (SigLIP 2 pads left)
    enc.text_cache.clear()
    alone = enc.encode_texts(TEXTS[:1])
    enc.text_cache.clear()
    np.testing.assert_allclose(enc.encode_texts(TEXTS)[:1], alone, atol=1e-6)


def test_provenance_of_a_local_directory(tiny_checkpoint_dir, tmp_path):
    directory = tmp_path / "my-siglip2"
    shutil.copytree(tiny_checkpoint_dir("siglip2"), directory)
    enc = make_encoder(f"naflex=hf:{directory}")
    spec = enc.spec
    assert spec.name == "naflex" and spec.model_id == str(directory) and spec.source == "hf"
    assert spec.revision == content_hash(directory) and spec.revision.startswith("sha256:")
    assert spec.dtype == "float32" and spec.device_type == "cpu" and not spec.trust_remote_code
    assert set(spec.library_versions) == {"torch", "transformers"}
    pre = spec.preprocessing
    assert (pre["resize_mode"], pre["patch_size"], pre["max_num_patches"], pre["resample"]) == (
        "naflex",
        8,
        16,
        "bilinear",
    )
    assert pre["mean"] == [0.5, 0.5, 0.5] and pre["text_max_length"] == 64 and pre["text_padding"] == "max_length"
    assert pre["image_processor"] == "Siglip2ImageProcessor" and pre["model_class"] == "Siglip2Model"
    # the content hash follows the files: a changed byte changes it, a model card does not
    (directory / "README.md").write_text("# my model\n")
    assert content_hash(directory) == spec.revision
    config = json.loads((directory / "config.json").read_text())
    config["vlnav_test"] = 1
    (directory / "config.json").write_text(json.dumps(config))
    assert content_hash(directory) != spec.revision


def test_hub_id_resolves_in_the_cache_without_network(tiny_checkpoint_dir, fake_hf_cache, monkeypatch, make_frames):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    fake_hf_cache("vlnav-test/tiny-clip", tiny_checkpoint_dir("clip"), COMMIT_A)
    fake_hf_cache("vlnav-test/tiny-clip", tiny_checkpoint_dir("clip"), COMMIT_B, refs=("v2",))
    enc = make_encoder("hf:vlnav-test/tiny-clip")
    assert (enc.spec.name, enc.spec.model_id, enc.spec.revision) == (
        "vlnav-test--tiny-clip",
        "vlnav-test/tiny-clip",
        COMMIT_A,
    )
    pinned = make_encoder("hf:vlnav-test/tiny-clip@v2")
    assert pinned.spec.name == "vlnav-test--tiny-clip--v2" and pinned.spec.revision == COMMIT_B
    frames = make_frames(2, 32, 32)
    local = make_encoder(f"hf:{tiny_checkpoint_dir('clip')}")
    np.testing.assert_array_equal(enc.encode_images(frames), local.encode_images(frames))
    rows = {r.name: r for r in available_encoders() if r.source == "hf"}
    assert rows["hf:vlnav-test/tiny-clip"].dim == 48
    assert rows["hf:vlnav-test/tiny-clip"].note == f"CLIPModel, cached commit {COMMIT_A[:12]} (main)"
    assert rows[f"hf:vlnav-test/tiny-clip@{COMMIT_B}"].note == f"CLIPModel, cached commit {COMMIT_B[:12]} (v2)"


def test_id_missing_from_the_cache_fails_fast_with_the_download_command(fake_hf_cache, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # offline by default: no request, no retries
    start = time.perf_counter()
    with pytest.raises(EncoderError) as info:
        make_encoder("hf:vlnav-test/absent@v3")
    assert time.perf_counter() - start < 5.0
    assert str(info.value) == (
        "encoder 'vlnav-test--absent--v3' could not load revision 'v3' of vlnav-test/absent: it is not in the "
        f"Hugging Face cache at {fake_hf_cache.cache} (nothing is downloaded at run time). Fetch it once, where the "
        "hub is reachable, with `hf download vlnav-test/absent --revision v3`, or pass a local copy with "
        "--encoder hf:/path/to/dir."
    )


def test_missing_local_directory_says_where_a_copy_comes_from(tmp_path):
    missing = tmp_path / "siglip2"
    with pytest.raises(EncoderError) as info:
        make_encoder(f"hf:{missing}")
    assert str(info.value) == (
        f"encoder 'siglip2' could not load {missing}: the local directory {missing} does not exist. Fetch it with "
        f"`hf download ORG/NAME --local-dir {missing}`, or point --encoder hf:/path/to/dir at a directory that "
        "holds the model's files (config.json, weights, tokenizer, preprocessor_config.json)."
    )


def test_model_without_features_is_refused_before_loading_weights(tmp_path):
    from transformers import BertConfig

    BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64).save_pretrained(
        tmp_path / "bert"
    )
    with pytest.raises(EncoderError) as info:  # config.json only: no weights are read before the check
        make_encoder(f"hf:{tmp_path / 'bert'}")
    assert str(info.value) == (
        f"encoder 'bert' (hf:{tmp_path / 'bert'}): BertModel (model_type 'bert') has no "
        "get_image_features/get_text_features; vlnav-data embeds frames and instructions with two-tower "
        "vision-language models (CLIP, SigLIP, SigLIP 2, ALIGN, MetaCLIP 2, ...). Choose such a checkpoint, or wrap "
        "this model as a plugin encoder (README: Bring your own encoder)."
    )


def test_remote_code_needs_the_flag(tiny_checkpoint_dir, tmp_path):
    directory = tmp_path / "remote"
    directory.mkdir()
    (directory / "config.json").write_text(
        json.dumps({"model_type": "vlnav-toy", "auto_map": {"AutoModel": "modeling_toy.ToyModel"}})
    )
    with pytest.raises(EncoderError) as info:
        make_encoder(f"hf:{directory}")
    assert str(info.value) == (
        f"encoder 'remote' (hf:{directory}) needs the model's own code (config.json auto_map "
        "'modeling_toy.ToyModel'), which runs only with --trust-remote-code (recorded in the file); read that code, "
        "then pass --trust-remote-code"
    )
    # a checkpoint of a family transformers knows, with an auto_map besides: loads natively, records no remote code
    native = tmp_path / "native"
    shutil.copytree(tiny_checkpoint_dir("clip"), native)
    config = json.loads((native / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_toy.ToyModel"}
    (native / "config.json").write_text(json.dumps(config))
    assert make_encoder(f"hf:{native}").spec.trust_remote_code is False


def test_unsupported_image_processor_is_refused(tiny_checkpoint_dir, tmp_path):
    from transformers import OwlViTImageProcessorPil

    directory = tmp_path / "owl"
    shutil.copytree(tiny_checkpoint_dir("clip"), directory)
    OwlViTImageProcessorPil().save_pretrained(directory)
    with pytest.raises(EncoderError, match=r"its image processor OwlViTImageProcessorPil is not reproduced"):
        make_encoder(f"hf:{directory}")


def test_bf16_and_device_are_recorded(tiny_checkpoint_dir):
    enc = make_encoder(f"hf:{tiny_checkpoint_dir('siglip')}", dtype="bf16")
    assert enc.spec.dtype == "bfloat16" and enc.spec.device == "cpu"


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        ("BitImageProcessorPil", {"size": {"shortest_edge": 24}, "crop_size": {"height": 24, "width": 24}}),
        ("BlipImageProcessorPil", {"size": {"height": 24, "width": 24}}),
        ("ChineseCLIPImageProcessorPil", {"size": {"shortest_edge": 24}, "crop_size": {"height": 24, "width": 24}}),
        (
            "EfficientNetImageProcessorPil",  # ALIGN: rescale to [-1, 1], normalise, divide by std again
            {
                "size": {"height": 28, "width": 28},
                "crop_size": {"height": 24, "width": 24},
                "do_center_crop": True,
                "rescale_offset": True,
                "include_top": True,
            },
        ),  # fmt: skip
        ("ViTImageProcessorPil", {"size": {"height": 24, "width": 24}}),
    ],
)
def test_every_supported_processor_is_reproduced_on_device(cls, kwargs, make_frames):
    """The processors of the other two-tower families: same pixels as transformers' processor (no model needed)."""
    import transformers

    from vlnav_data.encoders.hf import resize_mode_for
    from vlnav_data.encoders.hf_ref import HFRef
    from vlnav_data.encoders.preprocess import image_model_inputs, preprocess_from_hf

    processor = getattr(transformers, cls)(**kwargs)
    ref = HFRef(model_id="vlnav-test/x", revision=None, path=None, alias=None)
    spec = preprocess_from_hf(processor, resize_mode_for(processor, ref))
    frames = make_frames(3, 40, 56, seed=4)
    expected = processor(images=list(frames), return_tensors="pt")["pixel_values"]
    ours = image_model_inputs(torch.from_numpy(frames), spec, torch.float32)["pixel_values"]
    assert ours.shape == expected.shape
    assert (ours - expected).abs().mean().item() < 0.01  # PIL resamples in fixed point: a few levels on some pixels


TOY_REMOTE_CODE = """from transformers import CLIPConfig, CLIPModel


class ToyCLIPConfig(CLIPConfig):
    model_type = "toy-clip"


class ToyCLIPModel(CLIPModel):
    config_class = ToyCLIPConfig
"""


def test_remote_code_runs_with_the_flag_and_is_recorded(tiny_checkpoint_dir, tmp_path):
    """A checkpoint that brings its own model class (``auto_map``), in a fresh process whose transformers module
    cache is in tmp_path (transformers copies remote code there)."""
    import os
    import subprocess
    import sys

    directory = tmp_path / "toy-remote"
    shutil.copytree(tiny_checkpoint_dir("clip"), directory)
    (directory / "modeling_toy.py").write_text(TOY_REMOTE_CODE)
    config = json.loads((directory / "config.json").read_text())
    config.update(model_type="toy-clip", architectures=["ToyCLIPModel"])
    config["auto_map"] = {"AutoConfig": "modeling_toy.ToyCLIPConfig", "AutoModel": "modeling_toy.ToyCLIPModel"}
    (directory / "config.json").write_text(json.dumps(config))
    code = (
        "import json, sys\n"
        "from vlnav_data.encoders import make_encoder, rebuild_encoder\n"
        "from vlnav_data.errors import EncoderError\n"
        "enc = make_encoder(sys.argv[1], trust_remote_code=True)\n"
        "record = enc.spec.to_dict()\n"
        "again = rebuild_encoder(record, trust_remote_code=True)\n"
        "try:\n"
        "    make_encoder(sys.argv[1])\n"
        "    refused = ''\n"
        "except EncoderError as exc:\n"
        "    refused = str(exc)\n"
        "print(json.dumps([type(enc.model).__name__, record['trust_remote_code'], again.spec.revision == "
        "record['revision'], refused]))\n"
    )
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code, f"hf:{directory}"], capture_output=True, text=True, env=env, check=True
    )
    model_class, recorded, same, refused = json.loads(out.stdout.strip().splitlines()[-1])
    assert (model_class, recorded, same) == ("ToyCLIPModel", True, True)
    assert refused.startswith(f"encoder 'toy-remote' (hf:{directory}) needs the model's own code")
