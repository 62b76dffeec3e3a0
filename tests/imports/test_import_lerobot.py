"""`vlnav-data import lerobot`: the fixtures LeRobot 0.6.1 wrote import with every row and frame equal (exact
from images, PSNR >= 30 dB from AV1 video), from a directory or the offline caches, resumably, and an imported
file exported to LeRobot and imported again gives the same rows."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vlnav_data.cli import data
from vlnav_data.dataset import DatasetReader, schema
from vlnav_data.dataset.partial import partial_path
from vlnav_data.dataset.validate import validate_dataset
from vlnav_data.imports import LeRobotImportConfig, import_lerobot
from vlnav_data.publish.video import psnr_db

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
sys.path.insert(0, str(FIXTURES))
import make_lerobot_fixtures as fixture  # noqa: E402

TOP, WRIST = fixture.CAMERAS
runner = CliRunner()


def _check_rows(path: Path, episodes: list[int], camera: str, min_psnr_db: float | None) -> None:
    """Every demo of ``path`` against the arrays the fixture script handed to LeRobot."""
    with DatasetReader(path) as r:
        assert [r.attrs(n)["episode_index"] for n in r.demo_names] == episodes
        for name, i in zip(r.demo_names, episodes, strict=True):
            src = fixture.episode_frames(i)
            ep = r.episode(name)
            np.testing.assert_array_equal(ep[schema.ACTIONS], src["action"])
            np.testing.assert_array_equal(ep[schema.STATE], src["observation.state"])
            np.testing.assert_array_equal(ep["obs/environment_state"], src["observation.environment_state"])
            np.testing.assert_array_equal(ep[schema.REWARDS], src["next.reward"][:, 0])
            np.testing.assert_array_equal(ep[schema.DONES], src["next.done"][:, 0].astype(np.uint8))
            assert ep["instructions"] == src["task"]
            t = fixture.EPISODE_LENGTHS[i]
            np.testing.assert_allclose(ep[schema.TIMESTAMPS], np.arange(t) / fixture.FPS, atol=1e-6)
            if min_psnr_db is None:
                np.testing.assert_array_equal(ep[schema.RGB], src[camera])
            else:
                for k in range(t):
                    assert psnr_db(src[camera][k], ep[schema.RGB][k]) >= min_psnr_db, (name, k)


@pytest.mark.parametrize(("mode", "min_psnr_db"), [("images", None), ("video", 30.0)])
def test_every_row_and_frame_is_the_source(tmp_path, mode, min_psnr_db):
    out = tmp_path / f"{mode}.h5"
    args = ["import", "lerobot", str(FIXTURES / "lerobot" / mode), "--out", str(out), "--camera", TOP]
    res = runner.invoke(data.app, [*args, "--no-progress"])
    assert res.exit_code == 0, res.output
    assert validate_dataset(out) == []
    _check_rows(out, [0, 1, 2], TOP, min_psnr_db)
    with DatasetReader(out) as r:
        assert not r.has_arena and r.fps == fixture.FPS
        assert r.source["kind"] == "lerobot" and r.source["codebase_version"] == "v3.0"
        assert r.source["info"]["robot_type"] == "toy_arm"
        assert r.action_names == list(fixture.ACTION_NAMES)
        assert r.features["state"]["names"] == list(fixture.STATE_NAMES)
        assert r.features["state"]["source_key"] == "observation.state"
        assert r.features["rgb"]["source_key"] == TOP
        assert r.instructions == list(fixture.TASKS[:1]) + [fixture.TASKS[1], fixture.TASKS[2]]
        assert r.split("train") and r.split("valid")  # a validation split by episode
        assert r.encoders == ()


def test_episode_selection_in_any_order_and_the_other_camera(tmp_path):
    out = tmp_path / "sel.h5"
    cfg = LeRobotImportConfig(root=str(FIXTURES / "lerobot" / "video"), out=str(out), camera=WRIST, episodes="2,0")
    result = import_lerobot(cfg)
    assert result.num_episodes == 2 and result.num_steps == 15 + 12
    _check_rows(out, [2, 0], WRIST, 30.0)  # episode 0 after episode 2: the video cursor seeks back


def test_from_the_hub_cache_and_lerobot_cache_offline(tmp_path, monkeypatch):
    repo, sha = fixture.REPO_ID, "0123456789abcdef0123456789abcdef01234567"
    hub = tmp_path / "hub"
    snap = hub / f"datasets--{repo.replace('/', '--')}" / "snapshots" / sha
    shutil.copytree(FIXTURES / "lerobot" / "images", snap)
    (snap.parents[1] / "refs").mkdir()
    (snap.parents[1] / "refs" / "main").write_text(sha)
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("HF_LEROBOT_HOME", str(tmp_path / "lerobot-home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(hub))
    import_lerobot(LeRobotImportConfig(root=repo, out=str(tmp_path / "hub.h5"), camera=TOP))
    with DatasetReader(tmp_path / "hub.h5") as r:
        assert r.source["id"] == repo and r.source["revision"] == sha
    shutil.copytree(FIXTURES / "lerobot" / "video", tmp_path / "lerobot-home" / repo)
    import_lerobot(LeRobotImportConfig(root=repo, out=str(tmp_path / "home.h5"), camera=TOP))
    _check_rows(tmp_path / "home.h5", [0, 1, 2], TOP, 30.0)


def test_a_killed_import_resumes_where_it_stopped(tmp_path):
    out = tmp_path / "resumed.h5"
    cfg = LeRobotImportConfig(root=str(FIXTURES / "lerobot" / "video"), out=str(out), camera=TOP)

    class Killed(Exception):
        pass

    def kill_after_first(p):
        if p.episodes_done == 1:
            raise Killed

    with pytest.raises(Killed):
        import_lerobot(cfg, progress=kill_after_first)
    assert partial_path(out).exists() and not out.exists()
    res = runner.invoke(
        data.app,
        [
            "import",
            "lerobot",
            str(FIXTURES / "lerobot" / "video"),
            "--out",
            str(out),
            "--camera",
            TOP,
            "--resume",
            "--no-progress",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    assert '"resumed_episodes": 1' in res.stdout
    assert not partial_path(out).exists()
    assert validate_dataset(out) == []
    _check_rows(out, [0, 1, 2], TOP, 30.0)


def test_resume_with_another_selection_is_refused(tmp_path):
    out = tmp_path / "r.h5"
    root = str(FIXTURES / "lerobot" / "images")

    def stop(p):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_lerobot(LeRobotImportConfig(root=root, out=str(out), camera=TOP), progress=stop)
    before = partial_path(out).read_bytes()
    res = runner.invoke(
        data.app, ["import", "lerobot", root, "--out", str(out), "--camera", TOP, "--episodes", "1:3", "--resume"]
    )
    assert res.exit_code == 2 and res.stderr.startswith("error: cannot resume") and "episodes" in res.stderr
    assert partial_path(out).read_bytes() == before


def test_export_and_import_again_gives_the_same_rows(tmp_path):
    first = tmp_path / "first.h5"
    import_lerobot(LeRobotImportConfig(root=str(FIXTURES / "lerobot" / "images"), out=str(first), camera=TOP))
    res = runner.invoke(data.app, ["export", str(first), "--out", str(tmp_path / "exported"), "--images", "png"])
    assert res.exit_code == 0, res.output
    again = tmp_path / "again.h5"
    import_lerobot(LeRobotImportConfig(root=str(tmp_path / "exported"), out=str(again)))  # one camera now
    import pyarrow.parquet as pq

    exported = pq.read_table(tmp_path / "exported/meta/episodes/chunk-000/file-000.parquet").to_pylist()
    with DatasetReader(first) as a, DatasetReader(again) as b:
        assert set(a.features) == set(b.features)
        for key in ("actions", "state", "environment_state"):
            assert a.features[key]["names"] == b.features[key]["names"]
        assert b.features["rgb"]["source_key"] == TOP
        for name in b.demo_names:
            src_demo = exported[b.attrs(name)["episode_index"]]["source_demo"]
            assert a.attrs(src_demo)["split"] == b.attrs(name)["split"]  # the split travels in info.json
            x, y = a.episode(src_demo), b.episode(name)
            for key in (
                schema.ACTIONS,
                schema.STATE,
                "obs/environment_state",
                schema.REWARDS,
                schema.DONES,
                schema.TIMESTAMPS,
                schema.RGB,
            ):
                np.testing.assert_array_equal(x[key], y[key], err_msg=key)
            assert x["instructions"] == y["instructions"]


TRANSCODE = """
import sys
from fractions import Fraction

