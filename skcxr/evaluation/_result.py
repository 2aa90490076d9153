"""The result of a holdout comparison: its tables, per-class view, markdown and JSON forms."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._json import jsonable

_AT_05 = ["Micro-F1", "Macro-F1", "Hamming loss"]
_TUNED = [f"{c} (tuned)" for c in _AT_05]
_AUC = ["Macro-AUC", "AUC low", "AUC high"]
_DELTA = ["ΔAUC", "ΔAUC low", "ΔAUC high"]


@dataclass(repr=False)
class HoldoutResult:
    """What :func:`holdout_report` returns.

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per model (index "Model"), on the whole test set:
        ``Macro-AUC``, ``AUC low``, ``AUC high`` (patient-bootstrap interval);
        with a baseline ``ΔAUC``, ``ΔAUC low``, ``ΔAUC high`` (paired interval,
        NaN in the baseline's row); ``Micro-F1``, ``Macro-F1``,
        ``Hamming loss`` at 0.5 and the same three ``(tuned)`` at the tuned
        thresholds (NaN without tuned thresholds); ``Seconds`` (fit + predict)
        and ``Thresholds`` (where the tuned thresholds come from: ``"model"``,
        the model's own ``tuned_thresholds_``; ``"k-fold CV"``, out-of-fold
        training predictions; ``"none"``).
    by_source : dict of {str: pandas.DataFrame}
        The same metric columns (without ``Seconds``/``Thresholds``, with
        ``Images`` and ``Patients``) within each source of ``sources_test``;
        empty without sources.
    reports : dict of {str: MultilabelReport}
        Per-model reports on the whole test set at 0.5 (per-class tables).
    tuned_reports : dict of {str: MultilabelReport or None}
        The same at the tuned thresholds; None where there are none.
    proba : dict of {str: ndarray (n_test, n_labels)}
        Test probabilities.
    thresholds : dict of {str: ndarray (n_labels,) or None}
        The tuned thresholds.
    models : dict of {str: estimator}
        The fitted clones.
    baseline : str or None
    Y_train, Y_test : ndarray (n, n_labels) of uint8 or None
        The labels of the two parts (for figures and reports drawn later,
        e.g. :func:`skcxr.report.write_report`).
    groups_test : ndarray (n_test,) or None
        Test patient ids as given (None: every image its own patient).
    sources_train, sources_test : ndarray or None
        Source of each image as given.
    target_names : list of str or None
        Class names as given.
    n_boot, confidence : int, float
        The bootstrap's settings.
    random_state : int or None
        The seed of the bootstrap resamples (an int drawn from
        ``random_state`` where that was None or a RandomState); with it,
        :func:`bootstrap_class_auc` and :func:`bootstrap_macro_auc` on the
        same test patients draw the same resamples. None where a numpy
        Generator was given.
    """

    summary: pd.DataFrame
    by_source: dict = field(default_factory=dict)
    reports: dict = field(default_factory=dict)
    tuned_reports: dict = field(default_factory=dict)
    proba: dict = field(default_factory=dict)
    thresholds: dict = field(default_factory=dict)
    models: dict = field(default_factory=dict)
    baseline: str | None = None
    Y_train: np.ndarray | None = None
    Y_test: np.ndarray | None = None
    groups_test: np.ndarray | None = None
    sources_train: np.ndarray | None = None
    sources_test: np.ndarray | None = None
    target_names: list | None = None
    n_boot: int = 1000
    confidence: float = 0.95
    random_state: int | None = None

    def to_markdown(self) -> str:
        """The summary and the per-source tables as markdown, intervals as ``0.712 [0.650, 0.770]``."""
        parts = [_markdown(self.summary)]
        for source, table in self.by_source.items():
            parts += ["", f"Within source {source!r} ({int(table['Images'].iloc[0])} images, "
                          f"{int(table['Patients'].iloc[0])} patients):", "",
                      _markdown(table.drop(columns=["Images", "Patients"]))]
        return "\n".join(parts)

    def to_dict(self) -> dict:
        """Everything but the models and probabilities as plain, JSON-safe Python (NaN becomes None).

        ``json.dumps(result.to_dict(), allow_nan=False)`` always succeeds.
        """
        return jsonable({
            "baseline": self.baseline,
            "summary": self.summary.to_dict(orient="index"),
            "by_source": {s: t.to_dict(orient="index") for s, t in self.by_source.items()},
            "per_class": {name: _per_class(self, name).to_dict(orient="index") for name in self.reports},
            "undefined_auc": {name: list(r.undefined_auc) for name, r in self.reports.items()},
            "thresholds": {name: None if t is None else list(t) for name, t in self.thresholds.items()},
        })

    def per_class(self, name: str) -> pd.DataFrame:
        """Per-class table of one model: AUC, F1/precision/recall at 0.5 and at the tuned thresholds, support."""
        return _per_class(self, name)

    def __repr__(self) -> str:
        return f"HoldoutResult(baseline={self.baseline!r})\n{self.to_markdown()}"


def _per_class(result: HoldoutResult, name: str) -> pd.DataFrame:
    table = result.reports[name].per_class.drop(columns="threshold")
    tuned = result.tuned_reports.get(name)
    for column in ("F1", "precision", "recall", "threshold"):
        table[f"{column} (tuned)"] = tuned.per_class[column] if tuned is not None else np.nan
    return table


def _markdown(table: pd.DataFrame) -> str:
    shown = pd.DataFrame(index=table.index)
    fmt = "{:.3f}".format
    if "Macro-AUC" in table:
        shown["Macro-AUC [CI]"] = [
            "" if not np.isfinite(a) else f"{a:.3f} [{lo:.3f}, {hi:.3f}]"
            for a, lo, hi in table[_AUC].to_numpy()]
    if "ΔAUC" in table:
        shown["ΔAUC [CI]"] = [
            "" if not np.isfinite(d) else f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]"
            for d, lo, hi in table[_DELTA].to_numpy()]
    for column in _AT_05 + _TUNED:
        shown[column] = ["" if not np.isfinite(v) else fmt(v) for v in table[column]]
    if "Seconds" in table:
        shown["Seconds"] = [f"{v:.1f}" for v in table["Seconds"]]
    if "Thresholds" in table:
        shown["Thresholds"] = table["Thresholds"]
    return shown.to_markdown()
