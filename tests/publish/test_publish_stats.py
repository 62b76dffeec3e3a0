"""Streaming statistics against numpy on the whole data."""

from __future__ import annotations

import numpy as np
import pytest

from vlnav_data.publish.stats import QUANTILES, ImageStats, VectorStats, exact_vector_stats

QKEYS = ("q01", "q10", "q50", "q90", "q99")


def test_image_stats_are_exact_per_channel_in_unit_range() -> None:
    rng = np.random.default_rng(0)
    episodes = [rng.integers(0, 256, size=(t, 5, 7, 3), dtype=np.uint8) for t in (3, 8, 1)]
    episodes[1][..., 2] = rng.integers(40, 90, size=(8, 5, 7), dtype=np.uint8)  # a narrow channel
    total = ImageStats()
    for ep in episodes:
        part = ImageStats()
        part.update(ep)
        total.merge(part)
    got = total.result()
    pixels = np.concatenate([e.reshape(-1, 3) for e in episodes]).astype(np.float64) / 255.0
    for key in ("min", "max", "mean", "std", *QKEYS):
        assert got[key].shape == (3, 1, 1)
    np.testing.assert_allclose(got["mean"].ravel(), pixels.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(got["std"].ravel(), pixels.std(axis=0), rtol=1e-10)
    np.testing.assert_array_equal(got["min"].ravel(), pixels.min(axis=0))
    np.testing.assert_array_equal(got["max"].ravel(), pixels.max(axis=0))
    for key, q in zip(QKEYS, QUANTILES, strict=True):
        np.testing.assert_array_equal(got[key].ravel(), np.quantile(pixels, q, axis=0, method="inverted_cdf"))
    assert got["count"].tolist() == [12]


def test_vector_stats_two_passes_match_numpy_within_one_bin() -> None:
    rng = np.random.default_rng(1)
    chunks = [rng.normal(loc=[0.0, 5.0, -2.0], scale=[1.0, 0.1, 3.0], size=(n, 3)) for n in (50, 400, 7, 300)]
    chunks.append(np.full((20, 3), [0.5, 5.0, 1.0]))
    stats = VectorStats(3, num_bins=1024)
    for c in chunks:
        stats.observe_range(c)
    for c in chunks:
        stats.update(c)
    got = stats.result()
    allv = np.concatenate(chunks)
    np.testing.assert_allclose(got["mean"], allv.mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got["std"], allv.std(axis=0), rtol=1e-10)
    np.testing.assert_array_equal(got["min"], allv.min(axis=0))
    np.testing.assert_array_equal(got["max"], allv.max(axis=0))
    bin_width = (allv.max(axis=0) - allv.min(axis=0)) / 1024
    for key, q in zip(QKEYS, QUANTILES, strict=True):
        want = np.quantile(allv, q, axis=0, method="inverted_cdf")  # the sample whose rank reaches q
        assert np.all(np.abs(got[key] - want) <= bin_width + 1e-12), (key, got[key], want, bin_width)
    assert got["count"].tolist() == [len(allv)]


def test_vector_stats_constant_dimension_and_scalar_input() -> None:
    stats = VectorStats(1, num_bins=16)
    values = np.array([2.0, 2.0, 2.0])
    stats.observe_range(values)
    stats.update(values)
    got = stats.result()
    for key in ("min", "max", "mean", *QKEYS):
        assert got[key].tolist() == [2.0]
    assert got["std"].tolist() == [0.0]


def test_vector_stats_refuses_data_outside_the_first_pass() -> None:
    stats = VectorStats(2)
    stats.observe_range(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="outside the range"):
        stats.update(np.ones((3, 2)))


def test_exact_vector_stats() -> None:
    v = np.arange(12, dtype=np.float64).reshape(6, 2)
    got = exact_vector_stats(v)
    assert got["min"].tolist() == [0.0, 1.0]
    assert got["max"].tolist() == [10.0, 11.0]
    assert got["q50"].tolist() == [5.0, 6.0]
    assert got["count"].tolist() == [6]
