"""`vlnav-policy diagnose EVAL_DIR --rerun`: failure markers, student and expert actions, kNN neighbours."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from vlnav_data.cli import policy
from vlnav_data.policy.behaviour import BehaviourThresholds
from vlnav_data.policy.diagnose import diagnose_records
from vlnav_data.policy.records import EpisodeRecords

pytest.importorskip("rerun", reason="the viz extra (rerun-sdk) is not installed")

runner = CliRunner()


def _values(table: dict, column: str) -> list:
    return [v for v in table[column] if v is not None]


@pytest.fixture(scope="module")
def recorded(knn_eval, tmp_path_factory, read_rrd):
    out = tmp_path_factory.mktemp("diag") / "failures.rrd"
    args = ["diagnose", str(knn_eval["eval"]), "--rerun", str(out), "--index", str(knn_eval["index"])]
    res = runner.invoke(policy.app, [*args, "--num-gifs", "0", "--out", str(out.parent / "diagnosis")])
    assert res.exit_code == 0, res.output
    result = json.loads((out.parent / "failures.rrd.result.json").read_text())
    return read_rrd(out), result


def test_failure_markers_are_diagnoses_classes_at_the_deciding_step(knn_eval, recorded):
    rrd, result = recorded
    student = EpisodeRecords.load(knn_eval["eval"] / "episodes.npz")
    labels = [d.label for d in diagnose_records(student, BehaviourThresholds())]
    failed = [i for i, label in enumerate(labels) if label != "success"]
    assert failed and result["episodes"] == failed and result["labels"] == [labels[i] for i in failed]
    marks = rrd["/events/failure"]
    assert [t[0] for t in marks["TextLog:text"]] == [labels[i] for i in failed]
    assert marks["episode"] == failed
    # no wrong sphere here, so each class is the simulator's cause, decided by the episode's last step
    assert all(labels[i] != "wrong_target" for i in failed)
    assert marks["episode_step"] == [int(student.num_steps[i]) - 1 for i in failed]


def test_student_actions_and_the_expert_queried_on_the_students_states(knn_eval, recorded):
    rrd, result = recorded
    student = EpisodeRecords.load(knn_eval["eval"] / "episodes.npz")
    expert = EpisodeRecords.load(knn_eval["eval"] / "expert_episodes.npz")
    eps = result["episodes"]
    assert result["expert"] == "pursuit"
    for w, wheel in enumerate(("left_wheel", "right_wheel")):
        got = [v[0] for v in _values(rrd[f"/actions/student/{wheel}"], "Scalars:scalars")]
        assert got == np.concatenate([student.actions_of(i)[:, w] for i in eps]).astype(np.float64).tolist()
        queried = [v[0] for v in _values(rrd[f"/actions/expert/{wheel}"], "Scalars:scalars")]
        assert len(queried) == sum(int(student.num_steps[i]) for i in eps)
        # step 0: the student stands where the expert started, so the expert's answer is its own first action
        firsts = np.cumsum([0] + [int(student.num_steps[i]) for i in eps])[:-1]
        np.testing.assert_allclose(np.array(queried)[firsts], [expert.actions_of(i)[0, w] for i in eps], atol=1e-5)
    steps = rrd["/student/camera"]["episode_step"]
    assert steps == [t for i in eps for t in range(int(student.num_steps[i]))]
    trail = rrd["/map/expert/trail"]["LineStrips2D:strips"]
    assert len(trail) == len(steps)  # the expert's trajectory from the same start, step by step


def test_knn_neighbours_are_the_indices_knn_index_returns(knn_eval, recorded, demos):
    from vlnav_data.dataset import DatasetReader
    from vlnav_data.encoders import rebuild_encoder
    from vlnav_data.knn_index import load_knn_index
    from vlnav_data.policy.features import online_features
    from vlnav_data.policy.model_dir import read_policy_spec
    from vlnav_data.sim import arena_config_from_json, render_views

    rrd, result = recorded
    student = EpisodeRecords.load(knn_eval["eval"] / "episodes.npz")
    arena = arena_config_from_json(json.loads((knn_eval["eval"] / "eval_meta.json").read_text())["sim_config"])
    spec = read_policy_spec(knn_eval["model"])
    encoder = rebuild_encoder({"name": spec.encoder, **spec.encoder_spec})
    index = load_knn_index(knn_eval["index"])
    assert result["knn_k"] == index.meta["k"] == 3
    want = []
    for i in result["episodes"]:
        n = int(student.num_steps[i])
        frames = render_views(
            arena,
            student.poses_of(i)[:n].astype(np.float64),
            sphere_positions_xy_m=student.sphere_xy_m[i],
            sphere_color_indices=student.sphere_color_indices[i],
            floor_rgb=student.floor_rgb[i],
            light_position_m=student.light_position_m[i],
        )
        feats = online_features(encoder, spec.features, frames, None, list(student.instructions_of(i)))
        want.append(index.search(feats)[1])
    want = np.concatenate(want)
    with DatasetReader(demos) as r:
        rows = r.stack([], split="train")
        demo_of = [f"demo_{e}" for e in rows["episode_index"]]
    for j in range(3):
        table = rrd[f"/knn/neighbour_{j}"]
        got = [v[0] for v in table["row"]]
        assert got == want[:, j].tolist()
        assert [v[0] for v in table["demo"]] == [demo_of[g] for g in got]
        assert [v[0] for v in table["step"]] == [int(rows["step_index"][g]) for g in got]
        assert all(m == ["image/jpeg"] for m in table["EncodedImage:media_type"])


def test_decided_at_is_the_first_step_inside_a_wrong_spheres_disc():
    from vlnav_data.sim import get_preset
    from vlnav_data.viz.eval_recording import decided_at

    arena = get_preset("text2nav")
    spheres = np.array(arena.sphere_positions_xy_m, np.float32)  # red ahead at y=0, green at y=+0.5
    xs = np.linspace(0.5, 2.4, 40)
    poses = np.stack([xs, np.full_like(xs, 0.5), np.zeros_like(xs)], axis=1).astype(np.float32)  # towards green
    rec = EpisodeRecords(
        episode_seed=np.array([1]), target_index=np.array([0]), success=np.array([False]),
        termination=np.array(["out_of_bounds_front"]), num_steps=np.array([39]), offsets=np.array([0, 39]),
        poses=poses, actions=np.zeros((39, 2), np.float32), instructions=np.array(["x"] * 39),
        sphere_xy_m=spheres[None], sphere_color_indices=np.array([[0, 1, 2, 3, 4]]),
        floor_rgb=np.zeros((1, 3), np.float32), light_position_m=np.zeros((1, 3), np.float32),
        wrong_sphere=np.array([True]),
    )  # fmt: skip
    first_inside = int(np.flatnonzero(np.abs(2.5 - xs) < arena.success_radius_xy_m)[0])  # pose index
    assert decided_at(rec, 0, "wrong_target", arena) == first_inside - 1  # the step that moved it there
    assert decided_at(rec, 0, "out_of_bounds_front", arena) == 38


def test_a_knn_evaluation_without_its_index_is_refused_and_nothing_written(knn_eval, tmp_path):
    before = sorted(p.name for p in knn_eval["eval"].iterdir())
    out = tmp_path / "d"
    res = runner.invoke(
        policy.app, ["diagnose", str(knn_eval["eval"]), "--rerun", str(tmp_path / "f.rrd"), "--out", str(out)]
    )
    assert res.exit_code == 2 and res.stderr.startswith("error: ") and "pass --index DIR" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir()) and sorted(p.name for p in knn_eval["eval"].iterdir()) == before
    res = runner.invoke(
        policy.app,
        ["diagnose", str(knn_eval["eval"]), "--rerun", str(tmp_path / "f.rrd"), "--index", str(knn_eval["index"]),
         "--episodes", "7", "--out", str(out)],
    )  # fmt: skip
    assert res.exit_code == 2 and "episode 7 is out of range" in res.stderr and not list(tmp_path.iterdir())
