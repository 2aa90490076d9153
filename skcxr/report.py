"""A self-contained HTML report of a held-out evaluation: :func:`write_report`.

One page, ``report.html``, with every figure embedded as a PNG data URI (no
network, no script): open it from disk, mail it, archive it next to the
results. It reads a :class:`skcxr.evaluation.HoldoutResult` (which keeps the
test labels, patients and sources next to the probabilities) and, optionally,
the test images, their metadata and the run's settings:

- **results**: the summary table with patient-bootstrap intervals, ΔAUC to
  the baseline with paired intervals, the within-source tables and their
  chart (:func:`skcxr.plotting.plot_model_comparison`);
- **AUC per finding** with intervals (:func:`skcxr.evaluation.bootstrap_class_auc`);
- **ROC curves** of every finding;
- **sensitivity at fixed specificities** (:func:`skcxr.metrics.sensitivity_at_specificity`);
- **calibration**: reliability curves and Brier scores;
- **thresholds** tuned on the training part, and F1/precision/recall there;
- **subgroups** (sex, age band, view position) with intervals, from ``metadata``;
- **data**: the label distribution of the training and test parts per source;
- **gallery**: test radiographs of one finding (true positives, false
  positives, false negatives) with their Grad-CAM, U-Net lung mask and fused
  map where the model has them;
- **model card** (intended use: research, not diagnosis; NIH label noise;
  data and citation) and the **settings and versions** of the run.

The page is written by Python alone; the command line reaches it through
``skcxr run ... --report DIR``.
"""

from __future__ import annotations

import base64
import copy
import datetime
import html
import io
import json
import numbers
import os
import platform
import sys
import warnings
from importlib import metadata as _metadata
from pathlib import Path

import numpy as np
import pandas as pd

from .evaluation import bootstrap_class_auc, bootstrap_macro_auc
from .metrics import brier_scores, sensitivity_at_specificity
from .plotting import (
    map_panel,
    plot_class_auc,
    plot_label_distribution,
    plot_model_comparison,
    plot_reliability,
    plot_roc_curves,
    plot_subgroup_auc,
)

__all__ = ["SECTIONS", "write_report"]

#: The report's sections: HTML id -> heading, in page order.
SECTIONS = {
    "results": "Results",
    "per-class": "AUC per finding",
    "roc": "ROC curves",
    "operating-points": "Sensitivity at fixed specificity",
    "calibration": "Calibration",
    "thresholds": "Decision thresholds",
    "subgroups": "Results by subgroup",
    "data": "Data: label distribution",
    "gallery": "Gallery",
    "model-card": "Model card",
    "settings": "Settings and versions",
}

#: Metadata columns read for subgroups: the loader's names (``load_chestxray14(...).frame``) and NIH's headers.
_META_COLUMNS = {
    "sex": ("sex", "Patient Gender"),
    "age": ("age", "Patient Age"),
    "view": ("view", "View Position"),
}
_VERSIONS = ("numpy", "scipy", "pandas", "scikit-learn", "torch", "torchvision", "skorch", "matplotlib",
             "scikit-image", "pillow")
_CASES = {"TP": "True positives", "FP": "False positives", "FN": "False negatives"}

_CSS = """
:root { --fg: #1d1f23; --muted: #59606b; --line: #d8dce2; --band: #f5f7fa; --accent: #1f5fa8; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, Helvetica, sans-serif; color: var(--fg);
       max-width: 1200px; margin: 0 auto; padding: 0 28px 60px; line-height: 1.5; font-size: 15px; }
header { border-bottom: 3px solid var(--accent); padding: 22px 0 10px; margin-bottom: 10px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 21px; margin: 38px 0 8px; padding-top: 8px; border-top: 1px solid var(--line); }
h3 { font-size: 16px; margin: 22px 0 6px; }
p, li { max-width: 920px; }
.sub { color: var(--muted); margin: 0; }
.warning { background: #fff4e0; border-left: 5px solid #e69a16; padding: 10px 14px; margin: 14px 0; }
.note { color: var(--muted); font-size: 14px; }
nav ol { columns: 3; margin: 8px 0 0; padding-left: 22px; font-size: 14px; }
a { color: var(--accent); }
.scroll { overflow-x: auto; margin: 6px 0 14px; }
table { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 9px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
thead th { background: #e9edf3; vertical-align: bottom; white-space: normal; min-width: 60px; }
thead th:first-child { text-align: left; }
thead tr:not(:last-child) th { text-align: center; border-bottom: 2px solid #c5ccd6; }
tbody th { text-align: left; font-weight: 600; }
tbody tr:nth-child(even) { background: var(--band); }
table.kv td { text-align: left; white-space: normal; }
figure { margin: 12px 0 22px; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { font-size: 13.5px; color: var(--muted); margin-top: 4px; max-width: 920px; }
.cases h3 { margin-top: 26px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 6px 18px; }
.grid.wide { grid-template-columns: 1fr; }
.grid figure { margin: 6px 0; }
pre { background: var(--band); padding: 10px; overflow-x: auto; font-size: 12px; }
details summary { cursor: pointer; color: var(--accent); }
"""


