"""SPL and path lengths against hand-computed values (success and step ratios: tests/stats)."""

import numpy as np
import pytest

from vlnav_data.policy.metrics import path_length_m, shortest_path_m, spl


def test_spl_hand_values():
    success = np.array([True, True, False, True])
    shortest = np.array([1.0, 2.0, 1.0, 0.0])
    taken = np.array([1.0, 4.0, 0.5, 0.3])
    # 1/1, 2/4, 0 (failed), 0 (l=0, succeeded after moving: 0/max(0.3, 0) = 0)
    assert spl(success, shortest, taken) == pytest.approx((1.0 + 0.5 + 0.0 + 0.0) / 4)
    # l=0 and never moved: 0/0 is taken as 1.
    assert spl(np.array([True]), np.array([0.0]), np.array([0.0])) == 1.0
    # A path shorter than the bound (cannot happen physically) is capped at 1.
    assert spl(np.array([True]), np.array([2.0]), np.array([1.0])) == 1.0
    assert spl(np.array([], bool), np.array([]), np.array([])) == 0.0


def test_path_and_shortest_lengths():
    assert path_length_m(np.array([[0, 0], [3, 4], [3, 5]])) == pytest.approx(6.0)
    assert path_length_m(np.zeros((1, 2))) == 0.0
    assert shortest_path_m(np.array([0.0, 0.0]), np.array([3.0, 4.0]), 0.5) == pytest.approx(4.5)
    assert shortest_path_m(np.array([0.0, 0.0]), np.array([0.1, 0.0]), 0.5) == 0.0
