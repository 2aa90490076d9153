"""The patient bootstrap: macro- and per-class AUC with percentile intervals from resampled patients."""

from __future__ import annotations

import math
import numbers
import warnings
from collections import namedtuple

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state

from .._validation import check_multilabel_Y
from ..metrics import macro_auc_score, multilabel_report
from ..metrics._scores import _as_score_matrix

#: Point estimate and percentile interval of a bootstrap.
BootstrapInterval = namedtuple("BootstrapInterval", ["estimate", "low", "high"])

_CHUNK = 1 << 21  # resample x image weights held at once (16 MB of float64)


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
    P = _as_score_matrix(Y_score, Y.shape, name="Y_score", strict=False)
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
    A = _as_score_matrix(Y_score_a, Y.shape, name="Y_score_a", strict=False)
    B = _as_score_matrix(Y_score_b, Y.shape, name="Y_score_b", strict=False)
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
    P = _as_score_matrix(Y_score, Y.shape, name="Y_score", strict=False)
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
