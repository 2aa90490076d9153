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

:func:`tune` searches hyper-parameters with Optuna under this grouped CV
(persistent, multi-process studies; pruning of skorch nets by their
per-epoch validation loss with :class:`OptunaPruning`); see
:mod:`skcxr._tuning`.
"""

from __future__ import annotations

import inspect
import numbers

import numpy as np
from sklearn import get_config
from sklearn.model_selection import BaseCrossValidator
from sklearn.utils import _safe_indexing, check_random_state, indexable
from sklearn.utils._param_validation import Interval, validate_parameter_constraints
from sklearn.utils.metadata_routing import get_routing_for_object

from ._validation import check_multilabel_Y

__all__ = [
    "MultilabelStratifiedGroupKFold",
    "MultilabelStratifiedGroupShuffleSplit",
    "OptunaPruning",
    "TuneResult",
    "groups_params",
    "train_test_split_by_patient",
    "tune",
]

# Optuna tuning lives in private modules above this one in the import order (they use
# skcxr.evaluation, and OptunaPruning skorch): loaded on first use, so importing the splitters
# stays light (no optuna, no torch).
_LAZY = {"tune": "_tuning", "TuneResult": "_tuning", "OptunaPruning": "_pruning"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__package__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


def _validate_splitter(splitter) -> None:
    """scikit-learn's parameter check for a splitter (not an estimator, so no ``_validate_params``)."""
    constraints = splitter._parameter_constraints
    params = {name: getattr(splitter, name) for name in constraints}
    validate_parameter_constraints(constraints, params, type(splitter).__name__)


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
        raise ValueError(
            f"Cannot split {n_groups} distinct groups ({len(groups)} samples) into {n_parts} parts."
        )
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


def _test_fraction(test_size, n_samples: int) -> float:
    if isinstance(test_size, numbers.Integral) and not isinstance(test_size, bool):
        if not 0 < test_size < n_samples:
            raise ValueError(f"test_size={test_size} must be between 1 and n_samples - 1 = {n_samples - 1}.")
        return test_size / n_samples
    if isinstance(test_size, numbers.Real) and 0 < test_size < 1:
        return float(test_size)
    raise ValueError(f"test_size must be a float in (0, 1) or a positive int, got {test_size!r}.")


def _fit_accepts_groups(estimator) -> bool:
    fit = getattr(estimator, "fit", None)
    return fit is not None and "groups" in inspect.signature(fit).parameters


def groups_params(estimator, groups) -> dict:
    """The fit parameters that bring patient ids to every inner split of ``estimator``.

    With scikit-learn's metadata routing enabled this is ``{"groups": groups}``
    when some step consumes them (skcxr's estimators request ``groups`` in
    ``fit`` by default, so routing delivers them), else ``{}``. With routing
    off (scikit-learn's default) it names every nested step whose ``fit``
    takes ``groups``, in the ``step__param`` form of
    ``Pipeline`` (a ``FeatureUnion`` passes its parameters to all its members,
    each of which must then accept ``groups``).

    Parameters
    ----------
    estimator : estimator, Pipeline, FeatureUnion or search (GridSearchCV, ...)
    groups : array-like of shape (n_samples,)
        Patient id per sample.

    Returns
    -------
    dict
        Keyword arguments for ``estimator.fit(X, Y, **params)`` (or for
        ``cross_validate(..., params=...)``, which slices them per fold).

    Examples
    --------
    >>> from sklearn.pipeline import Pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skcxr.model_selection import groups_params
    >>> from skcxr.neural import MultilabelNeuralNetClassifier
    >>> pipe = Pipeline([("scale", StandardScaler()), ("clf", MultilabelNeuralNetClassifier())])
    >>> sorted(groups_params(pipe, [1, 1, 2]))
    ['clf__groups']
    """
    if get_config()["enable_metadata_routing"]:
        routing = get_routing_for_object(estimator)
        return {"groups": groups} if routing.consumes("fit", ["groups"]) else {}
    return _groups_params(estimator, groups)


def _groups_params(estimator, groups) -> dict:
    steps = getattr(estimator, "steps", None)
    members = getattr(estimator, "transformer_list", None)
    inner = getattr(estimator, "estimator", None)
    if steps is not None:  # Pipeline (scikit-learn or imbalanced-learn)
        params = {}
        for name, step in steps:
            if step is None or isinstance(step, str):
                continue
            params.update({f"{name}__{k}": v for k, v in _groups_params(step, groups).items()})
        return params
    if members is not None:  # FeatureUnion: every member receives every parameter
        active = [t for _, t in members if t is not None and not isinstance(t, str)]
        if not any(_groups_params(t, groups) for t in active):
            return {}
        # a nested Pipeline takes only step__groups, never a bare groups=; other members must accept groups
        refusing = [type(t).__name__ for t in active
                    if hasattr(t, "steps") or not (_fit_accepts_groups(t) or hasattr(t, "transformer_list"))]
        if refusing:
            raise ValueError(
                f"A FeatureUnion passes groups to all its members, and {', '.join(refusing)} "
                "do not accept them; enable metadata routing "
                "(sklearn.set_config(enable_metadata_routing=True)) to route groups by request."
            )
        return {"groups": groups}
    if inner is not None and hasattr(estimator, "cv"):  # GridSearchCV and friends: groups go to the cv
        return {"groups": groups, **_groups_params(inner, groups)}
    return {"groups": groups} if _fit_accepts_groups(estimator) else {}


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