import av
import numpy as np

path, encoder, fps, width, height = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
with av.open(path) as src:
    frames = [f.to_ndarray(format="rgb24") for f in src.decode(video=0)]
frames = [np.pad(f, ((0, height - f.shape[0]), (0, width - f.shape[1]), (0, 0)), mode="edge") for f in frames]
options = {"crf": "12"} if encoder == "libx264" else {"x265-params": "log-level=error:crf=12"}
with av.open(path, mode="w") as dst:
    stream = dst.add_stream(encoder, rate=fps, options=options)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.time_base = Fraction(1, fps)
    for i, rgb in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        for packet in stream.encode(frame):
            dst.mux(packet)
    for packet in stream.encode(None):
        dst.mux(packet)
"""


@pytest.mark.parametrize(("encoder", "codec"), [("libx264", "h264"), ("libx265", "hevc")])
def test_h264_and_hevc_videos_decode(tmp_path, encoder, codec):
    """The same dataset with its camera re-encoded as H.264 / HEVC (same frame times) imports as well.

    The re-encoding runs in its own process, and HEVC at 64x64 (the fixture's 32x48 frames padded): libx265 in
    PyAV's wheel corrupts its process's heap on frames smaller than its 64-px CTU; decoding is unaffected."""
    import json
    import subprocess

    root = tmp_path / codec
    shutil.copytree(FIXTURES / "lerobot" / "video", root)
    mp4 = root / "videos" / TOP / "chunk-000" / "file-000.mp4"
    h, w = (64, 64) if codec == "hevc" else (fixture.HEIGHT, fixture.WIDTH)
    subprocess.run([sys.executable, "-c", TRANSCODE, str(mp4), encoder, str(fixture.FPS), str(w), str(h)], check=True)
    info = json.loads((root / "meta/info.json").read_text())
    info["features"][TOP]["info"].update({"video.codec": codec, "video.height": h, "video.width": w})
    info["features"][TOP]["shape"] = [h, w, 3]
    (root / "meta/info.json").write_text(json.dumps(info))
    out = tmp_path / f"{codec}.h5"
    import_lerobot(LeRobotImportConfig(root=str(root), out=str(out), camera=TOP))
    with DatasetReader(out) as r:
        for name, i in zip(r.demo_names, range(3), strict=True):
            rgb = r.episode(name, keys=[schema.RGB])[schema.RGB]
            assert rgb.shape[1:] == (h, w, 3)
            src = fixture.episode_frames(i)[TOP]
            for k in range(len(src)):
                assert psnr_db(src[k], rgb[k, : fixture.HEIGHT, : fixture.WIDTH]) >= 30.0, (codec, name, k)


def test_an_arena_export_imports_without_its_privileged_state(tmp_path):
    from vlnav_data.dataset.synthetic import write_synthetic_dataset

    arena = write_synthetic_dataset(tmp_path / "arena.h5", 4, {"siglip-tiny-random": 8}, max_steps=6)
    res = runner.invoke(data.app, ["export", str(arena), "--out", str(tmp_path / "lr"), "--images", "png"])
    assert res.exit_code == 0, res.output
    result = import_lerobot(LeRobotImportConfig(root=str(tmp_path / "lr"), out=str(tmp_path / "back.h5")))
    assert "observation.state" in result.skipped and "state" not in result.features
    assert "observation.siglip-tiny-random_joint" in result.skipped and result.features == ()
    assert validate_dataset(tmp_path / "back.h5") == []
    with DatasetReader(arena) as a, DatasetReader(tmp_path / "back.h5") as b:
        assert b.instructions and set(b.instructions) <= set(a.instructions)
        assert b.total_steps == a.total_steps
        assert [b.attrs(n)["split"] for n in b.demo_names] == [a.attrs(n)["split"] for n in a.split("train")] + [
            a.attrs(n)["split"] for n in a.split("valid")
        ]  # the export's splits ranges come back
    sub = import_lerobot(LeRobotImportConfig(root=str(tmp_path / "lr"), out=str(tmp_path / "sub.h5"), episodes="0:3"))
    assert sub.splits["valid"] == 1  # the named valid episode is not selected: the project's rule, one at least
