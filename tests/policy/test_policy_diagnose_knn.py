"""diagnose on a real evaluation; the kNN policy from index files; kNN/model mismatch errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vlnav_data.errors import CheckpointError
from vlnav_data.policy.diagnose import DiagnoseConfig, diagnose_eval
from vlnav_data.policy.evaluate import EvalConfig, evaluate_policy
from vlnav_data.policy.knn import KnnPolicy, load_knn_policy
from vlnav_data.policy.records import EpisodeRecords


@pytest.fixture(scope="module")
def eval_dir(oracle_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("policy_eval") / "eval"
    evaluate_policy(EvalConfig(model_dir=oracle_model_dir, out_dir=out, num_episodes=6, num_envs=3, seed=3))
    return out


def test_diagnose_labels_every_episode_and_writes_the_report(eval_dir):
    res = diagnose_eval(DiagnoseConfig(eval_dir=eval_dir, num_gifs=1, max_gif_frames=8))
    rec = EpisodeRecords.load(eval_dir / "episodes.npz")
    counts = res.student["classes"]
    assert sum(counts.values()) == len(rec) == 6
    assert counts["success"] == int(rec.success.sum())
    # Every failure is either a wrong sphere or the simulator's own cause.
    causes = {str(c) for c, ok in zip(rec.termination, rec.success, strict=True) if not ok}
    assert {k for k, v in counts.items() if v and k not in ("success", "wrong_target")} <= causes
    assert res.expert["classes"]["success"] == 6
    out = eval_dir / "diagnosis"
    report = (out / "report.md").read_text()
    assert "| class | student | expert |" in report and "back-and-forth" in report
    assert any(f.endswith(".gif") for f in res.files)
    for name in res.files:
        assert (out / name).stat().st_size > 0
    rows = (out / "episodes.csv").read_text().splitlines()
    assert len(rows) == 7


def test_gifs_show_the_frame_enlarged_with_step_action_and_instruction(eval_dir, tmp_path):
    from PIL import Image

    from vlnav_data.policy.diagnose import GIF_CAPTION_LINES, GIF_MIN_SIZE_PX, gif_captions

    res = diagnose_eval(DiagnoseConfig(eval_dir=eval_dir, out_dir=tmp_path / "d", num_gifs=1, max_gif_frames=8))
    gif = next(f for f in res.files if f.endswith(".gif"))
    i = int(gif.split("_")[1])
    rec = EpisodeRecords.load(eval_dir / "episodes.npz")
    meta = json.loads((eval_dir / "eval_meta.json").read_text())["sim_config"]
    h, w = meta["image_height_px"], meta["image_width_px"]
    scale = -(-GIF_MIN_SIZE_PX // min(h, w))
    n = int(rec.num_steps[i])
    stride = int(np.ceil((n + 1) / 8))
    steps = sorted(set(range(0, n + 1, stride)) | {n})
    with Image.open(tmp_path / "d" / gif) as im:
        assert im.n_frames == len(steps)
        assert im.size == (w * scale, h * scale + GIF_CAPTION_LINES * 16 + 4)
        bands = []
        for k in range(im.n_frames):
            im.seek(k)
            rgb = np.asarray(im.convert("RGB"))
            bands.append(rgb[h * scale :])
            assert (rgb[h * scale :] < 100).any()  # text drawn in the caption band
        assert not np.array_equal(bands[0], bands[1])  # the step (and action) change between frames
    captions = gif_captions(rec, i, np.asarray(steps), width_chars=200)
    left, right = rec.actions[rec.offsets[i]]
    assert captions[0][0] == f"step 0/{n}  action L {left:+.2f} R {right:+.2f}"
    assert captions[0][1] == f'"{rec.instructions[rec.offsets[i]]}"'
    assert captions[-1][0] == f"step {n}/{n}  end: {rec.termination[i]}"


def write_index(directory, dim, encoder="oracle", features="joint", n=50, seed=0, action=None):
    import faiss

    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    index = faiss.IndexFlatIP(dim)
    index.add(vecs)
    directory.mkdir(parents=True, exist_ok=True)
    faiss.write_index(index, str(directory / "knn.faiss"))
    actions = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    if action is not None:  # every indexed row labelled with the same action
        actions[:] = action
    np.save(directory / "knn_actions.npy", actions)
    meta = {
        "encoder": encoder,
        "features": features,
        "k": 3,
        "metric": "inner_product",
        "dim": dim,
        "num_vectors": n,
        "index_type": "Flat",
        "dataset": "x.h5",
        "l2_normalized": True,
    }
    (directory / "knn_meta.json").write_text(json.dumps(meta))
    return vecs, actions


def test_knn_policy_is_the_mean_action_of_the_k_nearest(tmp_path):
    vecs, actions = write_index(tmp_path / "idx", dim=8)
    knn = load_knn_policy(tmp_path / "idx")
    query = vecs[[4, 9]] * 3.0  # scaled: normalised before the search
    got = knn(query)
    sims = vecs[[4, 9]] @ vecs.T
    nearest = np.argsort(-sims, axis=1)[:, :3]
    np.testing.assert_allclose(got, actions[nearest].mean(axis=1), rtol=1e-6)


class _IndexWithHoles:
    """A FAISS-like index whose search returns -1 ids (what an IVF index does when nprobe finds too few)."""

    def __init__(self, ids, sims, dim):
        self.ids, self.sims, self.d, self.ntotal = np.asarray(ids), np.asarray(sims, np.float32), dim, 5

    def search(self, q, k):
        return self.sims[: len(q), :k], self.ids[: len(q), :k]


@pytest.mark.parametrize("weighting", ["uniform", "similarity"])
def test_knn_policy_averages_the_actions_of_the_nearest_indexed_rows(tmp_path, weighting):
    from vlnav_data.knn_index import KnnIndex

    vecs, actions = write_index(tmp_path / "idx", dim=8)
    meta_path = tmp_path / "idx" / "knn_meta.json"
    meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), "weighting": weighting}))
    policy = load_knn_policy(tmp_path / "idx")
    queries = np.random.default_rng(1).normal(size=(6, 8)).astype(np.float32)
    # The answer computed here by brute force, not by the index: cosine similarity to every indexed row,
    # the 3 most similar, their actions averaged (uniformly, or weighted by the similarity).
    sims = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float64) @ vecs.T.astype(np.float64)
    top = np.argsort(-sims, axis=1)[:, :3]
    weights = np.take_along_axis(sims, top, axis=1) if weighting == "similarity" else np.ones(top.shape)
    assert (weights > 0).all()  # (clipping at 0 is not exercised by these queries)
    expected = np.einsum("qk,qka->qa", weights, actions[top].astype(np.float64)) / weights.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(policy(queries), expected, rtol=0, atol=1e-5)
    # Missing neighbours (-1) are ignored by both, never read as actions[-1].
    holes = KnnIndex(
        index=_IndexWithHoles([[0, -1, -1]], [[0.9, -3.4e38, -3.4e38]], 8), actions=np.eye(5, 2), meta={"k": 3}
    )
    got = KnnPolicy(index=holes, k=3, weighting=weighting)(queries[:1])
    np.testing.assert_array_equal(got, [[1.0, 0.0]])


def test_knn_eval_drives_with_the_index_actions_and_mismatched_index_is_refused(oracle_model_dir, tmp_path):
    # Every indexed row says "left wheel forward, right wheel back": whatever the neighbours, the kNN policy
    # spins the robot clockwise on the spot until the time limit (150 steps in this model's arena).
    write_index(tmp_path / "good", dim=1152, action=(1.0, -1.0))
    res = evaluate_policy(
        EvalConfig(
            model_dir=oracle_model_dir,
            out_dir=tmp_path / "e",
            num_episodes=2,
            num_envs=2,
            policy="knn",
            index_dir=tmp_path / "good",
            expert="none",
        )
    )
    assert res.policy == "knn" and res.expert is None and res.paired_step_ratio is None
    meta = json.loads((tmp_path / "e" / "eval_meta.json").read_text())  # what the index was, for the record
    assert (meta["knn_index"], meta["knn_k"]) == (str(tmp_path / "good"), res.knn_k)
    assert res.knn_k == json.loads((tmp_path / "good" / "knn_meta.json").read_text())["k"]
    assert meta["expert_checkpoint"] is None
    assert res.student.success["successes"] == 0 and res.student.termination_causes == {"time_limit": 2}
    rec = EpisodeRecords.load(tmp_path / "e" / "episodes.npz")
    np.testing.assert_array_equal(rec.num_steps, [150, 150])
    np.testing.assert_array_equal(rec.actions, np.tile([1.0, -1.0], (len(rec.actions), 1)))
    for i in range(2):
        poses = rec.poses_of(i)
        np.testing.assert_allclose(poses[:, :2], np.broadcast_to(poses[0, :2], poses[:, :2].shape), atol=1e-5)
        turn = np.angle(np.exp(1j * np.diff(poses[:, 2])))
        assert (turn < 0).all()  # clockwise every step
    write_index(tmp_path / "bad", dim=1152, encoder="siglip")
    with pytest.raises(CheckpointError) as exc:
        evaluate_policy(
            EvalConfig(model_dir=oracle_model_dir, out_dir=tmp_path / "e2", policy="knn", index_dir=tmp_path / "bad")
        )
    assert str(exc.value) == (
        f"kNN index '{tmp_path / 'bad'}' holds 'siglip' joint features, but model '{oracle_model_dir}' uses "
        "'oracle' joint; build the index with `vlnav-probe knn FILE --encoder oracle`"
    )
    with pytest.raises(CheckpointError, match="missing knn_actions.npy"):
        (tmp_path / "bad" / "knn_actions.npy").unlink()
        load_knn_policy(tmp_path / "bad")
