"""rebuild_encoder: a recorded spec becomes the same encoder again, or a refusal that says why."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from vlnav_data.encoders import make_encoder, rebuild_encoder, register_encoder, unregister_encoder
from vlnav_data.encoders.weights import content_hash
from vlnav_data.errors import EncoderError

COMMIT_A = "a" * 40
COMMIT_B = "b" * 40
WHERE = "'demos.h5'"


def record_of(encoder) -> dict:
    """What a file keeps: the spec as JSON (EncoderEntry has the same identity fields)."""
    return json.loads(json.dumps(encoder.spec.to_dict()))


@pytest.mark.parametrize("name", ["siglip-tiny-random", "oracle", "clip-tiny-random"])
def test_builtin_round_trip(name, make_frames):
    original = make_encoder(name, seed=3)
    again = rebuild_encoder(record_of(original), where=WHERE)
    assert again.spec.revision == "seed-3" and again.spec.name == name
    state = np.random.default_rng(0).uniform(-1, 1, (2, 11)).astype(np.float32)
    frames = make_frames(2, 32, 32)
    np.testing.assert_array_equal(
        again.encode_joint(frames, state, ["a", "b"]), original.encode_joint(frames, state, ["a", "b"])
    )


def test_local_hf_directory_round_trip_and_changed_content(tiny_checkpoint_dir, tmp_path, make_frames):
    directory = tmp_path / "my-clip"
    shutil.copytree(tiny_checkpoint_dir("clip"), directory)
    record = record_of(make_encoder(f"hf:{directory}"))
    frames = make_frames(2, 32, 32)
    again = rebuild_encoder(record, where=WHERE)
    np.testing.assert_array_equal(again.encode_images(frames), make_encoder(f"hf:{directory}").encode_images(frames))
    copy = tmp_path / "copy" / "elsewhere"
    shutil.copytree(directory, copy)
    assert rebuild_encoder(record, model_path=str(copy), where=WHERE).spec.revision == record["revision"]
    config = json.loads((directory / "config.json").read_text())
    config["logit_scale_init_value"] = 1.0
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(EncoderError) as info:
        rebuild_encoder(record, where=WHERE)
    assert str(info.value) == (
        f"'demos.h5' was embedded with encoder 'my-clip' (hf:{directory}) at revision {record['revision']}, but "
        f"{directory} now has revision {content_hash(directory)}; its embeddings would differ from the stored ones. "
        "Restore the directory's original files (or pass a copy with --encoder-model-path DIR), or rebuild the "
        "dataset and retrain."
    )


def test_builtin_local_directory_is_checked_too(tiny_checkpoint_dir, tmp_path):
    directory = tmp_path / "weights"
    shutil.copytree(tiny_checkpoint_dir("siglip"), directory)
    record = record_of(make_encoder("siglip", model_path=str(directory)))
    assert rebuild_encoder(record, where=WHERE).spec.revision == content_hash(directory)
    other = tmp_path / "other"
    shutil.copytree(tiny_checkpoint_dir("clip"), other)
    with pytest.raises(EncoderError, match=r"'demos.h5' was embedded with encoder 'siglip' .* but .*other now has"):
        rebuild_encoder(record, model_path=str(other), where=WHERE)
    old = {**record, "revision": "local"}  # files written before content hashes
    with pytest.raises(EncoderError) as info:
        rebuild_encoder(old, where=WHERE)
    assert str(info.value) == (
        "'demos.h5' records encoder 'siglip' with revision 'local', which does not identify its weights (written "
        "before commits and content hashes were recorded), so they cannot be checked; rebuild the dataset with this "
        "version (and retrain)"
    )


def test_hub_model_is_rebuilt_at_the_recorded_commit(tiny_checkpoint_dir, fake_hf_cache):
    fake_hf_cache("vlnav-test/tiny-siglip", tiny_checkpoint_dir("siglip"), COMMIT_A, refs=())
    fake_hf_cache("vlnav-test/tiny-siglip", tiny_checkpoint_dir("siglip"), COMMIT_B)
    record = record_of(make_encoder(f"hf:vlnav-test/tiny-siglip@{COMMIT_A}"))
    assert record["revision"] == COMMIT_A
    assert rebuild_encoder(record, where=WHERE).spec.revision == COMMIT_A  # although main is COMMIT_B
    shutil.rmtree(fake_hf_cache.cache / "models--vlnav-test--tiny-siglip" / "snapshots" / COMMIT_A)
    with pytest.raises(EncoderError) as info:
        rebuild_encoder(record, where=WHERE)
    assert str(info.value) == (
        f"'demos.h5' was embedded with encoder 'vlnav-test--tiny-siglip--{COMMIT_A}' (hf:vlnav-test/tiny-siglip) at "
        f"revision {COMMIT_A}, but the encoder available here has revision {COMMIT_B}; its embeddings would differ "
        f"from the stored ones. Fetch the recorded revision with `hf download vlnav-test/tiny-siglip --revision "
        f"{COMMIT_A}`, or rebuild the dataset and retrain."
    )


def test_dtype_defaults_to_the_recorded_one(tiny_checkpoint_dir):
    record = {**record_of(make_encoder(f"hf:{tiny_checkpoint_dir('siglip2')}")), "dtype": "bfloat16"}
    assert rebuild_encoder(record, where=WHERE).spec.dtype == "bfloat16"
    assert rebuild_encoder(record, dtype="fp32", where=WHERE).spec.dtype == "float32"


def test_other_width_preprocessing_missing_plugin_and_remote_code(tiny_checkpoint_dir):
    record = record_of(make_encoder(f"hf:{tiny_checkpoint_dir('clip')}"))
    with pytest.raises(EncoderError) as info:
        rebuild_encoder({**record, "dim": 512}, where=WHERE)
    assert str(info.value) == (
        "'demos.h5' holds 512-D embeddings of encoder 'tiny-clip', but the rebuilt encoder produces 48-D ones; it is "
        "a different model. Pass the original weights, or rebuild the dataset and retrain."
    )
    changed = {**record, "preprocessing": {**record["preprocessing"], "text_max_length": 64}}
    with pytest.raises(EncoderError, match="records preprocessing text_max_length=64 for encoder 'tiny-clip'"):
        rebuild_encoder(changed, where=WHERE)
    with pytest.raises(EncoderError) as info:
        rebuild_encoder({**record, "trust_remote_code": True}, where=WHERE)
    assert str(info.value) == (
        f"'demos.h5' was embedded with encoder 'tiny-clip' (hf:{tiny_checkpoint_dir('clip')}), whose own repository "
        "code ran (trust_remote_code); rebuilding it runs that code again, which happens only with "
        "--trust-remote-code"
    )
    plugin = {"name": "absent-plugin", "source": "plugin", "model_id": "x/y", "revision": "1", "dim": 4}
    with pytest.raises(EncoderError) as info:
        rebuild_encoder(plugin, where=WHERE)
    assert str(info.value) == (
        "'demos.h5' was embedded with plugin encoder 'absent-plugin' (x/y), which is not installed here: no entry "
        "point 'absent-plugin' in group 'vlnav_data.encoders' and no register_encoder('absent-plugin', ...) in this "
        "process; install the package that provides it"
    )


def test_plugin_revision_is_compared(toy_plugin):
    record = record_of(make_encoder("toy-pool"))
    assert rebuild_encoder(record, where=WHERE).spec.source == "plugin"
    with pytest.raises(EncoderError, match=r"at revision 0.0, but the encoder available here has revision 0.1"):
        rebuild_encoder({**record, "revision": "0.0"}, where=WHERE)


def test_registered_plugin_round_trip():
    from vlnav_data.encoders import Encoder, EncoderSpec

    class Two(Encoder):
        spec = EncoderSpec(name="x", model_id="t/two", revision="r1", dim=2, dtype="float32", device="cpu",
                           privileged=False, note="")  # fmt: skip

        def encode_images(self, images):
            return np.tile(np.float32([1, 0]), (len(images), 1))

        def encode_texts(self, texts):
            return np.tile(np.float32([0, 1]), (len(texts), 1))

    register_encoder("nb-two", lambda **kw: Two())
    try:
        record = record_of(make_encoder("nb-two"))
        assert record["name"] == "nb-two" and rebuild_encoder(record, where=WHERE).spec.revision == "r1"
    finally:
        unregister_encoder("nb-two")
