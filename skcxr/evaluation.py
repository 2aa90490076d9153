"""Fitting several models on one patient-wise split, patient bootstrap intervals, result tables.

:func:`holdout_report` is the honest way to compare models on a held-out
test set:

- every model is cloned before it is fitted (the caller's objects stay
  unfitted) and the patient ids reach every inner validation split
  (:func:`skcxr.model_selection.groups_params`);
- F1 and Hamming loss are reported at the threshold 0.5 *and* at per-label
  thresholds tuned on the training data only (the model's own
  ``tuned_thresholds_``, found on a patient-disjoint inner validation split,
  or out-of-fold training predictions), never on the test part;
- macro-AUC comes with a percentile interval from a bootstrap over test
  *patients* (:func:`bootstrap_macro_auc`), and differences to a baseline with
  a paired interval on the same resamples (:func:`paired_bootstrap_macro_auc`);
- with ``sources_test`` (e.g. two data sets of different resolution and label
  mix) every metric is also given within each source, where a model cannot
  score by telling the sources apart.

Resampling patients, not images, matters: the images of one patient are
correlated, and an image bootstrap gives intervals that are too narrow.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import time
import warnings
from collections import namedtuple
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn import config_context
from sklearn.base import clone
from sklearn.model_selection import cross_val_predict
from sklearn.utils import check_random_state
from tqdm.auto import tqdm

from ._validation import check_multilabel_Y
from .metrics import macro_auc_score, multilabel_report, tune_thresholds
from .model_selection import MultilabelStratifiedGroupKFold, groups_params

__all__ = [
    "BootstrapInterval",
    "HoldoutResult",
    "bootstrap_class_auc",
    "bootstrap_macro_auc",
    "groups_fit_params",
    "holdout_report",
    "jsonable",
    "paired_bootstrap_macro_auc",
    "routing_context",
]

#: Point estimate and percentile interval of a bootstrap.
BootstrapInterval = namedtuple("BootstrapInterval", ["estimate", "low", "high"])

_AT_05 = ["Micro-F1", "Macro-F1", "Hamming loss"]
_TUNED = [f"{c} (tuned)" for c in _AT_05]
_AUC = ["Macro-AUC", "AUC low", "AUC high"]
_DELTA = ["ΔAUC", "ΔAUC low", "ΔAUC high"]
_CHUNK = 1 << 21  # resample x image weights held at once (16 MB of float64)


# -- patient bootstrap ---------------------------------------------------------------------


def _seed(random_state) -> int | np.random.Generator:
    """An int seed (or Generator) for numpy's default_rng from any random_state sklearn accepts."""
    if random_state is None or isinstance(random_state, np.random.RandomState):
        return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
    if isinstance(random_state, (numbers.Integral, np.random.Generator)):
        return random_state
    raise ValueError(f"random_state must be None, an int, a RandomState or a Generator, got {random_state!r}.")


def _check_bootstrap_args(n_boot, confidence):
    if isinstance(n_boot, bool) or not isinstance(n_boot, numbers.Integral) or n_boot < 1:
        raise ValueError(f"n_boot must be an int >= 1, got {n_boot!r}.")
    if isinstance(confidence, bool) or not isinstance(confidence, numbers.Real) or not 0 < confidence < 1:
        raise ValueError(f"confidence must be a float in (0, 1), got {confidence!r}.")


def _check_scores(Y_score, shape, name) -> np.ndarray:
    P = _positive_proba(Y_score)
    if P.shape != shape:
        raise ValueError(f"{name} has shape {P.shape} but Y_true has shape {shape}.")
    if not np.isfinite(P).all():
        raise ValueError(f"{name} contains NaN or infinity.")
    return P


def _positive_proba(proba) -> np.ndarray:
    """(n, L) float scores; a list of per-label (n, 2) arrays (MultiOutputClassifier) gives its last columns."""
    if isinstance(proba, (list, tuple)) and proba and all(np.ndim(p) == 2 for p in proba):
        proba = np.column_stack([
            np.asarray(p)[:, 1] if np.shape(p)[1] == 2 else np.zeros(len(p)) for p in proba
        ])
    return np.asarray(proba, dtype=float)


