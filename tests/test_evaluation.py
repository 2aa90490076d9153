"""skcxr.evaluation: patient bootstrap (against resampling by hand), holdout_report's honesty, result tables."""

from __future__ import annotations

import doctest
import json
import time
import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.datasets import make_multilabel_classification
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils.validation import check_is_fitted

from skcxr import evaluation
from skcxr.evaluation import (
    HoldoutResult,
    bootstrap_macro_auc,
    holdout_report,
    paired_bootstrap_macro_auc,
)
from skcxr.metrics import macro_auc_score, multilabel_report, tune_thresholds
from skcxr.model_selection import MultilabelStratifiedGroupKFold

# --- patient bootstrap -------------------------------------------------------------------------


def _scored(n=240, n_labels=5, n_patients=80, seed=0):
    rng = np.random.default_rng(seed)
    Y = (rng.uniform(size=(n, n_labels)) < 0.15).astype(np.uint8)
    Y[:, -1] = 0
    Y[rng.integers(n), -1] = 1  # a rare label: undefined in many resamples
    P = np.round(0.25 * Y + rng.uniform(size=Y.shape), 1)  # rounded: many ties
    groups = rng.integers(0, n_patients, n) * 7 + 3  # arbitrary, unsorted ids
    return Y, P, groups


def _by_hand(Y, scores, groups, n_boot, seed):
    """Macro-AUC of each resample, resampling patients with the documented draws."""
    patients, inverse = np.unique(groups, return_inverse=True)
    rows = [np.flatnonzero(inverse == k) for k in range(len(patients))]
    draws = np.random.default_rng(seed).integers(0, len(patients), size=(n_boot, len(patients)))
    out = np.empty((len(scores), n_boot))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for b in range(n_boot):
            idx = np.concatenate([rows[k] for k in draws[b]])
            for m, P in enumerate(scores):
                out[m, b] = macro_auc_score(Y[idx], P[idx])
    return out


def test_bootstrap_equals_resampling_patients_by_hand():
    Y, P, groups = _scored()
    auc, low, high = bootstrap_macro_auc(Y, P, groups, n_boot=150, random_state=7)
    reps = _by_hand(Y, [P], groups, 150, 7)[0]
    assert auc == pytest.approx(macro_auc_score(Y, P), abs=1e-12)
    assert (low, high) == pytest.approx(tuple(np.nanpercentile(reps, [2.5, 97.5])), abs=1e-12)


def test_paired_bootstrap_equals_resampling_by_hand_and_is_antisymmetric():
    Y, A, groups = _scored(seed=1)
    B = np.round(np.random.default_rng(5).uniform(size=A.shape), 1)
    delta, low, high = paired_bootstrap_macro_auc(Y, A, B, groups, n_boot=120, confidence=0.9, random_state=3)
    rep_a, rep_b = _by_hand(Y, [A, B], groups, 120, 3)
    assert delta == pytest.approx(macro_auc_score(Y, A) - macro_auc_score(Y, B), abs=1e-12)
    assert (low, high) == pytest.approx(tuple(np.nanpercentile(rep_a - rep_b, [5, 95])), abs=1e-12)
    flipped = paired_bootstrap_macro_auc(Y, B, A, groups, n_boot=120, confidence=0.9, random_state=3)
    assert flipped == pytest.approx((-delta, -high, -low), abs=1e-12)


def test_bootstrap_resamples_patients_not_images():
    # 30 patients with 10 identical images each: 30 independent units, not 300.
    rng = np.random.default_rng(0)
    Y1 = (rng.uniform(size=(30, 3)) < 0.4).astype(np.uint8)
    P1 = 0.3 * Y1 + rng.uniform(size=Y1.shape)
    Y, P, patients = np.repeat(Y1, 10, axis=0), np.repeat(P1, 10, axis=0), np.repeat(np.arange(30), 10)
    _, low_p, high_p = bootstrap_macro_auc(Y, P, patients, n_boot=400, random_state=0)
    _, low_i, high_i = bootstrap_macro_auc(Y, P, None, n_boot=400, random_state=0)
    assert high_p - low_p > 2 * (high_i - low_i)


