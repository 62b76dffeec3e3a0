"""Known-answer tests of the probe cores on synthetic arrays (no dataset file)."""

from __future__ import annotations

import numpy as np
import pytest

from vlnav_data.errors import CheckpointError, ConfigError, SchemaError
from vlnav_data.knn_index import build_index, load_knn_index, predict_actions, save_knn_index, search
from vlnav_data.probes import labels as lab
from vlnav_data.probes.cosine import cosine_distance, pair_test
from vlnav_data.probes.fitting import classification_probe, regression_probe
from vlnav_data.probes.ridge import group_folds

NAMES = ["x_m", "y_m", "cos_yaw", "sin_yaw", "target_x_m", "target_y_m"]


def _clusters(rng, n_per, n_classes, dim, spread=0.05):
    centres = rng.normal(size=(n_classes, dim))
    labels = np.repeat(np.arange(n_classes), n_per)
    x = centres[labels] + spread * rng.normal(size=(len(labels), dim))
    groups = np.arange(len(labels)) // 10  # "episodes" of 10 rows, each within one class
    return x.astype(np.float32), labels, groups


def test_separable_clusters_give_accuracy_one_and_shuffled_near_chance():
    rng = np.random.default_rng(0)
    x, y, g = _clusters(rng, 60, 10, 16)
    # split by group so no "episode" is in both
    valid = np.isin(g, np.unique(g)[::5])
    score, pred = classification_probe(
        "colour",
        x[~valid],
        y[~valid].astype(str),
        g[~valid],
        x[valid],
        y[valid].astype(str),
        seed=0,
        mlp_max_iter=30,
        n_folds=3,
    )
    assert score.probe == pytest.approx(1.0)
    assert score.mlp == pytest.approx(1.0)
    assert score.chance == pytest.approx(0.1)
    # shuffled labels: each cluster maps to a random class, so accuracy is about chance (0.1)
    assert score.shuffled <= 0.3
    assert score.baseline == pytest.approx(0.1, abs=0.05)
    assert pred.shape == (int(valid.sum()),)


def test_linear_target_recovered_and_shuffled_has_no_r2():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1500, 24))
    w = rng.normal(size=(24, 2))
    y = x @ w + 0.3
    g = np.arange(1500) // 15
    valid = g % 5 == 0
    tr, va = ~valid, valid
    score, pred = regression_probe("action", x[tr], y[tr], g[tr], x[va], y[va], seed=0, mlp_max_iter=None)
    assert score.probe >= 0.99
    assert score.shuffled < 0.05
    assert abs(score.baseline) < 0.05
    assert score.mlp is None
    assert pred.shape == (int(valid.sum()), 2)
    assert len(score.details["r2_per_output"]) == 2


def test_shared_ridge_folds_give_the_fits_of_separate_runs():
    """RidgeFolds reuses the fold eigendecompositions: every target gets exactly the fit it would alone,
    and that fit is the closed-form ridge at the chosen alpha (checked against the normal equations)."""
    from vlnav_data.probes.ridge import RidgeFolds

    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 12)) * rng.uniform(0.5, 3.0, 12)
    g = np.arange(300) // 10
    folds = RidgeFolds(x, g, n_folds=3)
    for y in (x[:, :2] @ rng.normal(size=(2, 2)), rng.normal(size=300), x[:, 3] + 0.1 * rng.normal(size=300)):
        shared, alone = folds.fit(y), RidgeFolds(x, g, n_folds=3).fit(y)
        assert shared.alpha_ == alone.alpha_
        np.testing.assert_array_equal(shared.coef, alone.coef)
        np.testing.assert_array_equal(shared.cv_mse, alone.cv_mse)
        xs = (x - x.mean(0)) / x.std(0)
        y2 = y.reshape(len(y), -1)
        yc = y2 - y2.mean(0)
        expected = np.linalg.solve(xs.T @ xs + shared.alpha_ * np.eye(12), xs.T @ yc)
        np.testing.assert_allclose(shared.coef, expected, rtol=1e-8, atol=1e-10)


def test_shuffled_logistic_control_reuses_the_chosen_c():
    rng = np.random.default_rng(3)
    x, y, g = _clusters(rng, 30, 4, 8)
    valid = np.isin(g, np.unique(g)[::4])
    score, _ = classification_probe(
        "colour", x[~valid], y[~valid], g[~valid], x[valid], y[valid], seed=0, mlp_max_iter=None, n_folds=3
    )
    assert score.details["shuffled_C"] == score.details["C"]


def test_one_class_is_a_config_error():
    x = np.zeros((20, 3))
    with pytest.raises(ConfigError, match="at least 2 classes in the train split"):
        classification_probe("colour", x, np.array(["red"] * 20), np.arange(20), x[:4], np.array(["red"] * 4))


def test_group_folds_never_split_an_episode():
    groups = np.repeat(np.arange(7), 9)
    for tr, te in group_folds(groups, 5):
        assert not set(groups[tr]) & set(groups[te])
    with pytest.raises(ConfigError, match="at least 2 train episodes"):
        group_folds(np.zeros(10, dtype=int), 5)


