"""Imbalance measures of multi-label data (Charte et al. 2015): IRLbl per label and MeanIR."""

from __future__ import annotations

import numpy as np

from .._validation import check_multilabel_Y


def irlbl(Y) -> np.ndarray:
    """Imbalance ratio per label, ``IRLbl(l) = max_m c_m / c_l`` (``c``: positives per label).

    Parameters
    ----------
    Y : array-like of shape (n_samples, n_labels)
        0/1 indicator matrix.

    Returns
    -------
    ndarray of shape (n_labels,), float
        1 for the most frequent label, larger for rarer ones; NaN for a label
        without a positive.

    Examples
    --------
    >>> from skcxr.sampling import irlbl
    >>> irlbl([[1, 1, 0], [1, 0, 0], [1, 0, 0], [1, 1, 0]]).tolist()
    [1.0, 2.0, nan]
    """
    return _irlbl(check_multilabel_Y(Y))


def mean_ir(Y) -> float:
    """Mean imbalance ratio ``MeanIR``: the mean of :func:`irlbl` over the labels that have a positive.

    1 when every present label is equally frequent; NaN when ``Y`` has no positive at all.

    Examples
    --------
    >>> from skcxr.sampling import mean_ir
    >>> mean_ir([[1, 1, 0], [1, 0, 0], [1, 0, 0], [1, 1, 0]])
    1.5
    """
    return _mean_ir(_irlbl(check_multilabel_Y(Y)))


def _irlbl(Y: np.ndarray, counts: np.ndarray | None = None) -> np.ndarray:
    counts = Y.sum(axis=0, dtype=float) if counts is None else counts
    present = counts > 0
    ratio = np.full(counts.shape, np.nan)
    if present.any():
        ratio[present] = counts.max() / counts[present]
    return ratio


def _mean_ir(ratio: np.ndarray) -> float:
    present = ratio[~np.isnan(ratio)]
    return float(present.mean()) if present.size else float("nan")