def test_bootstrap_seeding():
    Y, P, groups = _scored(seed=2)
    first = bootstrap_macro_auc(Y, P, groups, n_boot=100, random_state=11)
    assert bootstrap_macro_auc(Y, P, groups, n_boot=100, random_state=11) == first
    assert bootstrap_macro_auc(Y, P, groups, n_boot=100, random_state=12) != first


def test_bootstrap_1000_resamples_of_350_images_and_14_labels_take_seconds():
    rng = np.random.default_rng(0)
    Y = (rng.uniform(size=(350, 14)) < 0.1).astype(np.uint8)
    A, B = rng.uniform(size=Y.shape), rng.uniform(size=Y.shape)
    groups = rng.integers(0, 200, 350)
    start = time.perf_counter()
    paired_bootstrap_macro_auc(Y, A, B, groups, n_boot=1000, random_state=0)
    assert time.perf_counter() - start < 5  # about 0.2 s here; a loop over resamples takes about a minute


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_boot": 0}, "n_boot"),
        ({"confidence": 1.0}, "confidence"),
        ({"groups": np.arange(3)}, "groups"),
        ({"Y_score": np.zeros((4, 2))}, "shape"),
        ({"Y_true": ["Mass", "Nodule", "Mass", "Mass"]}, "findings_to_Y"),
    ],
)
def test_bootstrap_bad_input(kwargs, match):
    args = {"Y_true": np.eye(4, 3, dtype=int), "Y_score": np.zeros((4, 3)), **kwargs}
    with pytest.raises(ValueError, match=match):
        bootstrap_macro_auc(**args)


