"""Multi-label evaluation: report, per-class thresholds and scorers; localisation of saliency maps.

Everything here takes a 2-D 0/1 indicator matrix ``Y_true`` of shape
``(n, L)`` and scores ``Y_score`` of shape ``(n, L)`` (probabilities, or any
monotone score for the AUC). ``Y_score`` may also be a list of ``L`` arrays of
shape ``(n, 2)``, which is what ``MultiOutputClassifier.predict_proba`` returns;
the positive-class column of each is used.

A sample is predicted positive for class ``l`` when ``Y_score[:, l] >=
threshold[l]``, the convention of :func:`sklearn.metrics.precision_recall_curve`,
so the thresholds found by :func:`tune_thresholds` reproduce the F1 they were
chosen for.

Macro-AUC is the mean of :func:`sklearn.metrics.roc_auc_score` over the
classes whose ``Y_true`` column holds both values. A class with one value only
(no positives in a small test fold, typically Hernia) has no AUC: it is listed
in :attr:`MultilabelReport.undefined_auc` and left out of the mean, never
averaged in as NaN. F1, precision and recall follow scikit-learn with
``zero_division=0`` (a class that is never true nor predicted scores 0).

Operating points and calibration: :func:`sensitivity_at_specificity`
(per class, the best sensitivity a threshold reaches while keeping a given
specificity), :func:`brier_scores` (per class) and :func:`calibration_bins`
(a reliability curve of one class, with Wilson intervals).

Localisation (:func:`pointing_game`, :func:`map_iou`) scores maps ``(n, H, W)``
against target masks or NIH-style boxes ``(x, y, w, h)`` (:func:`boxes_to_masks`).
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (
    f1_score,
    hamming_loss,
    make_scorer,
    precision_recall_curve,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)
from sklearn.metrics import get_scorer as _sklearn_get_scorer

from ._validation import check_multilabel_Y

__all__ = [
    "MultilabelReport",
    "SCORERS",
    "brier_scores",
    "calibration_bins",
    "check_thresholds",
    "boxes_to_masks",
    "get_scorer",
    "macro_auc_score",
    "map_iou",
    "multilabel_report",
    "pointing_game",
    "sensitivity_at_specificity",
    "tune_thresholds",
]


def _as_score_matrix(Y_score, shape: tuple) -> np.ndarray:
    """Return scores as a float array of ``shape``; a list of (n, 2) arrays is stacked.

    A list member of shape (n, 1) comes from a sub-estimator that saw one label
    value only in training; it carries no ranking, so it becomes a constant 0
    column (with a warning).
    """
    if isinstance(Y_score, (list, tuple)) and Y_score and all(np.ndim(p) == 2 for p in Y_score):
        columns = []
        for k, proba in enumerate(Y_score):
            proba = np.asarray(proba, dtype=float)
            if proba.shape[1] not in (1, 2):
                raise ValueError(
                    f"Y_score[{k}] must have shape (n, 2) (one predict_proba per label), "
                    f"got shape {proba.shape}."
                )
            if proba.shape[1] == 1:
                warnings.warn(
                    f"Y_score[{k}] has one column: its estimator saw one label value only "
                    "during fit; its scores are taken as constant 0.",
                    UserWarning,
                    stacklevel=3,
                )
                columns.append(np.zeros(proba.shape[0]))
            else:
                columns.append(proba[:, 1])
        Y_score = np.column_stack(columns)
    Y_score = np.asarray(Y_score, dtype=float)
    if Y_score.ndim != 2:
        raise ValueError(
            f"Y_score must have shape (n, L) or be a list of (n, 2) arrays, got shape {Y_score.shape}."
        )
    if Y_score.shape != shape:
        raise ValueError(f"Y_score has shape {Y_score.shape} but Y_true has shape {shape}.")
    if not np.isfinite(Y_score).all():
        raise ValueError("Y_score contains NaN or infinity.")
    return Y_score


def _check_inputs(Y_true, Y_score):
    Y_true = check_multilabel_Y(Y_true, name="Y_true")
    Y_score = _as_score_matrix(Y_score, Y_true.shape)
    return Y_true, Y_score


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


@dataclass(repr=False)
class MultilabelReport:
    """Result of :func:`multilabel_report`.

    Attributes
    ----------
    micro_f1, macro_f1, hamming_loss, macro_auc : float
        Summary metrics (macro_auc over the classes with a defined AUC).
    per_class : pandas.DataFrame
        One row per class: AUC (NaN where undefined), F1, precision, recall,
        support (number of positives) and the threshold used.
    undefined_auc : list of str
        Classes whose AUC is undefined because ``Y_true`` holds one value only;
        they are left out of ``macro_auc``.
    """

    micro_f1: float
    macro_f1: float
    hamming_loss: float
    macro_auc: float
    per_class: pd.DataFrame
    undefined_auc: list = field(default_factory=list)

    def summary(self) -> dict:
        """The four summary numbers as a dict, keyed by their table headings."""
        return {
            "Micro-F1": self.micro_f1,
            "Macro-F1": self.macro_f1,
            "Hamming loss": self.hamming_loss,
            "Macro-AUC": self.macro_auc,
        }

    def to_frame(self, name: str = "model") -> pd.DataFrame:
        """The summary as a one-row DataFrame indexed by ``name`` (index name "Model").

        ``pd.concat`` of several such frames gives a model comparison table.
        """
        frame = pd.DataFrame([self.summary()], index=pd.Index([name], name="Model"))
        return frame

    def __repr__(self) -> str:
        head = ", ".join(f"{key}={value:.4f}" for key, value in self.summary().items())
        lines = [f"MultilabelReport({head})"]
        if self.undefined_auc:
            lines.append(
                f"AUC undefined (one label value only, left out of Macro-AUC): "
                f"{', '.join(map(str, self.undefined_auc))}"
            )
        lines.append(self.per_class.to_string(float_format=lambda v: f"{v:.4f}"))
        return "\n".join(lines)


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


def multilabel_report(Y_true, Y_score, threshold=0.5, target_names=None) -> MultilabelReport:
    """Micro/macro-F1, Hamming loss, macro-AUC and a per-class table.

    Parameters
    ----------
    Y_true : array-like of shape (n_samples, n_labels)
        0/1 indicator matrix.
    Y_score : array-like of shape (n_samples, n_labels) or list of (n_samples, 2) arrays
        Probabilities (or scores) per class, e.g. ``predict_proba`` of
        ``OneVsRestClassifier`` or of ``MultiOutputClassifier``.
    threshold : float or array-like of shape (n_labels,), default=0.5
        A sample is predicted positive for class ``l`` when
        ``Y_score[:, l] >= threshold[l]``; see :func:`tune_thresholds`.
    target_names : list of str, optional
        Class names for the table; ``"0", "1", ...`` by default.

    Returns
    -------
    MultilabelReport
        With ``micro_f1``, ``macro_f1``, ``hamming_loss``, ``macro_auc``,
        ``per_class`` and ``undefined_auc``; ``summary()`` and ``to_frame()``
        give table rows.

    Examples
    --------
    >>> from skcxr.metrics import multilabel_report
    >>> Y = [[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]]
    >>> P = [[0.9, 0.2, 0.1], [0.3, 0.7, 0.2], [0.6, 0.4, 0.1], [0.2, 0.1, 0.3]]
    >>> report = multilabel_report(Y, P, target_names=["Mass", "Nodule", "Hernia"])
    >>> report.undefined_auc
    ['Hernia']
    >>> round(report.macro_auc, 3), round(report.micro_f1, 3)
    (1.0, 0.857)
    """
    Y_true, Y_score = _check_inputs(Y_true, Y_score)
    n_labels = Y_true.shape[1]
    if target_names is None:
        target_names = [str(k) for k in range(n_labels)]
    target_names = [str(name) for name in target_names]
    if len(target_names) != n_labels:
        raise ValueError(f"target_names has {len(target_names)} names but Y_true has {n_labels} columns.")
    thresholds = check_thresholds(threshold, n_labels)
    Y_pred = (Y_score >= thresholds).astype(np.uint8)

    auc = _per_class_auc(Y_true, Y_score)
    undefined = [name for name, value in zip(target_names, auc) if np.isnan(value)]
    precision, recall, f1, support = precision_recall_fscore_support(
        Y_true, Y_pred, average=None, zero_division=0
    )
    per_class = pd.DataFrame(
        {
            "AUC": auc,
            "F1": f1,
            "precision": precision,
            "recall": recall,
            "support": support.astype(int),
            "threshold": thresholds,
        },
        index=pd.Index(target_names, name="class"),
    )
    return MultilabelReport(
        micro_f1=float(f1_score(Y_true, Y_pred, average="micro", zero_division=0)),
        macro_f1=float(f1_score(Y_true, Y_pred, average="macro", zero_division=0)),
        hamming_loss=float(hamming_loss(Y_true, Y_pred)),
        macro_auc=_nanmean_auc(auc),
        per_class=per_class,
        undefined_auc=undefined,
    )


# Operating points and calibration.


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


def _wilson(successes, n, confidence):
    """Wilson score interval of a binomial proportion (arrays; NaN where n is 0)."""
    from scipy.stats import norm

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


# Scorers. scikit-learn's `make_scorer(response_method="predict_proba")` already
# turns MultiOutputClassifier's list of (n, 2) arrays into an (n, L) matrix for
# multilabel-indicator targets and passes an (n, L) predict_proba through
# unchanged; the metric functions here also accept the list (the path sklearn
# takes when a sub-estimator saw one class only).
SCORERS = {
    "macro_auc": make_scorer(macro_auc_score, response_method=("predict_proba", "decision_function")),
    "micro_f1": make_scorer(f1_score, average="micro", zero_division=0),
    "macro_f1": make_scorer(f1_score, average="macro", zero_division=0),
    "neg_hamming_loss": make_scorer(hamming_loss, greater_is_better=False),
}


def get_scorer(name):
    """Scorer for ``scoring=`` in ``GridSearchCV`` / ``cross_validate``.

    ``name`` is one of ``"macro_auc"``, ``"micro_f1"``, ``"macro_f1"``,
    ``"neg_hamming_loss"``; any other name (or a callable) goes to
    :func:`sklearn.metrics.get_scorer`.

    Examples
    --------
    >>> from sklearn.datasets import make_multilabel_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import cross_val_score
    >>> from sklearn.multiclass import OneVsRestClassifier
    >>> from skcxr.metrics import get_scorer
    >>> X, Y = make_multilabel_classification(60, n_classes=3, random_state=0)
    >>> scores = cross_val_score(OneVsRestClassifier(LogisticRegression()), X, Y,
    ...                          cv=3, scoring=get_scorer("macro_auc"))
    >>> scores.shape
    (3,)
    """
    if isinstance(name, str) and name in SCORERS:
        return SCORERS[name]
    return _sklearn_get_scorer(name)


# Localisation: does a saliency map point at the finding? Maps are (n, H, W) arrays, any range; targets are
# boolean masks (n, H, W) or one box (x, y, w, h) per map, in the map's pixels.


def boxes_to_masks(boxes, shape, scale=1.0) -> np.ndarray:
    """Boolean masks of boxes given as ``(x, y, w, h)`` in pixels, NIH's ``BBox_List_2017.csv`` convention.

    Pixel ``(row, col)`` covers ``[col, col + 1) x [row, row + 1)``; it belongs to a
    box when its centre ``(col + 0.5, row + 0.5)`` lies in ``[x, x + w) x [y, y + h)``
    after scaling. Boxes are clipped to the image; a box less than a pixel wide
    may contain no pixel centre (NIH's smallest boxes, about 27 x 22 px at 1024,
    keep at least one pixel down to 64 px).

    Parameters
    ----------
    boxes : array-like of shape (k, 4)
        ``x, y`` of the top-left corner, width and height.
    shape : tuple of two ints
        ``(H, W)`` of the masks.
    scale : float, default=1.0
        Multiplies every coordinate first, e.g. ``224 / 1024`` for NIH boxes on
        images resized from 1024 to 224 px.

    Returns
    -------
    masks : ndarray of shape (k, H, W), dtype bool

    Examples
    --------
    >>> from skcxr.metrics import boxes_to_masks
    >>> boxes_to_masks([[1, 0, 2, 1]], (2, 4)).astype(int)
    array([[[0, 1, 1, 0],
            [0, 0, 0, 0]]])
    >>> int(boxes_to_masks([[512, 0, 512, 1024]], (4, 4), scale=4 / 1024).sum())  # the right half
    8
    """
    boxes = np.asarray(boxes, dtype=float)
    if boxes.ndim != 2 or boxes.shape[1] != 4 or not np.isfinite(boxes).all():
        raise ValueError(f"boxes must be a finite array of shape (k, 4) (x, y, w, h), got shape {boxes.shape}.")
    if (boxes[:, 2:] < 0).any():
        raise ValueError("boxes must have widths and heights >= 0.")
    H, W = shape
    x, y, w, h = (boxes * scale).T
    cols, rows = np.arange(W) + 0.5, np.arange(H) + 0.5
    in_cols = (cols >= x[:, None]) & (cols < (x + w)[:, None])
    in_rows = (rows >= y[:, None]) & (rows < (y + h)[:, None])
    return in_rows[:, :, None] & in_cols[:, None, :]


def _check_localisation(maps, targets):
    """maps as float (n, H, W) and targets as bool masks of the same shape (boxes are rasterised)."""
    maps = np.asarray(maps, dtype=float)
    if maps.ndim != 3 or len(maps) == 0:
        raise ValueError(f"maps must be a non-empty stack of 2-D maps (n, H, W), got shape {maps.shape}.")
    if not np.isfinite(maps).all():
        raise ValueError("maps contain NaN or infinity.")
    targets = np.asarray(targets)
    if targets.shape == (len(maps), 4):
        return maps, boxes_to_masks(targets, maps.shape[1:])
    if targets.shape != maps.shape:
        raise ValueError(
            f"targets must be boolean masks of the maps' shape {maps.shape} or one box (x, y, w, h) per "
            f"map, shape ({len(maps)}, 4); got shape {targets.shape}."
        )
    return maps, targets.astype(bool)


def pointing_game(maps, targets, tolerance=0, return_hits=False):
    """Share of maps whose maximum lies on the target (the pointing game of Zhang et al. 2016).

    A map scores a hit when its peak pixel (``argmax``, the first one in
    row-major order on ties) lies inside the target, or within ``tolerance``
    pixels of it (distance between pixel centres). A constant map (all zeros,
    say) points nowhere and is a miss, as is an empty target.

    Parameters
    ----------
    maps : array-like of shape (n, H, W)
        Saliency maps (Grad-CAM, fused maps), any range.
    targets : array-like of bool, shape (n, H, W), or of shape (n, 4)
        Target masks, or one box ``(x, y, w, h)`` per map in the map's pixels
        (see :func:`boxes_to_masks` to scale NIH boxes first).
    tolerance : float, default=0
        Slack in pixels of the maps. Zhang et al. used 15 px at the images'
        original resolution: scale it as the boxes, ``15 * 224 / 1024`` (about
        3.3 px) on 224 px maps of 1024 px radiographs.
    return_hits : bool, default=False
        Also return the hit of each map.

    Returns
    -------
    hit_rate : float
    hits : ndarray of shape (n,), dtype bool
        Only with ``return_hits=True``.

    Examples
    --------
    >>> import numpy as np
    >>> from skcxr.metrics import pointing_game
    >>> maps = np.zeros((2, 8, 8))
    >>> maps[0, 2, 2] = maps[1, 6, 6] = 1                     # peaks at (2, 2) and (6, 6)
    >>> boxes = [[1, 1, 3, 3], [1, 1, 3, 3]]                  # both targets cover rows and columns 1-3
    >>> pointing_game(maps, boxes, return_hits=True)
    (0.5, array([ True, False]))
    >>> pointing_game(maps, boxes, tolerance=3)               # (6, 6) is 3 * sqrt(2) = 4.2 px from (3, 3)
    0.5
    """
    maps, targets = _check_localisation(maps, targets)
    if not (isinstance(tolerance, numbers.Real) and np.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(f"tolerance must be a number of pixels >= 0, got {tolerance!r}.")
    n, H, W = maps.shape
    flat = maps.reshape(n, -1)
    peaks = np.stack(np.unravel_index(flat.argmax(axis=1), (H, W)), axis=1)
    hits = np.zeros(n, dtype=bool)
    for k, (peak, target) in enumerate(zip(peaks, targets)):
        if flat[k].max() > flat[k].min() and target.any():
            hits[k] = np.hypot(*(np.argwhere(target) - peak).T).min() <= tolerance
    rate = float(hits.mean())
    return (rate, hits) if return_hits else rate


def map_iou(maps, targets, threshold=0.5) -> np.ndarray:
    """Intersection over union of each thresholded map (``map >= threshold``) with its target.

    Parameters
    ----------
    maps : array-like of shape (n, H, W)
        Maps, e.g. in [0, 1].
    targets : array-like of bool, shape (n, H, W), or of shape (n, 4)
        Target masks, or one box ``(x, y, w, h)`` per map in the map's pixels.
    threshold : float, default=0.5
        A pixel is on the map's region when ``map >= threshold``.

    Returns
    -------
    iou : ndarray of shape (n,), float
        NaN where both the region and the target are empty (the union is
        empty); ``np.nanmean(iou)`` is the mean over the others.

    Examples
    --------
    >>> import numpy as np
    >>> from skcxr.metrics import map_iou
    >>> maps = np.zeros((2, 4, 4))
    >>> maps[0, :2] = 1                                       # top half
    >>> iou = map_iou(maps, [[0, 0, 4, 1], [0, 0, 0, 0]])    # top row; an empty box
    >>> iou
    array([0.5, nan])
    >>> float(np.nanmean(iou))
    0.5
    """
    maps, targets = _check_localisation(maps, targets)
    region = maps >= threshold
    inter = (region & targets).sum(axis=(1, 2))
    union = (region | targets).sum(axis=(1, 2))
    return np.divide(inter, union, out=np.full(len(maps), np.nan), where=union > 0)