# -- small HTML pieces -----------------------------------------------------------------------------


def _esc(text) -> str:
    return html.escape(str(text), quote=True)


def _png(fig, dpi=100) -> str:
    """A matplotlib figure as a base64 PNG data URI."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(fig, alt: str, caption: str = "", dpi=100) -> str:
    caption = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f'<figure><img src="{_png(fig, dpi)}" alt="{_esc(alt)}">{caption}</figure>'


def _table(frame: pd.DataFrame) -> str:
    """A DataFrame as an HTML table; a single index's name heads its column (no extra header row)."""
    if frame.index.nlevels == 1 and frame.index.name:
        frame = frame.copy()
        frame.columns.names = [None] * (frame.columns.nlevels - 1) + [frame.index.name]
        frame.index.name = None
    return '<div class="scroll">' + frame.to_html(escape=True, na_rep="—", border=0) + "</div>"


def _kv_table(pairs) -> str:
    rows = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in pairs)
    return f'<div class="scroll"><table class="kv"><tbody>{rows}</tbody></table></div>'


def _ci(value, low, high, signed=False) -> str:
    if value is None or not np.isfinite(value):
        return "—"
    fmt = "{:+.3f}" if signed else "{:.3f}"
    if low is None or not (np.isfinite(low) and np.isfinite(high)):
        return fmt.format(value)
    return f"{fmt.format(value)} [{fmt.format(low)}, {fmt.format(high)}]"


def _num(value, fmt="{:.3f}") -> str:
    return "—" if value is None or not np.isfinite(value) else fmt.format(value)


def _pretty(name: str) -> str:
    return str(name).replace("_", " ")


# -- checks --------------------------------------------------------------------------------------------


def _check_result(result):
    missing = [a for a in ("summary", "proba", "reports", "Y_test") if getattr(result, a, None) is None]
    if missing:
        raise ValueError(
            f"result lacks {', '.join(missing)}: pass the HoldoutResult of skcxr.evaluation.holdout_report "
            "(it keeps the test labels the report needs).")
    Y = np.asarray(result.Y_test)
    for name, P in result.proba.items():
        if np.shape(P) != Y.shape:
            raise ValueError(f"result.proba[{name!r}] has shape {np.shape(P)} but result.Y_test has shape {Y.shape}.")
    return Y


def _target_names(result, n_labels):
    names = getattr(result, "target_names", None)
    if names is None and result.reports:
        names = list(next(iter(result.reports.values())).per_class.index)
    if names is None or len(names) != n_labels:
        names = [str(k) for k in range(n_labels)]
    return [str(n) for n in names]


def _pick_model(result, model):
    names = list(result.proba)
    if model is not None:
        if model not in result.proba:
            raise ValueError(f"model={model!r} is not one of the result's models {names}.")
        return model
    auc = result.summary["Macro-AUC"].reindex(names).astype(float)
    return auc.idxmax() if auc.notna().any() else names[0]


