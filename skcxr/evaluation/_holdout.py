"""The holdout comparison: fit clones of several models on one patient-wise split and score them."""

from __future__ import annotations

import math
import numbers
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import cross_val_predict
from tqdm.auto import tqdm

from .._fitted import fitted_model
from .._validation import check_multilabel_Y
from ..metrics import multilabel_report, tune_thresholds
from ..metrics._scores import _as_score_matrix
from ..model_selection import MultilabelStratifiedGroupKFold, groups_fit_params, routing_context
from ..model_selection._checks import _n_rows
from ._bootstrap import (_check_bootstrap_args, _interval, _patient_draws, _quiet_macro_auc, _replicate_macro_aucs,
                         _seed)
from ._result import _AT_05, _AUC, _DELTA, _TUNED, HoldoutResult


def _check_models(models, baseline) -> dict:
    if not isinstance(models, dict) or not models:
        raise ValueError(f"models must be a non-empty dict of {{name: estimator}}, got {type(models).__name__}.")
    for name, model in models.items():
        if not isinstance(name, str):
            raise ValueError(f"model names must be strings, got {name!r}.")
        if not hasattr(model, "fit") or not hasattr(model, "predict_proba"):
            raise ValueError(f"model {name!r} ({type(model).__name__}) needs fit and predict_proba.")
    if baseline is not None and baseline not in models:
        raise ValueError(f"baseline={baseline!r} is not one of the models {list(models)}.")
    return models


def _check_1d(values, n, name):
    if values is None:
        return None
    values = np.asarray(values)
    if values.ndim != 1 or len(values) != n:
        raise ValueError(f"{name} must be 1-D with one value per image ({n}), got shape {values.shape}.")
    return values


def _check_threshold_cv(threshold_cv):
    if threshold_cv is None:
        return
    if isinstance(threshold_cv, bool) or not isinstance(threshold_cv, numbers.Integral) or threshold_cv < 2:
        raise ValueError(f"threshold_cv must be None or an int >= 2, got {threshold_cv!r}.")


def _training_thresholds(name, model, fitted, X_train, Y_train, groups_train, threshold_cv, seed):
    """Thresholds tuned on training data only, and where they come from."""
    own = getattr(fitted_model(fitted, final_step=True), "tuned_thresholds_", None)
    if own is not None:
        return np.asarray(own, dtype=float), "model"
    if threshold_cv is None:
        return None, "none"
    groups = np.arange(len(Y_train)) if groups_train is None else groups_train
    try:
        # The folds are drawn here, by patient; cross_val_predict refits a clone on each.
        cv = MultilabelStratifiedGroupKFold(threshold_cv, shuffle=True, random_state=seed)
        splits = list(cv.split(np.zeros(len(Y_train)), Y_train, groups))
        params, routing = groups_fit_params(model, groups_train)
        with routing_context(routing):
            oof = cross_val_predict(clone(model), X_train, Y_train, cv=splits, method="predict_proba",
                                    params=params)
    except ValueError as exc:
        raise ValueError(f"model {name!r}: tuning thresholds by {threshold_cv}-fold CV on the training "
                         f"part failed ({exc}); pass threshold_cv=None to report at 0.5 only.") from exc
    return tune_thresholds(Y_train, _as_score_matrix(oof, strict=False)), f"{threshold_cv}-fold CV"


def _metric_rows(names, Y, proba, thresholds, groups, baseline, n_boot, confidence, seed):
    """Metric columns (one row per model) on one test set."""
    rows = {name: {} for name in names}
    inverse, counts = _patient_draws(groups, len(Y), n_boot, seed)
    replicates = dict(zip(names, _replicate_macro_aucs(Y, [proba[n] for n in names], inverse, counts)))
    estimates = {name: _quiet_macro_auc(Y, proba[name]) for name in names}
    for name in names:
        row = rows[name]
        row.update(zip(_AUC, _interval(estimates[name], replicates[name], confidence)))
        if baseline is not None:
            delta = (_interval(estimates[name] - estimates[baseline], replicates[name] - replicates[baseline],
                               confidence) if name != baseline else (math.nan,) * 3)
            row.update(zip(_DELTA, delta))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # undefined AUCs are reported as such
            at_05 = multilabel_report(Y, proba[name])
            tuned = None if thresholds[name] is None else multilabel_report(Y, proba[name], thresholds[name])
        row.update(zip(_AT_05, list(at_05.summary().values())[:3]))
        row.update(zip(_TUNED, list(tuned.summary().values())[:3] if tuned is not None else (math.nan,) * 3))
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("Model")


