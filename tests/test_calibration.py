"""skcxr.calibration: per-label recalibration on out-of-fold, patient-grouped predictions; ECE."""

import numpy as np
import pytest
from scipy.special import logit
from sklearn.base import clone
from sklearn.datasets import make_multilabel_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.multiclass import OneVsRestClassifier

from skcxr.calibration import MultilabelCalibratedClassifier
from skcxr.metrics import expected_calibration_error


def _overconfident_data(seed=0):
    """Many noisy features, few images: an unregularised LR's probabilities are near 0 or 1 and often wrong."""
    X, Y = make_multilabel_classification(900, n_features=60, n_classes=3, n_labels=1, random_state=seed)
    X = X + np.random.default_rng(seed).normal(scale=4.0, size=X.shape)
    return X[:400], Y[:400], X[400:], Y[400:], np.arange(400) // 2


def _lr():
    return OneVsRestClassifier(LogisticRegression(C=1e4, max_iter=2000))


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_recalibration_lowers_the_calibration_error_on_held_out_images(method):
    X, Y, X_test, Y_test, groups = _overconfident_data()
    raw = _lr().fit(X, Y).predict_proba(X_test)
    calibrated = MultilabelCalibratedClassifier(_lr(), method=method, random_state=0).fit(X, Y, groups=groups)
    P = calibrated.predict_proba(X_test)
    before, after = expected_calibration_error(Y_test, raw), expected_calibration_error(Y_test, P)
    assert np.all(after < before / 2), (before, after)  # e.g. [0.25 0.27 0.2] -> [0.03 0.04 0.05]
    if method == "sigmoid":  # monotone per label: the ranking, hence each label's AUC, is kept
        for k in range(Y.shape[1]):
            assert roc_auc_score(Y_test[:, k], P[:, k]) == pytest.approx(roc_auc_score(Y_test[:, k], raw[:, k]))


def test_calibrators_learn_on_out_of_fold_predictions_not_in_sample_ones():
    X, Y, _, _, groups = _overconfident_data()
    clf = MultilabelCalibratedClassifier(_lr(), random_state=0).fit(X, Y, groups=groups)
    in_sample = clf.estimator_.predict_proba(X)
    fitted_in_sample = [LogisticRegression(C=1e6).fit(logit(np.clip(in_sample[:, [k]], 1e-6, 1 - 1e-6)), Y[:, k])
                        for k in range(Y.shape[1])]
    assert all(c.coef_[0, 0] > 0.7 for c in fitted_in_sample)  # in-sample, the LR looks nearly calibrated ...
    slopes = [c.coef_[0, 0] for c in clf.calibrators_]
    assert all(0 < s < 0.5 for s in slopes)  # ... on images it did not train on, its logits must shrink


def test_a_label_with_one_value_keeps_its_probabilities_and_bad_targets_are_refused():
    X, Y, _, _, groups = _overconfident_data()
    Y = Y.copy()
    Y[:, 2] = 0
    clf = MultilabelCalibratedClassifier(_lr(), random_state=0).fit(X, Y, groups=groups)
    assert clf.calibrators_[2] is None
    np.testing.assert_allclose(clf.predict_proba(X[:5])[:, 2], clf.estimator_.predict_proba(X[:5])[:, 2])
    with pytest.raises(ValueError, match="2-D 0/1 indicator matrix"):
        clone(clf).fit(X, np.array(["Effusion"] * len(X)))
    with pytest.raises(ValueError, match="method"):
        MultilabelCalibratedClassifier(_lr(), method="beta").fit(X, Y)


def test_expected_calibration_error_by_hand():
    Y = np.array([[1, 0], [0, 0], [1, 1], [0, 1]])
    P = np.array([[0.9, 0.5], [0.1, 0.5], [0.9, 0.5], [0.9, 0.5]])
    # label 0: bin [0, .5): one image, rate 0 vs 0.1; bin [.5, 1]: three, rate 2/3 vs 0.9 -> 0.25*0.1 + 0.75*(0.9-2/3)
    # label 1: one bin, rate 1/2 vs 0.5 -> 0
    np.testing.assert_allclose(expected_calibration_error(Y, P, n_bins=2), [0.025 + 0.75 * (0.9 - 2 / 3), 0.0])
    with pytest.raises(ValueError, match="probabilities in"):
        expected_calibration_error(Y, P * 3)
