"""The patient-grouped, label-stratified splitters and train/test split."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.model_selection import BaseCrossValidator
from sklearn.utils import _safe_indexing, check_random_state, indexable
from sklearn.utils._param_validation import Interval, validate_parameter_constraints

from .._validation import check_multilabel_Y
from ._checks import _check_groups, _test_fraction
from ._stratify import _stratify_groups


def _validate_splitter(splitter) -> None:
    """scikit-learn's parameter check for a splitter (not an estimator, so no ``_validate_params``)."""
    constraints = splitter._parameter_constraints
    params = {name: getattr(splitter, name) for name in constraints}
    validate_parameter_constraints(constraints, params, type(splitter).__name__)


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

    # with metadata routing on, GridSearchCV(...).fit(X, Y, groups=...) routes the patient ids here
    __metadata_request__split = {"groups": True}

    def __init__(self, n_splits=5, shuffle=False, random_state=None):
        self.n_splits = n_splits
        self.shuffle = shuffle
        self.random_state = random_state

    _parameter_constraints = {
        "n_splits": [Interval(numbers.Integral, 2, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
    }

    def _check_params(self) -> None:
        _validate_splitter(self)
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


class MultilabelStratifiedGroupShuffleSplit(BaseCrossValidator):
    """Random train/validation splits over groups (patients), stratified on a multi-label target.

    The index splitter behind every inner validation part in skcxr (early
    stopping, tuned thresholds, fine-tuning): each split assigns whole groups
    by the iterative stratification of the module docstring, with parts of
    ``1 - test_size`` and ``test_size``. Without ``groups`` every sample is its
    own group; then images of one patient can fall on both sides, which makes
    validation losses and thresholds optimistic: pass the patient ids.

    Parameters
    ----------
    n_splits : int, default=1
        Number of independent random splits.
    test_size : float in (0, 1) or int, default=0.2
        Fraction (or number) of samples in the validation part; whole groups
        make it approximate.
    random_state : int, RandomState instance or None, default=None

    Examples
    --------
    >>> import numpy as np
    >>> from skcxr.model_selection import MultilabelStratifiedGroupShuffleSplit
    >>> Y = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 1], [0, 0], [1, 0], [0, 1]])
    >>> groups = np.array([1, 1, 2, 2, 3, 4, 5, 6])
    >>> train, valid = next(MultilabelStratifiedGroupShuffleSplit(test_size=0.25, random_state=0)
    ...                     .split(np.zeros(8), Y, groups))
    >>> set(groups[train]) & set(groups[valid])
    set()
    """

    __metadata_request__split = {"groups": True}
    _parameter_constraints = {
        "n_splits": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, n_splits=1, test_size=0.2, random_state=None):
        self.n_splits = n_splits
        self.test_size = test_size
        self.random_state = random_state

    def split(self, X, y, groups=None):
        """Generate train/validation indices; ``y`` is the (n, L) 0/1 matrix, ``groups`` the patient ids.

        Yields
        ------
        train, test : ndarray of int
        """
        _validate_splitter(self)
        X, y, groups = indexable(X, y, groups)
        n_samples = len(X)
        fraction = _test_fraction(self.test_size, n_samples)
        Y = None if y is None else check_multilabel_Y(y, n_samples, name="y")
        groups = np.arange(n_samples) if groups is None else _check_groups(groups, n_samples)
        rng = check_random_state(self.random_state)
        for _ in range(self.n_splits):
            part = _stratify_groups(Y, groups, [1.0 - fraction, fraction], rng)
            train, test = np.flatnonzero(part == 0), np.flatnonzero(part == 1)
            if len(train) == 0 or len(test) == 0:
                raise ValueError(
                    f"test_size={self.test_size!r} leaves an empty train or validation part with "
                    f"{n_samples} samples in {len(np.unique(groups))} groups."
                )
            yield train, test

    def get_n_splits(self, X=None, y=None, groups=None):
        """Number of splits."""
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
    fraction = _test_fraction(test_size, n_samples)
    Y = None if stratify is None else check_multilabel_Y(stratify, n_samples, name="stratify")
    part = _stratify_groups(Y, groups, [1.0 - fraction, fraction], check_random_state(random_state))
    train, test = np.flatnonzero(part == 0), np.flatnonzero(part == 1)
    return [piece for a in arrays for piece in (_safe_indexing(a, train), _safe_indexing(a, test))]
