"""Fixtures of the collect tests: what two builds must agree on, array for array.

The Ray setup (loopback only, private temp dir, no process left behind, a local cluster) is in the
top-level ``tests/conftest.py``: the study tests use it too.
"""

from __future__ import annotations

import pytest


def _dataset_arrays(path, *, instruction_index: bool = False) -> dict:
    """Every array and attribute of every demo, plus the masks; instruction rows compared as strings
    (the instruction table's order depends on which episode was written first), and also as stored rows with
    ``instruction_index`` (two builds that write episodes in the same order)."""
    from vlnav_data.dataset import DatasetReader

    out = {}
    with DatasetReader(path) as r:
        for n in r.demo_names:
            e = r.episode(n)
            for k in r.keys(n):
                if instruction_index or k != "instruction_index":
                    out[(n, k)] = e[k]
            out[(n, "instructions")] = e["instructions"]
            out[(n, "attrs")] = e["attrs"]
        out["masks"] = (r.split("train"), r.split("valid"))
    return out


def _assert_same_arrays(a: dict, b: dict) -> None:
    import numpy as np

    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], np.ndarray):
            np.testing.assert_array_equal(a[k], b[k], err_msg=str(k))
        else:
            assert a[k] == b[k], k


@pytest.fixture(scope="session")
def dataset_arrays():
    """``dataset_arrays(path, instruction_index=False)``: what two builds must agree on, as a dict."""
    return _dataset_arrays


@pytest.fixture(scope="session")
def assert_same_arrays():
    """``assert_same_arrays(a, b)`` for two :func:`dataset_arrays` dicts."""
    return _assert_same_arrays
