"""Operating points: the best sensitivity a threshold reaches at a given specificity."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.metrics import roc_curve

from ._scores import _check_inputs


def sensitivity_at_specificity(Y_true, Y_score, specificity=0.9) -> np.ndarray:
    """Per class, the highest sensitivity of a threshold whose specificity is at least ``specificity``.

    A sample is called positive at ``score >= threshold``; every threshold of
    :func:`sklearn.metrics.roc_curve` (all of them, none dropped) is a
    candidate. Read on a test set, this describes the model there; the
    threshold that reaches it is chosen on that same set, so it is an
    optimistic operating point, not one to deploy.

    Parameters
    ----------
    Y_true : array-like of shape (n_samples, n_labels)
        0/1 indicator matrix.
    Y_score : array-like of shape (n_samples, n_labels) or list of (n_samples, 2) arrays
        Probabilities or scores.
    specificity : float in [0, 1], default=0.9

    Returns
    -------
    ndarray of shape (n_labels,), float
        Sensitivity (recall of the positives); NaN where the class holds one
        value only.

    Examples
    --------
    >>> from skcxr.metrics import sensitivity_at_specificity
    >>> Y = [[1], [1], [0], [0], [0], [0]]
    >>> P = [[0.9], [0.4], [0.5], [0.3], [0.2], [0.1]]
    >>> sensitivity_at_specificity(Y, P, 0.8)    # only 0.9 keeps all negatives below: 1 of 2 positives
    array([0.5])
    >>> sensitivity_at_specificity(Y, P, 0.75)   # 0.4 lets one of 4 negatives (0.5) through, finds both
    array([1.])
    """
    if isinstance(specificity, bool) or not isinstance(specificity, numbers.Real) or not 0 <= specificity <= 1:
        raise ValueError(f"specificity must be a float in [0, 1], got {specificity!r}.")
    Y_true, Y_score = _check_inputs(Y_true, Y_score)
    out = np.full(Y_true.shape[1], np.nan)
    for k in range(Y_true.shape[1]):
        if 0 < Y_true[:, k].sum() < Y_true.shape[0]:
            fpr, tpr, _ = roc_curve(Y_true[:, k], Y_score[:, k], drop_intermediate=False)
            out[k] = tpr[1 - fpr >= specificity - 1e-12].max()
    return out