def test_undefined_auc_gives_nan_interval_not_an_error():
    Y = np.zeros((6, 2), dtype=int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = bootstrap_macro_auc(Y, np.zeros((6, 2)), n_boot=10, random_state=0)
    assert all(np.isnan(result))


# --- holdout_report ----------------------------------------------------------------------------


class SpyClassifier(ClassifierMixin, BaseEstimator):
    """Logistic regression per label that records the groups its fit received."""

    __metadata_request__fit = {"groups": True}

    def __init__(self, own_thresholds=None):
        self.own_thresholds = own_thresholds

    def fit(self, X, Y, groups=None):
        self.groups_seen_ = None if groups is None else np.asarray(groups).copy()
        self.ovr_ = OneVsRestClassifier(LogisticRegression(max_iter=500)).fit(X, Y)
        self.classes_ = np.arange(np.shape(Y)[1])
        if self.own_thresholds is not None:
            self.tuned_thresholds_ = np.full(len(self.classes_), float(self.own_thresholds))
        return self

    def predict_proba(self, X):
        return self.ovr_.predict_proba(X)

    def predict(self, X):
        return (self.predict_proba(X) >= 0.5).astype(int)


class SpyTransformer(TransformerMixin, BaseEstimator):
    __metadata_request__fit = {"groups": True}

    def fit(self, X, y=None, groups=None):
        self.groups_seen_ = None if groups is None else np.asarray(groups).copy()
        return self

    def transform(self, X):
        return np.asarray(X)


@pytest.fixture(scope="module")
def split():
    X, Y = make_multilabel_classification(360, n_features=12, n_classes=4, random_state=0)
    patients = np.arange(360) // 3
    tr, te = slice(0, 240), slice(240, 360)
    sources = np.where(np.arange(120) % 2 == 0, "nih", "nih-64")
    return X[tr], Y[tr], X[te], Y[te], patients[tr], patients[te], sources


def _lr():
    return OneVsRestClassifier(LogisticRegression(max_iter=500))


def test_models_are_cloned_and_fitted_clones_returned(split):
    X_tr, Y_tr, X_te, Y_te, g_tr, g_te, _ = split
    models = {"LR": _lr(), "spy": SpyClassifier()}
    result = holdout_report(models, X_tr, Y_tr, X_te, Y_te, groups_train=g_tr, groups_test=g_te,
                            n_boot=50, random_state=0)
    assert isinstance(result, HoldoutResult)
    for name, model in models.items():
        with pytest.raises(NotFittedError):
            check_is_fitted(model)
        assert result.models[name] is not model
        check_is_fitted(result.models[name])
        np.testing.assert_allclose(result.proba[name], result.models[name].predict_proba(X_te))
    assert list(result.summary.index) == ["LR", "spy"]


def test_patient_ids_reach_the_models_inner_splits(split):
    X_tr, Y_tr, X_te, Y_te, g_tr, g_te, _ = split
    models = {"bare": SpyClassifier(), "pipe": Pipeline([("scale", StandardScaler()), ("clf", SpyClassifier())])}
    result = holdout_report(models, X_tr, Y_tr, X_te, Y_te, groups_train=g_tr, groups_test=g_te,
                            threshold_cv=None, n_boot=20, random_state=0)
    np.testing.assert_array_equal(result.models["bare"].groups_seen_, g_tr)
    np.testing.assert_array_equal(result.models["pipe"][-1].groups_seen_, g_tr)


def test_feature_union_with_mixed_members_gets_groups_by_routing(split):
    X_tr, Y_tr, X_te, Y_te, g_tr, g_te, _ = split
    union = FeatureUnion([("spy", SpyTransformer()), ("plain", FunctionTransformer())])
    pipe = Pipeline([("features", union), ("clf", SpyClassifier())])
    result = holdout_report({"union": pipe}, X_tr, Y_tr, X_te, Y_te, groups_train=g_tr, groups_test=g_te,
                            threshold_cv=None, n_boot=20, random_state=0)
    fitted = result.models["union"]
    np.testing.assert_array_equal(fitted.named_steps["features"].transformer_list[0][1].groups_seen_, g_tr)
    np.testing.assert_array_equal(fitted[-1].groups_seen_, g_tr)


def test_thresholds_come_from_training_data_only(split):
    X_tr, Y_tr, X_te, Y_te, g_tr, g_te, _ = split
    models = {"LR": _lr(), "own": SpyClassifier(own_thresholds=0.3)}
    result = holdout_report(models, X_tr, Y_tr, X_te, Y_te, groups_train=g_tr, groups_test=g_te,
                            threshold_cv=3, n_boot=20, random_state=4)
    # The model's own thresholds (tuned on its inner split) win.
    np.testing.assert_array_equal(result.thresholds["own"], 0.3)
    assert result.summary.loc["own", "Thresholds"] == "model"
    # Otherwise: out-of-fold training predictions of a patient-grouped 3-fold CV.
    cv = MultilabelStratifiedGroupKFold(3, shuffle=True, random_state=4)
    oof = cross_val_predict(_lr(), X_tr, Y_tr, groups=g_tr, cv=cv, method="predict_proba")
    np.testing.assert_allclose(result.thresholds["LR"], tune_thresholds(Y_tr, oof))
    assert result.summary.loc["LR", "Thresholds"] == "3-fold CV"
    # The tuned columns are the report at those thresholds.
    report = multilabel_report(Y_te, result.proba["LR"], result.thresholds["LR"])
    assert result.summary.loc["LR", "Macro-F1 (tuned)"] == pytest.approx(report.macro_f1)
    assert result.summary.loc["LR", "Hamming loss (tuned)"] == pytest.approx(report.hamming_loss)
    assert result.summary.loc["LR", "Macro-F1"] == pytest.approx(multilabel_report(Y_te, result.proba["LR"]).macro_f1)
    # Other test labels: same thresholds.
    flipped = holdout_report({"LR": _lr()}, X_tr, Y_tr, X_te, 1 - Y_te, groups_train=g_tr, groups_test=g_te,
                             threshold_cv=3, n_boot=20, random_state=4)
    np.testing.assert_array_equal(flipped.thresholds["LR"], result.thresholds["LR"])


def test_threshold_cv_none_reports_at_half_only(split):
    X_tr, Y_tr, X_te, Y_te, g_tr, g_te, _ = split
    result = holdout_report({"LR": _lr()}, X_tr, Y_tr, X_te, Y_te, groups_train=g_tr, groups_test=g_te,
                            threshold_cv=None, n_boot=20, random_state=0)
    assert result.thresholds["LR"] is None and result.tuned_reports["LR"] is None
    assert result.summary.loc["LR", "Thresholds"] == "none"
    assert np.isnan(result.summary.loc["LR", "Macro-F1 (tuned)"])
    assert np.isfinite(result.summary.loc["LR", "Macro-F1"])


def test_intervals_baseline_and_sources(split):
    X_tr, Y_tr, X_te, Y_te, g_tr, g_te, sources = split
    models = {"LR": _lr(), "weak": Pipeline([("drop", FunctionTransformer(lambda X: X[:, :2])), ("clf", _lr())])}
    result = holdout_report(models, X_tr, Y_tr, X_te, Y_te, groups_train=g_tr, groups_test=g_te,
                            sources_test=sources, baseline="weak", n_boot=200, random_state=9)
    row = result.summary.loc["LR"]
    assert (row["Macro-AUC"], row["AUC low"], row["AUC high"]) == pytest.approx(
        tuple(bootstrap_macro_auc(Y_te, result.proba["LR"], g_te, n_boot=200, random_state=9)))
    assert (row["ΔAUC"], row["ΔAUC low"], row["ΔAUC high"]) == pytest.approx(tuple(paired_bootstrap_macro_auc(
        Y_te, result.proba["LR"], result.proba["weak"], g_te, n_boot=200, random_state=9)))
    assert result.summary.loc["weak", ["ΔAUC", "ΔAUC low", "ΔAUC high"]].isna().all()

    assert set(result.by_source) == {"nih", "nih-64"}
    for source, table in result.by_source.items():
        mask = sources == source
        P = result.proba["LR"][mask]
        assert table.loc["LR", "Images"] == mask.sum() and table.loc["LR", "Patients"] == len(set(g_te[mask]))
        assert tuple(table.loc["LR", ["Macro-AUC", "AUC low", "AUC high"]]) == pytest.approx(
            tuple(bootstrap_macro_auc(Y_te[mask], P, g_te[mask], n_boot=200, random_state=9)))
        tuned = multilabel_report(Y_te[mask], P, result.thresholds["LR"])
        assert table.loc["LR", "Micro-F1 (tuned)"] == pytest.approx(tuned.micro_f1)
        assert table.loc["LR", "Hamming loss"] == pytest.approx(multilabel_report(Y_te[mask], P).hamming_loss)
    md = result.to_markdown()
    assert "Within source 'nih-64'" in md and "ΔAUC [CI]" in md


def test_to_dict_is_strict_json_even_with_undefined_values(split):
    X_tr, Y_tr, X_te, Y_te, g_tr, g_te, _ = split
    Y_te = Y_te.copy()
    Y_te[:, 0] = 0  # AUC undefined for class 0
    result = holdout_report({"LR": _lr()}, X_tr, Y_tr, X_te, Y_te, groups_train=g_tr, groups_test=g_te,
                            target_names=list("abcd"), threshold_cv=None, n_boot=20, random_state=0)
    text = json.dumps(result.to_dict(), allow_nan=False)
    payload = json.loads(text)
    assert payload["per_class"]["LR"]["a"]["AUC"] is None
    assert payload["summary"]["LR"]["Macro-F1 (tuned)"] is None
    assert payload["undefined_auc"]["LR"] == ["a"]


def test_patient_on_both_sides_is_refused(split):
    X_tr, Y_tr, X_te, Y_te, g_tr, _, _ = split
    with pytest.raises(ValueError, match="both the training and the test part"):
        holdout_report({"LR": _lr()}, X_tr, Y_tr, X_te, Y_te, groups_train=g_tr, groups_test=g_tr[:120])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"baseline": "nope"}, "baseline"),
        ({"threshold_cv": 1}, "threshold_cv"),
        ({"n_boot": 0}, "n_boot"),
        ({"models": {}}, "non-empty dict"),
        ({"models": {"x": StandardScaler()}}, "predict_proba"),
        ({"sources_test": ["a"]}, "sources_test"),
        ({"Y_train": np.where(np.arange(960).reshape(240, 4) % 3 == 0, 1, -1)}, r"-1/1"),
    ],
)
def test_bad_arguments(split, kwargs, match):
    X_tr, Y_tr, X_te, Y_te, _, _, _ = split
    args = {"models": {"LR": _lr()}, "X_train": X_tr, "Y_train": Y_tr, "X_test": X_te, "Y_test": Y_te, **kwargs}
    with pytest.raises(ValueError, match=match):
        holdout_report(**args)


