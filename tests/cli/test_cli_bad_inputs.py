"""Bad input, table-driven: (entry point, arguments, exit code, exact first line of stderr).

Every row must end in ONE line on stderr and nothing of the command's work (no output written, no
traceback). To add a case, add a row: ``{tmp}`` in arguments and messages is the test's temporary
directory, ``{ds}`` a small valid dataset, ``{model}`` a trained model directory, ``{eval}`` an
evaluation directory, ``{dir}`` a non-empty directory, ``{file}`` an existing file, ``{png}`` an existing
PNG. A message ending in ``…`` is matched as a prefix (the rest quotes a library's own words).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vlnav_data.cli import data, expert, policy, probe
from vlnav_data.dataset.synthetic import write_synthetic_dataset

runner = CliRunner()
APPS = {"vlnav-data": data.app, "vlnav-expert": expert.app, "vlnav-policy": policy.app, "vlnav-probe": probe.app}
NOT_EMPTY = (
    "error: output directory '{dir}' already exists and is not empty; pass --overwrite to replace its contents, "
    "or choose another --out"
)
IS_A_FILE = "error: --out '{file}' is a file; expected a directory (new or empty)"

# (id, entry point, arguments, exit code, first line)
CASES = [
    # an existing output, refused before any work
    ("policy-train-out-dir", "vlnav-policy", "train {ds} --out {dir} --steps 5", 2, NOT_EMPTY),
    ("policy-train-out-file", "vlnav-policy", "train {ds} --out {file} --steps 5", 2, IS_A_FILE),
    ("expert-eval-out-file", "vlnav-expert", "eval --num-episodes 2 --out {file}", 2, IS_A_FILE),
    ("expert-eval-out-dir", "vlnav-expert", "eval --num-episodes 2 --out {dir}", 2, NOT_EMPTY),
    ("expert-train-out-dir", "vlnav-expert", "train --out {dir} --total-steps 10", 2, NOT_EMPTY),
    ("policy-eval-out-dir", "vlnav-policy", "eval {model} --out {dir} --num-episodes 2", 2, NOT_EMPTY),
    ("policy-eval-out-file", "vlnav-policy", "eval {model} --out {file} --num-episodes 2", 2, IS_A_FILE),
    ("policy-diagnose-out-file", "vlnav-policy", "diagnose {eval} --out {file}", 2, IS_A_FILE),
    (
        "policy-diagnose-default-out-exists",
        "vlnav-policy",
        "diagnose {eval}",
        2,
        "error: output directory '{eval}/diagnosis' already exists and is not empty; pass --overwrite to replace "
        "its contents, or choose another --out",
    ),
    (
        "policy-eval-out-is-the-model",
        "vlnav-policy",
        "eval {model} --out {model}",
        2,
        "error: --out '{model}' is the input '{model}', which writing there would destroy; choose another --out",
    ),
    ("probe-linear-out-dir", "vlnav-probe", "linear {ds} --out {dir}", 2, NOT_EMPTY),
    ("dagger-out-dir", "vlnav-policy", "dagger {ds} --out {dir}", 2, NOT_EMPTY),
    (
        "card-out-is-a-directory",
        "vlnav-data",
        "card {ds} --out {tmp}",
        2,
        "error: --out '{tmp}' is a directory; expected a file path such as '{tmp}/README.md'",
    ),
    (
        "card-out-exists",
        "vlnav-data",
        "card {ds} --out {file}",
        2,
        "error: --out '{file}' already exists; pass --overwrite to replace it, or choose another --out",
    ),
    (
        "preview-out-exists",
        "vlnav-data",
        "preview --out {png}",
        2,
        "error: --out '{png}' already exists; pass --overwrite to replace it, or choose another --out",
    ),
    (
        "merge-out-exists",
        "vlnav-data",
        "merge {file} {ds}",
        2,
        "error: OUT '{file}' already exists; pass --overwrite to replace it, or choose another OUT",
    ),
    (
        "export-out-holds-the-input",
        "vlnav-data",
        "export {ds} --out {tmp} --overwrite",
        2,
        "error: --out '{tmp}' contains the input '{ds}', which writing there would destroy; choose another --out",
    ),
    (
        "build-out-exists",
        "vlnav-data",
        "build --out {file} --encoder oracle --num-episodes 2",
        2,
        "error: --out '{file}' already exists; pass --overwrite to replace it, or choose another --out",
    ),
    # numbers the parser refuses before any work
    (
        "policy-eval-negative-seed",
        "vlnav-policy",
        "eval {model} --out {tmp}/new --seed -1",
        2,
        "error: invalid value for '--seed': Input should be greater than or equal to 0; see 'vlnav-policy eval --help'",
    ),
    (
        "dagger-negative-seed",
        "vlnav-policy",
        "dagger {ds} --out {tmp}/new --seed -1",
        2,
        "error: invalid value for '--seed': Input should be greater than or equal to 0; "
        "see 'vlnav-policy dagger --help'",
    ),
    # unusable files
    (
        "corrupt-knn-index",
        "vlnav-policy",
        "eval {model} --policy knn --index {tmp}/knn --out {tmp}/new",
        2,
        "error: cannot read the kNN index in '{tmp}/knn': …",
    ),
    (
        "toml-model-paths-not-a-table",
        "vlnav-data",
        "build --config {tmp}/bad.toml",
        2,
        "error: config file '{tmp}/bad.toml': model_paths must be a table of encoder = \"DIR\" "
        '(e.g. model_paths = {{ siglip = "/models/siglip" }}), got 5',
    ),
    (
        "toml-wrong-type",
        "vlnav-data",
        "build --config {tmp}/typo.toml",
        2,
        "error: config file '{tmp}/typo.toml': num_episodes must be an integer, got '10' (str); fix the value in "
        "the TOML file",
    ),
    # option typos and parser errors
    (
        "typo-in-option",
        "vlnav-policy",
        "train {ds} --out {tmp}/new --step 5",
        2,
        "error: no such option: --step (Possible options: --help, --seed, --steps); see 'vlnav-policy train --help'",
    ),
    (
        "typo-in-command",
        "vlnav-probe",
        "lineer {ds}",
        2,
        "error: no such command 'lineer'. Did you mean 'linear'? See 'vlnav-probe --help'.",
    ),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, str]:
    """The paths the table refers to (module-scoped: the commands must not change them)."""
    root = tmp_path_factory.mktemp("bad_inputs")
    ds = write_synthetic_dataset(root / "ds.h5", num_episodes=6, encoders={"oracle": 1152})
    model = root / "model"
    res = runner.invoke(policy.app, ["train", str(ds), "--out", str(model), "--steps", "10"])
    assert res.exit_code == 0, res.output
    eval_dir = root / "eval"
    (eval_dir / "diagnosis").mkdir(parents=True)
    (eval_dir / "diagnosis" / "report.md").write_text("an earlier diagnosis\n")
    busy = root / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("precious\n")
    existing = root / "existing.txt"
    existing.write_text("precious\n")
    png = root / "preview.png"
    png.write_bytes(b"\x89PNG precious")
    knn = root / "knn"
    knn.mkdir()
    (knn / "knn.faiss").write_bytes(b"not a faiss index" * 4)
    np.save(knn / "knn_actions.npy", np.zeros((4, 2), np.float32))
    meta = {"encoder": "oracle", "features": "joint", "k": 2, "metric": "inner_product", "dim": 1152, "num_vectors": 4}
    (knn / "knn_meta.json").write_text(json.dumps(meta))
    (root / "bad.toml").write_text('out = "x.h5"\nmodel_paths = 5\n')
    (root / "typo.toml").write_text('out = "x.h5"\nnum_episodes = "10"\n')
    return {
        "tmp": str(root),
        "ds": str(ds),
        "model": str(model),
        "eval": str(eval_dir),
        "dir": str(busy),
        "file": str(existing),
        "png": str(png),
    }


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(("prog", "args", "code", "first_line"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_error_line(world, prog: str, args: str, code: int, first_line: str) -> None:
    root = Path(world["tmp"])
    before = _snapshot(root)
    res = runner.invoke(APPS[prog], [a.format(**world) for a in args.split()])
    expected = first_line.format(**world)
    assert res.exit_code == code, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    if expected.endswith("…"):
        assert lines[0].startswith(expected[:-1]), lines[0]
    else:
        assert lines[0] == expected
    assert _snapshot(root) == before  # refused before any work: nothing written, nothing replaced


def test_publish_network_failure_after_assembly_is_one_line(world, tmp_path, monkeypatch) -> None:
    """A Hub failure during the upload: the real huggingface_hub exception, raised by a fake API."""
    hf = pytest.importorskip("huggingface_hub")
    constants = pytest.importorskip("huggingface_hub.constants")
    httpx2 = pytest.importorskip("httpx2")
    from huggingface_hub.errors import HfHubHTTPError

    url = "https://huggingface.co/api/datasets/me/demo/preupload/main"

    class FailingApi:
        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, **kw):
            pass

        def upload_folder(self, **kw):
            response = httpx2.Response(503, request=httpx2.Request("POST", url))
            raise HfHubHTTPError(f"503 Server Error: Service Unavailable for url: {url}", response=response)

    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hf, "HfApi", FailingApi)
    out = tmp_path / "hub"
    res = runner.invoke(
        data.app, ["publish", world["ds"], "--repo-id", "me/demo", "--out", str(out), "--images", "png"]
    )
    assert res.exit_code == 2, res.output
    assert res.stderr == (
        f"error: uploading '{out.resolve()}' to https://huggingface.co/datasets/me/demo failed (HfHubHTTPError: "
        f"503 Server Error: Service Unavailable for url: {url}); the folder was assembled and checksummed but not "
        "published: check the network and `hf auth whoami`, then run the same command again with --overwrite\n"
    )
    assert (out / "SHA256SUMS").is_file()  # the assembled folder is kept for the retry


def test_publish_connection_error_and_offline_mode(world, tmp_path, monkeypatch) -> None:
    hf = pytest.importorskip("huggingface_hub")
    constants = pytest.importorskip("huggingface_hub.constants")
    httpx2 = pytest.importorskip("httpx2")

    class NoNetworkApi:
        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, **kw):
            raise httpx2.ConnectError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    monkeypatch.setattr(hf, "HfApi", NoNetworkApi)
    args = ["publish", world["ds"], "--repo-id", "me/demo", "--images", "png"]
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    res = runner.invoke(data.app, [*args, "--out", str(tmp_path / "a")])
    assert res.exit_code == 2 and res.stderr == (
        "error: HF_HUB_OFFLINE is set, so nothing can be uploaded; unset it (`unset HF_HUB_OFFLINE`) to publish, "
        "or pass --dry-run to assemble the folder without uploading\n"
    )
    assert not (tmp_path / "a").exists()  # checked before any work
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    res = runner.invoke(data.app, [*args, "--out", str(tmp_path / "b")])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1
    assert "failed (ConnectError: [Errno -3] Temporary failure in name resolution)" in res.stderr


def test_overwrite_keeps_the_old_output_when_the_command_fails(world, tmp_path) -> None:
    """--overwrite moves the old directory aside and restores it when the command then fails."""
    out = tmp_path / "train"
    shutil.copytree(world["model"], out)
    before = _snapshot(out)
    res = runner.invoke(policy.app, ["train", world["ds"], "--out", str(out), "--encoder", "nope", "--overwrite"])
    assert res.exit_code == 2 and res.stderr.startswith("error: ")
    assert _snapshot(out) == before and not (tmp_path / "train.previous").exists()
    res = runner.invoke(policy.app, ["train", world["ds"], "--out", str(out), "--steps", "10", "--seed", "1"])
    assert res.exit_code == 2 and "already exists and is not empty" in res.stderr
    res = runner.invoke(
        policy.app, ["train", world["ds"], "--out", str(out), "--steps", "10", "--seed", "1", "--overwrite"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads((out / "result.json").read_text())["num_steps"] == 10
    assert json.loads((out / "config.json").read_text())["train_config"]["seed"] == 1
    assert not (tmp_path / "train.previous").exists()


def test_no_command_writes_result_json_into_the_working_directory(world, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    png = tmp_path / "pictures" / "p.png"
    res = runner.invoke(data.app, ["preview", "--out", str(png), "--num-frames", "1"])
    assert res.exit_code == 0, res.output
    card = tmp_path / "cards" / "README.md"
    res = runner.invoke(data.app, ["card", world["ds"], "--out", str(card)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cards", "pictures"]
    assert sorted(p.name for p in png.parent.iterdir()) == ["p.png", "p.png.result.json"]
    assert sorted(p.name for p in card.parent.iterdir()) == ["README.md", "README.md.result.json", "sample_frames.png"]
