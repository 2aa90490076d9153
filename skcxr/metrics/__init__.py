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
specificity), :func:`brier_scores` and :func:`expected_calibration_error` (per class) and :func:`calibration_bins`
(a reliability curve of one class, with Wilson intervals).

Localisation (:func:`pointing_game`, :func:`map_iou`) scores maps ``(n, H, W)``
against target masks or NIH-style boxes ``(x, y, w, h)`` (:func:`boxes_to_masks`).
"""

from ._calibration import brier_scores, calibration_bins, expected_calibration_error
from ._localisation import boxes_to_masks, map_iou, pointing_game
from ._operating_points import sensitivity_at_specificity
from ._ranking import macro_auc_score
from ._report import MultilabelReport, multilabel_report
from ._scorers import SCORERS, get_scorer
from ._thresholds import check_thresholds, tune_thresholds

__all__ = [
    "MultilabelReport",
    "SCORERS",
    "brier_scores",
    "calibration_bins",
    "check_thresholds",
    "expected_calibration_error",
    "boxes_to_masks",
    "get_scorer",
    "macro_auc_score",
    "map_iou",
    "multilabel_report",
    "pointing_game",
    "sensitivity_at_specificity",
    "tune_thresholds",
]
