"""Patient-grouped, label-stratified splitting of multi-label data.

Chest X-ray data sets hold several images per patient; a patient on both sides
of a split leaks and inflates the score. Both tools here assign whole groups
(patients) with the iterative stratification of Sechidis, Tsoumakas & Vlahavas
(2011, "On the stratification of multi-label data", ECML PKDD), run over
groups instead of samples:

1. Sum the label indicators per group, giving per-group positive counts, and
   count the samples of each group.
2. Each part ``j`` of the split desires ``p_j * total`` samples and
   ``p_j * positives(l)`` positives of every label ``l``.
3. Repeatedly take the label with the fewest positives among the groups not yet
   assigned, and give each unassigned group carrying it (most positives first)
   to the part that still desires most positives of that label; ties go to the
   part that desires most samples, then to a random one. Every assignment
   lowers the part's desires by the group's counts.
4. Groups without any positive go, largest first, to the part that desires
   most samples.

:class:`MultilabelStratifiedGroupKFold` uses parts of ``1/n_splits`` each;
:func:`train_test_split_by_patient` uses ``[1 - test_size, test_size]``.
"""

from __future__ import annotations

import numbers
import time

import numpy as np
import pandas as pd
from sklearn.model_selection import BaseCrossValidator
from sklearn.utils import _safe_indexing, check_random_state, indexable

from ._validation import check_multilabel_Y
from .metrics import multilabel_report

__all__ = ["MultilabelStratifiedGroupKFold", "holdout_report", "train_test_split_by_patient"]


def _check_groups(groups, n_samples: int) -> np.ndarray:
    if groups is None:
        raise ValueError(
            "The 'groups' parameter should not be None: pass one group (patient) id per sample."
        )
    groups = np.asarray(groups)
    if groups.ndim != 1 or groups.shape[0] != n_samples:
        raise ValueError(
            f"groups must be 1-D with one id per sample ({n_samples}), got shape {groups.shape}."
        )
    return groups


def _stratify_groups(Y, groups, proportions, rng=None) -> np.ndarray:
    """Assign groups to parts by iterative stratification; return the part of each sample.

    Parameters
    ----------
    Y : ndarray (n, L) of 0/1, or None (balance sample counts only).
    groups : ndarray (n,) of group ids.
    proportions : sequence of floats summing to 1, one per part.
    rng : numpy RandomState or None
        Shuffles the group order and breaks ties randomly; None keeps the
        data order and breaks ties by the lowest part index.
    """
    proportions = np.asarray(proportions, dtype=float)
    group_ids, inverse = np.unique(groups, return_inverse=True)
    n_groups, n_parts = len(group_ids), len(proportions)
    if n_groups < n_parts:
        raise ValueError(f"Cannot split {n_groups} distinct groups into {n_parts} parts.")
    sizes = np.bincount(inverse, minlength=n_groups).astype(float)
    counts = np.zeros((n_groups, 0 if Y is None else Y.shape[1]))
    if Y is not None:
        np.add.at(counts, inverse, Y.astype(float))

    want_samples = proportions * sizes.sum()
    want_labels = np.outer(proportions, counts.sum(axis=0))  # (parts, L)
    part_of_group = np.full(n_groups, -1)
    order = np.arange(n_groups)
    if rng is not None:
        rng.shuffle(order)

    def pick(candidates: np.ndarray) -> int:
        best = np.flatnonzero(candidates == candidates.max())
        if len(best) > 1:
            best = best[np.flatnonzero(want_samples[best] == want_samples[best].max())]
        return int(best[0] if rng is None or len(best) == 1 else rng.choice(best))

    def assign(g: int, part: int) -> None:
        part_of_group[g] = part
        want_samples[part] -= sizes[g]
        want_labels[part] -= counts[g]

    while True:
        unassigned = order[part_of_group[order] < 0]
        remaining = counts[unassigned].sum(axis=0)
        if not remaining.any():
            break
        rarest = np.flatnonzero(remaining == remaining[remaining > 0].min())
        label = int(rarest[0] if rng is None else rng.choice(rarest))
        carriers = unassigned[counts[unassigned, label] > 0]
        # Most positives first (stable, so the shuffled order breaks ties).
        carriers = carriers[np.argsort(-counts[carriers, label], kind="stable")]
        for g in carriers:
            assign(g, pick(want_labels[:, label]))

    unassigned = order[part_of_group[order] < 0]
    for g in unassigned[np.argsort(-sizes[unassigned], kind="stable")]:
        assign(g, pick(want_samples))
    return part_of_group[inverse]


