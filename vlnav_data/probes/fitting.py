"""Fit a probe on train rows, score it on valid rows, beside its controls (pure numpy in, numbers out).

Every probe is reported with:

- ``probe``: the linear model on the true labels (ridge regression with cross-validated alpha, or
  logistic regression with cross-validated C), inputs standardised on the train rows;
- ``shuffled``: the same model fit on train labels permuted across the train rows (information
  control: what the probe scores when the labels carry no information about the inputs). Ridge
  re-chooses its alpha by cross-validation (closed form, cheap); logistic regression reuses the C chosen
  on the true labels and fits once, because cross-validating logistic regression on noise labels never
  converges and cost 141 of 150 CPU-seconds of a colour probe (``bench/RESULTS.md``, "Linear probe");
- ``baseline``: the train mean (regression) or the train majority class (classification) predicted
  for every valid row;
- ``mlp``: an MLP of the BC policy's size (``E -> 256 -> 256 -> out``, ReLU, Adam, early stopping)
  on the true labels (capacity control: a gap to ``probe`` means the information is there but not
  linearly readable).

Cross-validation folds are grouped by episode (``groups``), so frames of one episode never sit on
both sides of a fold: consecutive frames are near-duplicates and would make the smallest alpha win. The
ridge itself, the folds and R² are :mod:`vlnav_data.probes.ridge`.
"""

from __future__ import annotations

import contextlib
import inspect
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vlnav_data.errors import ConfigError
from vlnav_data.probes.ridge import (
    DEFAULT_ALPHAS,
    RidgeFolds,
    as_2d,
    check_rows,
    group_folds,
    r2_per_column,
    r2_score,
)

#: Inverse regularisation strengths tried for logistic regression (inputs standardised).
DEFAULT_CS = (1e-3, 1e-2, 1e-1, 1.0)
#: Hidden layers of the BC policy the MLP control mirrors.
BC_HIDDEN_SIZES = (256, 256)


@dataclass(frozen=True, kw_only=True)
class ProbeScore:
    """One probe's valid-split score beside its controls.

    Attributes:
        target: what was predicted (``action``, ``bearing``, ``distance``, ``colour``, ``spatial_word``).
        kind: ``regression`` or ``classification``.
        metric: ``r2`` (pooled over outputs, see :func:`r2_score`) or ``accuracy``.
        probe: the linear probe's valid score on true labels.
        shuffled: the same probe fit on shuffled train labels, scored on true valid labels.
        baseline: train mean / majority class predicted for every valid row.
        mlp: the BC-sized MLP's valid score, or ``None`` when not run.
        chance: ``1 / number of classes`` for classification, ``None`` for regression.
        num_train: train rows used.
        num_valid: valid rows scored.
        details: extra figures (chosen alpha/C, per-output R², classes, angular error, ...).
    """

    target: str
    kind: str
    metric: str
    probe: float
    shuffled: float
    baseline: float
    mlp: float | None
    chance: float | None
    num_train: int
    num_valid: int
    details: dict[str, Any] = field(default_factory=dict)


def fit_logistic(
    x: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    *,
    cs: Sequence[float] = DEFAULT_CS,
    n_folds: int = 5,
    seed: int = 0,
    max_iter: int = 300,
) -> Any:
    """Standardise inputs, then multinomial logistic regression with C chosen by episode-grouped CV.

    Returns:
        A fitted sklearn ``Pipeline`` (``StandardScaler`` -> ``LogisticRegressionCV``).
    """
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    labels = np.asarray(labels)
    folds = group_folds(groups, n_folds)
    kwargs: dict[str, Any] = dict(Cs=list(cs), cv=folds, max_iter=max_iter, random_state=seed, scoring="accuracy")
    # Newer scikit-learn warns about changing defaults; state the values we mean where the version has them.
    accepted = inspect.signature(LogisticRegressionCV).parameters
    if "l1_ratios" in accepted:
        kwargs["l1_ratios"] = (0.0,)
    if "use_legacy_attributes" in accepted:
        kwargs["use_legacy_attributes"] = False
    model = make_pipeline(StandardScaler(), LogisticRegressionCV(**kwargs))
    return model.fit(np.asarray(x, np.float64), labels)


