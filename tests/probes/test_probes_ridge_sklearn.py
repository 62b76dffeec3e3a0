"""The hand-written ridge probe (probes/ridge.py) against scikit-learn's Ridge on the same grouped folds.

RidgeFolds standardises once on all rows, then picks alpha by the held-out squared error pooled over
episode-grouped folds (GroupKFold) and refits on all rows. The reference below does the same with
scikit-learn doing every solve, so any error in the Gram-matrix downdating, the centring or the
eigendecomposition shows up as a different CV curve, a different alpha or different coefficients.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.model_selection import GroupKFold
from sklearn.preprocessing import StandardScaler

from vlnav_data.probes.ridge import DEFAULT_ALPHAS, RidgeFolds


def _noisy_problem(seed: int, n_episodes: int, dim: int, outputs: int):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(5, 40, size=n_episodes)  # unequal episodes, unequal folds
    groups = np.repeat(np.arange(n_episodes), lengths)
    n = len(groups)
    x = rng.normal(size=(n, dim)) * rng.uniform(0.1, 5.0, size=dim) + rng.normal(size=dim)
    x[:, 0] = 3.0  # a constant column: scale 1, as the probe documents
    w = rng.normal(size=(dim, outputs))
    y = x @ w + 2.0 * rng.normal(size=(n, outputs)) + 1.5
    return x, y, groups


@pytest.mark.parametrize(("seed", "dim", "outputs"), [(0, 12, 1), (1, 40, 2), (2, 80, 3)])
def test_ridge_folds_match_sklearn_ridge_with_group_kfold(seed, dim, outputs):
    x, y, groups = _noisy_problem(seed, n_episodes=23, dim=dim, outputs=outputs)
    model = RidgeFolds(x, groups, n_folds=5).fit(y)

    scaler = StandardScaler().fit(x)
    xs = scaler.transform(x)
    folds = list(GroupKFold(n_splits=5).split(xs, y, groups))
    sse = np.zeros(len(DEFAULT_ALPHAS))
    for i, alpha in enumerate(DEFAULT_ALPHAS):
        for train, test in folds:
            pred = Ridge(alpha=alpha).fit(xs[train], y[train]).predict(xs[test])
            sse[i] += np.sum((pred.reshape(y[test].shape) - y[test]) ** 2)
    expected_cv_mse = sse / y.size
    np.testing.assert_allclose(model.cv_mse, expected_cv_mse, rtol=1e-7)
    best = float(DEFAULT_ALPHAS[int(np.argmin(expected_cv_mse))])
    assert model.alpha_ == best

    reference = Ridge(alpha=best).fit(xs, y)
    np.testing.assert_allclose(model.coef, reference.coef_.T.reshape(dim, outputs), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(model.predict(x), reference.predict(xs).reshape(-1, outputs), rtol=1e-7, atol=1e-9)


def test_alpha_choice_is_not_the_smallest_on_noisy_data():
    # With strong noise and few rows per dimension the CV must pick a real penalty.
    x, y, groups = _noisy_problem(5, n_episodes=12, dim=120, outputs=1)
    model = RidgeFolds(x, groups).fit(y)
    assert model.alpha_ > min(DEFAULT_ALPHAS)
