"""Ranking: per-class ROC AUC and the macro-AUC over the classes where it is defined."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import roc_auc_score

from ._scores import _check_inputs


def _per_class_auc(Y_true: np.ndarray, Y_score: np.ndarray) -> np.ndarray:
    """AUC per class; NaN where Y_true[:, l] holds one value only."""
    auc = np.full(Y_true.shape[1], np.nan)
    for k in range(Y_true.shape[1]):
        if 0 < Y_true[:, k].sum() < Y_true.shape[0]:
            auc[k] = roc_auc_score(Y_true[:, k], Y_score[:, k])
    return auc


def _nanmean_auc(auc: np.ndarray) -> float:
    if np.isnan(auc).all():
        warnings.warn(
            "Macro-AUC is undefined: no class has both positive and negative samples in Y_true.",
            UndefinedMetricWarning,
            stacklevel=3,
        )
        return float("nan")
    return float(np.nanmean(auc))


def macro_auc_score(Y_true, Y_score) -> float:
    """Mean ROC AUC over the classes whose ``Y_true`` column has both values.

    Parameters
    ----------
    Y_true : array-like of shape (n_samples, n_labels)
        0/1 indicator matrix.
    Y_score : array-like of shape (n_samples, n_labels) or list of (n_samples, 2) arrays
        Probabilities or scores.

    Returns
    -------
    float
        The macro-AUC; NaN (with an ``UndefinedMetricWarning``) when no class
        has both values.

    Examples
    --------
    >>> from skcxr.metrics import macro_auc_score
    >>> Y = [[1, 0], [0, 0], [1, 0]]          # class 1 has no positive: skipped
    >>> P = [[0.9, 0.2], [0.1, 0.3], [0.8, 0.1]]
    >>> macro_auc_score(Y, P)
    1.0
    """
    Y_true, Y_score = _check_inputs(Y_true, Y_score)
    return _nanmean_auc(_per_class_auc(Y_true, Y_score))
