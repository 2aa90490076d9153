"""The multi-label report: summary metrics and a per-class table at given thresholds."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score, hamming_loss, precision_recall_fscore_support

from ._ranking import _nanmean_auc, _per_class_auc
from ._scores import _check_inputs
from ._thresholds import check_thresholds


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
