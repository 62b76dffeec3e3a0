"""Ridge regression with grouped cross-validation, written out (closed form, one eigendecomposition per fold).

Inputs are standardised on the train rows; alpha is chosen on folds grouped by episode (:func:`group_folds`),
and every regression target of a probe shares the folds' eigendecompositions (:class:`RidgeFolds`).
``tests/probes/test_probes_ridge_sklearn.py`` checks the fit against scikit-learn's ``Ridge`` with
``GroupKFold``. R² is pooled over output columns (:func:`r2_score`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vlnav_data.errors import ConfigError

#: Ridge penalties tried by cross-validation (inputs standardised).
DEFAULT_ALPHAS = tuple(float(a) for a in np.logspace(-3, 5, 17))


def group_folds(groups: np.ndarray, n_folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cross-validation splits over rows that keep every group (episode) on one side.

    Args:
        groups: int ``(N,)`` group id per row.
        n_folds: wanted number of folds; reduced to the number of groups when there are fewer.

    Returns:
        A list of ``(train_rows, test_rows)`` int64 index arrays.

    Raises:
        ConfigError: fewer than 2 distinct groups (no fold can hold one out).
    """
    from sklearn.model_selection import GroupKFold

    groups = np.asarray(groups)
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise ConfigError(
            f"cross-validation needs at least 2 train episodes, got {n_groups}; build a dataset with more "
            "episodes in its train split."
        )
    folds = GroupKFold(n_splits=min(n_folds, n_groups))
    return [(tr.astype(np.int64), te.astype(np.int64)) for tr, te in folds.split(groups, groups=groups)]


