"""embed_dataset: embed(build(A), B) == build(A and B) array for array; in place; replace; resume; precision."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil

import h5py
import numpy as np
import pytest

from vlnav_data.collect import build_dataset
from vlnav_data.collect.embed import embed_dataset
from vlnav_data.collect.embed.config import EmbedConfig
from vlnav_data.collect.embed.embedder import CROSS_EPISODE_TOLERANCE
from vlnav_data.dataset import DatasetReader, lock_path, partial_path
from vlnav_data.dataset.sidecar import sidecar_path
from vlnav_data.dataset.validate import validate_dataset
from vlnav_data.errors import ConfigError

# Over the shared small build (small_build, tests/conftest.py): episodes finish out of index order with 3
# arenas, so build embeds them in completion order.
BASE = dict(num_envs=3)
TINY = ("siglip-tiny-random", "vilt-tiny-random")  # a two-tower and a fused (ViLT) encoder


def file_contents(path) -> tuple[dict, dict]:
    """Every dataset (values, dtype, chunks, filters, attributes) and every group's attributes."""
    datasets: dict = {}
    groups: dict = {}
    with h5py.File(path, "r") as f:

        def visit(name, obj):
            attrs = {k: (obj.attrs[k], obj.attrs.get_id(k).dtype) for k in obj.attrs}
            if isinstance(obj, h5py.Dataset):
                datasets[name] = (obj[()], obj.dtype, obj.chunks, obj.compression, obj.shuffle, obj.maxshape, attrs)
            else:
                groups[name] = attrs

        f.visititems(visit)
        groups["/"] = {k: (f.attrs[k], f.attrs.get_id(k).dtype) for k in f.attrs}
    return datasets, groups


