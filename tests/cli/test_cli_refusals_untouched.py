"""A refused command changes nothing on disk, and says so in one line (issue 23).

Each case runs one refusal of a main command inside a temporary working directory that holds its
inputs (datasets, a damaged file, a model, a study directory, an unfinished ``OUT.partial``), then
asserts: exit 2, stderr is exactly one ``error: ...`` line, no ``nan`` anywhere in the output, and the
directory tree (names, types, sizes, mtimes, SHA-256 of every file) is identical before and after.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import pytest
from typer.testing import CliRunner

from tests.disk_snapshot import tree
from vlnav_data.cli import data, policy, probe, study
from vlnav_data.dataset.synthetic import write_synthetic_dataset

runner = CliRunner()
APPS = {"vlnav-data": data.app, "vlnav-policy": policy.app, "vlnav-probe": probe.app, "vlnav-study": study.app}

# (id, entry point, arguments, the start of the one stderr line)
CASES = [
    ("build-unknown-encoder", "vlnav-data", "build --out new.h5 --encoder nope --num-episodes 2", "error: "),
    ("build-out-under-missing-dir", "vlnav-data", "build --out nodir/sub/new.h5 --encoder nope", "error: "),
    ("build-over-foreign-partial", "vlnav-data", "build --out taken.h5 --encoder oracle --num-episodes 3", "error: "),
    ("build-out-exists", "vlnav-data", "build --out ds.h5 --encoder oracle --num-episodes 2", "error: "),
    ("embed-unknown-encoder", "vlnav-data", "embed ds.h5 --encoder nope", "error: "),
    ("embed-encoder-present", "vlnav-data", "embed ds.h5 --encoder oracle", "error: "),
    ("embed-missing-file", "vlnav-data", "embed missing.h5 --encoder oracle", "error: "),
    ("embed-damaged-file", "vlnav-data", "embed damaged.h5 --encoder oracle --out emb.h5", "error: 'damaged.h5'"),
    ("merge-not-shards", "vlnav-data", "merge merged.h5 ds.h5 other.h5", "error: "),
    ("merge-text-file", "vlnav-data", "merge merged.h5 notes.txt", "error: "),
    ("validate-text-file", "vlnav-data", "validate notes.txt", "error: "),
    ("validate-missing", "vlnav-data", "validate missing.h5", "error: "),
    ("info-text-file", "vlnav-data", "info notes.txt", "error: "),
    ("info-missing", "vlnav-data", "info missing.h5", "error: "),
    ("probe-linear-unknown-target", "vlnav-probe", "linear ds.h5 --out lin --target nope", "error: --target must"),
    ("probe-linear-unknown-encoder", "vlnav-probe", "linear ds.h5 --out lin --encoder clip", "error: "),
    ("probe-linear-one-train-episode", "vlnav-probe", "linear tiny.h5 --out lin", "error: the linear probe needs"),
    ("probe-linear-one-valid-row", "vlnav-probe", "linear short.h5 --out lin --no-mlp", "error: the linear probe"),
    ("probe-linear-mlp-too-few-rows", "vlnav-probe", "linear short.h5 --out lin", "error: the linear probe"),
    ("probe-knn-one-valid-row", "vlnav-probe", "knn short.h5 --out knn --k 2", "error: the kNN probe scores"),
    ("probe-knn-too-little-data", "vlnav-probe", "knn tiny.h5 --out knn", "error: "),
    ("probe-knn-bad-k", "vlnav-probe", "knn ds.h5 --out knn --k 0", "error: "),
    ("probe-umap-text-file", "vlnav-probe", "umap notes.txt --out map", "error: "),
    ("probe-umap-too-little-data", "vlnav-probe", "umap tiny.h5 --out map", "error: "),
    ("policy-train-unknown-encoder", "vlnav-policy", "train ds.h5 --out pol --encoder clip --steps 5", "error: "),
    ("policy-train-damaged", "vlnav-policy", "train damaged.h5 --out pol --steps 5", "error: "),
    ("policy-eval-no-model", "vlnav-policy", "eval ds.h5 --out ev --num-episodes 2", "error: "),
    ("policy-eval-out-is-model", "vlnav-policy", "eval model --out model --num-episodes 2", "error: "),
    ("study-run-out-holds-study", "vlnav-study", "run ds.h5 --out study --encoder oracle --seeds 1", "error: "),
    ("study-run-unknown-encoder", "vlnav-study", "run ds.h5 --out newstudy --encoder clip --seeds 1", "error: "),
    ("study-run-text-file", "vlnav-study", "run notes.txt --out newstudy --encoder oracle", "error: "),
    ("study-report-no-study", "vlnav-study", "report model", "error: "),
    ("export-damaged", "vlnav-data", "export damaged.h5 --out exp --images png", "error: 'damaged.h5' is damaged ("),
    ("probe-linear-damaged", "vlnav-probe", "linear damaged.h5 --out lin", "error: 'damaged.h5' is damaged ("),
    ("export-bad-format", "vlnav-data", "export ds.h5 --out exp --format parquet", "error: "),
    ("export-unknown-encoder", "vlnav-data", "export ds.h5 --out exp --encoder clip --images png", "error: "),
    ("publish-bad-repo", "vlnav-data", "publish ds.h5 --repo-id nope --out pub --dry-run", "error: "),
    ("publish-damaged", "vlnav-data", "publish damaged.h5 --repo-id me/x --out pub --dry-run", "error: "),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("refusals")
    write_synthetic_dataset(root / "ds.h5", num_episodes=6, encoders={"oracle": 1152})
    write_synthetic_dataset(root / "other.h5", num_episodes=4, encoders={"oracle": 1152}, seed=3)
    write_synthetic_dataset(root / "tiny.h5", num_episodes=2, encoders={"oracle": 1152}, max_steps=3)
    write_synthetic_dataset(root / "short.h5", num_episodes=4, encoders={"oracle": 1152}, max_steps=1)
    shutil.copy(root / "ds.h5", root / "damaged.h5")
    with h5py.File(root / "damaged.h5", "r+") as f:
        del f["data"][sorted(f["data"])[-1]]
    (root / "notes.txt").write_text("not a dataset\n")
    (root / "taken.h5.partial").write_bytes(b"an unfinished file of another build")
    res = runner.invoke(policy.app, ["train", str(root / "ds.h5"), "--out", str(root / "model"), "--steps", "10"])
    assert res.exit_code == 0, res.output
    (root / "study").mkdir()
    (root / "study" / "study.json").write_text('{"format": "vlnav-study"}\n')
    return root


@pytest.mark.parametrize(("prog", "args", "start"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_refused_command_changes_nothing(world, monkeypatch, prog, args, start):
    monkeypatch.chdir(world)
    before = tree(world)
    res = runner.invoke(APPS[prog], args.split())
    assert res.exit_code == 2, (res.exit_code, res.stdout, res.stderr, res.exception)
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(start), res.stderr
    assert "nan" not in (res.stdout + res.stderr).lower().replace("nano", ""), res.output
    assert tree(world) == before
