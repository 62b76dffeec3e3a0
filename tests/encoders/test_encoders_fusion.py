"""fuse / joint_embedding against hand computations."""

import numpy as np
import pytest

from vlnav_data.encoders import FUSION_MODES, fuse, fused_dim, joint_embedding, l2_normalize
from vlnav_data.errors import ConfigError


def test_joint_matches_hand_computation():
    image = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 2.0]], dtype=np.float32)
    text = np.array([[0.0, 0.0, 5.0], [0.0, 1.0, 0.0]], dtype=np.float32)
    # l2(image) = [0.6, 0.8, 0], [0, 0, 1]; l2(text) = [0, 0, 1], [0, 1, 0]
    s0 = np.array([0.6, 0.8, 1.0])
    s1 = np.array([0.0, 1.0, 1.0])
    expected = np.stack([s0 / np.linalg.norm(s0), s1 / np.linalg.norm(s1)])
    out = fuse(image, text, "joint")
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=1e-7)
    np.testing.assert_array_equal(joint_embedding(image, text), out)


def test_other_modes():
    image = np.array([[3.0, 4.0]], dtype=np.float32)
    text = np.array([[0.0, -2.0]], dtype=np.float32)
    np.testing.assert_allclose(fuse(image, text, "image"), [[0.6, 0.8]], atol=1e-7)
    np.testing.assert_allclose(fuse(image, text, "text"), [[0.0, -1.0]], atol=1e-7)
    np.testing.assert_allclose(fuse(image, text, "concat"), [[0.6, 0.8, 0.0, -1.0]], atol=1e-7)
    assert [fused_dim(2, m) for m in FUSION_MODES] == [2, 4, 2, 2]


def test_joint_of_opposite_vectors_is_zero_not_nan():
    v = np.array([[1.0, 0.0]], dtype=np.float32)
    np.testing.assert_array_equal(joint_embedding(v, -v), [[0.0, 0.0]])
    np.testing.assert_array_equal(l2_normalize(np.zeros((1, 3))), np.zeros((1, 3)))


def test_bad_mode_and_shapes():
    a = np.ones((2, 3), dtype=np.float32)
    with pytest.raises(ConfigError, match="unknown fusion mode 'jiont'.*Did you mean 'joint'"):
        fuse(a, a, "jiont")
    with pytest.raises(ConfigError, match=r"same shape to fuse; received \(2, 3\) and \(2, 4\)"):
        fuse(a, np.ones((2, 4)), "joint")
    with pytest.raises(ConfigError):
        fuse(a, np.ones((3, 3)), "concat")
