"""Plugin encoders: an installed entry point and register_encoder, by name, with a recorded spec."""

from __future__ import annotations

import numpy as np
import pytest

from vlnav_data.encoders import (
    Encoder,
    EncoderSpec,
    available_encoders,
    encoder_name,
    make_encoder,
    register_encoder,
    unregister_encoder,
)
from vlnav_data.errors import ConfigError, EncoderError


def test_installed_entry_point_builds_by_name(toy_plugin, make_frames):
    enc = make_encoder("toy-pool", device="cpu")
    assert encoder_name("toy-pool") == "toy-pool"
    spec = enc.spec
    assert (spec.name, spec.source, spec.dim, spec.revision, spec.model_id) == (
        "toy-pool",
        "plugin",
        48,
        "0.1",
        "vlnav-test/toy-pool",
    )
    frames = make_frames(3, 32, 32)
    # hand-computed: 4 x 4 mean colour, centred, unit norm
    x = frames.astype(np.float32).reshape(3, 4, 8, 4, 8, 3).mean(axis=(2, 4)).reshape(3, 48) / 255.0 - 0.5
    np.testing.assert_allclose(enc.encode_images(frames), x / np.linalg.norm(x, axis=1, keepdims=True), atol=1e-6)
    joint = enc.encode_joint(frames, None, ["a", "b", "c"])  # the base class supplies the published fusion
    assert joint.shape == (3, 48) and np.allclose(np.linalg.norm(joint, axis=1), 1.0)
    row = next(r for r in available_encoders() if r.name == "toy-pool")
    assert row.source == "plugin" and row.dim == 48
    assert row.note == "4x4 colour pooling (test plugin) [vlnav-toy-plugin 0.1 (vlnav_toy_plugin:make)]"


class Constant(Encoder):
    def __init__(self, dim: int = 4) -> None:
        self.spec = EncoderSpec(
            name="whatever", model_id="test/constant", revision="1", dim=dim, dtype="float32", device="cpu",
            privileged=False, note="",
        )  # fmt: skip

    def encode_images(self, images):
        return np.tile(np.eye(self.spec.dim, dtype=np.float32)[0], (len(images), 1))

    def encode_texts(self, texts):
        return np.tile(np.eye(self.spec.dim, dtype=np.float32)[1], (len(texts), 1))


def test_register_encoder_in_a_notebook(make_frames):
    register_encoder("nb-constant", lambda **kw: Constant())
    try:
        enc = make_encoder("nb-constant")
        assert enc.spec.name == "nb-constant" and enc.spec.source == "plugin"  # stamped with the registered name
        joint = enc.encode_joint(make_frames(2, 16, 16), None, ["x", "y"])
        np.testing.assert_allclose(joint, np.tile([2**-0.5, 2**-0.5, 0, 0], (2, 1)), atol=1e-7)
        with pytest.raises(ConfigError, match="encoder 'nb-constant' is registered already"):
            register_encoder("nb-constant", lambda **kw: Constant())
        register_encoder("nb-constant", lambda **kw: Constant(dim=6), replace=True)
        assert make_encoder("nb-constant").spec.dim == 6
    finally:
        unregister_encoder("nb-constant")
    with pytest.raises(ConfigError, match="unknown encoder 'nb-constant'"):
        make_encoder("nb-constant")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("siglip", "'siglip' is a built-in encoder; register the plugin under another name"),
        (
            "my plugin",
            "plugin encoder name must be letters, digits, '_' or '-' (starting with a letter or digit); received "
            "'my plugin'",
        ),
    ],
)
def test_register_encoder_refuses(name, message):
    with pytest.raises(ConfigError) as info:
        register_encoder(name, lambda **kw: Constant())
    assert str(info.value) == message


def test_factory_must_return_an_encoder():
    register_encoder("nb-bad", lambda **kw: object())
    try:
        with pytest.raises(EncoderError) as info:
            make_encoder("nb-bad")
        assert str(info.value) == (
            "plugin encoder 'nb-bad' (register_encoder) returned object, not a vlnav_data.encoders.Encoder; "
            "subclass Encoder and implement encode_images and encode_texts"
        )
    finally:
        unregister_encoder("nb-bad")
