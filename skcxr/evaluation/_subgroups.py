"""Macro-AUC by subgroup (sex, age band, view position), pooled and within each source, with patient intervals."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ._bootstrap import bootstrap_macro_auc

#: Subgroups with fewer test images than this get no AUC ("too few"): their interval would say little.
MIN_SUBGROUP_IMAGES = 20

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


def subgroup_masks(metadata, age_bands=(18, 40, 60)) -> list:
    """``[(variable, value, mask)]`` over sex, age band and view position, where ``metadata`` has them.

    ``metadata``: a DataFrame, one row per image, with columns ``sex``, ``age``,
    ``view`` (the ``frame`` of :func:`skcxr.datasets.load_chestxray14`) or
    NIH's ``Patient Gender``, ``Patient Age``, ``View Position``.
    """
    groups = []
    for key, title in (("sex", "sex"), ("age", "age band"), ("view", "view position")):
        column = _meta_column(metadata, key)
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


def subgroup_table(Y_true, proba, metadata, *, groups=None, sources=None, age_bands=(18, 40, 60),
                   min_images=MIN_SUBGROUP_IMAGES, n_boot=1000, confidence=0.95, random_state=None) -> pd.DataFrame:
    """Macro-AUC of each model within each subgroup, pooled and within each source, with patient intervals.

    A subgroup of fewer than ``min_images`` images, or with no finding that has
    both label values in it, gets no AUC (``too few`` is True): a tiny
    subgroup's AUC of 1.000 [1.000, 1.000] is no finding. With ``sources``
    (the data set of each image) every subgroup is also scored within each
    source, since a pooled gap between subgroups may be their different mix of
    sources.

    Parameters
    ----------
    Y_true : array (n, L) of 0/1
    proba : array (n, L) or dict {model name: array (n, L)}
    metadata : DataFrame, one row per image (see :func:`subgroup_masks`)
    groups : array (n,), default=None
        Patient ids: the bootstrap resamples patients.
    sources : array (n,), default=None
    age_bands, min_images, n_boot, confidence, random_state
        As named; the bootstrap is :func:`bootstrap_macro_auc`.

    Returns
    -------
    DataFrame
        Indexed by (variable, value, source) ("all" for pooled); columns
        ``images``, ``patients``, ``findings scored``, ``too few``, and per
        model ``<name>``, ``<name> low``, ``<name> high``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> Y = rng.integers(0, 2, (60, 2)); P = np.clip(Y * 0.3 + rng.random((60, 2)) * 0.7, 0, 1)
    >>> meta = pd.DataFrame({"sex": ["F"] * 45 + ["M"] * 15})
    >>> table = subgroup_table(Y, P, meta, n_boot=50, random_state=0)
    >>> table["too few"].tolist()  # 15 men: fewer than 20 images
    [False, True]
    """
    Y = np.asarray(Y_true)
    proba = {"model": proba} if not isinstance(proba, dict) else proba
    groups = None if groups is None else np.asarray(groups)
    parts = [("all", np.ones(len(Y), bool))]
    if sources is not None:
        sources = np.asarray(sources).astype(str)
        parts += [(s, sources == s) for s in np.unique(sources)]
    rows, index = [], []
    for variable, value, mask in subgroup_masks(metadata, age_bands):
        for source, inside in parts:
            m = mask & inside
            if source != "all" and not m.any():
                continue
            scored = int(((Y[m].sum(0) > 0) & (Y[m].sum(0) < m.sum())).sum())
            row = {"images": int(m.sum()), "patients": len(np.unique(groups[m])) if groups is not None else int(m.sum()),
                   "findings scored": scored, "too few": bool(m.sum() < min_images or not scored)}
            for name, P in proba.items():
                estimate = low = high = np.nan
                if not row["too few"]:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")  # a resample without some finding's positives
                        estimate, low, high = bootstrap_macro_auc(
                            Y[m], np.asarray(P)[m], None if groups is None else groups[m], n_boot=n_boot,
                            confidence=confidence, random_state=random_state)
                row.update({name: estimate, f"{name} low": low, f"{name} high": high})
            rows.append(row)
            index.append((variable, str(value), source))
    return pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(index, names=["variable", "value", "source"]))
