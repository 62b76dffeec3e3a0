"""Arena-only tools refuse a file without an arena (or a model or evaluation of one) with one line, exit 2,
and change nothing on disk (the pattern of tests/cli/test_cli_refusals_untouched.py)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tests.disk_snapshot import tree
from tests.offline.conftest import write_imported_file
from vlnav_data.cli import data, policy, probe, study

runner = CliRunner()
APPS = {"vlnav-data": data.app, "vlnav-policy": policy.app, "vlnav-probe": probe.app, "vlnav-study": study.app}
FILE = "error: 'imported.h5' was imported from lerobot and has no arena; "
MODEL = "error: the training file '{root}/imported.h5' of 'model' was imported from lerobot and has no arena; "
OFFLINE = (
    "error: the training file '{root}/imported.h5' of the offline evaluation 'offline' was imported from lerobot "
    "and has no arena; "
)

# (id, entry point, arguments, the start of the one stderr line)
CASES = [
    ("spatial", "vlnav-probe", "spatial imported.h5 --out sp", FILE + "the spatial probe needs the simulator ("),
    ("eval", "vlnav-policy", "eval model --out ev", MODEL + "closed-loop evaluation needs the simulator (it rolls"),
    ("eval-knn", "vlnav-policy", "eval model --out ev --policy knn --index knn", MODEL + "closed-loop evaluation"),
    ("dagger", "vlnav-policy", "dagger imported.h5 --out dg --steps 5", FILE + "DAgger needs the simulator (it rolls"),
    ("dagger-init", "vlnav-policy", "dagger imported.h5 --out dg --init model", FILE + "DAgger needs the simulator ("),
    ("diagnose", "vlnav-policy", "diagnose offline", OFFLINE + "diagnose needs the simulator (it replays the rollouts"),
    ("diagnose-rerun", "vlnav-policy", "diagnose offline --out dx --rerun r.rrd", OFFLINE + "diagnose needs the"),
    ("study", "vlnav-study", "run imported.h5 --out st --encoder toy", FILE + "vlnav-study needs the simulator (every"),
    ("train-pixels-recipe", "vlnav-policy", "train imported.h5 --out m2 --recipe pixels", FILE + "recipe 'pixels'"),
    ("train-pixels", "vlnav-policy", "train imported.h5 --out m2 --features pixels", FILE + "--features pixels needs"),
    (
        "linear-colour",
        "vlnav-probe",
        "linear imported.h5 --out lin --target colour",
        "error: cannot probe colour on 'imported.h5': it was imported from lerobot and has no arena to define them; "
        "probe action, state, task, progress",
    ),
    (
        "linear-bearing",
        "vlnav-probe",
        "linear imported.h5 --out lin --target bearing",
        "error: cannot probe bearing or distance on 'imported.h5': it was imported from lerobot and has no arena",
    ),
    ("offline-bad-k", "vlnav-policy", "eval-offline model --out ev2 --k 0", "error: --k must be >= 1, got 0"),
    ("offline-k-too-big", "vlnav-policy", "eval-offline model --out ev2 --k 100000", "error: --k 100000 exceeds the"),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("noarena")
    write_imported_file(root / "imported.h5", num_episodes=12)
    import os

    cwd = os.getcwd()
    os.chdir(root)
    try:
        for args in (
            "train imported.h5 --out model --features image --recipe paper-std --steps 20",
            "eval-offline model --out offline --resamples 100",
        ):
            res = runner.invoke(policy.app, args.split())
            assert res.exit_code == 0, res.output
        res = runner.invoke(probe.app, "knn imported.h5 --out knn --features image".split())
        assert res.exit_code == 0, res.output
    finally:
        os.chdir(cwd)
    return root


@pytest.mark.parametrize(("prog", "args", "start"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_arena_only_tool_refuses_untouched(world, monkeypatch, prog, args, start):
    monkeypatch.chdir(world)
    before = tree(world)
    res = runner.invoke(APPS[prog], args.split())
    assert res.exit_code == 2, (res.exit_code, res.stdout, res.stderr, res.exception)
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(start.format(root=world)), res.stderr
    assert "nan" not in (res.stdout + res.stderr).lower().replace("nano", "")
    assert tree(world) == before


def test_view_needs_no_arena(world, tmp_path):
    """`vlnav-data view` records an imported file's frames, actions and instructions (no map): not refused."""
    pytest.importorskip("rerun")
    args = ["view", str(world / "imported.h5"), "--out", str(tmp_path / "v.rrd"), "--episode", "0"]
    res = runner.invoke(data.app, args)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "v.rrd").stat().st_size > 0
