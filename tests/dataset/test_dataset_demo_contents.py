"""One demo's contents: a copied demo equals its source (chunks copied raw), a demo of another layout is refused."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from vlnav_data.dataset import DatasetReader, DatasetWriter, EncoderEntry, schema
from vlnav_data.dataset.demo_contents import source_datasets
from vlnav_data.dataset.merge import layout_from_reader
from vlnav_data.dataset.synthetic import write_synthetic_dataset
from vlnav_data.errors import SchemaError


def test_a_copied_demo_equals_its_source_and_its_chunks_are_copied_raw(tmp_path):
    src = write_synthetic_dataset(tmp_path / "src.h5", 2, {"e": 4}, image_size=(8, 8))
    with DatasetReader(src) as r:
        layout = layout_from_reader(r)
        tables = r.instructions, {"e": r.text_embeddings("e")}
        with DatasetWriter(tmp_path / "out.h5", layout) as w:
            name, raw = w.append_episode_copy(r.file["data"]["demo_1"], *tables)
            w.finalize()
        # 8 base datasets + 2 embeddings of 'e'; all but instruction_index (remapped) are copied raw
        assert (name, raw) == ("demo_0", 9)
        with DatasetReader(tmp_path / "out.h5") as out:
            a, b = r.episode("demo_1"), out.episode("demo_0")
            assert a.keys() == b.keys()
            for key in a:
                np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]), err_msg=key)
            texts = [out.instructions[i] for i in out.file["data"]["demo_0"][schema.INSTRUCTION_INDEX][()]]
            assert texts == [r.instructions[i] for i in r.file["data"]["demo_1"][schema.INSTRUCTION_INDEX][()]]


def test_a_demo_of_another_layout_is_refused_with_the_differences_named(tmp_path):
    src = write_synthetic_dataset(tmp_path / "src.h5", 1, {"e": 4}, image_size=(8, 8))
    with DatasetReader(src) as r:
        layout = layout_from_reader(r)
        demo = r.file["data"]["demo_0"]
        t = int(demo.attrs["num_samples"])
        where = f"{src}:/data/demo_0"
        other_encoder = dataclasses.replace(layout, encoders=(EncoderEntry(name="f", dim=4),))
        with pytest.raises(SchemaError) as info:
            source_datasets(demo, other_encoder)
        assert str(info.value) == (
            f"{where} does not fit the file layout: missing ['obs/f_image', 'obs/f_joint'], "
            "unexpected ['obs/e_image', 'obs/e_joint']"
        )
        other_size = dataclasses.replace(layout, image_width=6, encoders=(EncoderEntry(name="e", dim=3),))
        with pytest.raises(SchemaError) as info:
            source_datasets(demo, other_size)
        assert str(info.value) == (
            f"{where} does not fit the file layout: obs/rgb: expected uint8 {(t, 8, 6, 3)}, got uint8 {(t, 8, 8, 3)}; "
            f"obs/e_image: expected float16 {(t, 3)}, got float16 {(t, 4)}; "
            f"obs/e_joint: expected float16 {(t, 3)}, got float16 {(t, 4)}"
        )