def test_bearing_and_distance_known_answers():
    # robot at origin facing +x; targets ahead, left, right, behind
    state = np.array(
        [
            [0, 0, 1, 0, 2, 0],
            [0, 0, 1, 0, 0, 1],
            [0, 0, 1, 0, 0, -3],
            [0, 0, 1, 0, -1, 0],
            [1, 1, 0, 1, 1, 3],  # facing +y, target 2 m ahead
            [1, 1, 0, 1, 2, 1],  # facing +y, target to the right
        ],
        dtype=np.float32,
    )
    bearing, dist = lab.robot_frame_target(state, NAMES)
    np.testing.assert_allclose(bearing, [0, np.pi / 2, -np.pi / 2, np.pi, 0, -np.pi / 2], atol=1e-6)
    np.testing.assert_allclose(dist, [2, 1, 3, 1, 2, 1], atol=1e-6)
    np.testing.assert_allclose(lab.angle_from_sincos(lab.bearing_targets(bearing)), bearing, atol=1e-9)
    assert lab.angular_error_deg(np.array([np.pi - 0.01]), np.array([-np.pi + 0.01]))[0] == pytest.approx(
        np.degrees(0.02)
    )


def test_missing_state_column_names_the_columns():
    with pytest.raises(SchemaError, match="lacks the column\\(s\\) target_x_m, target_y_m"):
        lab.robot_frame_target(np.zeros((2, 4)), NAMES[:4])


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("The target is red ball which is to your left. Move toward the ball.", "left"),
        ("The target is blue ball which is to your right. Move towards the ball.", "right"),
        ("The target is pink ball which is straight ahead. Move toward the ball.", "straight ahead"),
        ("The green ball is behind you.", "behind"),
        ("Go to the yellow ball ahead", "ahead"),
        ("Move towards red ball", ""),
        ("Go to the bright ball", ""),
    ],
)
def test_parse_spatial_word(text, word):
    assert lab.parse_spatial_word(text) == word


def test_parse_colour_whole_words():
    assert lab.parse_colour("The target is red ball", ["green", "red"]) == "red"
    assert lab.parse_colour("a reddish ball", ["red"]) == ""


def test_coarse_cell():
    cells = lab.coarse_cell(np.radians([-30, 0, 30, 30]), np.array([0.5, 0.5, 0.5, 2.0]), [-19, 19], [1.0])
    assert cells.tolist() == [0, 2, 4, 5]


def test_cosine_distance_of_identical_and_opposite_vectors():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(50, 64)).astype(np.float32)
    np.testing.assert_allclose(cosine_distance(a, a), 0.0, atol=1e-6)
    np.testing.assert_allclose(cosine_distance(a, 3.0 * a), 0.0, atol=1e-6)
    np.testing.assert_allclose(cosine_distance(a, -a), 2.0, atol=1e-6)
    e = np.eye(3)
    np.testing.assert_allclose(cosine_distance(e, np.roll(e, 1, axis=0)), 1.0)


def test_pair_test_same_cell_closer_when_embedding_encodes_the_cell():
    rng = np.random.default_rng(3)
    n = 600
    cells = rng.integers(0, 4, size=n)
    colours = rng.choice(["red", "blue"], size=n)
    centres = rng.normal(size=(4, 16))
    emb = centres[cells] + 0.3 * rng.normal(size=(n, 16))
    episodes = np.arange(n) // 6
    res, dists = pair_test(emb, colours, cells, episodes, num_pairs=20_000, seed=0)
    assert res.same_cell.mean < res.different_cell.mean
    assert res.gap > 0.3
    assert (
        res.pairs_evaluated
        == res.same_cell.n + res.different_cell.n
        == len(dists["same_cell"]) + len(dists["different_cell"])
    )
    assert set(res.per_colour) == {"red", "blue"}
    # random embeddings: no gap
    res0, _ = pair_test(rng.normal(size=(n, 16)), colours, cells, episodes, num_pairs=20_000, seed=0)
    assert abs(res0.gap) < 0.03


def test_knn_nearest_neighbour_is_itself_and_roundtrips(tmp_path):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(500, 48)).astype(np.float32)
    actions = rng.uniform(-1, 1, size=(500, 2)).astype(np.float32)
    index, kind = build_index(x)
    assert kind == "flat_ip"
    sims, ids = search(index, x, k=3)
    np.testing.assert_array_equal(ids[:, 0], np.arange(500))
    np.testing.assert_allclose(sims[:, 0], 1.0, atol=1e-5)
    assert np.all(np.diff(sims, axis=1) <= 1e-6)
    meta = dict(encoder="e", features="joint", k=3, metric="inner_product", dim=48, num_vectors=500)
    meta.update(index_type=kind, dataset="x.h5")
    save_knn_index(tmp_path, index, actions, meta)
    loaded = load_knn_index(tmp_path)
    assert loaded.meta == meta
    np.testing.assert_array_equal(loaded.actions, actions)
    np.testing.assert_allclose(loaded.predict(x[:10], k=1), actions[:10], atol=1e-6)
    # a scaled copy of a vector still finds it (cosine)
    _, ids2 = loaded.search(5.0 * x[:10])
    np.testing.assert_array_equal(ids2[:, 0], np.arange(10))


def test_knn_ivf_above_threshold_still_finds_itself():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2000, 16)).astype(np.float32)
    index, kind = build_index(x, ivf_threshold=1000, nprobe=45)
    assert kind.startswith("ivf") and kind.endswith("_flat_ip")
    _, ids = search(index, x[:200], k=1)
    assert np.mean(ids[:, 0] == np.arange(200)) >= 0.99


def test_predict_actions_weighting():
    actions = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    ids = np.array([[0, 1], [2, -1]])
    sims = np.array([[0.9, 0.1], [0.5, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(predict_actions(actions, ids, sims), [[0.5, 0.5], [-1, -1]])
    np.testing.assert_allclose(predict_actions(actions, ids, sims, "similarity"), [[0.9, 0.1], [-1, -1]], atol=1e-6)


def test_load_knn_index_errors(tmp_path):
    with pytest.raises(CheckpointError, match="missing knn.faiss, knn_actions.npy, knn_meta.json"):
        load_knn_index(tmp_path)
