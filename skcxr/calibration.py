"""Per-label recalibration of a multi-label classifier, fitted on its out-of-fold, patient-grouped predictions.

scikit-learn's ``CalibratedClassifierCV`` refuses a 2-D target; in-sample
probabilities of the fitted model itself are overconfident. So
:class:`MultilabelCalibratedClassifier` learns each label's map from
probability to observed rate on predictions for images its models did not
train on, then applies it to the model refitted on all training images.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from scipy.special import logit
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._validation import check_multilabel_Y
from .metrics._scores import _as_score_matrix
from .model_selection import MultilabelStratifiedGroupKFold, groups_fit_params, routing_context
from .model_selection._checks import _n_rows

__all__ = ["MultilabelCalibratedClassifier"]

_EPS = 1e-6  # probabilities are clipped to [eps, 1 - eps] before the logit of Platt scaling


def _platt_input(p):
    """Platt scaling's one feature: the logit of the probabilities, as a column."""
    return logit(np.clip(p, _EPS, 1 - _EPS))[:, None]


class MultilabelCalibratedClassifier(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """A multi-label classifier whose probabilities are recalibrated label by label.

    ``fit(X, Y, groups)``: out-of-fold probabilities of clones of
    ``estimator`` under :class:`~skcxr.model_selection.MultilabelStratifiedGroupKFold`
    (``cv`` folds over patients, so no image is scored by a model that saw
    its patient); on them, per label, a calibrator: ``"sigmoid"`` (Platt: a
    logistic regression on the probability's logit, monotone, keeps each
    label's AUC) or ``"isotonic"`` (a monotone step function, needs more
    positives); then ``estimator`` refitted on all of X. A label with one
    value only in Y keeps its probabilities. Patient ids reach ``estimator``'s
    own inner splits too (:func:`~skcxr.model_selection.groups_fit_params`).

    Parameters
    ----------
    estimator : estimator with ``fit`` and ``predict_proba``
        A multi-label classifier or pipeline (e.g. ``make_hybrid_pipeline()``).
    method : {"sigmoid", "isotonic"}, default="sigmoid"
    cv : int >= 2, default=3
        Patient-grouped folds of the out-of-fold predictions.
    random_state : int, RandomState or None, default=None
        Shuffles the folds.

    Attributes
    ----------
    estimator_ : the estimator fitted on all of X
    calibrators_ : list of fitted calibrators (None for a label with one value only)
    classes_ : ndarray of shape (n_labels,)

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_multilabel_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.multiclass import OneVsRestClassifier
    >>> X, Y = make_multilabel_classification(200, n_features=6, n_classes=3, random_state=0)
    >>> clf = MultilabelCalibratedClassifier(OneVsRestClassifier(LogisticRegression()), random_state=0)
    >>> clf.fit(X, Y, groups=np.arange(200) // 2).predict_proba(X[:2]).shape
    (2, 3)
    """

    __metadata_request__fit = {"groups": True}
    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "predict_proba"])],
        "method": [StrOptions({"sigmoid", "isotonic"})],
        "cv": [Interval(Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, estimator, *, method="sigmoid", cv=3, random_state=None):
        self.estimator = estimator
        self.method = method
        self.cv = cv
        self.random_state = random_state

    def fit(self, X, y, groups=None):
        """Fit the calibrators on out-of-fold probabilities, then the estimator on all of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            What ``estimator`` takes (image paths, images, features).
        y : array-like of shape (n_samples, n_labels)
            0/1 indicator matrix.
        groups : array-like of shape (n_samples,), default=None
            Patient ids (None: every image its own patient).

        Returns
        -------
        self
        """
        self._validate_params()
        Y = check_multilabel_Y(y, _n_rows(X))
        patients = np.arange(len(Y)) if groups is None else np.asarray(groups)
        folds = MultilabelStratifiedGroupKFold(self.cv, shuffle=True, random_state=self.random_state)
        splits = list(folds.split(np.zeros(len(Y)), Y, patients))
        params, routing = groups_fit_params(self.estimator, groups)
        with routing_context(routing):
            oof = cross_val_predict(clone(self.estimator), X, Y, cv=splits, method="predict_proba", params=params)
            self.estimator_ = clone(self.estimator).fit(X, Y, **params)
        oof = _as_score_matrix(oof, Y.shape, strict=False)
        self.calibrators_ = [self._calibrator(oof[:, k], Y[:, k]) for k in range(Y.shape[1])]
        self.classes_ = np.arange(Y.shape[1])
        return self

    def _calibrator(self, p, y):
        if y.min() == y.max():
            return None
        if self.method == "isotonic":
            return IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(p, y)
        return LogisticRegression(C=1e6).fit(_platt_input(p), y)

    def predict_proba(self, X):
        """Recalibrated probabilities, shape (n_samples, n_labels)."""
        check_is_fitted(self, "calibrators_")
        P = _as_score_matrix(self.estimator_.predict_proba(X), (_n_rows(X), len(self.calibrators_)), strict=False)
        out = P.copy()
        for k, calibrator in enumerate(self.calibrators_):
            if isinstance(calibrator, IsotonicRegression):
                out[:, k] = calibrator.predict(P[:, k])
            elif calibrator is not None:
                out[:, k] = calibrator.predict_proba(_platt_input(P[:, k]))[:, 1]
        return out

    def predict(self, X):
        """0/1 at 0.5 of the recalibrated probabilities."""
        return (self.predict_proba(X) >= 0.5).astype(np.uint8)
