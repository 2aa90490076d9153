"""Score coercion: scores as a float (n, L) matrix checked against Y_true, from a matrix or predict_proba lists."""

from __future__ import annotations

import warnings

import numpy as np

from .._validation import check_multilabel_Y


def _as_score_matrix(Y_score, shape: tuple | None = None, *, name: str = "Y_score", strict: bool = True) -> np.ndarray:
    """Return scores as a float array of ``shape``; a list of (n, 2) arrays is stacked.

    A list member of shape (n, 1) comes from a sub-estimator that saw one label
    value only in training; it carries no ranking, so it becomes a constant 0
    column. ``strict`` (the metrics) warns about such a column and refuses
    members of other widths and scores that are not 2-D; ``strict=False`` (the
    patient bootstrap and :func:`skcxr.evaluation.holdout_report`, which take
    ``predict_proba`` as it comes) turns every member without two columns into
    a 0 column silently. With ``shape``, the scores must have that shape and be
    finite; error messages name the scores ``name``.
    """
    if isinstance(Y_score, (list, tuple)) and Y_score and all(np.ndim(p) == 2 for p in Y_score):
        columns = []
        for k, proba in enumerate(Y_score):
            proba = np.asarray(proba, dtype=float)
            if proba.shape[1] == 2:
                columns.append(proba[:, 1])
                continue
            if strict and proba.shape[1] != 1:
                raise ValueError(
                    f"{name}[{k}] must have shape (n, 2) (one predict_proba per label), "
                    f"got shape {proba.shape}."
                )
            if strict:
                warnings.warn(
                    f"{name}[{k}] has one column: its estimator saw one label value only "
                    "during fit; its scores are taken as constant 0.",
                    UserWarning,
                    stacklevel=3,
                )
            columns.append(np.zeros(proba.shape[0]))
        Y_score = np.column_stack(columns)
    Y_score = np.asarray(Y_score, dtype=float)
    if strict and Y_score.ndim != 2:
        raise ValueError(
            f"{name} must have shape (n, L) or be a list of (n, 2) arrays, got shape {Y_score.shape}."
        )
    if shape is None:
        return Y_score
    if Y_score.shape != shape:
        raise ValueError(f"{name} has shape {Y_score.shape} but Y_true has shape {shape}.")
    if not np.isfinite(Y_score).all():
        raise ValueError(f"{name} contains NaN or infinity.")
    return Y_score


def _check_inputs(Y_true, Y_score):
    Y_true = check_multilabel_Y(Y_true, name="Y_true")
    Y_score = _as_score_matrix(Y_score, Y_true.shape)
    return Y_true, Y_score
