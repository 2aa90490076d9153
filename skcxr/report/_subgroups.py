"""The report's results by subgroup (sex, age band, view position), read from the test images' metadata."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..evaluation import bootstrap_macro_auc
from ..plotting import plot_subgroup_auc
from ._html import _ci, _figure, _table


#: Metadata columns read for subgroups: the loader's names (``load_chestxray14(...).frame``) and NIH's headers.
_META_COLUMNS = {
    "sex": ("sex", "Patient Gender"),
    "age": ("age", "Patient Age"),
    "view": ("view", "View Position"),
}


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
