"""`vlnav-data view`: the recording, read back with Rerun's reader, against the HDF5 file it shows."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from vlnav_data.cli import data
from vlnav_data.dataset import DatasetReader
from vlnav_data.vectors import l2_normalize

pytest.importorskip("rerun", reason="the viz extra (rerun-sdk) is not installed")


def scalars(table: dict) -> list[float]:
    """The ``Scalars`` column of an entity as floats (one value per row)."""
    return [v[0] for v in table["Scalars:scalars"] if v is not None]  # the static style row has none


runner = CliRunner()
COLOURS = ("red", "green", "blue", "yellow", "pink")
PROMPTS = [f"Move toward the {c} ball." for c in COLOURS]


def _view(args: list[str]):
    res = runner.invoke(data.app, ["view", *args])
    assert res.exit_code == 0, res.output
    return res


@pytest.fixture(scope="module")
def recording(demos, tmp_path_factory, read_rrd):
    out = tmp_path_factory.mktemp("view") / "demos.rrd"
    _view([str(demos), "--episode", "0", "--episode", "3", "--out", str(out)])
    return out, read_rrd(out)


def _expected_cosines(image: np.ndarray, text: np.ndarray) -> np.ndarray:
    return l2_normalize(image.astype(np.float64)) @ l2_normalize(text.astype(np.float64)).T


def test_one_frame_per_step_and_the_actions_are_the_file_rows(demos, recording):
    out, rrd = recording
    with DatasetReader(demos) as r:
        eps = {i: r.episode(i, ["actions", "obs/privileged_state"]) for i in (0, 3)}
    lengths = {i: len(e["actions"]) for i, e in eps.items()}
    camera = rrd["/camera"]
    assert camera["EncodedImage:media_type"][0] == ["image/jpeg"]
    assert camera["episode"] == [0] * lengths[0] + [3] * lengths[3]
    assert camera["episode_step"] == list(range(lengths[0])) + list(range(lengths[3]))
    assert camera["frame"] == list(range(lengths[0] + lengths[3]))  # episode 3 starts where episode 0 ended
    for w, wheel in enumerate(("left_wheel", "right_wheel")):
        want = np.concatenate([eps[0]["actions"][:, w], eps[3]["actions"][:, w]]).astype(np.float64)
        assert scalars(rrd[f"/actions/{wheel}"]) == want.tolist()  # bit for bit
    state = np.concatenate([eps[0]["obs/privileged_state"], eps[3]["obs/privileged_state"]]).astype(np.float64)
    np.testing.assert_array_equal(scalars(rrd["/privileged/target_distance_m"]), state[:, 8])
    np.testing.assert_allclose(
        scalars(rrd["/privileged/target_bearing_deg"]), np.degrees(np.arctan2(state[:, 10], state[:, 9])), atol=1e-9
    )
    # the robot on the map ends each logged step where the privileged state puts it
    arrows = rrd["/map/robot/pose"]["Arrows2D:origins"]
    np.testing.assert_allclose([a[0] for a in arrows], np.stack([-100 * state[:, 1], -100 * state[:, 0]], 1), atol=1e-3)
    result = (out.parent / "demos.rrd.result.json").read_text()
    assert '"frames": ' + str(lengths[0] + lengths[3]) in result


def test_cosines_equal_the_stored_embeddings_against_the_files_colour_prompts(demos, recording):
    out, rrd = recording
    assert '"oracle": "file"' in (out.parent / "demos.rrd.result.json").read_text()
    with DatasetReader(demos) as r:
        assert set(PROMPTS) <= set(r.instructions)
        for enc in r.encoders:
            table = r.text_embeddings(enc)[[r.instructions.index(p) for p in PROMPTS]]
            image = np.concatenate([r.episode(i, [f"obs/{enc}_image"])[f"obs/{enc}_image"] for i in (0, 3)])
            want = _expected_cosines(image, table)
            for c, colour in enumerate(COLOURS):
                np.testing.assert_allclose(scalars(rrd[f"/cosine/{enc}/{colour}"]), want[:, c], atol=1e-9)


def test_markers_layout_instruction_and_blueprint(demos, recording):
    from rerun.chunk import RrdReader

    out, rrd = recording
    events = rrd["/events"]
    texts = [t[0] for t in events["TextLog:text"]]
    with DatasetReader(demos) as r:
        a0, a3 = r.attrs(0), r.attrs(3)
        assert texts[0].startswith("episode 0 starts") and a0["target_color"] in texts[0]
        assert texts[1] == f"episode 0 ends after {a0['num_samples']} steps: {a0['termination']}"
        assert texts[3] == f"episode 3 ends after {a3['num_samples']} steps: {a3['termination']}"
        assert events["episode_step"] == [0, a0["num_samples"] - 1, 0, a3["num_samples"] - 1]
        first = r.episode(0, ["instruction_index"])["instructions"][0]
    assert rrd["/instruction"]["TextDocument:text"][0] == [first]
    spheres = rrd["/map/spheres"]
    assert spheres["Points2D:labels"][0] == list(COLOURS)  # text2nav: the five spheres in their order
    assert len(RrdReader(out).blueprints()) == 1


def test_stride_logs_one_frame_every_k_steps_and_every_scalar(demos, tmp_path, read_rrd):
    out = tmp_path / "s.rrd"
    _view([str(demos), "--episodes", "1:3", "--stride", "3", "--no-cosine", "--out", str(out)])
    rrd = read_rrd(out)
    with DatasetReader(demos) as r:
        n1, n2 = r.num_samples(1), r.num_samples(2)
    assert rrd["/camera"]["episode_step"] == list(range(0, n1, 3)) + list(range(0, n2, 3))
    assert len(scalars(rrd["/actions/left_wheel"])) == n1 + n2
    assert not any(e.startswith("/cosine") for e in rrd)


def test_prompts_missing_from_the_file_come_from_the_rebuilt_encoder(demos, tmp_path, read_rrd):
    """Renamed instructions: the view rebuilds each encoder; its prompt embeddings equal the stored ones."""
    copy = tmp_path / "renamed.h5"
    shutil.copy(demos, copy)
    with h5py.File(copy, "r+") as f:
        table = f["meta/instructions"]
        renamed = [s.decode().replace("Move toward", "Go to").encode() for s in table[()]]
        table[...] = np.array(renamed, dtype=table.dtype)
    out = tmp_path / "r.rrd"
    _view([str(copy), "--episode", "2", "--out", str(out)])
    assert '"siglip-tiny-random": "rebuilt"' in (tmp_path / "r.rrd.result.json").read_text()
    rrd = read_rrd(out)
    with DatasetReader(demos) as r:  # the original file: its stored text rows of the same prompts
        enc = "siglip-tiny-random"
        stored = r.text_embeddings(enc)[[r.instructions.index(p) for p in PROMPTS]]
        want = _expected_cosines(r.episode(2, [f"obs/{enc}_image"])[f"obs/{enc}_image"], stored)
    for c, colour in enumerate(COLOURS):
        np.testing.assert_allclose(scalars(rrd[f"/cosine/{enc}/{colour}"]), want[:, c], atol=2e-3)


def test_a_file_from_elsewhere_gets_the_target_alone_on_the_map(tmp_path, read_rrd):
    """No arena in sim_config_json (another simulator): frames, actions and the target, no spheres."""
    from vlnav_data.dataset.synthetic import write_synthetic_dataset

    path = write_synthetic_dataset(tmp_path / "elsewhere.h5", num_episodes=2)
    out = tmp_path / "e.rrd"
    _view([str(path), "--no-cosine", "--out", str(out)])
    assert '"map": "target"' in (tmp_path / "e.rrd.result.json").read_text()
    rrd = read_rrd(out)
    with DatasetReader(path) as r:
        n = [r.num_samples(0), r.num_samples(1)]
        target = r.episode(0, ["obs/privileged_state"])["obs/privileged_state"][0, 4:6]
    assert rrd["/camera"]["episode"] == [0] * n[0] + [1] * n[1]
    assert "/map/spheres" not in rrd
    ring = np.array(rrd["/map/target"]["LineStrips2D:strips"][0][0])
    np.testing.assert_allclose(ring[:-1].mean(axis=0)[::-1] * -0.01, target, atol=1e-4)  # centred on the target
