"""The oracle: privileged, deterministic (also across processes), separating, and invertible."""

import json
import subprocess
import sys

import numpy as np
import pytest

from vlnav_data.encoders import make_encoder
from vlnav_data.encoders.oracle import oracle_features, oracle_projection
from vlnav_data.errors import ConfigError, EncoderError


def states(n, d=8, seed=0):
    rng = np.random.default_rng(seed)
    yaw = rng.uniform(-np.pi, np.pi, n)
    s = rng.uniform(-2, 2, (n, d))
    s[:, 2], s[:, 3] = np.cos(yaw), np.sin(yaw)
    return s.astype(np.float32)


def test_spec_is_privileged():
    enc = make_encoder("oracle")
    assert enc.spec.privileged is True and enc.spec.dim == 1152
    assert "PRIVILEGED" in enc.spec.note
    with pytest.raises(EncoderError, match="not images"):
        enc.encode_images(np.zeros((1, 8, 8, 3), dtype=np.uint8))
    with pytest.raises(EncoderError, match="needs privileged_state"):
        enc.encode_observations(np.zeros((1, 8, 8, 3), dtype=np.uint8), None)
    with pytest.raises(ConfigError, match=r"D >= 6.*shape \(2, 4\)"):
        enc.encode_observations(None, np.zeros((2, 4)))
    with pytest.raises(ConfigError, match="model_path must be None"):
        make_encoder("oracle", model_path="/tmp")


def test_separates_distinct_states_and_is_deterministic():
    s = states(64)
    a = make_encoder("oracle").encode_observations(None, s)
    b = make_encoder("oracle").encode_observations(None, s.copy())
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    cos = a @ a.T
    np.fill_diagonal(cos, -1)
    assert cos.max() < 0.999
    # a small move of the robot changes the embedding
    moved = s[:1].copy()
    moved[0, 0] += 0.05
    assert np.abs(make_encoder("oracle").encode_states(moved) - a[:1]).max() > 1e-4
    # another seed is another projection
    assert np.abs(make_encoder("oracle", seed=1).encode_states(s[:1]) - a[:1]).max() > 1e-2


def test_target_bearing_and_distance_are_recoverable():
    s = states(200, seed=1)
    emb = make_encoder("oracle").encode_states(s).astype(np.float64)
    feats = oracle_features(s)
    proj = oracle_projection(feats.shape[1], 1152, 0)
    recovered = emb @ np.linalg.pinv(proj)
    recovered /= recovered[:, -1:]  # the constant feature reveals the normalisation scale
    np.testing.assert_allclose(recovered, feats, atol=1e-3)
    # forward/lateral really are the target in the robot frame
    x, y, c, sn, tx, ty = s[:1, :6].T.astype(np.float64)
    fwd = c * (tx - x) + sn * (ty - y)
    lat = -sn * (tx - x) + c * (ty - y)
    np.testing.assert_allclose(feats[0, :2], [fwd[0], lat[0]], atol=1e-9)
    bearing_error = np.angle(
        np.exp(1j * (np.arctan2(recovered[:, 4], recovered[:, 3]) - np.arctan2(feats[:, 1], feats[:, 0])))
    )
    assert np.abs(bearing_error).max() < 1e-3


def test_text_vectors_hash_seeded_and_joint():
    enc = make_encoder("oracle")
    t = enc.encode_texts(["go left", "go right", "go left"])
    np.testing.assert_array_equal(t[0], t[2])
    assert abs(float(t[0] @ t[1])) < 0.2
    s = states(3)
    joint = enc.encode_joint(None, s, ["a", "b", "c"])
    img, txt = enc.encode_states(s), enc.encode_texts(["a", "b", "c"])
    np.testing.assert_allclose(joint, (img + txt) / np.linalg.norm(img + txt, axis=1, keepdims=True), atol=1e-6)


def test_deterministic_across_processes():
    s = states(4, seed=2)
    code = (
        "import json, numpy as np, sys\n"
        "from vlnav_data.encoders import make_encoder\n"
        "s = np.array(json.loads(sys.stdin.read()), dtype=np.float32)\n"
        "e = make_encoder('oracle')\n"
        "print(json.dumps([e.encode_states(s).tolist(), e.encode_texts(['Go to the red ball']).tolist()]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], input=json.dumps(s.tolist()), capture_output=True, text=True, check=True
    )
    states_emb, text_emb = json.loads(out.stdout)
    enc = make_encoder("oracle")
    np.testing.assert_array_equal(np.array(states_emb, dtype=np.float32), enc.encode_states(s))
    np.testing.assert_array_equal(np.array(text_emb, dtype=np.float32), enc.encode_texts(["Go to the red ball"]))
