"""One build with several encoders at once, then train -> closed-loop eval on the tiny CLIP and the tiny ViLT.

The fused (ViLT) branch runs here end to end: stored joint vectors are ViLT's own pooled image+text
output, and evaluation must recompute exactly what training saw from live frames and instructions.
"""

from __future__ import annotations

import numpy as np
import pytest

from vlnav_data.collect import build_dataset
from vlnav_data.dataset import DatasetReader
from vlnav_data.dataset.validate import validate_dataset
from vlnav_data.encoders import make_encoder
from vlnav_data.policy.evaluate import EvalConfig, evaluate_policy
from vlnav_data.policy.features import online_features
from vlnav_data.policy.records import EpisodeRecords
from vlnav_data.policy.train import TrainConfig, train_policy

ENCODERS = ("clip-tiny-random", "vilt-tiny-random", "oracle")


@pytest.fixture(scope="module")
def multi_encoder_file(tmp_path_factory, small_build):
    out = tmp_path_factory.mktemp("e2e") / "multi.h5"
    build_dataset(
        small_build(
            out, num_episodes=5, encoders=ENCODERS, max_episode_steps=40, valid_fraction=0.4, num_envs=5, seed=1
        )
    )
    return out


def test_a_build_with_several_encoders_stores_every_pair(multi_encoder_file):
    assert validate_dataset(multi_encoder_file) == []
    with DatasetReader(multi_encoder_file) as r:
        assert r.encoders == ENCODERS
        dims = {name: r.encoder_dim(name) for name in ENCODERS}
        ep = r.episode(r.demo_names[0])
    assert dims == {"clip-tiny-random": 48, "vilt-tiny-random": 64, "oracle": 1152}
    for name in ENCODERS:
        for kind in ("image", "joint"):
            rows = ep[f"obs/{name}_{kind}"].astype(np.float32)
            assert rows.shape == (len(ep["actions"]), dims[name])
            np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=2e-3)
    # Each encoder's vectors are its own: no two encoders share a column layout by accident.
    assert not np.allclose(ep["obs/clip-tiny-random_image"][:, :48], ep["obs/vilt-tiny-random_image"][:, :48])


@pytest.mark.parametrize("encoder", ["clip-tiny-random", "vilt-tiny-random"])
def test_online_features_reproduce_the_stored_joint_vectors(multi_encoder_file, encoder):
    enc = make_encoder(encoder, device="cpu", seed=0)
    with DatasetReader(multi_encoder_file) as r:
        ep = r.episode(r.demo_names[1])
    live = online_features(enc, "joint", ep["obs/rgb"], ep["obs/privileged_state"], ep["instructions"])
    np.testing.assert_allclose(live, ep[f"obs/{encoder}_joint"].astype(np.float32), atol=1e-3)


@pytest.mark.parametrize("encoder", ["clip-tiny-random", "vilt-tiny-random"])
def test_train_then_closed_loop_eval(multi_encoder_file, tmp_path, encoder):
    model = tmp_path / "model"
    trained = train_policy(TrainConfig(dataset=multi_encoder_file, out_dir=model, encoder=encoder, num_steps=40))
    assert trained.encoder == encoder and not trained.privileged_encoder
    result = evaluate_policy(EvalConfig(model_dir=model, out_dir=tmp_path / "eval", num_episodes=3, num_envs=3))
    assert result.encoder == encoder and result.features == "joint"
    assert result.student.success["trials"] == 3 and sum(result.student.termination_causes.values()) == 3
    student = EpisodeRecords.load(tmp_path / "eval" / "episodes.npz")
    expert = EpisodeRecords.load(tmp_path / "eval" / "expert_episodes.npz")
    np.testing.assert_array_equal(student.episode_seed, expert.episode_seed)  # paired starts
    np.testing.assert_array_equal(student.target_index, expert.target_index)
    # Every episode ended by a cause or the 40-step limit of the arena the data was built in.
    assert np.all((student.num_steps >= 1) & (student.num_steps <= 40))
