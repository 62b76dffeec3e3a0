"""`vlnav-probe umap --rerun`: the embedding map as a point cloud, each point linked to its episode and step."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from vlnav_data.cli import probe
from vlnav_data.sim import COLOR_PALETTE

pytest.importorskip("rerun", reason="the viz extra (rerun-sdk) is not installed")
pytest.importorskip("umap")


def test_umap_recording_holds_every_point_with_its_colour_episode_and_step(demos, tmp_path, read_rrd):
    out, rrd_path = tmp_path / "umap", tmp_path / "map.rrd"
    args = [
        "umap",
        str(demos),
        "--encoder",
        "oracle",
        "--out",
        str(out),
        "--max-points",
        "60",
        "--rerun",
        str(rrd_path),
    ]
    res = CliRunner().invoke(probe.app, args)
    assert res.exit_code == 0, res.output
    coords = np.load(out / "umap_coords.npz")
    rrd = read_rrd(rrd_path)
    context = rrd["/embedding_map"]["AnnotationContext:context"][0][0]  # row 0, its one context
    names = {entry["class_id"]: entry["class_description"]["info"] for entry in context}
    for split in ("train", "valid"):
        xy = coords[f"{split}_xy"]
        by_colour = rrd[f"/embedding_map/by_colour/{split}"]
        np.testing.assert_allclose(np.array(by_colour["Points2D:positions"][0]), xy * [1, -1], atol=1e-6)
        assert by_colour["episode"][0] == coords[f"{split}_episode_index"].tolist()
        assert by_colour["step"][0] == coords[f"{split}_step_index"].tolist()
        labels = [names[k]["label"] for k in by_colour["Points2D:class_ids"][0]]
        assert labels == coords[f"{split}_target_colour"].tolist()
        for k in by_colour["Points2D:class_ids"][0][:5]:
            rgb = [round(255 * c) for c in COLOR_PALETTE[names[k]["label"]]]
            assert names[k]["color"] == (rgb[0] << 24) | (rgb[1] << 16) | (rgb[2] << 8) | 255
        actions = coords[f"{split}_actions"]
        np.testing.assert_allclose(
            rrd[f"/embedding_map/by_turn/{split}"]["turn"][0], (actions[:, 1] - actions[:, 0]) / 2
        )
        bearing = np.degrees(coords[f"{split}_privileged_bearing_rad"])
        np.testing.assert_allclose(rrd[f"/embedding_map/by_bearing/{split}"]["bearing_deg"][0], bearing, atol=1e-4)