def fit_logistic_at(x: np.ndarray, labels: np.ndarray, *, c: float, seed: int = 0, max_iter: int = 300) -> Any:
    """Standardise inputs, then multinomial logistic regression at a given C (no cross-validation).

    Returns:
        A fitted sklearn ``Pipeline`` (``StandardScaler`` -> ``LogisticRegression``).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter, random_state=seed))
    return model.fit(np.asarray(x, np.float64), np.asarray(labels))


def fit_mlp(x: np.ndarray, y: np.ndarray, *, classify: bool, seed: int, max_iter: int) -> Any:
    """The capacity control: ``E -> 256 -> 256 -> out`` MLP (BC policy size), standardised inputs.

    Regression targets are standardised inside (``TransformedTargetRegressor``); early stopping holds
    out 10% of the train rows.
    """
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    common = dict(
        hidden_layer_sizes=BC_HIDDEN_SIZES,
        activation="relu",
        solver="adam",
        early_stopping=True,
        n_iter_no_change=10,
        max_iter=max_iter,
        random_state=seed,
    )
    if classify:
        model = make_pipeline(StandardScaler(), MLPClassifier(**common))
        return model.fit(np.asarray(x, np.float32), np.asarray(y))
    reg = TransformedTargetRegressor(regressor=MLPRegressor(**common), transformer=StandardScaler())
    model = make_pipeline(StandardScaler(), reg)
    y2 = as_2d(y)
    return model.fit(np.asarray(x, np.float32), y2[:, 0] if y2.shape[1] == 1 else y2)


@contextlib.contextmanager
def _quiet_convergence() -> Iterator[None]:
    """Hide sklearn's ConvergenceWarning (the shuffled-label control is expected not to converge)."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def regression_probe(
    target: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    groups_train: np.ndarray,
    x_valid: np.ndarray,
    y_valid: np.ndarray,
    *,
    seed: int = 0,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    n_folds: int = 5,
    mlp_max_iter: int | None = 200,
    progress: Callable[[str], None] | None = None,
    folds: RidgeFolds | None = None,
) -> tuple[ProbeScore, np.ndarray]:
    """Ridge probe with its controls.

    Args:
        target: label name for the report.
        x_train, x_valid: float ``(N, E)`` inputs.
        y_train, y_valid: float ``(N,)`` or ``(N, K)`` targets.
        groups_train: ``(N_train,)`` episode id per train row (CV folds never split an episode).
        seed: seeds the label shuffle and the MLP.
        mlp_max_iter: MLP epochs cap; ``None`` skips the MLP control.
        progress: called with the stage about to run (``ridge``, ``shuffled-label control``, ``MLP``).
        folds: the :class:`RidgeFolds` of ``(x_train, groups_train, n_folds)`` when several targets share
            them (computed here otherwise).

    Returns:
        ``(score, valid_predictions)``; predictions float64 ``(N_valid, K)`` from the linear probe.
    """
    check_rows(x_train, y_train, x_valid, y_valid)
    say = progress or (lambda stage: None)
    ytr, yva = as_2d(y_train), as_2d(y_valid)
    rng = np.random.default_rng(seed)
    with _quiet_convergence():
        say("ridge")
        folds = folds if folds is not None else RidgeFolds(x_train, groups_train, n_folds)
        model = folds.fit(ytr, alphas)
        pred = as_2d(model.predict(np.asarray(x_valid, np.float64)))
        say("shuffled-label control")
        y_shuffled = ytr[rng.permutation(len(ytr))]
        shuffled_model = folds.fit(y_shuffled, alphas)
        shuffled_pred = as_2d(shuffled_model.predict(np.asarray(x_valid, np.float64)))
        shuffled = r2_score(yva, shuffled_pred)
        mlp = mlp_pred = None
        if mlp_max_iter is not None:
            say("MLP 256-256 control")
            mlp_model = fit_mlp(x_train, ytr, classify=False, seed=seed, max_iter=mlp_max_iter)
            mlp_pred = as_2d(mlp_model.predict(np.asarray(x_valid, np.float32)))
            mlp = r2_score(yva, mlp_pred)
    mean_pred = np.broadcast_to(ytr.mean(axis=0), yva.shape)
    baseline = r2_score(yva, mean_pred)

    def per_column(p: np.ndarray) -> list[float | None]:
        return r2_per_column(yva, p)

    per_output = per_column(pred)
    score = ProbeScore(
        target=target,
        kind="regression",
        metric="r2",
        probe=r2_score(yva, pred),
        shuffled=shuffled,
        baseline=baseline,
        mlp=mlp,
        chance=None,
        num_train=len(ytr),
        num_valid=len(yva),
        details={
            "alpha": model.alpha_,
            "shuffled_alpha": shuffled_model.alpha_,
            "r2_per_output": per_output,
            "shuffled_r2_per_output": per_column(shuffled_pred),
            "mlp_r2_per_output": per_column(mlp_pred) if mlp_pred is not None else None,
            "baseline_r2_per_output": per_column(mean_pred),
            "mse_per_output": [float(v) for v in np.mean((pred - yva) ** 2, axis=0)],
            "mse": float(np.mean((pred - yva) ** 2)),
            "baseline_mse": float(np.mean((ytr.mean(axis=0) - yva) ** 2)),
        },
    )
    return score, pred