def test_docstring_examples():
    for module in (evaluation._bootstrap, evaluation._holdout, evaluation._json):
        result = doctest.testmod(module, raise_on_error=False)
        assert result.attempted > 0 and result.failed == 0, module.__name__  # the examples ran, and passed


def test_bootstrap_class_auc_uses_the_resamples_of_the_macro_auc():
    from skcxr.evaluation import bootstrap_class_auc

    rng = np.random.default_rng(3)
    Y = rng.integers(0, 2, (150, 3))
    P = Y * rng.uniform(0, 0.6, Y.shape) + rng.uniform(0, 1, Y.shape)
    patients = np.arange(150) // 3
    table = bootstrap_class_auc(Y, P, patients, target_names=["a", "b", "c"], n_boot=300, random_state=7)
    assert list(table.index) == ["a", "b", "c"] and table["positives"].tolist() == Y.sum(0).tolist()
    np.testing.assert_allclose(table["AUC"], multilabel_report(Y, P).per_class["AUC"])
    for k, name in enumerate("abc"):  # one class alone: its macro-AUC interval, on the same resamples
        alone = bootstrap_macro_auc(Y[:, [k]], P[:, [k]], patients, n_boot=300, random_state=7)
        assert tuple(table.loc[name, ["AUC", "AUC low", "AUC high"]]) == pytest.approx(tuple(alone))
    Y[:, 1] = 1
    assert table.pipe(lambda _: bootstrap_class_auc(Y, P, patients, n_boot=50, random_state=0))["AUC"].isna().tolist() \
        == [False, True, False]


