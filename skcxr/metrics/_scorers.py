"""Scorers for ``scoring=``: the multi-label metrics by name, and sklearn's for any other name."""

from __future__ import annotations

from sklearn.metrics import f1_score, hamming_loss, make_scorer
from sklearn.metrics import get_scorer as _sklearn_get_scorer

from ._ranking import macro_auc_score

# Scorers. scikit-learn's `make_scorer(response_method="predict_proba")` already
# turns MultiOutputClassifier's list of (n, 2) arrays into an (n, L) matrix for
# multilabel-indicator targets and passes an (n, L) predict_proba through
# unchanged; the metric functions here also accept the list (the path sklearn
# takes when a sub-estimator saw one class only).
SCORERS = {
    "macro_auc": make_scorer(macro_auc_score, response_method=("predict_proba", "decision_function")),
    "micro_f1": make_scorer(f1_score, average="micro", zero_division=0),
    "macro_f1": make_scorer(f1_score, average="macro", zero_division=0),
    "neg_hamming_loss": make_scorer(hamming_loss, greater_is_better=False),
}


def get_scorer(name):
    """Scorer for ``scoring=`` in ``GridSearchCV`` / ``cross_validate``.

    ``name`` is one of ``"macro_auc"``, ``"micro_f1"``, ``"macro_f1"``,
    ``"neg_hamming_loss"``; any other name (or a callable) goes to
    :func:`sklearn.metrics.get_scorer`.

    Examples
    --------
    >>> from sklearn.datasets import make_multilabel_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import cross_val_score
    >>> from sklearn.multiclass import OneVsRestClassifier
    >>> from skcxr.metrics import get_scorer
    >>> X, Y = make_multilabel_classification(60, n_classes=3, random_state=0)
    >>> scores = cross_val_score(OneVsRestClassifier(LogisticRegression()), X, Y,
    ...                          cv=3, scoring=get_scorer("macro_auc"))
    >>> scores.shape
    (3,)
    """
    if isinstance(name, str) and name in SCORERS:
        return SCORERS[name]
    return _sklearn_get_scorer(name)
