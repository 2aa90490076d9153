"""Tests of skcxr.metrics: known answers from sklearn.metrics, undefined AUC, thresholds, scorers."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import make_multilabel_classification
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    f1_score,
    hamming_loss,
    precision_recall_fscore_support,
    roc_auc_score,
)
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.multiclass import OneVsRestClassifier
from sklearn.multioutput import MultiOutputClassifier
from sklearn.tree import DecisionTreeClassifier

from skcxr.metrics import (
    SCORERS,
    MultilabelReport,
    get_scorer,
    macro_auc_score,
    multilabel_report,
    tune_thresholds,
)


def _scores(n=300, n_labels=5, seed=0):
    """Y with informative but noisy probabilities."""
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, n_labels)) < np.linspace(0.1, 0.5, n_labels)).astype(int)
    P = np.clip(0.35 * Y + 0.65 * rng.random((n, n_labels)), 0, 1)
    return Y, P


def test_report_matches_sklearn():
    Y, P = _scores()
    Y_pred = (P >= 0.5).astype(int)
    report = multilabel_report(Y, P, target_names=list("ABCDE"))

    assert report.micro_f1 == pytest.approx(f1_score(Y, Y_pred, average="micro"))
    assert report.macro_f1 == pytest.approx(f1_score(Y, Y_pred, average="macro"))
    assert report.hamming_loss == pytest.approx(hamming_loss(Y, Y_pred))
    assert report.macro_auc == pytest.approx(roc_auc_score(Y, P, average="macro"))
    assert report.undefined_auc == []

    table = report.per_class
    assert list(table.index) == list("ABCDE")
    assert list(table.columns) == ["AUC", "F1", "precision", "recall", "support", "threshold"]
    precision, recall, f1, support = precision_recall_fscore_support(Y, Y_pred, average=None)
    np.testing.assert_allclose(table["AUC"], roc_auc_score(Y, P, average=None))
    np.testing.assert_allclose(table["F1"], f1)
    np.testing.assert_allclose(table["precision"], precision)
    np.testing.assert_allclose(table["recall"], recall)
    np.testing.assert_array_equal(table["support"], Y.sum(axis=0))
    np.testing.assert_allclose(table["threshold"], 0.5)


def test_undefined_auc_is_listed_and_left_out():
    Y, P = _scores(n=100, n_labels=4, seed=1)
    Y[:, 1] = 0  # no positives
    Y[:, 3] = 1  # no negatives
    names = ["Mass", "Hernia", "Nodule", "Edema"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # partly undefined is reported, not warned about
        report = multilabel_report(Y, P, target_names=names)

    assert report.undefined_auc == ["Hernia", "Edema"]
    expected = np.mean([roc_auc_score(Y[:, k], P[:, k]) for k in (0, 2)])
    assert report.macro_auc == pytest.approx(expected)
    assert np.isfinite(report.macro_auc)
    assert report.per_class.loc[["Hernia", "Edema"], "AUC"].isna().all()
    assert report.per_class.loc[["Mass", "Nodule"], "AUC"].notna().all()
    assert "Hernia, Edema" in repr(report)
    assert macro_auc_score(Y, P) == pytest.approx(expected)


def test_all_auc_undefined_gives_nan_with_warning():
    Y = np.zeros((6, 2), dtype=int)
    P = np.linspace(0, 1, 12).reshape(6, 2)
    with pytest.warns(UndefinedMetricWarning, match="Macro-AUC is undefined"):
        report = multilabel_report(Y, P)
    assert np.isnan(report.macro_auc)
    assert report.undefined_auc == ["0", "1"]


def test_per_class_thresholds():
    Y, P = _scores(seed=2)
    thresholds = np.array([0.3, 0.4, 0.5, 0.6, 0.7])
    Y_pred = (P >= thresholds).astype(int)
    report = multilabel_report(Y, P, threshold=thresholds)
    assert report.micro_f1 == pytest.approx(f1_score(Y, Y_pred, average="micro"))
    assert report.macro_f1 == pytest.approx(f1_score(Y, Y_pred, average="macro"))
    assert report.hamming_loss == pytest.approx(hamming_loss(Y, Y_pred))
    np.testing.assert_allclose(report.per_class["threshold"], thresholds)
    # A scalar threshold is the same as a constant array.
    scalar = multilabel_report(Y, P, threshold=0.6)
    constant = multilabel_report(Y, P, threshold=np.full(5, 0.6))
    assert scalar.summary() == constant.summary()
    assert scalar.summary() != report.summary()


def test_list_of_proba_arrays_equals_matrix():
    Y, P = _scores(seed=3)
    as_list = [np.column_stack([1 - P[:, k], P[:, k]]) for k in range(P.shape[1])]
    assert multilabel_report(Y, as_list).summary() == multilabel_report(Y, P).summary()
    np.testing.assert_allclose(tune_thresholds(Y, as_list), tune_thresholds(Y, P))
    assert macro_auc_score(Y, as_list) == pytest.approx(macro_auc_score(Y, P))


def test_one_column_member_warns_and_is_constant():
    Y, P = _scores(n=50, n_labels=2, seed=4)
    as_list = [np.column_stack([1 - P[:, 0], P[:, 0]]), np.ones((50, 1))]
    with pytest.warns(UserWarning, match="one column"):
        report = multilabel_report(Y, as_list)
    assert report.per_class["AUC"].iloc[1] == pytest.approx(0.5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"Y_true": np.array([0, 1, 1]), "Y_score": np.zeros((3, 1))}, "2-D"),
        ({"Y_true": np.array([[0], [2]]), "Y_score": np.zeros((2, 1))}, "only 0 and 1"),
        ({"Y_true": np.eye(3), "Y_score": np.zeros((3, 2))}, r"shape \(3, 2\)"),
        ({"Y_true": np.eye(2), "Y_score": np.array([[0.1, np.nan], [0.2, 0.3]])}, "NaN"),
        ({"Y_true": np.eye(2), "Y_score": np.eye(2), "threshold": [0.5]}, "threshold"),
        ({"Y_true": np.eye(2), "Y_score": np.eye(2), "target_names": ["a"]}, "target_names"),
        ({"Y_true": np.eye(2), "Y_score": [np.zeros((2, 3)), np.zeros((2, 3))]}, r"Y_score\[0\]"),
    ],
)
def test_bad_input_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        multilabel_report(**kwargs)


def test_summary_frame_and_repr():
    Y, P = _scores(seed=5)
    report = multilabel_report(Y, P)
    assert isinstance(report, MultilabelReport)
    summary = report.summary()
    assert list(summary) == ["Micro-F1", "Macro-F1", "Hamming loss", "Macro-AUC"]
    assert summary["Macro-AUC"] == report.macro_auc
    table = pd.concat([report.to_frame("LR"), multilabel_report(Y, 1 - P).to_frame("inverse")])
    assert table.index.name == "Model"
    assert list(table.index) == ["LR", "inverse"]
    assert table.loc["LR", "Micro-F1"] == report.micro_f1
    text = repr(report)
    assert text.startswith("MultilabelReport(Micro-F1=")
    assert "precision" in text


def test_tune_thresholds_known_answer_and_no_positive_class():
    Y, P = _scores(seed=6)
    Y[:, 4] = 0
    thresholds = tune_thresholds(Y, P)
    assert thresholds.dtype == float and thresholds.shape == (5,)
    assert thresholds[4] == 0.5  # no positives: documented default
    for k in range(4):  # brute force over every candidate cut
        predicted = P[:, k][:, None] >= np.unique(P[:, k])[None, :]  # (n, candidates)
        tp = (predicted & (Y[:, k][:, None] == 1)).sum(axis=0)
        best = np.max(2 * tp / (predicted.sum(axis=0) + Y[:, k].sum()))
        assert f1_score(Y[:, k], P[:, k] >= thresholds[k]) == pytest.approx(best)


def test_tune_thresholds_improves_f1_on_train():
    X, Y = make_multilabel_classification(300, 20, n_classes=5, n_labels=1, random_state=0)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    clf = OneVsRestClassifier(LogisticRegression(C=0.05, solver="liblinear")).fit(X, Y)
    P = clf.predict_proba(X)
    tuned = multilabel_report(Y, P, threshold=tune_thresholds(Y, P))
    default = multilabel_report(Y, P, threshold=0.5)
    assert (tuned.per_class["F1"] >= default.per_class["F1"] - 1e-12).all()
    assert tuned.macro_f1 > default.macro_f1 + 0.01


# -- scorers ---------------------------------------------------------------------

def _rare_class_problem():
    """60 samples, 4 labels; label 3 has positives only in rows 5 and 25.

    With KFold(3) (rows 0-19, 20-39, 40-59) the third test fold has no
    positive of label 3, while every training fold has one.
    """
    X, Y = make_multilabel_classification(60, 8, n_classes=4, random_state=0, allow_unlabeled=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)  # scaled: lbfgs converges in few steps
    Y[:, 3] = 0
    Y[[5, 25], 3] = 1
    return X, Y


@pytest.mark.parametrize(
    "estimator",
    [
        OneVsRestClassifier(LogisticRegression(solver="liblinear")),
        MultiOutputClassifier(LogisticRegression(solver="liblinear")),
    ],
    ids=["ovr", "multioutput"],
)
def test_scorers_in_cross_validate_with_rare_class_fold(estimator):
    X, Y = _rare_class_problem()
    cv = KFold(3)
    result = cross_validate(estimator, X, Y, cv=cv, scoring=SCORERS, error_score="raise")
    for name in SCORERS:
        assert np.isfinite(result[f"test_{name}"]).all(), name

    for fold, (train, test) in enumerate(cv.split(X, Y)):
        fitted = clone(estimator).fit(X[train], Y[train])
        proba = fitted.predict_proba(X[test])
        pred = fitted.predict(X[test])
        defined = [k for k in range(4) if 0 < Y[test, k].sum() < len(test)]
        P = np.column_stack([p[:, 1] for p in proba]) if isinstance(proba, list) else proba
        expected_auc = np.mean([roc_auc_score(Y[test, k], P[:, k]) for k in defined])
        assert result["test_macro_auc"][fold] == pytest.approx(expected_auc)
        assert result["test_micro_f1"][fold] == pytest.approx(
            f1_score(Y[test], pred, average="micro", zero_division=0)
        )
        assert result["test_neg_hamming_loss"][fold] == pytest.approx(-hamming_loss(Y[test], pred))
    assert Y[40:, 3].sum() == 0  # the third fold really lacks label 3


@pytest.mark.parametrize(
    "estimator, grid",
    [
        (OneVsRestClassifier(LogisticRegression(solver="liblinear")), {"estimator__C": [0.1, 1.0]}),
        (MultiOutputClassifier(LogisticRegression(solver="liblinear")), {"estimator__C": [0.1, 1.0]}),
    ],
    ids=["ovr", "multioutput"],
)
def test_scorers_in_grid_search(estimator, grid):
    X, Y = _rare_class_problem()
    search = GridSearchCV(
        estimator, grid, cv=KFold(3), scoring=SCORERS, refit="macro_auc", error_score="raise"
    )
    search.fit(X, Y)
    for name in SCORERS:
        assert np.isfinite(search.cv_results_[f"mean_test_{name}"]).all(), name
    assert 0.5 < search.best_score_ <= 1.0
    single = GridSearchCV(estimator, grid, cv=KFold(3), scoring=get_scorer("macro_auc")).fit(X, Y)
    assert single.best_score_ == pytest.approx(search.best_score_)


def test_scorer_when_a_training_fold_lacks_a_class():
    # A tree learns from one label value: predict_proba gives an (n, 1) member.
    X, Y = _rare_class_problem()
    Y[:, 3] = 0
    Y[45, 3] = 1  # in the third test fold only, so the third training fold lacks it
    estimator = MultiOutputClassifier(DecisionTreeClassifier(random_state=0))
    with pytest.warns(UserWarning, match="one column"):
        result = cross_validate(estimator, X, Y, cv=KFold(3), scoring=SCORERS, error_score="raise")
    assert np.isfinite(result["test_macro_auc"]).all()


def test_get_scorer_names_and_fallback():
    assert get_scorer("macro_auc") is SCORERS["macro_auc"]
    assert get_scorer("f1_samples") is not None  # scikit-learn's own
    with pytest.raises(ValueError):
        get_scorer("no_such_metric")


# --- the target contract: Y is a 2-D 0/1 indicator matrix everywhere ----------------------------
# skcxr._validation.check_multilabel_Y is the one check; these go through the public functions.

HOW_TO = r"findings_to_Y.*MultiLabelBinarizer"


@pytest.mark.parametrize(
    "Y, match",
    [
        (np.array(["Effusion|Mass", "No Finding", "Mass"]), rf"label strings such as 'Effusion\|Mass'.*{HOW_TO}"),
        ([["Effusion", "Mass"], ["Mass"], []], rf"ragged.*{HOW_TO}"),
        ([["Effusion", "Mass"], ["Mass", "Nodule"], ["Hernia", "Mass"]], rf"label strings.*{HOW_TO}"),
        (pd.Series(["Mass", "Nodule", "Mass"]).to_numpy(dtype=object), rf"label names such as 'Mass'.*{HOW_TO}"),
        ("Mass", rf"the string 'Mass'.*{HOW_TO}"),
        (np.array([[1, -1], [-1, 1], [1, 1]]), rf"-1/1 \(±1\).*\(Y > 0\).astype.*{HOW_TO}"),
        (np.array([[0, 2], [1, 0], [0, 1]]), rf"only 0 and 1.*got also 2.*{HOW_TO}"),
        (np.array([[0.0, 0.5], [1, 0], [0, 1]]), rf"got also 0.5.*{HOW_TO}"),
        (np.array([[0, np.nan], [1, 0], [0, 1]]), rf"got also nan.*{HOW_TO}"),
        (np.array([0, 1, 1]), rf"shape \(3,\).*1-D target.*Y\[:, np.newaxis\].*{HOW_TO}"),
        (np.zeros((3, 2, 2)), rf"shape \(3, 2, 2\).*{HOW_TO}"),
    ],
)
def test_targets_other_than_a_01_matrix_are_refused_with_how_to_build_one(Y, match):
    from skcxr.model_selection import train_test_split_by_patient

    with pytest.raises(ValueError, match=match):
        multilabel_report(Y, np.zeros((3, 2)))
    with pytest.raises(ValueError, match=match):
        train_test_split_by_patient(np.arange(3), groups=[1, 2, 3], stratify=Y)


@pytest.mark.parametrize(
    "Y",
    [
        np.array([[1, 0], [0, 1], [1, 1]]),
        np.array([[True, False], [False, True], [True, True]]),
        np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
        pd.DataFrame({"Mass": [1, 0, 1], "Nodule": [0, 1, 1]}),
        [[1, 0], [0, 1], [1, 1]],
        np.array([[1, 0], [0, 1], [1, 1]], dtype=object),
    ],
)
def test_every_01_matrix_form_is_accepted(Y):
    from scipy import sparse

    P = np.array([[0.9, 0.2], [0.1, 0.8], [0.7, 0.6]])
    assert multilabel_report(Y, P).macro_auc == 1.0
    if isinstance(Y, np.ndarray) and Y.dtype != object:
        assert multilabel_report(sparse.csr_matrix(Y), P).macro_auc == 1.0


def test_nan_is_a_missing_label_only_when_the_caller_allows_it():
    from skcxr._validation import check_multilabel_Y

    Y = np.array([[0, np.nan], [1, 0], [np.nan, 1]])
    with pytest.raises(ValueError, match="got also nan"):
        check_multilabel_Y(Y)
    checked = check_multilabel_Y(Y, 3, allow_missing=True)
    assert checked.dtype == np.float64
    np.testing.assert_array_equal(checked, Y)  # NaN stays NaN (assert_array_equal matches NaN with NaN)
    assert check_multilabel_Y([[1, 0]], allow_missing=True).dtype == np.float64
    with pytest.raises(ValueError, match="got also 2"):
        check_multilabel_Y(np.array([[2.0, np.nan]]), allow_missing=True)
    with pytest.raises(ValueError, match=rf"label strings.*{HOW_TO}"):
        check_multilabel_Y(np.array(["No Finding", "Mass"]), allow_missing=True)


def test_the_helpers_the_message_names_build_an_accepted_matrix():
    from sklearn.preprocessing import MultiLabelBinarizer

    from skcxr.datasets import findings_to_Y

    Y = findings_to_Y(["Effusion|Mass", "No Finding", "Mass"])
    assert multilabel_report(Y, np.zeros(Y.shape)).per_class.shape[0] == 14
    Y = MultiLabelBinarizer().fit_transform([["Effusion", "Mass"], [], ["Mass"]])
    assert multilabel_report(Y, np.zeros(Y.shape)).per_class.shape[0] == 2


# --- operating points and calibration (used by skcxr.report) ------------------------------------------------


def test_sensitivity_at_specificity_is_the_best_threshold_by_brute_force():
    from skcxr.metrics import sensitivity_at_specificity

    rng = np.random.default_rng(0)
    Y = rng.integers(0, 2, (120, 3))
    P = np.round(Y * 0.3 + rng.uniform(0, 1, Y.shape), 2)  # rounded: ties
    for spec in (0.5, 0.8, 0.9, 0.95):
        got = sensitivity_at_specificity(Y, P, spec)
        for k in range(3):
            best = 0.0
            for t in np.r_[np.unique(P[:, k]), np.inf]:
                called = P[:, k] >= t
                if (~called[Y[:, k] == 0]).mean() >= spec:
                    best = max(best, called[Y[:, k] == 1].mean())
            assert got[k] == pytest.approx(best)
    Y[:, 2] = 0
    assert np.isnan(sensitivity_at_specificity(Y, P, 0.9)[2])
    with pytest.raises(ValueError, match="specificity"):
        sensitivity_at_specificity(Y, P, 1.5)


def test_brier_scores_match_sklearn_per_class():
    from sklearn.metrics import brier_score_loss

    from skcxr.metrics import brier_scores

    rng = np.random.default_rng(1)
    Y = rng.integers(0, 2, (50, 4))
    P = rng.uniform(0, 1, Y.shape)
    expected = [brier_score_loss(Y[:, k], P[:, k]) for k in range(4)]
    np.testing.assert_allclose(brier_scores(Y, P), expected)
    with pytest.raises(ValueError, match="probabilities"):
        brier_scores(Y, P * 3)


def test_calibration_bins_match_sklearn_and_count_with_intervals():
    from sklearn.calibration import calibration_curve

    from skcxr.metrics import calibration_bins

    rng = np.random.default_rng(2)
    p = rng.uniform(0, 1, 400) ** 2
    y = (rng.uniform(0, 1, 400) < p).astype(int)
    bins = calibration_bins(y, p, 10)
    observed, predicted = calibration_curve(y, p, n_bins=10)
    np.testing.assert_allclose(bins["observed"], observed)
    np.testing.assert_allclose(bins["mean predicted"], predicted)
    assert bins["count"].sum() == 400
    assert ((bins["low"] <= bins["observed"]) & (bins["observed"] <= bins["high"])).all()
    assert ((bins["low"] >= 0) & (bins["high"] <= 1)).all()
    quantile = calibration_bins(y, p, 4, strategy="quantile")
    assert quantile["count"].tolist() == [100, 100, 100, 100]
    with pytest.raises(ValueError, match="strategy"):
        calibration_bins(y, p, strategy="nope")
    with pytest.raises(ValueError, match="1-D"):
        calibration_bins(y[:, None], p)