def check_classes(target: str, labels_train: np.ndarray) -> None:
    """Raise ConfigError unless the train labels hold at least two classes (a probe needs a choice)."""
    classes = np.unique(np.asarray(labels_train))
    if len(classes) < 2:
        raise ConfigError(
            f"the '{target}' probe needs at least 2 classes in the train split, got {classes.tolist()}; "
            "build a dataset whose train split covers more than one value, or leave this target out."
        )


def classification_probe(
    target: str,
    x_train: np.ndarray,
    labels_train: np.ndarray,
    groups_train: np.ndarray,
    x_valid: np.ndarray,
    labels_valid: np.ndarray,
    *,
    seed: int = 0,
    cs: Sequence[float] = DEFAULT_CS,
    n_folds: int = 5,
    mlp_max_iter: int | None = 200,
    logistic_max_iter: int = 300,
    progress: Callable[[str], None] | None = None,
) -> tuple[ProbeScore, np.ndarray]:
    """Logistic-regression probe with its controls.

    Args:
        labels_train, labels_valid: ``(N,)`` class labels (strings or ints).
        progress: called with the stage about to run (``logistic regression``, ``shuffled-label
            control``, ``MLP``).

    Returns:
        ``(score, valid_predictions)``; predictions ``(N_valid,)`` from the linear probe.

    Raises:
        ConfigError: fewer than 2 classes among the train labels.
    """
    check_rows(x_train, labels_train, x_valid, labels_valid)
    ltr, lva = np.asarray(labels_train), np.asarray(labels_valid)
    check_classes(target, ltr)
    classes, counts = np.unique(ltr, return_counts=True)
    say = progress or (lambda stage: None)
    rng = np.random.default_rng(seed)
    with _quiet_convergence():
        say("logistic regression")
        model = fit_logistic(x_train, ltr, groups_train, cs=cs, n_folds=n_folds, seed=seed, max_iter=logistic_max_iter)
        pred = model.predict(np.asarray(x_valid, np.float64))
        chosen_c = float(np.atleast_1d(model[-1].C_)[0])
        say("shuffled-label control")
        shuffled_labels = ltr[rng.permutation(len(ltr))]
        shuffled_model = fit_logistic_at(x_train, shuffled_labels, c=chosen_c, seed=seed, max_iter=logistic_max_iter)
        shuffled = float(np.mean(shuffled_model.predict(np.asarray(x_valid, np.float64)) == lva))
        mlp = None
        if mlp_max_iter is not None:
            say("MLP 256-256 control")
            mlp_model = fit_mlp(x_train, ltr, classify=True, seed=seed, max_iter=mlp_max_iter)
            mlp = float(np.mean(mlp_model.predict(np.asarray(x_valid, np.float32)) == lva))
    majority = classes[np.argmax(counts)]
    score = ProbeScore(
        target=target,
        kind="classification",
        metric="accuracy",
        probe=float(np.mean(pred == lva)),
        shuffled=shuffled,
        baseline=float(np.mean(lva == majority)),
        mlp=mlp,
        chance=1.0 / len(classes),
        num_train=len(ltr),
        num_valid=len(lva),
        details={
            "C": chosen_c,
            "shuffled_C": chosen_c,
            "classes": [str(c) for c in classes],
            "train_class_counts": [int(c) for c in counts],
            "majority_class": str(majority),
        },
    )
    return score, pred