class MultilabelStratifiedGroupKFold(BaseCrossValidator):
    """K-fold over groups (patients), stratified on a multi-label target.

    No group ever appears in two folds, while each label's positives are
    spread over the folds as evenly as whole groups allow (iterative
    stratification over groups, see the module docstring). scikit-learn's
    ``StratifiedGroupKFold`` takes a 1-D target only, and iterative-stratification's
    ``MultilabelStratifiedKFold`` takes no groups.

    Parameters
    ----------
    n_splits : int, default=5
        Number of folds, at least 2.
    shuffle : bool, default=False
        Shuffle the group order and break ties at random. Without it the split
        is a deterministic function of the data order.
    random_state : int, RandomState instance or None, default=None
        Seed for the shuffle; only allowed with ``shuffle=True``.

    Examples
    --------
    >>> import numpy as np
    >>> from skcxr.model_selection import MultilabelStratifiedGroupKFold
    >>> Y = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 1], [0, 0], [1, 0], [0, 1]])
    >>> groups = np.array([1, 1, 2, 2, 3, 4, 5, 6])
    >>> cv = MultilabelStratifiedGroupKFold(n_splits=2)
    >>> for train, test in cv.split(np.zeros(8), Y, groups):
    ...     assert not set(groups[train]) & set(groups[test])
    >>> cv.get_n_splits()
    2
    """

    def __init__(self, n_splits=5, shuffle=False, random_state=None):
        self.n_splits = n_splits
        self.shuffle = shuffle
        self.random_state = random_state

    def _check_params(self) -> None:
        if not isinstance(self.n_splits, numbers.Integral) or self.n_splits < 2:
            raise ValueError(f"n_splits must be an integer >= 2, got {self.n_splits!r}.")
        if not isinstance(self.shuffle, (bool, np.bool_)):
            raise TypeError(f"shuffle must be True or False, got {self.shuffle!r}.")
        if not self.shuffle and self.random_state is not None:
            raise ValueError(
                "Setting a random_state has no effect since shuffle is False. "
                "Leave random_state at None or set shuffle=True."
            )

    def split(self, X, y, groups=None):
        """Generate train/test indices; ``y`` is the (n, L) 0/1 matrix, ``groups`` the patient ids.

        Yields
        ------
        train, test : ndarray of int
        """
        self._check_params()
        X, y, groups = indexable(X, y, groups)
        if y is None:
            raise ValueError("y is required: a 2-D 0/1 indicator matrix (n, L).")
        yield from super().split(X, y, groups)

    def _iter_test_indices(self, X, y, groups):
        Y = check_multilabel_Y(y, len(X), name="y")
        groups = _check_groups(groups, Y.shape[0])
        rng = check_random_state(self.random_state) if self.shuffle else None
        folds = _stratify_groups(Y, groups, np.full(self.n_splits, 1.0 / self.n_splits), rng)
        for k in range(self.n_splits):
            yield np.flatnonzero(folds == k)

    def get_n_splits(self, X=None, y=None, groups=None):
        """Number of folds."""
        return self.n_splits


