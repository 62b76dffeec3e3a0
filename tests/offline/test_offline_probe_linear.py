"""`vlnav-probe linear` on a file without an arena: the targets it has, scored against the known answer."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.offline.conftest import (
    ACTION_NAMES,
    PROGRESS_NOISE,
    STATE_NAMES,
    TASKS,
    best_r2,
    rows_of,
)
from vlnav_data.cli import probe
from vlnav_data.dataset import DatasetReader
from vlnav_data.probes.linear import IMPORTED_TARGETS, LinearProbeConfig, run_linear_probe

runner = CliRunner()


@pytest.fixture(scope="module")
def image_probe(imported, tmp_path_factory):
    path, truth = imported
    out = tmp_path_factory.mktemp("lin")
    res = runner.invoke(probe.app, ["linear", str(path), "--out", str(out / "p"), "--features", "image"])
    assert res.exit_code == 0, res.output
    return json.loads((out / "p" / "result.json").read_text()), res.stdout, truth, path


def valid_rows(path, key):
    with DatasetReader(path) as r:
        return r.stack([key], split="valid")[key].astype(np.float64)


def test_default_targets_are_what_the_file_has(image_probe):
    result, stdout, _, _ = image_probe
    assert [s["target"] for s in result["scores"]] == list(IMPORTED_TARGETS)
    assert result["skipped"] == {}
    for name in (*ACTION_NAMES, *STATE_NAMES):
        assert f"[{name}]" in stdout


def test_action_r2_per_dimension_matches_the_generating_function(image_probe):
    result, _, truth, path = image_probe
    action = next(s for s in result["scores"] if s["target"] == "action")
    expected = best_r2(valid_rows(path, "actions"), rows_of(truth.action_noise, "valid", truth))
    assert action["details"]["output_names"] == list(ACTION_NAMES)
    got = np.array(action["details"]["r2_per_output"])
    assert np.all(np.abs(got - expected) < 0.05), (got, expected)
    assert expected[0] > 0.9 and expected[2] < 0.8  # the three dimensions really differ
    # controls: shuffled labels and the train mean explain nothing
    assert max(action["details"]["shuffled_r2_per_output"]) < 0.1
    assert max(action["details"]["baseline_r2_per_output"]) <= 0.0
    assert action["shuffled"] < 0.1 and action["baseline"] <= 0.0


def test_state_readable_and_unreadable_columns(image_probe):
    result, _, truth, path = image_probe
    state = next(s for s in result["scores"] if s["target"] == "state")
    y = valid_rows(path, "obs/state")
    expected0 = best_r2(y[:, 0], rows_of(truth.state_noise, "valid", truth))[0]
    readable, noise = state["details"]["r2_per_output"]
    assert abs(readable - expected0) < 0.05, (readable, expected0)
    assert noise < 0.05  # column 1 is independent noise
    assert state["details"]["output_names"] == list(STATE_NAMES)


def test_progress_r2_matches(image_probe):
    result, _, truth, path = image_probe
    progress = next(s for s in result["scores"] if s["target"] == "progress")
    noise = rows_of(truth.progress_noise, "valid", truth)
    with DatasetReader(path) as r:
        steps = r.stack(["actions"], split="valid")
    _, inverse, counts = np.unique(steps["episode_index"], return_inverse=True, return_counts=True)
    p = steps["step_index"] / (counts[inverse] - 1)
    # the embedding column is p + noise: the best linear read-out of p has R² = var(p) / (var(p) + sigma²)
    expected = np.var(p) / (np.var(p) + PROGRESS_NOISE**2)
    assert abs(progress["probe"] - expected) < 0.03, (progress["probe"], expected)
    assert abs(np.std(noise) - PROGRESS_NOISE) < 0.01
    assert progress["shuffled"] < 0.1


def test_task_is_in_text_not_in_image(imported, image_probe, tmp_path):
    result, _, truth, path = image_probe
    task_image = next(s for s in result["scores"] if s["target"] == "task")
    assert task_image["metric"] == "accuracy" and sorted(task_image["details"]["classes"]) == sorted(TASKS)
    assert task_image["probe"] <= task_image["baseline"] + 0.1  # the image columns carry no task
    text = run_linear_probe(
        LinearProbeConfig(path=path, out_dir=tmp_path / "t", features="text", targets=("task",), mlp=False)
    )
    (score,) = text.scores
    assert score.probe == 1.0 and score.shuffled < 0.8


def test_arena_target_on_imported_file_is_refused(imported, tmp_path):
    path, _ = imported
    for target, start in (("colour", "error: cannot probe colour"), ("bearing", "error: cannot probe bearing")):
        res = runner.invoke(probe.app, ["linear", str(path), "--out", str(tmp_path / target), "--target", target])
        assert res.exit_code == 2
        assert res.stderr.startswith(start) and "imported from lerobot and has no arena" in res.stderr, res.stderr
        assert len(res.stderr.splitlines()) == 1
        assert not (tmp_path / target).exists()


def test_task_unseen_in_train_is_left_out_of_the_score(tmp_path):
    """A valid episode whose task no train episode has cannot be named by a classifier: counted, not scored."""
    import h5py

    from tests.offline.conftest import write_imported_file

    path = tmp_path / "unseen.h5"
    truth = write_imported_file(path, num_episodes=16)
    valid = [i for i, s in truth.splits.items() if s == "valid"]
    with h5py.File(path, "r+") as f:
        table = [t.decode() if isinstance(t, bytes) else t for t in f["meta/instructions"][()]]
        del f["meta/instructions"]
        f.create_dataset("meta/instructions", data=np.array([*table, "a task only one valid episode has"], dtype="S"))
        f[f"data/demo_{valid[0]}/instruction_index"][...] = len(table)
        text = f["meta/text_embeddings/toy"][()]
        del f["meta/text_embeddings/toy"]
        f["meta/text_embeddings/toy"] = np.concatenate([text, text[:1]])
        steps = int(f[f"data/demo_{valid[0]}"].attrs["num_samples"])
    result = run_linear_probe(
        LinearProbeConfig(path=path, out_dir=tmp_path / "p", features="text", targets=("task",), mlp=False)
    )
    (score,) = result.scores
    assert score.details["valid_rows_unseen_task"] == steps
    assert score.num_valid == result.num_valid - steps and score.probe == 1.0
    assert "left out of its score" in (tmp_path / "p" / "report.md").read_text()
