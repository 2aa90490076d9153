"""The checks of :func:`~skcxr.report.write_report`'s arguments, and the choice of the gallery's model and finding."""

from __future__ import annotations

import numbers
import os
import warnings

import numpy as np
import pandas as pd

from ..metrics import multilabel_report


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




def _as_rows(X, n):
    if isinstance(X, (str, os.PathLike)):
        raise ValueError("X_test must hold one image (or path) per test image, not a single path.")
    X = np.asarray(X, dtype=object) if isinstance(X, (list, tuple)) else np.asarray(X)
    if len(X) != n:
        raise ValueError(f"X_test has {len(X)} images but the test part has {n}.")
    return X