def _pick_finding(finding, names, Y, P, n_cases):
    if finding is None:
        positives = Y.sum(axis=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from .metrics import multilabel_report

            auc = multilabel_report(Y, P).per_class["AUC"].to_numpy()
        usable = np.flatnonzero((positives >= min(n_cases, 2)) & np.isfinite(auc))
        if usable.size:
            return int(usable[np.argmax(auc[usable])])
        return int(np.argmax(positives))
    if isinstance(finding, numbers.Integral) and not isinstance(finding, bool):
        if not 0 <= finding < len(names):
            raise ValueError(f"finding={finding} is out of range: {len(names)} findings.")
        return int(finding)
    if str(finding) not in names:
        raise ValueError(f"finding={finding!r} is not one of {names}.")
    return names.index(str(finding))


def _check_specificities(specificities):
    values = tuple(float(s) for s in np.atleast_1d(specificities))
    if not values or any(not 0 < s < 1 for s in values):
        raise ValueError(f"specificities must be floats strictly between 0 and 1, got {specificities!r}.")
    return values


def _check_metadata(metadata, n):
    if metadata is None:
        return None
    frame = pd.DataFrame(metadata).reset_index(drop=True)
    if len(frame) != n:
        raise ValueError(f"metadata has {len(frame)} rows but the test part has {n} images (one row per test image).")
    return frame


def _check_age_bands(age_bands):
    bands = [float(a) for a in age_bands]
    if any(b <= a for a, b in zip(bands, bands[1:])) or any(b <= 0 for b in bands):
        raise ValueError(f"age_bands must be increasing positive ages, got {age_bands!r}.")
    return bands


# -- sections --------------------------------------------------------------------------------------


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


def _meta_column(frame, key):
    for column in _META_COLUMNS[key]:
        if column in frame.columns:
            return frame[column]
    return None


def _age_labels(age, bands):
    age = pd.to_numeric(age, errors="coerce").to_numpy(float)
    edges = [-np.inf, *bands, np.inf]
    labels = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        if not np.isfinite(lo):
            labels.append(f"< {hi:g}")
        elif not np.isfinite(hi):
            labels.append(f"≥ {lo:g}")
        else:
            labels.append(f"{lo:g}–{hi - 1:g}")
    which = np.digitize(age, bands)
    return np.where(np.isfinite(age), np.asarray(labels, dtype=object)[np.clip(which, 0, len(labels) - 1)],
                    "unknown")


def _subgroups(result, frame, age_bands):
    """[(variable, value, mask)] over sex, age band and view, where the metadata has them."""
    groups = []
    for key, title in (("sex", "sex"), ("age", "age band"), ("view", "view position")):
        column = _meta_column(frame, key)
        if column is None:
            continue
        if key == "age":
            values = _age_labels(column, age_bands)
            order = [v for v in _age_labels(pd.Series([0, *age_bands]), age_bands) if v in set(values)]
            order += ["unknown"] if "unknown" in set(values) else []
        else:
            values = column.astype(str).str.strip().replace({"": "unknown", "nan": "unknown"}).to_numpy(object)
            order = sorted(set(values), key=lambda v: (v == "unknown", v))
        groups += [(title, value, values == value) for value in order]
    return groups


def _subgroup_section(result, frame, age_bands) -> str:
    if frame is None:
        return ("<p class='note'>No metadata given: pass <code>metadata=</code>, one row per test image with "
                "columns <code>sex</code>, <code>age</code>, <code>view</code> (the <code>frame</code> of "
                "<code>skcxr.datasets.load_chestxray14</code>, or NIH's headers).</p>")
    groups = _subgroups(result, frame, age_bands)
    if not groups:
        return ("<p class='note'>The metadata has none of the columns sex, age, view (or NIH's Patient Gender, "
                "Patient Age, View Position).</p>")
    Y = result.Y_test
    rows, tables = [], {model: [] for model in result.proba}
    labels = []
    for variable, value, mask in groups:
        patients = (len(np.unique(result.groups_test[mask])) if result.groups_test is not None else int(mask.sum()))
        label = f"{variable}: {value}"
        labels.append(f"{label} ({int(mask.sum())} images)")
        row = {"images": int(mask.sum()), "patients": patients,
               "findings scored": int(((Y[mask].sum(0) > 0) & (Y[mask].sum(0) < mask.sum())).sum())}
        if result.sources_test is not None:  # a subgroup's result may be its mix of sources
            mix = pd.Series(result.sources_test[mask].astype(str)).value_counts(normalize=True).sort_index()
            row["sources"] = " · ".join(f"{source} {share:.0%}" for source, share in mix.items())
        for model, P in result.proba.items():
            interval = (np.nan,) * 3
            if mask.sum() >= 2 and row["findings scored"]:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    interval = bootstrap_macro_auc(
                        Y[mask], np.asarray(P)[mask],
                        None if result.groups_test is None else result.groups_test[mask],
                        n_boot=result.n_boot, confidence=result.confidence, random_state=result.random_state)
            tables[model].append(interval)
            row[model] = _ci(*interval)
        rows.append(row)
    shown = pd.DataFrame(rows, index=pd.MultiIndex.from_tuples([(v, str(x)) for v, x, _ in groups],
                                                                names=["variable", "value"]))
    frames = {model: pd.DataFrame(values, index=labels, columns=["Macro-AUC", "AUC low", "AUC high"])
              for model, values in tables.items()}
    return (
        f"<p>Macro-AUC within each subgroup of the test part, with {result.confidence:.0%} patient-bootstrap "
        "intervals. Macro-AUC averages over the findings that have both label values in the subgroup (“findings "
        "scored”), so subgroups with different label mixes are not strictly comparable; nor are subgroups that "
        "differ in their mix of sources (“sources”), where a gap may be the sources' gap; small subgroups give "
        "wide intervals. Models are trained once, on all training images.</p>"
        + _table(shown)
        + _figure(plot_subgroup_auc(frames), "Macro-AUC by subgroup",
                  "Macro-AUC with its patient-bootstrap interval per subgroup, one colour per model; dashed: "
                  "chance.")
    )


def _data_section(result, names) -> str:
    parts_Y, colours, hatches = {}, [], []

    def add(label, Y, colour, test):  # one colour per source, test hatched beside its training part
        parts_Y[label], _ = Y, colours.append(colour)
        hatches.append("//" if test else "")

    split = [(part, Y, sources) for part, Y, sources in (("train", result.Y_train, result.sources_train),
                                                         ("test", result.Y_test, result.sources_test))
             if Y is not None]
    known = sorted({str(v) for _, _, sources in split if sources is not None for v in sources})
    if not known:
        for part, Y, _ in split:
            add(part, Y, "C0", part == "test")
    else:
        for part, Y, sources in split:
            if sources is None and part == "train":
                add("train (all sources)", Y, "C7", False)
        for c, source in enumerate(known):
            for part, Y, sources in split:
                if sources is not None and (sources.astype(str) == source).any():
                    add(f"{part} · {source}", Y[sources.astype(str) == source], f"C{c % 10}", part == "test")
        if result.sources_test is None:
            add("test (all sources)", result.Y_test, "C7", True)
    table = pd.DataFrame(index=pd.Index([_pretty(n) for n in names] + ["No Finding", "images"], name="finding"))
    for label, Y in parts_Y.items():
        counts = np.append(Y.sum(axis=0), [(Y.sum(axis=1) == 0).sum(), len(Y)]).astype(int)
        share = np.append(100 * counts[:-1] / max(len(Y), 1), [100.0])
        table[label] = [f"{c:,} ({s:.1f}%)" for c, s in zip(counts, share)]
    note = ("" if result.sources_train is not None or result.sources_test is None else
            "<p class='note'>The training part's sources were not recorded (pass <code>sources_train</code> to "
            "holdout_report): it is shown pooled.</p>")
    return (
        "<p>Images with each finding in each part of the data (count and share). Several findings per image "
        "are common; “No Finding” is an image with none of them. When sources differ in their label mix, a "
        "model can score by recognising the source: compare the within-source results.</p>"
        + _table(table) + note
        + _figure(plot_label_distribution(parts_Y, names, colors=colours, hatches=hatches), "Label distribution",
                  "Share of images with each finding, per part of the data (hatched: test).")
    )


# -- gallery -----------------------------------------------------------------------------------------


def _as_rows(X, n):
    if isinstance(X, (str, os.PathLike)):
        raise ValueError("X_test must hold one image (or path) per test image, not a single path.")
    X = np.asarray(X, dtype=object) if isinstance(X, (list, tuple)) else np.asarray(X)
    if len(X) != n:
        raise ValueError(f"X_test has {len(X)} images but the test part has {n}.")
    return X


def _case_indices(y, p, threshold, n_cases):
    called = p >= threshold
    order = np.argsort(-p, kind="stable")
    tp = [i for i in order if y[i] and called[i]][:n_cases]
    fp = [i for i in order if not y[i] and called[i]][:n_cases]
    fn = [i for i in order[::-1] if y[i] and not called[i]][:n_cases]
    return {"TP": tp, "FP": fp, "FN": fn}


def _finding_cam(cam, X, k):
    """The CAM of finding k: a GradCAM is asked for that label (a copy, the caller's is unchanged)."""
    classes = getattr(cam, "classes_", None)
    if classes is not None and hasattr(cam, "set_params") and "target" in cam.get_params(deep=False):
        cam = copy.copy(cam)
        cam.set_params(target=classes[k])
        return np.asarray(cam.transform(X), dtype=np.float32), "Grad-CAM"
    maps = np.asarray(cam.transform(X), dtype=np.float32)
    if maps.ndim == 4:
        return maps[:, k], "Grad-CAM"
    return maps, "CAM"


def _gallery_maps(fitted, X, k, cam, segmenter):
    """Preprocessed images and [(title, maps)] for the chosen images; and a note on what is (not) shown."""
    from sklearn.pipeline import Pipeline
    from skimage.transform import resize

    from .fusion import AttentionFusion, attention_steps
    from .preprocessing import CXRPreprocessor

    notes = []
    try:
        prep, maps_step, fusion = attention_steps(fitted)
        attention = True
    except ValueError:
        attention = False
    if attention:
        own_seg, own_cam = isinstance(segmenter, str) and segmenter == "auto", cam is None
        seg = maps_step.segmenter_ if own_seg else segmenter
        cam = maps_step.cam_ if own_cam else cam
        used = [what for what, own in (("U-Net", own_seg), ("Grad-CAM network (asked for this finding)", own_cam))
                if own]
        parts = used + ["fusion"]
        listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
        notes.append(f"The model is an attention pipeline: its own {listed} "
                     f"(λ = {fusion.lam:g}) draw the maps" + ("" if own_seg and own_cam else
                                                               "; the other maps come from the arguments given")
                     + ".")
    else:
        model = getattr(fitted, "best_estimator_", fitted)
        first = model.steps[0][1] if isinstance(model, Pipeline) else None
        prep = first if isinstance(first, CXRPreprocessor) else None
        seg = segmenter
        if isinstance(segmenter, str) and segmenter == "auto":
            from .segmentation import load_lung_unet

            seg = load_lung_unet()
        fusion = AttentionFusion(lam=0.5) if cam is not None and seg is not None else None
        if cam is None:
            notes.append(
                "The model is not an attention pipeline and no <code>cam=</code> was given, so no Grad-CAM is "
                "shown: it has no CNN whose evidence for the finding could be mapped. A Grad-CAM needs a CNN "
                "fine-tuned on the training labels, e.g. <code>GradCAM(CNNEmbedder(\"efficientnet_lite0\", "
                "weights=\"imagenet\", fine_tune=\"last\", image_size=128)).fit(X_train, Y_train)</code> (minutes on a CPU for a thousand images, "
                "seconds on a GPU); pass the fitted GradCAM as <code>cam=</code> to add its maps and the fused "
                "map (λ = 0.5).")
        else:
            notes.append("Grad-CAM from the <code>cam=</code> given, asked for this finding; fused with the lung "
                         "map at λ = 0.5.")
    if prep is None:
        prep = CXRPreprocessor().fit(X)
        notes.append("Images preprocessed by <code>CXRPreprocessor()</code> (224 px) for display.")
    images = np.asarray(prep.transform(X), dtype=np.float32)
    maps = []
    lungs = None
    if seg is not None:
        lungs = np.asarray(seg.transform(images), dtype=np.float32)
    if cam is not None:
        cams, name = _finding_cam(cam, images, k)
        if lungs is not None and cams.shape != lungs.shape:
            cams = resize(cams, lungs.shape, order=1, preserve_range=True).astype(np.float32)
        maps.append((name, cams))
    if lungs is not None:
        maps.append(("U-Net lung mask", lungs))
    if lungs is not None and cam is not None and fusion is not None:
        maps.append(("Fused map", fusion.transform(np.stack([lungs, maps[0][1]], axis=1))))
    return images, maps, notes


def _image_name(X, i):
    value = X[i]
    if isinstance(value, (str, os.PathLike)):
        return Path(value).name
    return f"test image #{i}"


def _gallery_section(result, X_test, names, model, k, cam, segmenter, n_cases) -> str:
    finding = names[k]
    if X_test is None:
        return ("<p class='note'>No images given: pass <code>X_test=</code> (the test images or their paths, in "
                "the order of the result) to see true positives, false positives and false negatives with their "
                "maps.</p>")
    X = _as_rows(X_test, len(result.Y_test))
    y = result.Y_test[:, k].astype(bool)
    p = np.asarray(result.proba[model], dtype=float)[:, k]
    tuned = result.thresholds.get(model)
    threshold = float(tuned[k]) if tuned is not None else 0.5
    cases = _case_indices(y, p, threshold, n_cases)
    chosen = [i for kind in _CASES for i in cases[kind]]
    intro = (
        f"<p>Finding <b>{_esc(_pretty(finding))}</b>, model <b>{_esc(model)}</b>, called positive at probability ≥ "
        f"{threshold:.3f} ({'its threshold tuned on the training part' if tuned is not None else '0.5'}). "
        f"Per kind, the {n_cases} most confident cases: true positives and false positives with the highest "
        "probability, false negatives with the lowest. Maps are drawn in their own values (0-1, not stretched "
        "per image): a faint map is weak evidence.</p>")
    if not chosen:
        return intro + "<p class='note'>No positive image and no positive call for this finding.</p>"
    images, maps, notes = _gallery_maps(result.models[model], X[np.asarray(chosen)], k, cam, segmenter)
    where = {i: j for j, i in enumerate(chosen)}
    parts = [intro, "".join(f"<p class='note'>{n}</p>" for n in notes), "<div class='cases'>"]
    grid = "grid wide" if len(maps) > 1 else "grid"
    for kind, title in _CASES.items():
        parts.append(f"<h3>{title} ({len(cases[kind])} shown)</h3>")
        if not cases[kind]:
            parts.append("<p class='note'>None in the test part.</p>")
            continue
        parts.append(f"<div class='{grid}'>")
        for i in cases[kind]:
            j = where[i]
            present = [_pretty(n) for n, v in zip(names, result.Y_test[i]) if v] or ["No Finding"]
            label = f"{_image_name(X, i)}: P({_pretty(finding)}) = {p[i]:.3f}"
            if result.sources_test is not None:
                label += f" (source {result.sources_test[i]})"
            fig = map_panel(images[j], [(name, m[j]) for name, m in maps], contour=("U-Net lung mask",))
            parts.append(_figure(fig, f"{title[:-1]}: {label}",
                                 f"{kind} · {_esc(label)}; labels: {_esc(', '.join(present))}.", dpi=80))
        parts.append("</div>")
    parts.append("</div>")
    return "".join(parts)


# -- model card and settings -------------------------------------------------------------------------


def _model_card(result, names, sources) -> str:
    n_train = None if result.Y_train is None else len(result.Y_train)
    data = f"{n_train:,} training and " if n_train is not None else ""
    source_text = f" from {_esc(', '.join(sources))}" if sources else ""
    return f"""
<div class="warning"><b>Research use only.</b> These models are not medical devices. They must not be used to
diagnose, triage or treat anyone, nor to support any clinical decision.</div>
<h3>Intended use</h3>
<p>Comparing methods for multi-label finding classification on chest radiographs ({len(names)} findings:
{_esc(", ".join(_pretty(n) for n in names))}) under a patient-wise split, in research and teaching. The numbers
describe this test part only; they were not validated prospectively, on other hospitals or on other
scanners.</p>
<h3>Data</h3>
<p>This run: {data}{len(result.Y_test):,} test images{source_text}, split by patient (no patient on both
sides). skcxr is built for NIH ChestX-ray14 (ChestX-ray8): 112,120 frontal radiographs of 30,805 patients
from the NIH Clinical Center, released for unrestricted use with the request to cite the paper below and
acknowledge the NIH Clinical Center. Findings are not independent of the acquisition: view position (PA/AP),
age and follow-up status differ between findings, and a model can learn them.</p>
<h3>Label noise</h3>
<p>NIH's labels were text-mined from radiology reports with natural-language processing, not read from the
images. Wang et al. report precision and recall of about 0.9 for the mining on hand-labelled reports; visual
review of the images (Oakden-Rayner, <i>Exploring large-scale public medical image datasets</i>, Academic
Radiology 2020) found many labels that the radiograph does not support, worse for some findings than for
others. The test labels are as noisy as the training labels: AUCs measure agreement with the reports' text
mining, and an AUC near 1 is not reachable. “No Finding” means that no finding was mined from the report, not
a verified normal study.</p>
<h3>Limitations</h3>
<ul>
<li>Small test parts give wide intervals: differences whose intervals overlap are not established.</li>
<li>Probabilities of class-weighted models are not calibrated (see Calibration): use them for ranking.</li>
<li>Subgroup results average over different findings (see Results by subgroup).</li>
<li>Attention maps show where the model's evidence lies, not where the disease is.</li>
</ul>
<h3>Citation</h3>
<p>Xiaosong Wang, Yifan Peng, Le Lu, Zhiyong Lu, Mohammadhadi Bagheri, Ronald M. Summers.
<i>ChestX-ray8: Hospital-scale Chest X-ray Database and Benchmarks on Weakly-Supervised Classification and
Localization of Common Thorax Diseases.</i> IEEE CVPR 2017, pp. 2097–2106.
<a href="https://arxiv.org/abs/1705.02315">arXiv:1705.02315</a>.
Data: NIH Clinical Center,
<a href="https://nihcc.app.box.com/v/ChestXray-NIHCC">nihcc.app.box.com/v/ChestXray-NIHCC</a>.</p>
"""


def cpu_name() -> str:
    """The processor's model name (from /proc/cpuinfo where there is one), for reports and studies."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def _environment() -> list:
    from . import __version__

    pairs = [("skcxr", __version__), ("Python", platform.python_version())]
    for name in _VERSIONS:
        try:
            pairs.append((name, _metadata.version(name)))
        except _metadata.PackageNotFoundError:
            pass
    pairs += [("platform", platform.platform()), ("CPU", f"{cpu_name()}, {os.cpu_count()} logical cores")]
    torch = sys.modules.get("torch")  # not imported for this: a report of sklearn-only models stays light
    if torch is not None:
        pairs.append(("torch threads", torch.get_num_threads()))
        if torch.cuda.is_available():
            pairs.append(("GPU", torch.cuda.get_device_name(0)))
    return pairs


def _settings_section(result, config, extra) -> str:
    evaluation = [
        ("models", ", ".join(result.proba)),
        ("baseline", result.baseline or "none"),
        ("bootstrap", f"{result.n_boot:,} resamples of test patients, {result.confidence:.0%} percentile intervals"),
        ("bootstrap seed", "none recorded" if result.random_state is None else result.random_state),
        ("thresholds from", "; ".join(f"{m}: {t}" for m, t in result.summary.get("Thresholds", {}).items())
         if "Thresholds" in result.summary else "—"),
        *extra,
    ]
    parts = ["<h3>Evaluation</h3>", _kv_table(evaluation)]
    if config:
        parts += ["<h3>Run</h3>", _kv_table((k, v if isinstance(v, str) else json.dumps(v, default=str))
                                            for k, v in config.items())]
    parts += ["<h3>Versions and machine</h3>", _kv_table(_environment())]
    models = "".join(f"<p><b>{_esc(name)}</b></p><pre>{_esc(_model_repr(m))}</pre>"
                     for name, m in result.models.items())
    if models:
        parts.append(f"<details><summary>Fitted models (parameters that differ from the defaults)</summary>{models}"
                     "</details>")
    return "".join(parts)


def _model_repr(model) -> str:
    try:
        return repr(model)
    except Exception as exc:  # noqa: BLE001 - a repr must not stop the report
        return f"{type(model).__name__} (repr failed: {exc})"


# -- the page -----------------------------------------------------------------------------------------


def write_report(result, out_dir, *, X_test=None, metadata=None, config=None, model=None, finding=None, cam=None,
                 segmenter="auto", n_cases=3, specificities=(0.8, 0.9, 0.95), n_bins=10, age_bands=(18, 40, 60),
                 title="skcxr evaluation report", filename="report.html") -> Path:
    """Write one self-contained HTML page describing a held-out evaluation.

    The page (``out_dir/report.html``) embeds every figure as a PNG data URI
    and holds no script and no link to fetch: it opens offline, from any
    folder. Its sections are :data:`SECTIONS`: results with patient-bootstrap
    intervals, AUC per finding with intervals, ROC curves, sensitivity at fixed
    specificities, calibration (reliability curves, Brier scores), the tuned
    thresholds, results by subgroup (sex, age band, view position) from
    ``metadata``, the label distribution of the training and test parts per
    source, a gallery of test radiographs with their maps, a model card and
    the settings and versions of the run. A section whose inputs are missing
    (no ``metadata``, no ``X_test``) says what to pass instead of being left
    out.

    Parameters
    ----------
    result : skcxr.evaluation.HoldoutResult
        What :func:`skcxr.evaluation.holdout_report` returned (it keeps the
        test labels, patients, sources and the bootstrap's seed, so the
        report's intervals use the same resamples as its tables).
    out_dir : str or path-like
        Folder to write into (created if needed).
    X_test : array-like, optional
        The test images (paths or arrays, in the result's order), for the
        gallery.
    metadata : pandas.DataFrame or dict of arrays, optional
        One row per test image, in the result's order, with any of the
        columns ``sex``, ``age`` (years), ``view`` (as in
        ``load_chestxray14(...).frame``; NIH's ``Patient Gender``, ``Patient
        Age``, ``View Position`` work too), for the subgroup section.
    config : dict, optional
        The run's settings (command-line arguments, say), listed as given.
    model : str, optional
        The model of the gallery; by default the one with the highest
        macro-AUC.
    finding : str or int, optional
        The finding of the gallery; by default the one the gallery's model
        ranks best (highest AUC) among those with at least two positives.
    cam : fitted transformer, optional
        Grad-CAM maps for the gallery: a fitted :class:`skcxr.explain.GradCAM`
        (asked for the finding with ``target=``, on a copy) or any fitted
        transformer whose ``transform`` of preprocessed images gives ``(n, S,
        S)`` maps in [0, 1] (or ``(n, L, S, S)``, one per finding). None: the
        model's own Grad-CAM network when it is an attention pipeline
        (:func:`skcxr.pipelines.make_attention_pipeline`), else no Grad-CAM
        (the page says how to get one).
    segmenter : "auto", fitted transformer or None, default="auto"
        Lung maps for the gallery: "auto" is the attention pipeline's own
        U-Net, else the shipped one (:func:`skcxr.segmentation.load_lung_unet`);
        None shows none.
    n_cases : int, default=3
        Images per kind (true positive, false positive, false negative).
    specificities : sequence of float, default=(0.8, 0.9, 0.95)
        Where sensitivity is read off each ROC curve.
    n_bins : int, default=10
        Bins of the reliability curves.
    age_bands : sequence of int, default=(18, 40, 60)
        Ages where the age bands start (``< 18, 18–39, 40–59, ≥ 60``).
    title : str, default="skcxr evaluation report"
    filename : str, default="report.html"

    Returns
    -------
    pathlib.Path
        The page written.

    Examples
    --------
    >>> import tempfile
    >>> from sklearn.datasets import make_multilabel_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.multiclass import OneVsRestClassifier
    >>> from skcxr.evaluation import holdout_report
    >>> from skcxr.report import write_report
    >>> X, Y = make_multilabel_classification(200, n_classes=3, random_state=0)
    >>> result = holdout_report({"LR": OneVsRestClassifier(LogisticRegression(max_iter=500))},
    ...                         X[:150], Y[:150], X[150:], Y[150:], target_names=["Mass", "Nodule", "Edema"],
    ...                         threshold_cv=None, n_boot=100, random_state=0)
    >>> page = write_report(result, tempfile.mkdtemp())
    >>> page.name, "ROC curves" in page.read_text()
    ('report.html', True)
    """
    Y = _check_result(result)
    if isinstance(n_cases, bool) or not isinstance(n_cases, numbers.Integral) or n_cases < 1:
        raise ValueError(f"n_cases must be an int >= 1, got {n_cases!r}.")
    if not (isinstance(segmenter, str) and segmenter == "auto") and segmenter is not None \
            and not hasattr(segmenter, "transform"):
        raise ValueError(f'segmenter must be "auto", None or a fitted transformer, got {segmenter!r}.')
    if cam is not None and not hasattr(cam, "transform"):
        raise ValueError(f"cam must be None or a fitted transformer with transform, got {type(cam).__name__}.")
    specificities = _check_specificities(specificities)
    bands = _check_age_bands(age_bands)
    frame = _check_metadata(metadata, len(Y))
    if X_test is not None:
        X_test = _as_rows(X_test, len(Y))
    names = _target_names(result, Y.shape[1])
    gallery_model = _pick_model(result, model)
    k = _pick_finding(finding, names, Y, np.asarray(result.proba[gallery_model], dtype=float), n_cases)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    sources = [str(s) for s in pd.unique(np.concatenate(
        [s for s in (result.sources_train, result.sources_test) if s is not None]))] \
        if result.sources_train is not None or result.sources_test is not None else []
    class_auc = _class_auc_tables(result, names)
    body = {
        "results": _results_section(result),
        "per-class": _per_class_section(result, names, class_auc),
        "roc": _roc_section(result, names),
        "operating-points": _operating_points_section(result, names, specificities),
        "calibration": _calibration_section(result, names, n_bins),
        "thresholds": _thresholds_section(result, names),
        "subgroups": _subgroup_section(result, frame, bands),
        "data": _data_section(result, names),
        "gallery": _gallery_section(result, X_test, names, gallery_model, k, cam, segmenter, n_cases),
        "model-card": _model_card(result, names, sources),
        "settings": _settings_section(result, config, [
            ("gallery", f"{gallery_model}, finding {_pretty(names[k])}, {n_cases} cases per kind"),
            ("specificities", ", ".join(f"{s:g}" for s in specificities)),
            ("age bands start at", ", ".join(f"{b:g}" for b in bands)),
        ]),
    }
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    best = result.summary["Macro-AUC"].astype(float)
    headline = ""
    if best.notna().any():
        top = best.idxmax()
        row = result.summary.loc[top]
        headline = (f"Highest macro-AUC: <b>{_esc(top)}</b>, {_ci(row['Macro-AUC'], row['AUC low'], row['AUC high'])} "
                    f"({result.confidence:.0%} patient-bootstrap interval).")
    toc = "".join(f'<li><a href="#{key}">{_esc(heading)}</a></li>' for key, heading in SECTIONS.items())
    sections = "".join(f'<section id="{key}"><h2>{_esc(SECTIONS[key])}</h2>{content}</section>'
                       for key, content in body.items())
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="skcxr">
<title>{_esc(title)}</title>
<link rel="icon" href="data:,">
<style>{_CSS}</style>
</head>
<body>
<header>
<h1>{_esc(title)}</h1>
<p class="sub">{len(result.proba)} model(s) · {len(Y):,} test images · {len(names)} findings · written {when} by
skcxr</p>
</header>
<div class="warning"><b>Research use only — not for diagnosis.</b> See the <a href="#model-card">model card</a>.</div>
<p>{headline}</p>
<nav><b>Contents</b><ol>{toc}</ol></nav>
{sections}
</body>
</html>
"""
    path = out_dir / filename
    path.write_text(page, encoding="utf-8")
    return path