def assert_same_datasets(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        (va, *meta_a, attrs_a), (vb, *meta_b, attrs_b) = a[key], b[key]
        assert meta_a == meta_b, key
        np.testing.assert_array_equal(va, vb, err_msg=key)
        assert repr(attrs_a) == repr(attrs_b), key


def sha256(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def builds(tmp_path_factory, small_build):
    d = tmp_path_factory.mktemp("embed")
    oracle = build_dataset(small_build(d / "oracle.h5", encoders=("oracle",), **BASE)).path
    full = build_dataset(small_build(d / "full.h5", encoders=("oracle", *TINY), **BASE)).path
    return oracle, full


def test_embed_of_a_build_equals_the_build_with_both_encoders(builds, tmp_path):
    oracle, full = builds
    before = sha256(oracle)
    out = tmp_path / "embedded.h5"
    result = embed_dataset(EmbedConfig(file=str(oracle), encoders=TINY, out=str(out), device="cpu"))
    assert sha256(oracle) == before, "the input must never be modified"
    assert validate_dataset(out) == []
    assert result.encoders == TINY and result.new_episodes == 4 and result.resumed_episodes == 0
    assert not result.in_place and not result.cross_episode_batching
    assert not sidecar_path(out).exists() and not partial_path(out).exists() and not lock_path(out).exists()
    got, got_groups = file_contents(out)
    want, want_groups = file_contents(full)
    assert_same_datasets(got, want)  # frames, states, labels, every embedding, text tables, masks
    for name in want_groups:  # demo attributes, /data attributes (robomimic's total, env_args), ...
        if name != "/":
            assert repr(got_groups[name]) == repr(want_groups[name]), name
    root_got, root_want = got_groups["/"], want_groups["/"]
    for key in ("encoders_json", "features_json", "sim_config_json", "fps", "format", "format_version"):
        assert root_got[key][0] == root_want[key][0], key
    # The build config is the one `build` ran; the rebuild command says what happened after it.
    assert json.loads(root_got["build_config_json"][0])["encoders"] == ["oracle"]
    with DatasetReader(oracle) as r:
        first = r.rebuild_command
    assert root_got["rebuild_command"][0] == (
        f"{first} && vlnav-data embed oracle.h5 --encoder siglip-tiny-random --encoder vilt-tiny-random "
        "--out embedded.h5 --device cpu"
    )
    with DatasetReader(out) as r:
        assert r.encoders == ("oracle", *TINY)
        assert r.encoder_specs["siglip-tiny-random"]["dtype"] == "float32"
        assert r.encoder_specs["siglip-tiny-random"]["device_type"] == "cpu"


def test_in_place_gives_the_same_arrays_and_leaves_nothing_behind(builds, tmp_path):
    oracle, full = builds
    path = tmp_path / "demos.h5"
    shutil.copy(oracle, path)
    result = embed_dataset(EmbedConfig(file=str(path), encoders=("siglip-tiny-random",), device="cpu"))
    assert result.in_place and result.path == path
    assert validate_dataset(path) == []
    got, want = file_contents(path)[0], file_contents(full)[0]
    assert_same_datasets(got, {k: v for k, v in want.items() if "vilt-tiny-random" not in k})
    assert [p.name for p in tmp_path.iterdir()] == ["demos.h5"]  # no sidecar, .partial or lock left
    assert [p.name for p in tmp_path.iterdir()] == ["demos.h5"]  # no sidecar, .partial or lock left


def test_replace_recomputes_an_encoder_in_its_place(builds, tmp_path):
    oracle, full = builds
    out = tmp_path / "bf16.h5"
    with pytest.raises(ConfigError) as info:
        embed_dataset(EmbedConfig(file=str(full), encoders=("siglip-tiny-random",), out=str(out), device="cpu"))
    assert str(info.value) == (
        f"'{full}' already holds encoder 'siglip-tiny-random'; pass --replace to compute it again, "
        "or choose another encoder"
    )
    result = embed_dataset(
        EmbedConfig(
            file=str(full),
            encoders=("siglip-tiny-random",),
            out=str(out),
            device="cpu",
            encoder_dtype="bf16",
            replace=True,
        )
    )
    assert result.replaced == ("siglip-tiny-random",)
    assert validate_dataset(out) == []
    with DatasetReader(out) as r, DatasetReader(full) as ref:
        assert r.encoders == ref.encoders  # kept its place
        assert r.encoder_specs["siglip-tiny-random"]["dtype"] == "bfloat16"
        assert r.encoder_specs["oracle"] == ref.encoder_specs["oracle"]
        new = r.stack(["obs/siglip-tiny-random_joint", "obs/vilt-tiny-random_joint"])
        old = ref.stack(["obs/siglip-tiny-random_joint", "obs/vilt-tiny-random_joint"])
    np.testing.assert_array_equal(new["obs/vilt-tiny-random_joint"], old["obs/vilt-tiny-random_joint"])
    a = new["obs/siglip-tiny-random_joint"].astype(np.float32)
    b = old["obs/siglip-tiny-random_joint"].astype(np.float32)
    assert not np.array_equal(a, b)  # really recomputed, in bf16
    assert np.min(np.sum(a * b, axis=1)) > 0.95  # ... and still the same model


def test_resume_after_an_error_keeps_finished_episodes_and_refuses_mixed_precision(builds, tmp_path):
    oracle, full = builds
    out = tmp_path / "r.h5"
    # read_ahead=2: the reader thread (the CUDA default) stops cleanly when the run is interrupted.
    cfg = EmbedConfig(file=str(oracle), encoders=("siglip-tiny-random",), out=str(out), device="cpu", read_ahead=2)

    class Interrupt(Exception):
        pass

    def stop_after_two(p):
        if p.stage == "embed" and p.done == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        embed_dataset(cfg, progress=stop_after_two)
    side = sidecar_path(out)
    assert side.exists() and not out.exists() and not lock_path(out).exists()
    with pytest.raises(ConfigError) as info:
        embed_dataset(cfg)
    assert str(info.value) == (
        f"an unfinished embed exists at '{side}'; pass --resume to continue it or --overwrite to start over"
    )
    with pytest.raises(ConfigError) as info:
        embed_dataset(dataclasses.replace(cfg, resume=True, encoder_dtype="bf16"))
    assert str(info.value) == (
        "encoder 'siglip-tiny-random' would mix precisions: "
        f"'{side}' holds float32 on cpu, this run computes bfloat16 on cpu; use the same --device and "
        "--encoder-dtype throughout, or pass --allow-mixed-precision to accept the mix (it is then recorded "
        "in the encoder's entry as mixed_precision)"
    )
    with pytest.raises(ConfigError, match="was started with"):
        embed_dataset(dataclasses.replace(cfg, resume=True, encoders=("clip-tiny-random",)))
    result = embed_dataset(dataclasses.replace(cfg, resume=True))
    assert (result.resumed_episodes, result.new_episodes) == (2, 2)
    with DatasetReader(oracle) as r:
        assert result.new_steps == sum(r.num_samples(n) for n in r.demo_names[2:])
    with DatasetReader(out) as r, DatasetReader(full) as ref:
        for key in ("obs/siglip-tiny-random_image", "obs/siglip-tiny-random_joint"):
            np.testing.assert_array_equal(r.stack([key])[key], ref.stack([key])[key])
        np.testing.assert_array_equal(
            r.text_embeddings("siglip-tiny-random"), ref.text_embeddings("siglip-tiny-random")
        )


def test_mixed_precision_when_allowed_is_recorded(builds, tmp_path):
    oracle, _ = builds
    out = tmp_path / "mixed.h5"
    cfg = EmbedConfig(file=str(oracle), encoders=("siglip-tiny-random",), out=str(out), device="cpu")

    def stop_after_one(p):
        if p.stage == "embed" and p.done == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        embed_dataset(cfg, progress=stop_after_one)
    embed_dataset(dataclasses.replace(cfg, resume=True, encoder_dtype="bf16", allow_mixed_precision=True))
    assert validate_dataset(out) == []
    with DatasetReader(out) as r:
        entry = r.encoder_specs["siglip-tiny-random"]
    assert (entry["dtype"], entry["device_type"]) == ("float32", "cpu")
    assert entry["mixed_precision"] == [
        {"dtype": "float32", "device_type": "cpu"},
        {"dtype": "bfloat16", "device_type": "cpu"},
    ]


def test_a_run_killed_after_the_copy_finishes_on_resume(builds, tmp_path, monkeypatch):
    oracle, full = builds
    path = tmp_path / "demos.h5"
    shutil.copy(oracle, path)
    cfg = EmbedConfig(file=str(path), encoders=("siglip-tiny-random",), device="cpu")
    import vlnav_data.collect.embed.run as embed_module

    def killed_before_rename(partial, final):
        raise KeyboardInterrupt  # the process died after marking the sidecar assembled

    monkeypatch.setattr(embed_module, "publish", killed_before_rename)
    with pytest.raises(KeyboardInterrupt):
        embed_dataset(cfg)
    monkeypatch.undo()
    assert partial_path(path).exists() and sidecar_path(path).exists()
    with DatasetReader(path) as r:
        assert r.encoders == ("oracle",)  # the input is still the old file
    result = embed_dataset(dataclasses.replace(cfg, resume=True))
    assert result.new_episodes == 0
    assert not partial_path(path).exists() and not sidecar_path(path).exists()
    assert validate_dataset(path) == []
    with DatasetReader(path) as r, DatasetReader(full) as ref:
        key = "obs/siglip-tiny-random_joint"
        np.testing.assert_array_equal(r.stack([key])[key], ref.stack([key])[key])


def test_cross_episode_batches_in_embed_agree_within_the_tolerance(builds, tmp_path):
    oracle, full = builds
    out = tmp_path / "across.h5"
    name = "siglip-tiny-random"  # the fused path of cross-episode batches: tests/collect/test_collect_embedding.py
    cfg = EmbedConfig(
        file=str(oracle),
        encoders=(name,),
        out=str(out),
        device="cpu",
        cross_episode_batching=True,
        encoder_batch_size=8,
        read_ahead=2,
    )
    result = embed_dataset(cfg)
    assert result.cross_episode_batching and result.batch_frames == 8
    with DatasetReader(out) as a, DatasetReader(full) as b:
        for kind in ("image", "joint"):
            key = f"obs/{name}_{kind}"
            diff = np.abs(a.stack([key])[key].astype(np.float32) - b.stack([key])[key].astype(np.float32))
            assert diff.max() <= CROSS_EPISODE_TOLERANCE, key
        np.testing.assert_array_equal(a.text_embeddings(name), b.text_embeddings(name))


def test_the_embedded_file_reads_in_robomimic(builds, tmp_path):
    import sys
    import types

    try:
        import termcolor  # noqa: F401
    except ImportError:
        shim = types.ModuleType("termcolor")
        shim.colored = lambda text, *args, **kwargs: text
        sys.modules["termcolor"] = shim
    robomimic_dataset = pytest.importorskip("robomimic.utils.dataset")
    obs_utils = pytest.importorskip("robomimic.utils.obs_utils")
    oracle, _ = builds
    out = tmp_path / "robomimic.h5"
    embed_dataset(EmbedConfig(file=str(oracle), encoders=("siglip-tiny-random",), out=str(out), device="cpu"))
    key = "siglip-tiny-random_joint"
    obs_utils.initialize_obs_utils_with_obs_specs({"obs": {"low_dim": [key, "oracle_joint"]}})
    ds = robomimic_dataset.SequenceDataset(
        hdf5_path=str(out), obs_keys=(key, "oracle_joint"), dataset_keys=("actions",), frame_stack=1, seq_length=3,
        pad_frame_stack=True, pad_seq_length=True, get_pad_mask=False, goal_mode=None, hdf5_cache_mode=None,
        hdf5_use_swmr=True, hdf5_normalize_obs=False, filter_by_attribute="train", load_next_obs=False,
    )  # fmt: skip
    with DatasetReader(out) as r:
        first = r.episode(r.split("train")[0], keys=[f"obs/{key}"])[f"obs/{key}"]
    np.testing.assert_allclose(ds[0]["obs"][key], first[:3], atol=1e-3)
    ds.close_and_delete_hdf5_handle()


def test_an_hf_encoder_from_a_local_directory_embeds_like_it_builds(builds, tiny_checkpoint_dir, tmp_path, small_build):
    oracle, _ = builds
    value = f"mine=hf:{tiny_checkpoint_dir('clip')}"
    built = build_dataset(small_build(tmp_path / "built.h5", encoders=("oracle", value), **BASE)).path
    out = tmp_path / "embedded.h5"
    result = embed_dataset(EmbedConfig(file=str(oracle), encoders=(value,), out=str(out), device="cpu"))
    assert result.encoders == ("mine",)
    assert_same_datasets(file_contents(out)[0], file_contents(built)[0])
    with DatasetReader(out) as r, DatasetReader(built) as b:
        assert r.encoder_specs["mine"] == b.encoder_specs["mine"]  # source hf, content hash, preprocessing
        assert r.encoder_specs["mine"]["source"] == "hf"
        assert r.rebuild_command.endswith(
            f"&& vlnav-data embed oracle.h5 --encoder {value} --out embedded.h5 --device cpu"
        )