def _patient_draws(groups, n_samples, n_boot, random_state):
    """(inverse, counts): patient index of each sample and (n_boot, n_patients) draw counts."""
    if groups is None:
        groups = np.arange(n_samples)
    groups = np.asarray(groups)
    if groups.ndim != 1 or len(groups) != n_samples:
        raise ValueError(f"groups must be 1-D with one patient id per sample ({n_samples}), got shape {groups.shape}.")
    _, inverse = np.unique(groups, return_inverse=True)
    n_patients = int(inverse.max()) + 1
    rng = np.random.default_rng(random_state)
    draws = rng.integers(0, n_patients, size=(n_boot, n_patients))
    offsets = np.arange(n_boot)[:, None] * n_patients
    counts = np.bincount((draws + offsets).ravel(), minlength=n_boot * n_patients).reshape(n_boot, n_patients)
    return inverse, counts


def _replicate_class_aucs(Y, scores, inverse, counts) -> np.ndarray:
    """AUC of every class of every score matrix on every resample: (len(scores), n_boot, n_labels).

    Resample ``b`` holds image ``i`` ``counts[b, inverse[i]]`` times; the AUC of
    such a sample is the weighted Mann-Whitney statistic (ties count 1/2),
    computed for all resamples at once from cumulative sums over the images
    sorted by score. NaN where a class holds one value only in a resample.
    """
    n, n_labels = Y.shape
    n_boot = counts.shape[0]
    out = np.full((len(scores), n_boot, n_labels), np.nan)
    step = max(1, _CHUNK // max(n, 1))
    for start in range(0, n_boot, step):
        W = counts[start:start + step][:, inverse].astype(float)  # (b, n)
        for label in range(n_labels):
            y = Y[:, label].astype(bool)
            if y.all() or not y.any():
                continue
            w_pos, w_neg = W[:, y].sum(axis=1), W[:, ~y].sum(axis=1)
            defined = (w_pos > 0) & (w_neg > 0)
            for m, P in enumerate(scores):
                order = np.argsort(P[:, label], kind="stable")
                s, y_sorted = P[order, label], y[order]
                first = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # start of each tie group
                group = np.cumsum(np.r_[True, s[1:] != s[:-1]]) - 1
                cum = np.cumsum(W[:, order] * ~y_sorted, axis=1)
                end = cum[:, np.r_[first[1:] - 1, n - 1]]  # negatives up to each group's end
                before = np.concatenate([np.zeros((len(W), 1)), end[:, :-1]], axis=1)
                below = before + 0.5 * (end - before)  # negatives below, ties half
                pos = np.flatnonzero(y_sorted)
                num = (W[:, order[pos]] * below[:, group[pos]]).sum(axis=1)
                with np.errstate(invalid="ignore", divide="ignore"):
                    out[m, start:start + step, label] = np.where(defined, num / (w_pos * w_neg), np.nan)
    return out


def _replicate_macro_aucs(Y, scores, inverse, counts) -> np.ndarray:
    """Macro-AUC of every score matrix on every resample: (len(scores), n_boot).

    Equal to :func:`skcxr.metrics.macro_auc_score` on the resampled rows: a
    class with one value only in a resample is left out of that resample's mean.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # resamples with no defined class: NaN
        return np.nanmean(_replicate_class_aucs(Y, scores, inverse, counts), axis=2)


def _interval(estimate, replicates, confidence) -> BootstrapInterval:
    replicates = replicates[np.isfinite(replicates)]
    if not np.isfinite(estimate) or replicates.size == 0:
        return BootstrapInterval(float(estimate), math.nan, math.nan)
    alpha = 100 * (1 - confidence) / 2
    low, high = np.percentile(replicates, [alpha, 100 - alpha])
    return BootstrapInterval(float(estimate), float(low), float(high))


def _quiet_macro_auc(Y, P) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return macro_auc_score(Y, P)


def bootstrap_macro_auc(Y_true, Y_score, groups=None, *, n_boot=1000, confidence=0.95,
                        random_state=None) -> BootstrapInterval:
    """Macro-AUC with a percentile interval from a bootstrap over patients.

    Each resample draws as many patients as the test set holds, with
    replacement, and takes all images of every drawn patient (as often as the
    patient was drawn); its macro-AUC is :func:`skcxr.metrics.macro_auc_score`
    of those rows (a class with one value only in a resample is left out of
    that resample's mean). The interval is the percentile interval of the
    resampled values.

    Parameters
    ----------
    Y_true : array-like of shape (n_samples, n_labels)
        0/1 indicator matrix.
    Y_score : array-like of shape (n_samples, n_labels)
        Probabilities or scores.
    groups : array-like of shape (n_samples,), default=None
        Patient id of each image. ``None`` makes every image its own patient,
        which gives too narrow intervals when patients have several images.
    n_boot : int, default=1000
        Number of resamples.
    confidence : float, default=0.95
        Coverage of the interval.
    random_state : int, numpy Generator, RandomState or None, default=None
        Seeds the resampling; an int gives the same resamples in every call
        with the same patients, which makes intervals of several models (and
        :func:`paired_bootstrap_macro_auc`) refer to the same resamples.

    Returns
    -------
    BootstrapInterval
        Named tuple ``(estimate, low, high)``: the macro-AUC on all of
        ``Y_true`` and the interval; NaN where undefined.

    Notes
    -----
    Resample ``b`` takes patient ``k`` (in the order of ``numpy.unique(groups)``)
    ``c[b, k]`` times, where ``c`` counts the draws
    ``numpy.random.default_rng(random_state).integers(0, n_patients, (n_boot, n_patients))``.
    All resamples are scored at once (weighted Mann-Whitney statistic), so
    1000 resamples of a few hundred images take well under a second.

    Examples
    --------
    >>> import numpy as np
    >>> from skcxr.evaluation import bootstrap_macro_auc
    >>> rng = np.random.default_rng(0)
    >>> Y = rng.integers(0, 2, (300, 3))
    >>> P = np.clip(Y * 0.3 + rng.uniform(0, 0.7, Y.shape), 0, 1)
    >>> patients = np.arange(300) // 3            # 100 patients, 3 images each
    >>> auc, low, high = bootstrap_macro_auc(Y, P, patients, random_state=0)
    >>> bool(low < auc < high)
    True
    """
    _check_bootstrap_args(n_boot, confidence)
    Y = check_multilabel_Y(Y_true, name="Y_true")
    P = _check_scores(Y_score, Y.shape, "Y_score")
    inverse, counts = _patient_draws(groups, len(Y), n_boot, _seed(random_state))
    replicates = _replicate_macro_aucs(Y, [P], inverse, counts)[0]
    return _interval(_quiet_macro_auc(Y, P), replicates, confidence)


def paired_bootstrap_macro_auc(Y_true, Y_score_a, Y_score_b, groups=None, *, n_boot=1000,
                               confidence=0.95, random_state=None) -> BootstrapInterval:
    """Macro-AUC of a minus macro-AUC of b, with a paired bootstrap interval over patients.

    Both models are scored on the same resamples of patients (see
    :func:`bootstrap_macro_auc`), so the interval reflects the difference
    between the models, not the (shared) difficulty of the test patients. An
    interval that excludes 0 says that a beats (or trails) b on patients like
    these.

    Parameters
    ----------
    Y_true : array-like of shape (n_samples, n_labels)
        0/1 indicator matrix.
    Y_score_a, Y_score_b : array-like of shape (n_samples, n_labels)
        Scores of the two models on the same images.
    groups : array-like of shape (n_samples,), default=None
        Patient id of each image (``None``: every image its own patient).
    n_boot : int, default=1000
    confidence : float, default=0.95
    random_state : int, numpy Generator, RandomState or None, default=None

    Returns
    -------
    BootstrapInterval
        ``(estimate, low, high)`` of ``AUC(a) - AUC(b)``.

    Examples
    --------
    >>> import numpy as np
    >>> from skcxr.evaluation import paired_bootstrap_macro_auc
    >>> rng = np.random.default_rng(0)
    >>> Y = rng.integers(0, 2, (300, 3))
    >>> noise = rng.uniform(0, 1, Y.shape)
    >>> good, poor = Y * 0.5 + noise, Y * 0.1 + noise
    >>> delta, low, high = paired_bootstrap_macro_auc(Y, good, poor, np.arange(300) // 3, random_state=0)
    >>> bool(0 < low < delta < high)
    True
    """
    _check_bootstrap_args(n_boot, confidence)
    Y = check_multilabel_Y(Y_true, name="Y_true")
    A = _check_scores(Y_score_a, Y.shape, "Y_score_a")
    B = _check_scores(Y_score_b, Y.shape, "Y_score_b")
    inverse, counts = _patient_draws(groups, len(Y), n_boot, _seed(random_state))
    rep_a, rep_b = _replicate_macro_aucs(Y, [A, B], inverse, counts)
    return _interval(_quiet_macro_auc(Y, A) - _quiet_macro_auc(Y, B), rep_a - rep_b, confidence)


def bootstrap_class_auc(Y_true, Y_score, groups=None, *, target_names=None, n_boot=1000, confidence=0.95,
                        random_state=None) -> pd.DataFrame:
    """AUC of each class with a percentile interval from a bootstrap over patients.

    The resamples are those of :func:`bootstrap_macro_auc` (same patients,
    same ``random_state``: the same resamples), scored class by class. A
    resample in which a class holds one value only is left out of that
    class's interval.

    Parameters
    ----------
    Y_true : array-like of shape (n_samples, n_labels)
        0/1 indicator matrix.
    Y_score : array-like of shape (n_samples, n_labels)
        Probabilities or scores.
    groups : array-like of shape (n_samples,), default=None
        Patient id of each image (``None``: every image its own patient).
    target_names : list of str, default=None
        Class names (the index); ``"0", "1", ...`` by default.
    n_boot : int, default=1000
    confidence : float, default=0.95
    random_state : int, numpy Generator, RandomState or None, default=None

    Returns
    -------
    pandas.DataFrame
        One row per class (index "class"), columns ``AUC``, ``AUC low``,
        ``AUC high`` (NaN where a class holds one value only) and
        ``positives``.

    Examples
    --------
    >>> import numpy as np
    >>> from skcxr.evaluation import bootstrap_class_auc
    >>> rng = np.random.default_rng(0)
    >>> Y = rng.integers(0, 2, (300, 2))
    >>> P = np.column_stack([Y[:, 0] * 0.5 + rng.uniform(0, 1, 300), rng.uniform(0, 1, 300)])
    >>> table = bootstrap_class_auc(Y, P, np.arange(300) // 3, target_names=["Mass", "Nodule"], random_state=0)
    >>> bool(table.loc["Mass", "AUC low"] > 0.6), bool(table.loc["Nodule", "AUC low"] < 0.5)
    (True, True)
    """
    _check_bootstrap_args(n_boot, confidence)
    Y = check_multilabel_Y(Y_true, name="Y_true")
    P = _check_scores(Y_score, Y.shape, "Y_score")
    names = [str(k) for k in range(Y.shape[1])] if target_names is None else [str(n) for n in target_names]
    if len(names) != Y.shape[1]:
        raise ValueError(f"target_names has {len(names)} names but Y_true has {Y.shape[1]} columns.")
    inverse, counts = _patient_draws(groups, len(Y), n_boot, _seed(random_state))
    replicates = _replicate_class_aucs(Y, [P], inverse, counts)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimates = multilabel_report(Y, P).per_class["AUC"].to_numpy()
    rows = [_interval(estimates[k], replicates[:, k], confidence) for k in range(Y.shape[1])]
    table = pd.DataFrame(rows, columns=["AUC", "AUC low", "AUC high"], index=pd.Index(names, name="class"))
    table["positives"] = Y.sum(axis=0).astype(int)
    return table


# -- holdout report ----------------------------------------------------------------------------


@dataclass(repr=False)
class HoldoutResult:
    """What :func:`holdout_report` returns.

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per model (index "Model"), on the whole test set:
        ``Macro-AUC``, ``AUC low``, ``AUC high`` (patient-bootstrap interval);
        with a baseline ``ΔAUC``, ``ΔAUC low``, ``ΔAUC high`` (paired interval,
        NaN in the baseline's row); ``Micro-F1``, ``Macro-F1``,
        ``Hamming loss`` at 0.5 and the same three ``(tuned)`` at the tuned
        thresholds (NaN without tuned thresholds); ``Seconds`` (fit + predict)
        and ``Thresholds`` (where the tuned thresholds come from: ``"model"``,
        the model's own ``tuned_thresholds_``; ``"k-fold CV"``, out-of-fold
        training predictions; ``"none"``).
    by_source : dict of {str: pandas.DataFrame}
        The same metric columns (without ``Seconds``/``Thresholds``, with
        ``Images`` and ``Patients``) within each source of ``sources_test``;
        empty without sources.
    reports : dict of {str: MultilabelReport}
        Per-model reports on the whole test set at 0.5 (per-class tables).
    tuned_reports : dict of {str: MultilabelReport or None}
        The same at the tuned thresholds; None where there are none.
    proba : dict of {str: ndarray (n_test, n_labels)}
        Test probabilities.
    thresholds : dict of {str: ndarray (n_labels,) or None}
        The tuned thresholds.
    models : dict of {str: estimator}
        The fitted clones.
    baseline : str or None
    Y_train, Y_test : ndarray (n, n_labels) of uint8 or None
        The labels of the two parts (for figures and reports drawn later,
        e.g. :func:`skcxr.report.write_report`).
    groups_test : ndarray (n_test,) or None
        Test patient ids as given (None: every image its own patient).
    sources_train, sources_test : ndarray or None
        Source of each image as given.
    target_names : list of str or None
        Class names as given.
    n_boot, confidence : int, float
        The bootstrap's settings.
    random_state : int or None
        The seed of the bootstrap resamples (an int drawn from
        ``random_state`` where that was None or a RandomState); with it,
        :func:`bootstrap_class_auc` and :func:`bootstrap_macro_auc` on the
        same test patients draw the same resamples. None where a numpy
        Generator was given.
    """

    summary: pd.DataFrame
    by_source: dict = field(default_factory=dict)
    reports: dict = field(default_factory=dict)
    tuned_reports: dict = field(default_factory=dict)
    proba: dict = field(default_factory=dict)
    thresholds: dict = field(default_factory=dict)
    models: dict = field(default_factory=dict)
    baseline: str | None = None
    Y_train: np.ndarray | None = None
    Y_test: np.ndarray | None = None
    groups_test: np.ndarray | None = None
    sources_train: np.ndarray | None = None
    sources_test: np.ndarray | None = None
    target_names: list | None = None
    n_boot: int = 1000
    confidence: float = 0.95
    random_state: int | None = None

    def to_markdown(self) -> str:
        """The summary and the per-source tables as markdown, intervals as ``0.712 [0.650, 0.770]``."""
        parts = [_markdown(self.summary)]
        for source, table in self.by_source.items():
            parts += ["", f"Within source {source!r} ({int(table['Images'].iloc[0])} images, "
                          f"{int(table['Patients'].iloc[0])} patients):", "",
                      _markdown(table.drop(columns=["Images", "Patients"]))]
        return "\n".join(parts)

    def to_dict(self) -> dict:
        """Everything but the models and probabilities as plain, JSON-safe Python (NaN becomes None).

        ``json.dumps(result.to_dict(), allow_nan=False)`` always succeeds.
        """
        return jsonable({
            "baseline": self.baseline,
            "summary": self.summary.to_dict(orient="index"),
            "by_source": {s: t.to_dict(orient="index") for s, t in self.by_source.items()},
            "per_class": {name: _per_class(self, name).to_dict(orient="index") for name in self.reports},
            "undefined_auc": {name: list(r.undefined_auc) for name, r in self.reports.items()},
            "thresholds": {name: None if t is None else list(t) for name, t in self.thresholds.items()},
        })

    def per_class(self, name: str) -> pd.DataFrame:
        """Per-class table of one model: AUC, F1/precision/recall at 0.5 and at the tuned thresholds, support."""
        return _per_class(self, name)

    def __repr__(self) -> str:
        return f"HoldoutResult(baseline={self.baseline!r})\n{self.to_markdown()}"


def _per_class(result: HoldoutResult, name: str) -> pd.DataFrame:
    table = result.reports[name].per_class.drop(columns="threshold")
    tuned = result.tuned_reports.get(name)
    for column in ("F1", "precision", "recall", "threshold"):
        table[f"{column} (tuned)"] = tuned.per_class[column] if tuned is not None else np.nan
    return table


def _markdown(table: pd.DataFrame) -> str:
    shown = pd.DataFrame(index=table.index)
    fmt = "{:.3f}".format
    if "Macro-AUC" in table:
        shown["Macro-AUC [CI]"] = [
            "" if not np.isfinite(a) else f"{a:.3f} [{lo:.3f}, {hi:.3f}]"
            for a, lo, hi in table[_AUC].to_numpy()]
    if "ΔAUC" in table:
        shown["ΔAUC [CI]"] = [
            "" if not np.isfinite(d) else f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]"
            for d, lo, hi in table[_DELTA].to_numpy()]
    for column in _AT_05 + _TUNED:
        shown[column] = ["" if not np.isfinite(v) else fmt(v) for v in table[column]]
    if "Seconds" in table:
        shown["Seconds"] = [f"{v:.1f}" for v in table["Seconds"]]
    if "Thresholds" in table:
        shown["Thresholds"] = table["Thresholds"]
    return shown.to_markdown()


def jsonable(value):
    """``value`` as plain JSON values: dict keys as str, tuples and arrays as lists, numpy scalars as Python
    numbers, NaN and infinity as None (so ``json.dumps(..., allow_nan=False)`` succeeds).

    Examples
    --------
    >>> import numpy as np
    >>> jsonable({1: (np.float32(0.5), float("nan"))})
    {'1': [0.5, None]}
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _final_estimator(model):
    """The estimator that makes the predictions: unwraps searches and pipelines."""
    while True:
        if hasattr(model, "best_estimator_"):
            model = model.best_estimator_
        elif hasattr(model, "steps"):
            model = model.steps[-1][1]
        else:
            return model


def _check_models(models, baseline) -> dict:
    if not isinstance(models, dict) or not models:
        raise ValueError(f"models must be a non-empty dict of {{name: estimator}}, got {type(models).__name__}.")
    for name, model in models.items():
        if not isinstance(name, str):
            raise ValueError(f"model names must be strings, got {name!r}.")
        if not hasattr(model, "fit") or not hasattr(model, "predict_proba"):
            raise ValueError(f"model {name!r} ({type(model).__name__}) needs fit and predict_proba.")
    if baseline is not None and baseline not in models:
        raise ValueError(f"baseline={baseline!r} is not one of the models {list(models)}.")
    return models


def _n_samples(X) -> int:
    shape = getattr(X, "shape", None)
    return int(shape[0]) if shape is not None and len(shape) else len(X)


def _check_1d(values, n, name):
    if values is None:
        return None
    values = np.asarray(values)
    if values.ndim != 1 or len(values) != n:
        raise ValueError(f"{name} must be 1-D with one value per image ({n}), got shape {values.shape}.")
    return values


def _check_threshold_cv(threshold_cv):
    if threshold_cv is None:
        return
    if isinstance(threshold_cv, bool) or not isinstance(threshold_cv, numbers.Integral) or threshold_cv < 2:
        raise ValueError(f"threshold_cv must be None or an int >= 2, got {threshold_cv!r}.")


def groups_fit_params(model, groups):
    """(params, routing): the fit parameters that bring patient ids to the model's inner splits.

    ``routing`` is True where only scikit-learn's metadata routing can deliver
    them (a FeatureUnion whose members differ in taking ``groups``): the model
    is then fitted with routing enabled, and ``groups`` go to the steps that
    request them.
    """
    if groups is None:
        return {}, False
    try:
        return groups_params(model, groups), False
    except ValueError:
        return {"groups": groups}, True


def routing_context(enabled: bool):
    """scikit-learn's metadata routing on inside the block when ``enabled`` (see :func:`groups_fit_params`)."""
    return config_context(enable_metadata_routing=True) if enabled else contextlib.nullcontext()


def _training_thresholds(name, model, fitted, X_train, Y_train, groups_train, threshold_cv, seed):
    """Thresholds tuned on training data only, and where they come from."""
    own = getattr(_final_estimator(fitted), "tuned_thresholds_", None)
    if own is not None:
        return np.asarray(own, dtype=float), "model"
    if threshold_cv is None:
        return None, "none"
    groups = np.arange(len(Y_train)) if groups_train is None else groups_train
    try:
        # The folds are drawn here, by patient; cross_val_predict refits a clone on each.
        cv = MultilabelStratifiedGroupKFold(threshold_cv, shuffle=True, random_state=seed)
        splits = list(cv.split(np.zeros(len(Y_train)), Y_train, groups))
        params, routing = groups_fit_params(model, groups_train)
        with routing_context(routing):
            oof = cross_val_predict(clone(model), X_train, Y_train, cv=splits, method="predict_proba",
                                    params=params)
    except ValueError as exc:
        raise ValueError(f"model {name!r}: tuning thresholds by {threshold_cv}-fold CV on the training "
                         f"part failed ({exc}); pass threshold_cv=None to report at 0.5 only.") from exc
    return tune_thresholds(Y_train, _positive_proba(oof)), f"{threshold_cv}-fold CV"


def _metric_rows(names, Y, proba, thresholds, groups, baseline, n_boot, confidence, seed):
    """Metric columns (one row per model) on one test set."""
    rows = {name: {} for name in names}
    inverse, counts = _patient_draws(groups, len(Y), n_boot, seed)
    replicates = dict(zip(names, _replicate_macro_aucs(Y, [proba[n] for n in names], inverse, counts)))
    estimates = {name: _quiet_macro_auc(Y, proba[name]) for name in names}
    for name in names:
        row = rows[name]
        row.update(zip(_AUC, _interval(estimates[name], replicates[name], confidence)))
        if baseline is not None:
            delta = (_interval(estimates[name] - estimates[baseline], replicates[name] - replicates[baseline],
                               confidence) if name != baseline else (math.nan,) * 3)
            row.update(zip(_DELTA, delta))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # undefined AUCs are reported as such
            at_05 = multilabel_report(Y, proba[name])
            tuned = None if thresholds[name] is None else multilabel_report(Y, proba[name], thresholds[name])
        row.update(zip(_AT_05, list(at_05.summary().values())[:3]))
        row.update(zip(_TUNED, list(tuned.summary().values())[:3] if tuned is not None else (math.nan,) * 3))
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("Model")


def holdout_report(models, X_train, Y_train, X_test, Y_test, *, groups_train=None, groups_test=None,
                   sources_train=None, sources_test=None, target_names=None, baseline=None, threshold_cv=3,
                   n_boot=1000, confidence=0.95, random_state=None, verbose=0) -> HoldoutResult:
    """Fit clones of several models on one training part and score them on the held-out part.

    For each model: ``clone``, fit on ``(X_train, Y_train)`` with the patient
    ids routed to its inner validation splits
    (:func:`skcxr.model_selection.groups_params`), predict probabilities on
    ``X_test`` and score them:

    - **macro-AUC** with a percentile interval from a bootstrap over test
      patients (:func:`bootstrap_macro_auc`; all models on the same
      resamples), and with ``baseline`` the difference to that model with a
      paired interval (:func:`paired_bootstrap_macro_auc`);
    - **micro-F1, macro-F1 and Hamming loss** at 0.5 and at per-label
      thresholds tuned on the training part only: the fitted model's own
      ``tuned_thresholds_`` when its final estimator has them (skcxr's MLP
      tunes them on a patient-disjoint inner validation split), otherwise
      :func:`skcxr.metrics.tune_thresholds` on out-of-fold predictions of a
      ``threshold_cv``-fold :class:`~skcxr.model_selection.MultilabelStratifiedGroupKFold`
      over the training patients. The test part never chooses anything.
    - with ``sources_test``, all of the above within each source as well
      (models are trained once, on all training data).

    Parameters
    ----------
    models : dict of {str: estimator}
        Multi-label classifiers or pipelines with ``predict_proba``. They are
        cloned, never fitted or changed.
    X_train, Y_train, X_test, Y_test : array-like
        A split made by patient, e.g. by
        :func:`skcxr.model_selection.train_test_split_by_patient`; ``Y`` is a
        2-D 0/1 indicator matrix.
    groups_train, groups_test : array-like of shape (n_train,) / (n_test,), default=None
        Patient ids. ``groups_train`` reaches the models' inner splits and the
        threshold CV; ``groups_test`` the bootstrap. A patient on both sides
        raises ``ValueError``. ``None`` makes every image its own patient
        (optimistic thresholds, too narrow intervals where patients have
        several images).
    sources_train : array-like of shape (n_train,), default=None
        Source of each training image; only recorded (``sources_train``), for
        reports of the label distribution per source.
    sources_test : array-like of shape (n_test,), default=None
        Source of each test image (e.g. ``"nih"``, ``"nih-64"``) for the
        within-source tables.
    target_names : list of str, default=None
        Class names of the per-class tables.
    baseline : str, default=None
        Name of the model the others are compared with (``ΔAUC`` columns).
    threshold_cv : int or None, default=3
        Folds of the out-of-fold threshold tuning for models without their own
        thresholds (refits the model that many times); ``None``: no tuning,
        only 0.5, for those models.
    n_boot : int, default=1000
        Bootstrap resamples.
    confidence : float, default=0.95
        Coverage of the intervals.
    random_state : int, RandomState or None, default=None
        Seeds the threshold CV split and the bootstrap.
    verbose : int, default=0
        >0 shows a progress bar over the models (fit, predict, threshold CV).

    Returns
    -------
    HoldoutResult
        ``summary`` and ``by_source`` tables, ``reports`` and
        ``tuned_reports``, ``proba``, ``thresholds``, ``models`` (fitted
        clones), the test labels, patients and sources and the bootstrap's
        settings (for :func:`skcxr.report.write_report`); ``to_markdown()``
        and ``to_dict()`` (JSON-safe).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_multilabel_classification
    >>> from sklearn.dummy import DummyClassifier
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.multiclass import OneVsRestClassifier
    >>> from skcxr.evaluation import holdout_report
    >>> X, Y = make_multilabel_classification(300, n_classes=3, random_state=0)
    >>> patients = np.arange(300) // 2
    >>> models = {"LR": OneVsRestClassifier(LogisticRegression(max_iter=500)),
    ...           "prior": OneVsRestClassifier(DummyClassifier(strategy="prior"))}
    >>> result = holdout_report(models, X[:200], Y[:200], X[200:], Y[200:],
    ...                         groups_train=patients[:200], groups_test=patients[200:],
    ...                         baseline="prior", n_boot=200, random_state=0)
    >>> result.summary.loc["LR", ["Macro-AUC", "AUC low", "AUC high"]].round(2).tolist()
    [0.9, 0.85, 0.94]
    >>> bool(result.summary.loc["LR", "ΔAUC low"] > 0), result.summary.loc["LR", "Thresholds"]
    (True, '3-fold CV')
    >>> hasattr(models["LR"], "estimators_"), hasattr(result.models["LR"], "estimators_")
    (False, True)
    """
    models = _check_models(models, baseline)
    _check_threshold_cv(threshold_cv)
    _check_bootstrap_args(n_boot, confidence)
    Y_train = check_multilabel_Y(Y_train, _n_samples(X_train), name="Y_train")
    Y_test = check_multilabel_Y(Y_test, _n_samples(X_test), name="Y_test")
    if Y_train.shape[1] != Y_test.shape[1]:
        raise ValueError(f"Y_train has {Y_train.shape[1]} labels but Y_test has {Y_test.shape[1]}.")
    groups_train = _check_1d(groups_train, len(Y_train), "groups_train")
    groups_test = _check_1d(groups_test, len(Y_test), "groups_test")
    sources_train = _check_1d(sources_train, len(Y_train), "sources_train")
    sources_test = _check_1d(sources_test, len(Y_test), "sources_test")
    if groups_train is not None and groups_test is not None:
        shared = np.intersect1d(groups_train, groups_test)
        if shared.size:
            raise ValueError(
                f"{shared.size} patient(s) are in both the training and the test part (e.g. {shared[0]!r}): "
                "split by patient, e.g. with skcxr.model_selection.train_test_split_by_patient."
            )
    seed = _seed(random_state)

    fitted, proba, thresholds, how, seconds = {}, {}, {}, {}, {}
    bar = tqdm(models.items(), desc="models", unit="model", disable=not verbose)
    for name, model in bar:
        bar.set_postfix_str(name)
        start = time.perf_counter()
        estimator = clone(model)
        params, routing = groups_fit_params(estimator, groups_train)
        with routing_context(routing):
            estimator.fit(X_train, Y_train, **params)
        P = _check_scores(estimator.predict_proba(X_test), Y_test.shape, f"predict_proba of {name!r}")
        seconds[name] = time.perf_counter() - start
        fitted[name], proba[name] = estimator, P
        thresholds[name], how[name] = _training_thresholds(
            name, model, estimator, X_train, Y_train, groups_train, threshold_cv, seed)

    names = list(models)
    summary = _metric_rows(names, Y_test, proba, thresholds, groups_test, baseline, n_boot, confidence, seed)
    summary["Seconds"] = pd.Series(seconds)
    summary["Thresholds"] = pd.Series(how)

    by_source = {}
    if sources_test is not None:
        for source in pd.unique(sources_test):
            mask = sources_test == source
            groups = None if groups_test is None else groups_test[mask]
            table = _metric_rows(names, Y_test[mask], {n: p[mask] for n, p in proba.items()}, thresholds,
                                 groups, baseline, n_boot, confidence, seed)
            table.insert(0, "Patients", int(mask.sum()) if groups is None else len(np.unique(groups)))
            table.insert(0, "Images", int(mask.sum()))
            by_source[str(source)] = table

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined AUCs are listed in the reports
        reports = {n: multilabel_report(Y_test, proba[n], target_names=target_names) for n in names}
        tuned_reports = {n: None if thresholds[n] is None
                         else multilabel_report(Y_test, proba[n], thresholds[n], target_names=target_names)
                         for n in names}
    return HoldoutResult(summary=summary, by_source=by_source, reports=reports, tuned_reports=tuned_reports,
                         proba=proba, thresholds=thresholds, models=fitted, baseline=baseline,
                         Y_train=Y_train, Y_test=Y_test, groups_test=groups_test, sources_train=sources_train,
                         sources_test=sources_test,
                         target_names=None if target_names is None else [str(t) for t in target_names],
                         n_boot=int(n_boot), confidence=float(confidence),
                         random_state=int(seed) if isinstance(seed, numbers.Integral) else None)
