"""Probes on small synthetic dataset files: split discipline, labels, saved kNN index, reports."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from vlnav_data.dataset.synthetic import write_synthetic_dataset
from vlnav_data.errors import ConfigError, SchemaError
from vlnav_data.probes import (
    KnnProbeConfig,
    LinearProbeConfig,
    load_knn_index,
    load_probe_data,
    run_knn_probe,
    run_linear_probe,
)
from vlnav_data.probes.rows import ProbeRows, assert_disjoint_episodes


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("probes") / "syn.h5"
    return write_synthetic_dataset(path, num_episodes=14, encoders={"siglip-tiny-random": 16, "oracle": 24}, seed=3)


def _copy(src: Path, dst: Path) -> Path:
    dst.write_bytes(src.read_bytes())
    return dst


def test_load_probe_data_splits_never_share_an_episode(demo_file):
    data = load_probe_data(demo_file, features="joint", encoder="siglip-tiny-random")
    assert data.encoder == "siglip-tiny-random"
    assert not set(data.train.episode_index) & set(data.valid.episode_index)
    assert data.train.features.shape[1] == 16 and data.train.features.dtype == np.float32
    with h5py.File(demo_file, "r") as f:
        train_names = {n.decode() for n in f["mask/train"][()]}
        n_train_rows = sum(int(f["data"][n].attrs["num_samples"]) for n in train_names)
        ep = int(data.valid.episode_index[0])
        first_valid = f[f"data/demo_{ep}/obs/siglip-tiny-random_joint"][0]
    assert len(data.train) == n_train_rows
    np.testing.assert_allclose(data.valid.features[0], first_valid.astype(np.float32))
    text = load_probe_data(demo_file, features="text", encoder="oracle")
    assert text.train.features.shape[1] == 24
    # every row of one instruction carries the same text embedding
    idx = text.train.instruction_index
    same = idx == idx[0]
    np.testing.assert_array_equal(
        text.train.features[same], np.broadcast_to(text.train.features[0], text.train.features[same].shape)
    )


def test_assert_disjoint_episodes_rejects_shared_episode():
    def rows(eps):
        n = len(eps)
        return ProbeRows(
            features=np.zeros((n, 2), np.float32),
            actions=np.zeros((n, 2), np.float32),
            episode_index=np.asarray(eps),
            step_index=np.zeros(n, np.int64),
            instruction_index=np.zeros(n, np.int64),
            target_colour=np.array(["red"] * n),
            privileged_state=None,
        )

    assert_disjoint_episodes(rows([0, 0, 1]), rows([2, 3]))
    with pytest.raises(SchemaError, match="1 episode\\(s\\) have rows in both train and valid \\(e.g. demo_1\\)"):
        assert_disjoint_episodes(rows([0, 1]), rows([1, 2]))


def test_file_with_an_episode_in_both_masks_is_refused(demo_file, tmp_path):
    path = _copy(demo_file, tmp_path / "bad.h5")
    with h5py.File(path, "r+") as f:
        train = list(f["mask/train"][()])
        valid = list(f["mask/valid"][()])
        del f["mask/valid"]
        f.create_dataset("mask/valid", data=np.array(valid + train[:1]))
    with pytest.raises(SchemaError, match="puts 1 episode\\(s\\) in both train and valid"):
        load_probe_data(path, encoder="oracle")


def test_empty_valid_split_is_refused(demo_file, tmp_path):
    path = _copy(demo_file, tmp_path / "empty.h5")
    with h5py.File(path, "r+") as f:
        del f["mask/valid"]
        f.create_dataset("mask/valid", data=np.array([], dtype="S8"))
    with pytest.raises(SchemaError, match="the 'valid' split of .* is empty"):
        load_probe_data(path, encoder="oracle")


def test_unknown_encoder_lists_the_files_encoders(demo_file):
    with pytest.raises(ConfigError, match="it holds embeddings of: siglip-tiny-random, oracle"):
        load_probe_data(demo_file, encoder="clip")


def test_a_file_with_several_encoders_needs_one_named(demo_file, tmp_path):
    """The rule every command shares (DatasetReader.choose_encoder): no silent choice among several."""
    with pytest.raises(ConfigError, match=r"holds embeddings of 2 encoders \(siglip-tiny-random, oracle\); choose"):
        load_probe_data(demo_file)
    one = write_synthetic_dataset(tmp_path / "one.h5", num_episodes=4, encoders={"oracle": 8}, seed=0)
    assert load_probe_data(one).encoder == "oracle"


def test_linear_probe_on_file_recovers_distance_and_reports_controls(demo_file, tmp_path):
    cfg = LinearProbeConfig(
        path=demo_file, out_dir=tmp_path / "lin", encoder="oracle", targets=("distance", "colour"), mlp=False
    )
    r = run_linear_probe(cfg)
    by = {s.target: s for s in r.scores}
    # the synthetic oracle embedding is a linear map of the distance (then L2-normalised)
    assert by["distance"].probe > 0.9
    assert by["distance"].shuffled < 0.2
    assert by["distance"].baseline < 0.05
    assert by["colour"].probe > by["colour"].baseline + 0.5
    assert r.num_train_episodes + r.num_valid_episodes == 14
    report = (tmp_path / "lin" / "report.md").read_text()
    assert "shuffled labels" in report and "| distance | R² |" in report
    assert (tmp_path / "lin" / "linear_scores.png").stat().st_size > 1000


def test_colour_probe_on_text_features_is_exact_on_every_colour_seen_in_training(demo_file, tmp_path):
    # The synthetic text vector is a fixed unit vector per colour: a linear classifier separates the colours
    # it was trained on perfectly and cannot name the others, so accuracy = share of valid rows whose colour
    # occurs in the train split.
    cfg = LinearProbeConfig(
        path=demo_file, out_dir=tmp_path / "t", encoder="oracle", features="text", targets=("colour",), mlp=False
    )
    score = run_linear_probe(cfg).scores[0]
    data = load_probe_data(demo_file, features="text", encoder="oracle")
    seen = np.isin(data.valid.target_colour, np.unique(data.train.target_colour))
    assert 0 < seen.mean() < 1  # the fixture exercises both cases
    assert score.probe == pytest.approx(seen.mean(), abs=1e-12)
    assert score.shuffled < score.probe


def test_linear_probe_names_a_missing_label(demo_file, tmp_path):
    cfg = LinearProbeConfig(
        path=demo_file, out_dir=tmp_path / "x", encoder="oracle", targets=("spatial_word",), mlp=False
    )
    with pytest.raises(SchemaError, match="no instruction states a spatial word"):
        run_linear_probe(cfg)


def test_knn_probe_writes_the_policy_files_and_they_reload(demo_file, tmp_path):
    out = tmp_path / "knn"
    r = run_knn_probe(KnnProbeConfig(path=demo_file, out_dir=out, encoder="siglip-tiny-random", k=4, device="cpu"))
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["knn.faiss", "knn_actions.npy", "knn_meta.json", "knn_actions.png", "report.md"]
    )
    meta = json.loads((out / "knn_meta.json").read_text())
    for key in ("encoder", "features", "k", "metric", "dim", "num_vectors", "index_type", "dataset"):
        assert key in meta
    assert meta["k"] == 4 and meta["index_type"] == "flat_ip" and meta["dim"] == 16
    data = load_probe_data(demo_file, encoder="siglip-tiny-random")
    acts = np.load(out / "knn_actions.npy")
    assert acts.dtype == np.float32 and acts.shape == (len(data.train), 2)
    np.testing.assert_array_equal(acts, data.train.actions)
    idx = load_knn_index(out)
    _, ids = idx.search(data.train.features[:20], k=1)
    np.testing.assert_array_equal(ids[:, 0], np.arange(20))
    pred = idx.predict(data.valid.features)
    # the reloaded index reproduces the probe's score
    resid = np.sum((pred - data.valid.actions) ** 2)
    total = np.sum((data.valid.actions - data.valid.actions.mean(axis=0)) ** 2)
    assert 1 - resid / total == pytest.approx(r.r2, abs=1e-5)
    assert r.self_match_rate == 1.0
    assert r.mse < r.baseline_mse


def test_knn_k_larger_than_train_is_a_config_error(demo_file, tmp_path):
    with pytest.raises(ConfigError, match="--k 100000 exceeds the .* train rows"):
        run_knn_probe(KnnProbeConfig(path=demo_file, out_dir=tmp_path / "k", encoder="oracle", k=100_000))