def holdout_report(models, X_train, Y_train, X_test, Y_test, *, groups_train=None, groups_test=None,
                   sources_train=None, sources_test=None, target_names=None, baseline=None, threshold_cv=3,
                   n_boot=1000, confidence=0.95, random_state=None, verbose=0) -> HoldoutResult:
    """Fit clones of several models on one training part and score them on the held-out part.

    For each model: ``clone``, fit on ``(X_train, Y_train)`` with the patient
    ids routed to its inner validation splits
    (:func:`skcxr.model_selection.groups_params`), predict probabilities on
    ``X_test`` and score them:

    - **macro-AUC** with a percentile interval from a bootstrap over test
      patients (:func:`bootstrap_macro_auc`; all models on the same
      resamples), and with ``baseline`` the difference to that model with a
      paired interval (:func:`paired_bootstrap_macro_auc`);
    - **micro-F1, macro-F1 and Hamming loss** at 0.5 and at per-label
      thresholds tuned on the training part only: the fitted model's own
      ``tuned_thresholds_`` when its final estimator has them (skcxr's MLP
      tunes them on a patient-disjoint inner validation split), otherwise
      :func:`skcxr.metrics.tune_thresholds` on out-of-fold predictions of a
      ``threshold_cv``-fold :class:`~skcxr.model_selection.MultilabelStratifiedGroupKFold`
      over the training patients. The test part never chooses anything.
    - with ``sources_test``, all of the above within each source as well
      (models are trained once, on all training data).

    Parameters
    ----------
    models : dict of {str: estimator}
        Multi-label classifiers or pipelines with ``predict_proba``. They are
        cloned, never fitted or changed.
    X_train, Y_train, X_test, Y_test : array-like
        A split made by patient, e.g. by
        :func:`skcxr.model_selection.train_test_split_by_patient`; ``Y`` is a
        2-D 0/1 indicator matrix.
    groups_train, groups_test : array-like of shape (n_train,) / (n_test,), default=None
        Patient ids. ``groups_train`` reaches the models' inner splits and the
        threshold CV; ``groups_test`` the bootstrap. A patient on both sides
        raises ``ValueError``. ``None`` makes every image its own patient
        (optimistic thresholds, too narrow intervals where patients have
        several images).
    sources_train : array-like of shape (n_train,), default=None
        Source of each training image; only recorded (``sources_train``), for
        reports of the label distribution per source.
    sources_test : array-like of shape (n_test,), default=None
        Source of each test image (e.g. ``"nih"``, ``"nih-64"``) for the
        within-source tables.
    target_names : list of str, default=None
        Class names of the per-class tables.
    baseline : str, default=None
        Name of the model the others are compared with (``ΔAUC`` columns).
    threshold_cv : int or None, default=3
        Folds of the out-of-fold threshold tuning for models without their own
        thresholds (refits the model that many times); ``None``: no tuning,
        only 0.5, for those models.
    n_boot : int, default=1000
        Bootstrap resamples.
    confidence : float, default=0.95
        Coverage of the intervals.
    random_state : int, RandomState or None, default=None
        Seeds the threshold CV split and the bootstrap.
    verbose : int, default=0
        >0 shows a progress bar over the models (fit, predict, threshold CV).

    Returns
    -------
    HoldoutResult
        ``summary`` and ``by_source`` tables, ``reports`` and
        ``tuned_reports``, ``proba``, ``thresholds``, ``models`` (fitted
        clones), the test labels, patients and sources and the bootstrap's
        settings (for :func:`skcxr.report.write_report`); ``to_markdown()``
        and ``to_dict()`` (JSON-safe).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_multilabel_classification
    >>> from sklearn.dummy import DummyClassifier
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.multiclass import OneVsRestClassifier
    >>> from skcxr.evaluation import holdout_report
    >>> X, Y = make_multilabel_classification(300, n_classes=3, random_state=0)
    >>> patients = np.arange(300) // 2
    >>> models = {"LR": OneVsRestClassifier(LogisticRegression(max_iter=500)),
    ...           "prior": OneVsRestClassifier(DummyClassifier(strategy="prior"))}
    >>> result = holdout_report(models, X[:200], Y[:200], X[200:], Y[200:],
    ...                         groups_train=patients[:200], groups_test=patients[200:],
    ...                         baseline="prior", n_boot=200, random_state=0)
    >>> result.summary.loc["LR", ["Macro-AUC", "AUC low", "AUC high"]].round(2).tolist()
    [0.9, 0.85, 0.94]
    >>> bool(result.summary.loc["LR", "ΔAUC low"] > 0), result.summary.loc["LR", "Thresholds"]
    (True, '3-fold CV')
    >>> hasattr(models["LR"], "estimators_"), hasattr(result.models["LR"], "estimators_")
    (False, True)
    """
    models = _check_models(models, baseline)
    _check_threshold_cv(threshold_cv)
    _check_bootstrap_args(n_boot, confidence)
    Y_train = check_multilabel_Y(Y_train, _n_rows(X_train), name="Y_train")
    Y_test = check_multilabel_Y(Y_test, _n_rows(X_test), name="Y_test")
    if Y_train.shape[1] != Y_test.shape[1]:
        raise ValueError(f"Y_train has {Y_train.shape[1]} labels but Y_test has {Y_test.shape[1]}.")
    groups_train = _check_1d(groups_train, len(Y_train), "groups_train")
    groups_test = _check_1d(groups_test, len(Y_test), "groups_test")
    sources_train = _check_1d(sources_train, len(Y_train), "sources_train")
    sources_test = _check_1d(sources_test, len(Y_test), "sources_test")
    if groups_train is not None and groups_test is not None:
        shared = np.intersect1d(groups_train, groups_test)
        if shared.size:
            raise ValueError(
                f"{shared.size} patient(s) are in both the training and the test part (e.g. {shared[0]!r}): "
                "split by patient, e.g. with skcxr.model_selection.train_test_split_by_patient."
            )
    seed = _seed(random_state)

    fitted, proba, thresholds, how, seconds = {}, {}, {}, {}, {}
    bar = tqdm(models.items(), desc="models", unit="model", disable=not verbose)
    for name, model in bar:
        bar.set_postfix_str(name)
        start = time.perf_counter()
        estimator = clone(model)
        params, routing = groups_fit_params(estimator, groups_train)
        with routing_context(routing):
            estimator.fit(X_train, Y_train, **params)
        P = _as_score_matrix(estimator.predict_proba(X_test), Y_test.shape, name=f"predict_proba of {name!r}",
                             strict=False)
        seconds[name] = time.perf_counter() - start
        fitted[name], proba[name] = estimator, P
        thresholds[name], how[name] = _training_thresholds(
            name, model, estimator, X_train, Y_train, groups_train, threshold_cv, seed)

    names = list(models)
    summary = _metric_rows(names, Y_test, proba, thresholds, groups_test, baseline, n_boot, confidence, seed)
    summary["Seconds"] = pd.Series(seconds)
    summary["Thresholds"] = pd.Series(how)

    by_source = {}
    if sources_test is not None:
        for source in pd.unique(sources_test):
            mask = sources_test == source
            groups = None if groups_test is None else groups_test[mask]
            table = _metric_rows(names, Y_test[mask], {n: p[mask] for n, p in proba.items()}, thresholds,
                                 groups, baseline, n_boot, confidence, seed)
            table.insert(0, "Patients", int(mask.sum()) if groups is None else len(np.unique(groups)))
            table.insert(0, "Images", int(mask.sum()))
            by_source[str(source)] = table

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined AUCs are listed in the reports
        reports = {n: multilabel_report(Y_test, proba[n], target_names=target_names) for n in names}
        tuned_reports = {n: None if thresholds[n] is None
                         else multilabel_report(Y_test, proba[n], thresholds[n], target_names=target_names)
                         for n in names}
    return HoldoutResult(summary=summary, by_source=by_source, reports=reports, tuned_reports=tuned_reports,
                         proba=proba, thresholds=thresholds, models=fitted, baseline=baseline,
                         Y_train=Y_train, Y_test=Y_test, groups_test=groups_test, sources_train=sources_train,
                         sources_test=sources_test,
                         target_names=None if target_names is None else [str(t) for t in target_names],
                         n_boot=int(n_boot), confidence=float(confidence),
                         random_state=int(seed) if isinstance(seed, numbers.Integral) else None)
