"""Calibration: per-class Brier scores, expected calibration error and a reliability curve with Wilson intervals."""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from scipy.stats import norm

from ._scores import _check_inputs


def _check_probabilities(Y_true, Y_prob):
    Y_true, Y_prob = _check_inputs(Y_true, Y_prob)
    if Y_prob.min(initial=0) < 0 or Y_prob.max(initial=0) > 1:
        raise ValueError("Y_prob must hold probabilities in [0, 1] (predict_proba), not scores.")
    return Y_true, Y_prob


def brier_scores(Y_true, Y_prob) -> np.ndarray:
    """Brier score of each class: the mean squared difference between probability and outcome (lower is better).

    Predicting each class's prevalence ``p`` everywhere scores ``p * (1 - p)``,
    the reference a useful model must beat.

    Parameters
    ----------
    Y_true : array-like of shape (n_samples, n_labels)
        0/1 indicator matrix.
    Y_prob : array-like of shape (n_samples, n_labels) or list of (n_samples, 2) arrays
        Probabilities in [0, 1].

    Returns
    -------
    ndarray of shape (n_labels,), float

    Examples
    --------
    >>> from skcxr.metrics import brier_scores
    >>> brier_scores([[1, 0], [0, 0]], [[0.8, 0.5], [0.2, 0.5]])
    array([0.04, 0.25])
    """
    Y_true, Y_prob = _check_probabilities(Y_true, Y_prob)
    return ((Y_prob - Y_true) ** 2).mean(axis=0)


def expected_calibration_error(Y_true, Y_prob, n_bins=10) -> np.ndarray:
    """Expected calibration error of each class: the mean gap |observed rate - mean probability| over
    ``n_bins`` equal-width probability bins, weighted by the share of samples in each (lower is better; 0 for
    a calibrated model, up to 1).

    Parameters
    ----------
    Y_true : array-like of shape (n_samples, n_labels)
        0/1 indicator matrix.
    Y_prob : array-like of shape (n_samples, n_labels) or list of (n_samples, 2) arrays
        Probabilities in [0, 1].
    n_bins : int, default=10

    Returns
    -------
    ndarray of shape (n_labels,), float

    Examples
    --------
    >>> from skcxr.metrics import expected_calibration_error
    >>> expected_calibration_error([[1], [0], [1], [0]], [[0.9], [0.1], [0.9], [0.9]], n_bins=2)
    array([0.2])
    """
    Y_true, Y_prob = _check_probabilities(Y_true, Y_prob)
    if isinstance(n_bins, bool) or not isinstance(n_bins, numbers.Integral) or n_bins < 1:
        raise ValueError(f"n_bins must be an int >= 1, got {n_bins!r}.")
    bins = np.minimum((Y_prob * n_bins).astype(int), n_bins - 1)  # [0, 1/n), ..., [(n-1)/n, 1]
    ece = np.zeros(Y_prob.shape[1])
    for label in range(Y_prob.shape[1]):
        for b in np.unique(bins[:, label]):
            inside = bins[:, label] == b
            gap = abs(Y_true[inside, label].mean() - Y_prob[inside, label].mean())
            ece[label] += inside.mean() * gap
    return ece


def _wilson(successes, n, confidence):
    """Wilson score interval of a binomial proportion (arrays; NaN where n is 0)."""
    successes, n = np.asarray(successes, dtype=float), np.asarray(n, dtype=float)
    z = norm.ppf(0.5 + confidence / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = successes / n
        centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
        half = z / (1 + z**2 / n) * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    return centre - half, centre + half


def calibration_bins(y_true, y_prob, n_bins=10, *, strategy="uniform", confidence=0.95) -> pd.DataFrame:
    """A reliability curve of one class: per bin of predicted probability, the observed frequency.

    Like :func:`sklearn.calibration.calibration_curve`, and also the count
    of each bin and a Wilson interval of its observed frequency. Empty bins are
    left out. A calibrated model's points lie on the diagonal.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        0/1 outcomes of one class.
    y_prob : array-like of shape (n_samples,)
        Predicted probabilities in [0, 1].
    n_bins : int, default=10
    strategy : {"uniform", "quantile"}, default="uniform"
        Bins of equal width in [0, 1], or holding about equal numbers of samples.
    confidence : float, default=0.95
        Coverage of the Wilson intervals.

    Returns
    -------
    pandas.DataFrame
        One row per non-empty bin: ``bin low``, ``bin high`` (edges),
        ``mean predicted``, ``observed`` (share of positives), ``low``,
        ``high`` (its interval) and ``count``.

    Examples
    --------
    >>> from skcxr.metrics import calibration_bins
    >>> bins = calibration_bins([0, 0, 1, 1, 1, 0], [0.1, 0.2, 0.7, 0.8, 0.9, 0.6], n_bins=2)
    >>> bins[["mean predicted", "observed", "count"]].round(2).values.tolist()
    [[0.15, 0.0, 2.0], [0.75, 0.75, 4.0]]
    """
    y_true = np.asarray(y_true)
    y_prob = np.asarray(y_prob, dtype=float)
    if y_true.ndim != 1 or y_prob.shape != y_true.shape:
        raise ValueError(f"y_true and y_prob must be 1-D of one length, got shapes {y_true.shape} and {y_prob.shape}.")
    _check_probabilities(y_true[:, None], y_prob[:, None])
    if isinstance(n_bins, bool) or not isinstance(n_bins, numbers.Integral) or n_bins < 1:
        raise ValueError(f"n_bins must be an int >= 1, got {n_bins!r}.")
    if strategy == "uniform":
        edges = np.linspace(0, 1, n_bins + 1)
    elif strategy == "quantile":
        edges = np.unique(np.quantile(y_prob, np.linspace(0, 1, n_bins + 1)))
        edges[0], edges[-1] = min(edges[0], 0.0), max(edges[-1], 1.0)
    else:
        raise ValueError(f'strategy must be "uniform" or "quantile", got {strategy!r}.')
    which = np.clip(np.searchsorted(edges, y_prob, side="right") - 1, 0, len(edges) - 2)
    count = np.bincount(which, minlength=len(edges) - 1)
    positives = np.bincount(which, weights=y_true.astype(float), minlength=len(edges) - 1)
    predicted = np.bincount(which, weights=y_prob, minlength=len(edges) - 1)
    keep = count > 0
    observed = positives[keep] / count[keep]
    low, high = _wilson(positives[keep], count[keep], confidence)
    low, high = np.clip(np.minimum(low, observed), 0, 1), np.clip(np.maximum(high, observed), 0, 1)  # rounding
    return pd.DataFrame({
        "bin low": edges[:-1][keep], "bin high": edges[1:][keep],
        "mean predicted": predicted[keep] / count[keep], "observed": observed,
        "low": low, "high": high, "count": count[keep],
    })