def train_test_split_by_patient(*arrays, groups, stratify=None, test_size=0.2, random_state=None):
    """Split arrays into train and test sets with no patient on both sides.

    Returns what :func:`sklearn.model_selection.train_test_split` returns
    (``a_train, a_test, b_train, b_test, ...``). Whole groups are assigned by
    iterative stratification on ``stratify`` (see the module docstring), so the
    label proportions match on both sides as far as whole patients allow; with
    ``stratify=None`` only the sizes are balanced. The test fraction is
    ``test_size`` up to the size of the last patients placed.

    Parameters
    ----------
    *arrays : sequence of indexables with the same length
        Lists, numpy arrays, scipy-sparse matrices or pandas DataFrames.
    groups : array-like of shape (n_samples,)
        Patient id of each sample. Required.
    stratify : array-like of shape (n_samples, n_labels), optional
        2-D 0/1 indicator matrix to stratify on.
    test_size : float in (0, 1) or int, default=0.2
        Fraction of samples (or number of samples) to put in the test set.
    random_state : int, RandomState instance or None, default=None
        Controls the shuffle of patients and the random tie-breaking.

    Returns
    -------
    list
        Train and test parts of each input, in order.

    Examples
    --------
    >>> import numpy as np
    >>> from skcxr.model_selection import train_test_split_by_patient
    >>> X = np.arange(10).reshape(-1, 1)
    >>> Y = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 1], [0, 0], [1, 0], [0, 1], [0, 0], [1, 0]])
    >>> patients = np.array([1, 1, 2, 2, 3, 4, 5, 6, 7, 8])
    >>> X_tr, X_te, Y_tr, Y_te, p_tr, p_te = train_test_split_by_patient(
    ...     X, Y, patients, groups=patients, stratify=Y, test_size=0.3, random_state=0)
    >>> set(p_tr) & set(p_te)
    set()
    """
    if not arrays:
        raise ValueError("At least one array is required as input.")
    arrays = indexable(*arrays)
    n_samples = len(arrays[0])
    groups = _check_groups(groups, n_samples)
    if isinstance(test_size, numbers.Integral) and not isinstance(test_size, bool):
        if not 0 < test_size < n_samples:
            raise ValueError(f"test_size={test_size} must be between 1 and n_samples - 1 = {n_samples - 1}.")
        fraction = test_size / n_samples
    elif isinstance(test_size, numbers.Real) and 0 < test_size < 1:
        fraction = float(test_size)
    else:
        raise ValueError(f"test_size must be a float in (0, 1) or a positive int, got {test_size!r}.")
    Y = None if stratify is None else check_multilabel_Y(stratify, n_samples, name="stratify")
    part = _stratify_groups(Y, groups, [1.0 - fraction, fraction], check_random_state(random_state))
    train, test = np.flatnonzero(part == 0), np.flatnonzero(part == 1)
    return [piece for a in arrays for piece in (_safe_indexing(a, train), _safe_indexing(a, test))]


def holdout_report(models: dict, X_train, Y_train, X_test, Y_test, *, target_names=None):
    """Fit each model on the training part and report it on the held-out part.

    Parameters
    ----------
    models : dict of {name: estimator}
        Multi-label classifiers (or pipelines) with ``predict_proba``.
    X_train, Y_train, X_test, Y_test : array-like
        A split made by patient, e.g. by :func:`train_test_split_by_patient`.
    target_names : list of str, optional
        Class names for the per-class tables.

    Returns
    -------
    table : pandas.DataFrame
        One row per model: Micro-F1, Macro-F1, Hamming loss, Macro-AUC and the
        wall time of fit + predict in seconds.
    reports : dict of {name: MultilabelReport}
        The full reports, with per-class tables.

    Examples
    --------
    >>> from sklearn.datasets import make_multilabel_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.multiclass import OneVsRestClassifier
    >>> X, Y = make_multilabel_classification(200, n_classes=3, random_state=0)
    >>> table, reports = holdout_report({"LR": OneVsRestClassifier(LogisticRegression(max_iter=500))},
    ...                                 X[:150], Y[:150], X[150:], Y[150:])
    >>> list(table.columns)
    ['Micro-F1', 'Macro-F1', 'Hamming loss', 'Macro-AUC', 'Seconds']
    """
    reports, seconds = {}, []
    for name, model in models.items():
        start = time.perf_counter()
        model.fit(X_train, Y_train)
        reports[name] = multilabel_report(Y_test, model.predict_proba(X_test), target_names=target_names)
        seconds.append(time.perf_counter() - start)
    table = pd.concat([report.to_frame(name) for name, report in reports.items()])
    table["Seconds"] = seconds
    return table, reports
