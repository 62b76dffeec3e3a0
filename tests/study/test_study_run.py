"""A tiny study end to end: oracle vs siglip-tiny-random on colour-only instructions, paired on the same starts."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from vlnav_data.cli.study import app
from vlnav_data.policy import evaluation_seeds
from vlnav_data.policy.records import EpisodeRecords
from vlnav_data.probes import load_probe_data
from vlnav_data.stats import compare_arms, mcnemar_exact

runner = CliRunner()
ENCODERS = ["--encoder", "oracle", "--encoder", "siglip-tiny-random"]
#: Two training seeds, 16 shared starts, 300 BC steps: about 20 s on a quiet 2-core machine.
TINY_STUDY_ARGS = ["--seeds", "2", "--num-episodes", "16", "--steps", "300", "--num-envs", "8", "--device", "cpu"]


@pytest.fixture(scope="module")
def tiny_study(tiny_color_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("study") / "tiny"
    start = time.perf_counter()
    args = ["run", str(tiny_color_dataset), "--out", str(out), *ENCODERS, *TINY_STUDY_ARGS, "--no-probes"]
    res = runner.invoke(app, args)
    wall_s = time.perf_counter() - start
    assert res.exit_code == 0, res.output
    return out, wall_s, res.output


def bc_cells(out):
    return sorted(p for p in (out / "cells").iterdir() if p.name.startswith("bc__"))


def test_tiny_study_ranks_the_oracle_first_but_two_runs_prove_nothing(tiny_study):
    out, wall_s, output = tiny_study
    result = json.loads((out / "result.json").read_text())
    analysis = result["analysis"]
    assert analysis["ranking"] == ["oracle", "siglip-tiny-random"]
    (cmp,) = analysis["comparisons"]
    assert (cmp["a"], cmp["b"]) == ("oracle", "siglip-tiny-random")
    # 2 runs per arm: Welch's t has about one degree of freedom, so even +80 points is no verdict about
    # encoders; the pooled table about these four trained policies is overwhelming, and only labelled.
    assert cmp["method"] == "welch-t over runs" and cmp["p_holm"] > 0.05
    assert (cmp["significant"], cmp["verdict"]) == (False, "no")
    assert cmp["conditional"]["p_mcnemar"] < 1e-4
    assert (cmp["num_runs_a"], cmp["num_runs_b"], cmp["num_starts"]) == (2, 2, 16)
    assert cmp["conditional"]["num_pairs"] == 2 * 16 and cmp["conditional"]["train_seeds"] == [0, 1]
    assert "ranking by pooled success: oracle > siglip-tiny-random" in output
    assert result["progress"] == {**result["progress"], "finished": 4, "total": 4, "complete": True}
    assert wall_s < 300  # about 20 s on a quiet 2-core machine; generous for a shared one


def test_every_cell_uses_the_same_evaluation_starts(tiny_study):
    out, _, _ = tiny_study
    expected = evaluation_seeds(0, 16)
    cells = bc_cells(out)
    assert len(cells) == 4
    firsts = []
    for cell in cells:
        for name in ("episodes.npz", "expert_episodes.npz"):
            rec = EpisodeRecords.load(cell / "eval" / name)
            np.testing.assert_array_equal(rec.episode_seed, expected)
            start = rec.poses[rec.offsets[:-1] + np.arange(len(rec))]
            firsts.append((rec.target_index, start))
    for targets, poses in firsts[1:]:
        np.testing.assert_array_equal(targets, firsts[0][0])
        np.testing.assert_array_equal(poses, firsts[0][1])
    study = json.loads((out / "study.json").read_text())
    assert study["evaluation_seeds"] == expected.tolist()


def test_statistics_are_recomputed_from_the_episode_arrays(tiny_study):
    out, _, _ = tiny_study
    result = json.loads((out / "result.json").read_text())
    arms = {a["encoder"]: a for a in result["analysis"]["arms"]}

    def load(encoder, seed):
        cell = out / "cells" / f"bc__tiny_color__{encoder}__joint__paper__seed{seed}"
        return EpisodeRecords.load(cell / "eval" / "episodes.npz")

    success = {e: np.concatenate([load(e, s).success for s in (0, 1)]) for e in arms}
    for encoder, arm in arms.items():
        assert arm["success"]["successes"] == int(success[encoder].sum())
        assert arm["success"]["trials"] == 32
        per_seed = [float(load(encoder, s).success.mean()) for s in (0, 1)]
        assert arm["per_seed_success_rate"] == pytest.approx(per_seed)
        assert arm["across_seeds"]["mean"] == pytest.approx(np.mean(per_seed))
        steps = np.concatenate([load(encoder, s).num_steps for s in (0, 1)])
        if success[encoder].any():
            assert arm["mean_env_steps_successes"] == pytest.approx(steps[success[encoder]].mean())
        assert sum(arm["termination_causes"].values()) == 32
    a, b = success["oracle"], success["siglip-tiny-random"]
    (cmp,) = result["analysis"]["comparisons"]
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    cond = cmp["conditional"]  # about these trained policies: kept, labelled, not the verdict
    assert (cond["table"]["a_only"], cond["table"]["b_only"]) == (only_a, only_b)
    assert cond["p_mcnemar"] == pytest.approx(mcnemar_exact(only_a, only_b))
    # The verdict: compare_arms on the (runs, starts) arrays of the cells.
    runs = {e: np.stack([load(e, s).success for s in (0, 1)]) for e in arms}
    ref = compare_arms(runs["oracle"], runs["siglip-tiny-random"], alpha=0.05, rng=0)
    assert cmp["difference"] == pytest.approx(a.mean() - b.mean()) == pytest.approx(ref.difference)
    assert (cmp["p_value"], cmp["method"]) == (pytest.approx(ref.p_value), ref.method)
    assert (cmp["difference_low"], cmp["difference_high"]) == (pytest.approx(ref.low), pytest.approx(ref.high))
    assert cmp["probability_of_improvement"] == pytest.approx(ref.probability_of_improvement)
    assert cmp["run_success_a"] == pytest.approx(runs["oracle"].mean(1).tolist())
    assert cmp["p_holm"] == pytest.approx(ref.p_value)  # one pair: Holm changes nothing


def test_report_and_figures(tiny_study):
    out, _, _ = tiny_study
    report = (out / "report.md").read_text()
    assert "| policy | success (pooled) | 95% CI of these runs (Wilson) |" in report
    assert "env steps" in report and "paired ratio to expert" in report
    assert "No difference is significant at 0.05 after Holm's correction over 1 pair." in report
    assert "Not significant (these runs cannot tell them apart; more runs might): `oracle` vs" in report
    assert "| `oracle` | `siglip-tiny-random` | 0, 1 | " in report  # the conditional table, under its label
    assert "### Conditional on these trained policies and these starts (not a verdict about encoders)" in report
    for name in ("success_by_seed.png", "termination_causes.png"):
        data = (out / "figures" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
        assert f"figures/{name}" in report
    assert not (out / "figures" / "probe_scores.png").exists()  # --no-probes


def test_rerun_needs_resume_and_resume_recomputes_nothing(tiny_study, tiny_color_dataset):
    out, _, _ = tiny_study
    args = ["run", str(tiny_color_dataset), "--out", str(out), *ENCODERS, *TINY_STUDY_ARGS, "--no-probes"]
    res = runner.invoke(app, args)
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [
        f"error: '{out}' is not empty and holds a study; pass --resume to finish it (finished cells are kept), "
        "--overwrite to start over, or choose a new --out"
    ]
    before = {p: p.stat().st_mtime_ns for c in bc_cells(out) for p in (c / "cell.json", c / "model" / "model.pt")}
    res = runner.invoke(app, [*args, "--resume"])
    assert res.exit_code == 0, res.output
    assert res.output.count("kept (finished earlier)") == 4
    assert "4 cells (0 computed, 4 kept)" in res.output
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_resume_with_other_settings_is_refused_before_any_work(tiny_study, tiny_color_dataset):
    out, _, _ = tiny_study
    args = [*TINY_STUDY_ARGS]
    args[args.index("--steps") + 1] = "301"
    res = runner.invoke(
        app, ["run", str(tiny_color_dataset), "--out", str(out), *ENCODERS, *args, "--no-probes", "--resume"]
    )
    assert res.exit_code == 2
    (line,) = res.output.strip().splitlines()
    assert line.startswith(
        "error: finished cell 'bc__tiny_color__oracle__joint__paper__seed0' was computed with other settings "
        "(num_steps: 300 -> 301)"
    )


def test_report_command_rewrites_from_the_cells(tiny_study):
    out, _, _ = tiny_study
    (out / "report.md").unlink()
    res = runner.invoke(app, ["report", str(out)])
    assert res.exit_code == 0, res.output
    assert "4 of 4 cells finished" in res.output and (out / "report.md").is_file()


def test_two_processes_give_the_same_cells_as_one(tiny_study, tiny_color_dataset, tmp_path):
    """Executors are interchangeable: --jobs 2 reproduces the in-process cells episode for episode."""
    out, _, _ = tiny_study
    other = tmp_path / "jobs2"
    res = runner.invoke(
        app,
        ["run", str(tiny_color_dataset), "--out", str(other), "--encoder", "siglip-tiny-random",
         *TINY_STUDY_ARGS, "--no-probes", "--jobs", "2"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    for seed in (0, 1):
        name = f"bc__tiny_color__siglip-tiny-random__joint__paper__seed{seed}"
        a = EpisodeRecords.load(out / "cells" / name / "eval" / "episodes.npz")
        b = EpisodeRecords.load(other / "cells" / name / "eval" / "episodes.npz")
        np.testing.assert_array_equal(a.success, b.success)
        np.testing.assert_array_equal(a.num_steps, b.num_steps)
        np.testing.assert_array_equal(a.actions, b.actions)


def test_ray_tasks_give_the_same_cells_as_one_process(tiny_study, tiny_color_dataset, local_ray_cluster, tmp_path):
    """--ray runs one task per cell on a local cluster (two one-CPU nodes, 127.0.0.1): the cells equal the
    in-process ones episode for episode, and --resume on Ray runs only the cell without a marker."""
    out, _, _ = tiny_study
    other = tmp_path / "ray"
    args = ["run", str(tiny_color_dataset), "--out", str(other), "--encoder", "siglip-tiny-random",
            *TINY_STUDY_ARGS, "--no-probes", "--ray", local_ray_cluster.address]  # fmt: skip
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    names = [f"bc__tiny_color__siglip-tiny-random__joint__paper__seed{seed}" for seed in (0, 1)]

    def assert_same_cells():
        for name in names:
            for records in ("episodes.npz", "expert_episodes.npz"):
                a = EpisodeRecords.load(out / "cells" / name / "eval" / records)
                b = EpisodeRecords.load(other / "cells" / name / "eval" / records)
                np.testing.assert_array_equal(a.success, b.success)
                np.testing.assert_array_equal(a.num_steps, b.num_steps)
                np.testing.assert_array_equal(a.actions, b.actions)

    assert_same_cells()
    study = json.loads((other / "study.json").read_text())
    assert study["config"]["executor"] == "ray" and f"--ray {local_ray_cluster.address}" in study["command"]
    # A cell interrupted on a lost node has no marker: --resume on Ray computes it alone, keeps the other.
    (other / "cells" / names[1] / "cell.json").unlink()
    kept = (other / "cells" / names[0] / "cell.json").stat().st_mtime_ns
    res = runner.invoke(app, [*args, "--resume"])
    assert res.exit_code == 0, res.output
    assert "2 cells (1 computed, 1 kept)" in res.output
    assert (other / "cells" / names[0] / "cell.json").stat().st_mtime_ns == kept
    assert_same_cells()


def test_probe_cells_put_scores_side_by_side(tiny_color_dataset, tmp_path):
    out = tmp_path / "probes"
    res = runner.invoke(
        app,
        ["run", str(tiny_color_dataset), "--out", str(out), "--encoder", "siglip-tiny-random", "--features", "text",
         "--seeds", "1", "--num-episodes", "4", "--steps", "50", "--device", "cpu"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    cell = out / "cells" / "probe__tiny_color__siglip-tiny-random__text"
    scores = json.loads((cell / "probe_scores.json").read_text())
    assert {"action", "bearing", "colour"} <= set(scores["linear"])
    assert "spatial_word" in scores["linear_skipped"]  # colour-only instructions state no direction
    # The text feature of a colour-only instruction is one fixed vector per colour: the linear probe names
    # every colour it saw in training and none other, so its accuracy is the share of valid rows whose
    # colour occurs in the train split.
    data = load_probe_data(tiny_color_dataset, features="text", encoder="siglip-tiny-random")
    seen = np.isin(data.valid.target_colour, np.unique(data.train.target_colour)).mean()
    assert scores["linear"]["colour"]["probe"] == pytest.approx(seen, abs=1e-12)
    assert scores["knn"]["k"] == 8 and scores["knn"]["num_vectors"] == len(data.train)
    result = json.loads((out / "result.json").read_text())
    (probe,) = result["analysis"]["probes"]
    assert (probe["encoder"], probe["features"]) == ("siglip-tiny-random", "text")
    assert probe["linear"]["colour"]["probe"] == pytest.approx(seen, abs=1e-12)
    report = (out / "report.md").read_text()
    assert "## Probes side by side" in report and "| tiny_color | `siglip-tiny-random` | text |" in report
    assert (out / "figures" / "probe_scores.png").is_file()
