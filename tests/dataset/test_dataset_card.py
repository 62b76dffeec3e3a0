"""The dataset card: a readable frame strip, and usage snippets that keep privileged inputs out of a policy."""

from __future__ import annotations

import re

import numpy as np
import pytest

from vlnav_data.dataset import DatasetReader
from vlnav_data.dataset.card import STRIP_MIN_HEIGHT_PX, frame_strip, render_card, sample_frames


@pytest.fixture(scope="module")
def two_encoder_build(tmp_path_factory, small_build):
    """A real 2-episode build with a privileged encoder (oracle) listed before a deployable one."""
    from vlnav_data.collect import build_dataset

    out = tmp_path_factory.mktemp("card") / "demos.h5"
    config = small_build(out, num_episodes=2, encoders=("oracle", "siglip-tiny-random"), max_episode_steps=30, seed=0)
    return build_dataset(config).path


def test_robomimic_snippet_keeps_privileged_inputs_out_of_low_dim(two_encoder_build, tmp_path) -> None:
    text = render_card(two_encoder_build, tmp_path / "README.md")
    low_dim = re.search(r"`low_dim = \[([^\]]*)\]`", text)
    assert low_dim is not None, text
    assert low_dim.group(1) == '"siglip-tiny-random_joint"'
    assert "privileged_state" not in low_dim.group(1) and "oracle" not in low_dim.group(1)
    assert "Leave `privileged_state` and the privileged encoders (`oracle_joint`) out of `low_dim`" in text
    assert 'r.stack(["actions", "obs/siglip-tiny-random_joint"], split="train")' in text


def test_strip_is_enlarged_to_a_readable_height_and_captioned(two_encoder_build, tmp_path) -> None:
    text = render_card(two_encoder_build, tmp_path / "README.md", num_frames=3)
    from PIL import Image

    img = np.asarray(Image.open(tmp_path / "sample_frames.png"))
    scale = -(-STRIP_MIN_HEIGHT_PX // 32)  # 32-px frames: x6 -> 192 px
    assert img.shape[0] == 32 * scale == 192
    sample = sample_frames(two_encoder_build, 3)
    np.testing.assert_array_equal(img[::scale, : 32 * scale : scale], sample.frames[0])
    np.testing.assert_array_equal(img, frame_strip(two_encoder_build, 3))
    with DatasetReader(two_encoder_build) as r:
        first_instruction = r.instructions[int(r.episode(sample.demo)["instruction_index"][0])]
    steps = ", ".join(map(str, sample.steps))
    assert f'*Camera frames of `{sample.demo}` at steps {steps}: "{first_instruction}" (32x32 px' in text