def r2_score(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Coefficient of determination pooled over output columns: ``1 - sum(SSE) / sum(SS)``.

    Pooled (sklearn's ``variance_weighted``) rather than averaged per column, so an output that barely
    varies in the valid split (a saturated wheel) cannot swing the score; per-column values are
    reported separately.
    """
    from sklearn.metrics import r2_score as _r2

    y_true = as_2d(y_true)
    y_pred = as_2d(y_pred)
    return float(_r2(y_true, y_pred, multioutput="variance_weighted"))


def r2_per_column(y_true: np.ndarray, y_pred: np.ndarray) -> list[float | None]:
    """R² of each output column; ``None`` for a column that does not vary in ``y_true`` (undefined, never NaN)."""
    y_true, y_pred = as_2d(y_true), as_2d(y_pred)
    ss = ((y_true - y_true.mean(axis=0)) ** 2).sum(axis=0)
    sse = ((y_true - y_pred) ** 2).sum(axis=0)
    return [float(1.0 - e / t) if t > 0 else None for e, t in zip(sse, ss, strict=True)]


def r2_undefined(y_true: np.ndarray) -> str:
    """Why R² cannot be computed on these labels ("" when it can): it needs 2 rows that differ."""
    y = as_2d(y_true)
    if len(y) < 2:
        return f"R² needs at least 2 valid rows, got {len(y)}"
    if not np.any(np.ptp(y, axis=0) > 0):
        return f"R² needs labels that vary, but all {len(y)} valid rows have the same value"
    return ""


def as_2d(y: np.ndarray) -> np.ndarray:
    """Labels as float64 ``(N, K)`` (a vector becomes one column)."""
    y = np.asarray(y, dtype=np.float64)
    return y[:, None] if y.ndim == 1 else y


def check_rows(x_train: np.ndarray, y_train: np.ndarray, x_valid: np.ndarray, y_valid: np.ndarray) -> None:
    """Refuse inputs and labels of different lengths (a :class:`ConfigError`)."""
    if len(x_train) != len(y_train) or len(x_valid) != len(y_valid):
        raise ConfigError(
            f"inputs and labels differ in length: train {len(x_train)} vs {len(y_train)}, "
            f"valid {len(x_valid)} vs {len(y_valid)}"
        )
    if len(x_train) == 0 or len(x_valid) == 0:
        raise ConfigError(
            f"a probe needs rows in both splits; got {len(x_train)} train and {len(x_valid)} valid rows. "
            "Check the dataset's /mask/train and /mask/valid."
        )


@dataclass(frozen=True, eq=False)
class RidgeModel:
    """A fitted ridge probe: ``predict(x) = ((x - mean) / scale) @ coef + intercept``.

    Attributes:
        mean, scale: float64 ``(E,)`` train standardisation (``scale`` 1 where a column is constant).
        coef: float64 ``(E, K)``; intercept: float64 ``(K,)``.
        alpha_: the penalty chosen by cross-validation.
        cv_mse: float64 ``(len(alphas),)`` pooled held-out MSE of every alpha tried.
    """

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    alpha_: float
    cv_mse: np.ndarray

    def predict(self, x: np.ndarray) -> np.ndarray:
        """float ``(N, E)`` -> float64 ``(N, K)``."""
        return ((np.asarray(x, np.float64) - self.mean) / self.scale) @ self.coef + self.intercept


def _standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    return (x - mean) / scale, mean, scale


class RidgeFolds:
    """The input side of ridge with episode-grouped CV, computed once and shared by every target.

    Standardisation, the Gram matrix, and one eigendecomposition per fold (and of all rows) depend on
    the inputs and folds only, so every target fit on the same rows -- the true labels, the shuffled
    control, action, bearing and distance -- reuses them; :meth:`fit` then costs matrix products. Results
    are identical to fitting each target from scratch (``RidgeFolds(x, groups).fit(y)`` is the one-target fit).

    Closed form through the Gram matrix: ``X^T X`` is computed once for all rows, each fold's training
    Gram is that minus the held-out rows' part (centred with the fold's mean), and one eigendecomposition
    per fold gives every alpha's coefficients. The alpha with the smallest pooled held-out MSE is refit
    on all rows. Cost: one ``N x E x E`` product plus ``n_folds + 1`` ``E x E`` eigendecompositions, paid
    once per input matrix.

    Args:
        x: float ``(N, E)`` inputs.
        groups: ``(N,)`` episode id per row.
        n_folds: CV folds (grouped by episode).
    """

    def __init__(self, x: np.ndarray, groups: np.ndarray, n_folds: int = 5) -> None:
        self.xs, self.mean, self.scale = _standardise(np.asarray(x, np.float64))
        self.n = len(self.xs)
        self.sum_x = self.xs.sum(axis=0)
        gram_all = self.xs.T @ self.xs
        self.folds = []
        for _tr, te in group_folds(groups, n_folds):
            xte = self.xs[te]
            n_tr = self.n - len(te)
            mx = (self.sum_x - xte.sum(0)) / n_tr
            gram = gram_all - xte.T @ xte - n_tr * np.outer(mx, mx)
            self.folds.append((te, n_tr, mx, *_eigh(gram)))
        mx = self.sum_x / self.n
        self.full = (mx, *_eigh(gram_all - self.n * np.outer(mx, mx)))

    def fit(self, y: np.ndarray, alphas: Sequence[float] = DEFAULT_ALPHAS) -> RidgeModel:
        """Ridge on targets ``y`` (``(N,)`` or ``(N, K)``) with alpha chosen by the folds' pooled held-out MSE."""
        y2 = as_2d(y)
        a = np.asarray(alphas, dtype=np.float64)
        xty_all, sum_y = self.xs.T @ y2, y2.sum(axis=0)
        sse = np.zeros(len(a))
        for te, n_tr, mx, lam, vec in self.folds:
            xte, yte = self.xs[te], y2[te]
            my = (sum_y - yte.sum(0)) / n_tr
            xty = xty_all - xte.T @ yte - n_tr * np.outer(mx, my)
            for i, coef in enumerate(_ridge_solutions(lam, vec, xty, a)):
                sse[i] += float(np.sum(((xte - mx) @ coef + my - yte) ** 2))
        best = int(np.argmin(sse))
        mx, lam, vec = self.full
        my = sum_y / self.n
        coef = _ridge_solutions(lam, vec, xty_all - self.n * np.outer(mx, my), a[best : best + 1])[0]
        return RidgeModel(
            mean=self.mean,
            scale=self.scale,
            coef=coef,
            intercept=my - mx @ coef,
            alpha_=float(a[best]),
            cv_mse=sse / (len(y2) * y2.shape[1]),
        )


def _eigh(gram: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lam, vec = np.linalg.eigh(gram)
    return np.clip(lam, 0.0, None), vec


def _ridge_solutions(lam: np.ndarray, vec: np.ndarray, xty: np.ndarray, alphas: np.ndarray) -> list[np.ndarray]:
    """Coefficients ``(E, K)`` of ridge for each alpha from the centred Gram matrix's eigenpairs and ``X^T y``."""
    vty = vec.T @ xty
    return [vec @ (vty / (lam + a)[:, None]) for a in alphas]
