"""The report's statistics sections: results, AUC per finding, ROC curves, operating points, calibration, thresholds."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..evaluation import bootstrap_class_auc
from ..metrics import brier_scores, sensitivity_at_specificity
from ..plotting import plot_class_auc, plot_model_comparison, plot_reliability, plot_roc_curves
from ._html import _ci, _esc, _figure, _num, _pretty, _table


def _summary_table(table: pd.DataFrame, confidence: float) -> pd.DataFrame:
    """The summary metrics as text, intervals as ``0.712 [0.650, 0.770]``, grouped under two header rows."""
    level = f"{confidence:.0%}\u00a0CI"
    columns = {}
    for column in ("Images", "Patients"):
        if column in table:
            columns[("", column)] = table[column].astype(int)
    columns[("AUC", f"Macro-AUC [{level}]")] = [
        _ci(*row) for row in table[["Macro-AUC", "AUC low", "AUC high"]].to_numpy(float)]
    if "ΔAUC" in table:
        columns[("AUC", f"ΔAUC [{level}]")] = [
            _ci(*row, signed=True) for row in table[["ΔAUC", "ΔAUC low", "ΔAUC high"]].to_numpy(float)]
    for group, suffix in (("at threshold 0.5", ""), ("at tuned thresholds", " (tuned)")):
        for column in ("Micro-F1", "Macro-F1", "Hamming loss"):
            if column + suffix in table:
                heading = column.replace("-", "\u2011") + (" ↓" if column == "Hamming loss" else "")  # no break
                columns[(group, heading)] = [_num(v) for v in table[column + suffix].astype(float)]
    if "Seconds" in table:
        columns[("", "Seconds")] = [_num(v, "{:.1f}") for v in table["Seconds"].astype(float)]
    if "Thresholds" in table:
        columns[("", "Thresholds from")] = list(table["Thresholds"])
    shown = pd.DataFrame({key: list(values) for key, values in columns.items()}, index=table.index)
    shown.columns = pd.MultiIndex.from_tuples(shown.columns)
    return shown


def _results_section(result) -> str:
    conf = result.confidence
    parts = [
        f"<p>{len(result.Y_test):,} test images"
        + (f" of {len(np.unique(result.groups_test)):,} patients" if result.groups_test is not None else "")
        + f". Macro-AUC: mean of the per-finding AUCs (findings with both label values in the test part), with a "
        f"{conf:.0%} percentile interval from {result.n_boot:,} bootstrap resamples of test <em>patients</em>. "
        + (f"ΔAUC: difference to the baseline <b>{_esc(result.baseline)}</b> on the same resamples (paired). "
           if result.baseline else "")
        + "F1 and Hamming loss at 0.5 and, “(tuned)”, at per-finding thresholds chosen on the training part "
        "only. ↓: lower is better.</p>",
        _table(_summary_table(result.summary, conf)),
    ]
    for source, table in result.by_source.items():
        parts += [f"<h3>Within source {_esc(source)}</h3>", _table(_summary_table(table, conf))]
    parts.append(_figure(
        plot_model_comparison(result), "Macro-AUC of each model with its interval",
        "Macro-AUC with its patient-bootstrap interval on the pooled test part"
        + (" and within each source" if result.by_source else "")
        + (f"; right: ΔAUC to {_esc(result.baseline)} with its paired interval" if result.baseline else "")
        + ". Dashed: chance (0.5) and no difference (0)."))
    return "".join(parts)


def _class_auc_tables(result, names):
    return {
        name: bootstrap_class_auc(result.Y_test, P, result.groups_test, target_names=names, n_boot=result.n_boot,
                                  confidence=result.confidence, random_state=result.random_state)
        for name, P in result.proba.items()
    }


def _per_class_section(result, names, class_auc) -> str:
    shown = pd.DataFrame(index=pd.Index([_pretty(n) for n in names], name="finding"))
    shown["positives"] = next(iter(class_auc.values()))["positives"].to_numpy()
    for model, table in class_auc.items():
        shown[model] = [_ci(*row) for row in table[["AUC", "AUC low", "AUC high"]].to_numpy(float)]
    undefined = [_pretty(n) for n, v in zip(names, next(iter(class_auc.values()))["AUC"]) if not np.isfinite(v)]
    note = (f'<p class="note">AUC undefined (one label value only in the test part): {_esc(", ".join(undefined))}.'
            "</p>" if undefined else "")
    return (
        f"<p>AUC of each finding on the test part with its {result.confidence:.0%} patient-bootstrap interval "
        "(the resamples of the results table). Findings with few positives have wide intervals.</p>"
        + _table(shown) + note
        + _figure(plot_class_auc({m: t.set_axis([_pretty(n) for n in t.index]) for m, t in class_auc.items()}),
                  "AUC per finding with intervals",
                  "Bars start at chance (0.5); whiskers: patient-bootstrap intervals.")
    )


def _roc_section(result, names) -> str:
    return _figure(plot_roc_curves(result.Y_test, result.proba, names), "ROC curves per finding",
                   "ROC curve of every finding on the test part, one colour per model (legend above); each "
                   "panel's legend gives the AUC. Dashed: chance.", dpi=90)


def _operating_points_section(result, names, specificities) -> str:
    columns, data = [], []
    for model, P in result.proba.items():
        for s in specificities:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sens = sensitivity_at_specificity(result.Y_test, P, s)
            columns.append((model, f"spec ≥ {s:.2f}"))
            data.append(sens)
    table = pd.DataFrame(np.column_stack(data), columns=pd.MultiIndex.from_tuples(columns),
                         index=pd.Index([_pretty(n) for n in names], name="finding"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        table.loc["mean over findings"] = table.mean(axis=0, skipna=True)
    shown = table.map(_num)
    shown.insert(0, ("", "positives"), [str(v) for v in result.Y_test.sum(axis=0).astype(int)] + [""])
    return (
        "<p>Per finding, the highest sensitivity of a threshold that keeps the specificity at least at the given "
        "level, read on the test part. The threshold is chosen on the test part itself, so these are optimistic "
        "descriptions of each ROC curve, not operating points to deploy (those are in "
        '<a href="#thresholds">Decision thresholds</a>).</p>' + _table(shown))


def _calibration_section(result, names, n_bins) -> str:
    Y = result.Y_test
    prevalence = Y.mean(axis=0)
    table = pd.DataFrame(index=pd.Index([_pretty(n) for n in names], name="finding"))
    table["prevalence"] = [f"{p:.1%}" for p in prevalence]
    table["reference p(1−p)"] = [_num(v) for v in prevalence * (1 - prevalence)]
    out_of_range = []
    probas = {}
    for model, P in result.proba.items():
        P = np.asarray(P, dtype=float)
        if P.min() < 0 or P.max() > 1:
            out_of_range.append(model)
            continue
        probas[model] = P
        scores = brier_scores(Y, P)
        table[model] = [_num(v) for v in scores]
    means = {"prevalence": f"{Y.mean():.1%}", "reference p(1−p)": _num(float(np.mean(prevalence * (1 - prevalence))))}
    for model, P in probas.items():
        means[model] = _num(float(np.mean(brier_scores(Y, P))))
    table.loc["mean over findings"] = pd.Series(means)
    parts = [
        "<p>Brier score of each finding (mean squared difference between probability and outcome; lower is "
        "better) against the reference of predicting the finding's test prevalence everywhere, and reliability "
        f"curves ({n_bins} bins of equal width; empty bins left out; whiskers: {result.confidence:.0%} Wilson "
        "intervals). Classifiers trained with balanced class weights (the logistic-regression baseline) or a "
        "balancing <code>pos_weight</code> (the MLPs) overstate rare findings' probabilities on purpose: their "
        "points lie below the diagonal and their Brier scores exceed the reference, while their ranking (AUC) is "
        "unaffected.</p>",
        _table(table),
    ]
    if out_of_range:
        parts.append(f'<p class="note">Not probabilities (outside [0, 1]), left out: {_esc(", ".join(out_of_range))}.'
                     "</p>")
    if probas:
        parts.append(_figure(plot_reliability(Y, probas, names, n_bins=n_bins, confidence=result.confidence),
                             "Reliability curves per finding",
                             "Observed frequency of the finding against the mean predicted probability per bin, "
                             "one colour per model; dashed: perfect calibration.", dpi=90))
    return "".join(parts)


def _thresholds_section(result, names) -> str:
    parts = [
        "<p>The per-finding thresholds behind the “(tuned)” columns, chosen to maximise F1 on the training part "
        "only (the model's own, found on a patient-disjoint inner validation split, or out-of-fold training "
        "predictions), and what they give on the test part. A finding is called positive at probability ≥ "
        "threshold.</p>"]
    for model in result.proba:
        how = result.summary["Thresholds"].get(model, "") if "Thresholds" in result.summary else ""
        per_class = result.per_class(model)
        shown = pd.DataFrame(index=pd.Index([_pretty(n) for n in names], name="finding"))
        shown["positives"] = per_class["support"].astype(int).to_numpy()
        if result.thresholds.get(model) is None:
            parts.append(f"<h3>{_esc(model)}</h3><p class='note'>No tuned thresholds (threshold CV off): 0.5 for "
                         "every finding.</p>")
            columns = {"F1": "F1 at 0.5", "precision": "precision at 0.5", "recall": "recall at 0.5"}
        else:
            parts.append(f"<h3>{_esc(model)} <span class='note'>(thresholds from: {_esc(how)})</span></h3>")
            shown["threshold"] = [_num(v) for v in result.thresholds[model]]
            columns = {"F1 (tuned)": "F1", "precision (tuned)": "precision", "recall (tuned)": "recall",
                       "F1": "F1 at 0.5"}
        for column, heading in columns.items():
            shown[heading] = [_num(v) for v in per_class[column].astype(float).to_numpy()]
        parts.append(_table(shown))
    return "".join(parts)
