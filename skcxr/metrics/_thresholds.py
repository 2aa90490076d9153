"""Decision thresholds: per-class F1-optimal thresholds and the check of given ones."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import precision_recall_curve

from ._scores import _check_inputs


def tune_thresholds(Y_true, Y_score) -> np.ndarray:
    """Per-class decision thresholds that maximise F1 on the given data.

    For each class the threshold is the score, among those returned by
    :func:`sklearn.metrics.precision_recall_curve`, with the highest F1 when a
    sample is called positive at ``score >= threshold`` (on ties, the lowest
    such threshold). A class without positives in ``Y_true`` has no
    F1-optimal threshold and gets 0.5.

    Tune on training or validation data, never on the test set.

    Parameters
    ----------
    Y_true : array-like of shape (n_samples, n_labels)
        0/1 indicator matrix.
    Y_score : array-like of shape (n_samples, n_labels) or list of (n_samples, 2) arrays
        Probabilities or scores.

    Returns
    -------
    ndarray of shape (n_labels,), float
        One threshold per class.

    Examples
    --------
    >>> from skcxr.metrics import tune_thresholds
    >>> Y = [[1, 0], [0, 0], [1, 0], [0, 1]]
    >>> P = [[0.30, 0.2], [0.10, 0.1], [0.40, 0.3], [0.20, 0.6]]
    >>> tune_thresholds(Y, P)
    array([0.3, 0.6])
    """
    Y_true, Y_score = _check_inputs(Y_true, Y_score)
    thresholds = np.full(Y_true.shape[1], 0.5)
    for k in range(Y_true.shape[1]):
        if not Y_true[:, k].any():
            continue
        precision, recall, cut = precision_recall_curve(Y_true[:, k], Y_score[:, k])
        # The last (precision=1, recall=0) point has no threshold.
        precision, recall = precision[:-1], recall[:-1]
        denom = precision + recall
        f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)
        thresholds[k] = cut[int(np.argmax(f1))]
    return thresholds


def check_thresholds(threshold, n_labels: int) -> np.ndarray:
    """Decision thresholds as a float array (n_labels,): a float is repeated, an array is checked.

    Examples
    --------
    >>> from skcxr.metrics import check_thresholds
    >>> check_thresholds(0.3, 2)
    array([0.3, 0.3])
    """
    thresholds = np.asarray(threshold, dtype=float)
    if thresholds.ndim == 0:
        thresholds = np.full(n_labels, float(thresholds))
    if thresholds.shape != (n_labels,) or not np.isfinite(thresholds).all():
        raise ValueError(
            f"threshold must be a finite float or an array of {n_labels} finite floats, "
            f"got {threshold!r}."
        )
    return thresholds