def test_holdout_result_records_labels_sources_and_settings():
    X, Y = make_multilabel_classification(120, n_classes=3, random_state=0)
    sources = np.where(np.arange(120) % 2, "a", "b")
    result = holdout_report({"LR": OneVsRestClassifier(LogisticRegression(max_iter=500))}, X[:80], Y[:80], X[80:],
                            Y[80:], sources_train=sources[:80], sources_test=sources[80:], threshold_cv=None,
                            n_boot=20, confidence=0.9, random_state=4)
    np.testing.assert_array_equal(result.Y_test, Y[80:])
    np.testing.assert_array_equal(result.sources_train, sources[:80])
    assert (result.n_boot, result.confidence, result.random_state, result.groups_test) == (20, 0.9, 4, None)
    with pytest.raises(ValueError, match="sources_train"):
        holdout_report({"LR": OneVsRestClassifier(LogisticRegression())}, X[:80], Y[:80], X[80:], Y[80:],
                       sources_train=sources[:10], threshold_cv=None, n_boot=10)


def test_subgroup_table_pooled_and_within_source_with_too_few_refused():
    import pandas as pd

    from skcxr.evaluation import MIN_SUBGROUP_IMAGES, subgroup_table

    rng = np.random.default_rng(0)
    n = 200
    Y = rng.integers(0, 2, (n, 3))
    P = np.clip(0.35 * Y + 0.65 * rng.random((n, 3)), 0, 1)
    meta = pd.DataFrame({"sex": np.where(np.arange(n) < 190, "F", "M"), "age": rng.integers(20, 80, n),
                         "view": "PA"})
    patients = np.arange(n) // 2
    sources = np.where(np.arange(n) % 4 == 0, "nih", "nih-64")
    P_men = P.copy()
    P_men[190:] = Y[190:]  # the 10 men are ranked perfectly: a tiny subgroup's 1.000 must not be shown
    table = subgroup_table(Y, {"a": P, "b": P_men}, meta, groups=patients, sources=sources, age_bands=(40, 60),
                           n_boot=100, random_state=0)
    assert set(table.index.get_level_values("source")) == {"all", "nih", "nih-64"}
    men = table.loc[("sex", "M", "all")]
    assert men["images"] == 10 < MIN_SUBGROUP_IMAGES and men["too few"] and np.isnan(men["b"])
    women = table.loc[("sex", "F", "all")]
    assert women["images"] == 190 and women["patients"] == 95 and not women["too few"]
    assert women["a low"] <= women["a"] <= women["a high"] and 0.6 < women["a"] < 0.95
    within = table.loc[("sex", "F", "nih")]
    assert within["images"] == int(((np.arange(n) < 190) & (sources == "nih")).sum())
    assert table.loc[("view position", "PA", "all"), "images"] == n
    ages = table.xs("all", level="source").loc["age band"]
    assert list(ages.index) == ["< 40", "40–59", "≥ 60"] and ages["images"].sum() == n
