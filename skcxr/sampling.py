"""Multi-label over-sampling with imbalanced-learn's API, and a pipeline whose patient ids follow the rows.

imbalanced-learn's samplers take a 1-D target only (its issue #1123); the two
here take skcxr's 2-D 0/1 indicator matrix ``Y`` and work as a step of an
:class:`imblearn.pipeline.Pipeline` (resampling at fit time only; ``predict``
and ``transform`` pass every row through untouched):

- :class:`MLROS`, multi-label random over-sampling (Charte, Rivera, del Jesus
  & Herrera 2015, "Addressing imbalance in multilabel classification:
  Measures and random resampling algorithms", Neurocomputing 163), clones
  samples that carry a minority label;
- :class:`MLSMOTE` (Charte, Rivera, del Jesus & Herrera 2015, "MLSMOTE:
  Approaching imbalanced multilabel learning through synthetic instance
  generation", Knowledge-Based Systems 89) adds synthetic samples between a
  sample carrying a minority label and one of its nearest neighbours among
  the samples carrying that label, with a label set drawn from the sample and
  its neighbours.

Imbalance measures (Charte et al. 2015)
---------------------------------------
For a label ``l`` with ``c_l`` positives, ``IRLbl(l) = max_m c_m / c_l``: 1 for
the most frequent label, larger for rarer ones (:func:`irlbl`). ``MeanIR`` is
the mean of ``IRLbl`` over the labels (:func:`mean_ir`). A **minority label**
is one with ``IRLbl > MeanIR``; the samples carrying it are its *bag*. Labels
without a positive in ``Y`` have no ``IRLbl`` (NaN): they are left out of
``MeanIR`` and cannot be over-sampled.

``sampling_strategy`` (both samplers)
------------------------------------
- a float ``f > 0``: add ``round(f * n_samples)`` rows (the paper's
  percentage ``P`` is ``100 f``). The bags of the minority labels take turns;
  each turn draws a random seed sample from the bag (with replacement) and
  adds one row made from it. A label leaves the rotation once its ``IRLbl``,
  counted over the rows so far (original and added), is at most the
  ``MeanIR`` of the input; sampling ends early when every label has left.
  This is MLROS as published; for MLSMOTE it is a budgeted variant.
- ``"minority"``: every sample of every minority bag seeds one new row, once
  per minority label it carries. This is MLSMOTE as published; for MLROS it
  duplicates every minority bag once. Both samplers then add the same number
  of rows, which makes them comparable.

``IRLbl``, ``MeanIR`` and the minority labels are computed once, on the data
given to ``fit_resample``, and only original rows seed or neighbour a new row.

Patient ids follow the rows
---------------------------
Every sampler records ``sample_indices_``: the original row each output row
comes from (for a synthetic MLSMOTE row, its seed). imbalanced-learn's own
:class:`~imblearn.pipeline.Pipeline` passes fit parameters to the steps after a
sampler unresampled, so ``clf__groups`` no longer matches the rows that reach
``clf`` (skcxr's nets refuse them). :class:`Pipeline` here is imbalanced-learn's,
plus one rule: every per-sample fit parameter (an array-like with one entry
per row of ``X``, the rule by which ``cross_validate`` slices ``params``;
``groups``, ``sample_weight``) is re-indexed through the ``sample_indices_`` of
the samplers before the step that receives it. A clone therefore carries its
patient's id, and so does a synthetic MLSMOTE row (its seed's patient), so an
inner patient-disjoint validation split (:class:`skcxr.neural.MultilabelValidSplit`)
keeps all copies of a patient on one side.

Caveats: the inner validation part of a net after the sampler is itself
over-sampled (its early stopping and tuned thresholds see the resampled label
mix), and a synthetic MLSMOTE row mixes its seed's features with a neighbour's,
possibly another patient's, whose own rows may land in the validation part.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral, Real

import imblearn.pipeline
import numpy as np
import pandas as pd
import scipy.sparse
from imblearn.base import BaseSampler
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import Bunch, _safe_indexing, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import validate_data

from ._validation import check_multilabel_Y

__all__ = ["MLROS", "MLSMOTE", "Pipeline", "irlbl", "make_pipeline", "mean_ir"]


# -- imbalance measures ----------------------------------------------------------------------------


def irlbl(Y) -> np.ndarray:
    """Imbalance ratio per label, ``IRLbl(l) = max_m c_m / c_l`` (``c``: positives per label).

    Parameters
    ----------
    Y : array-like of shape (n_samples, n_labels)
        0/1 indicator matrix.

    Returns
    -------
    ndarray of shape (n_labels,), float
        1 for the most frequent label, larger for rarer ones; NaN for a label
        without a positive.

    Examples
    --------
    >>> from skcxr.sampling import irlbl
    >>> irlbl([[1, 1, 0], [1, 0, 0], [1, 0, 0], [1, 1, 0]]).tolist()
    [1.0, 2.0, nan]
    """
    return _irlbl(check_multilabel_Y(Y))


def mean_ir(Y) -> float:
    """Mean imbalance ratio ``MeanIR``: the mean of :func:`irlbl` over the labels that have a positive.

    1 when every present label is equally frequent; NaN when ``Y`` has no positive at all.

    Examples
    --------
    >>> from skcxr.sampling import mean_ir
    >>> mean_ir([[1, 1, 0], [1, 0, 0], [1, 0, 0], [1, 1, 0]])
    1.5
    """
    return _mean_ir(_irlbl(check_multilabel_Y(Y)))


def _irlbl(Y: np.ndarray, counts: np.ndarray | None = None) -> np.ndarray:
    counts = Y.sum(axis=0, dtype=float) if counts is None else counts
    present = counts > 0
    ratio = np.full(counts.shape, np.nan)
    if present.any():
        ratio[present] = counts.max() / counts[present]
    return ratio


def _mean_ir(ratio: np.ndarray) -> float:
    present = ratio[~np.isnan(ratio)]
    return float(present.mean()) if present.size else float("nan")


# -- helpers ---------------------------------------------------------------------------------------


def _n_rows(X) -> int:
    shape = getattr(X, "shape", None)
    return int(shape[0]) if shape is not None and len(shape) else len(X)


def _restore_Y(Y_res: np.ndarray, y):
    """``Y_res`` in the container of the ``y`` given (DataFrame, sparse matrix, ndarray)."""
    if isinstance(y, pd.DataFrame):
        return pd.DataFrame(Y_res, columns=y.columns).astype(y.dtypes)
    if scipy.sparse.issparse(y):
        return scipy.sparse.csr_matrix(Y_res)
    return Y_res


# -- samplers --------------------------------------------------------------------------------------


class _MultilabelOverSampler(BaseSampler):
    """What MLROS and MLSMOTE share: 2-D ``Y``, the imbalance statistics, the rotation of minority bags."""

    _parameter_constraints = {
        "sampling_strategy": [Interval(Real, 0, None, closed="neither"), StrOptions({"minority"})],
        "random_state": ["random_state"],
    }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = False
        return tags

    def _check_X(self, X):
        raise NotImplementedError

    def _check(self, X, y):
        """Checked ``(X, Y)``: ``Y`` as a uint8 indicator matrix; sets the imbalance statistics."""
        X = self._check_X(X)
        Y = check_multilabel_Y(y, _n_rows(X))
        columns = getattr(y, "columns", None)
        self.label_names_ = np.asarray(columns) if columns is not None else np.arange(Y.shape[1])
        self.irlbl_ = _irlbl(Y)
        self.mean_ir_ = _mean_ir(self.irlbl_)
        with np.errstate(invalid="ignore"):
            self.minority_labels_ = np.flatnonzero(self.irlbl_ > self.mean_ir_)
        return X, Y

    def fit(self, X, y, **params):
        """Check the data and compute ``irlbl_``, ``mean_ir_`` and ``minority_labels_``; use ``fit_resample``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
        y : array-like of shape (n_samples, n_labels)
            0/1 indicator matrix.

        Returns
        -------
        self
        """
        self._validate_params()
        self._check(X, y)
        return self

    def fit_resample(self, X, y, **params):
        """Over-sample: the rows of ``X`` and ``y`` first, in order, then the new rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            See the class for what each sampler accepts.
        y : array-like of shape (n_samples, n_labels)
            0/1 indicator matrix (ndarray, DataFrame, sparse matrix).

        Returns
        -------
        X_resampled : same container as ``X``, ``n_samples + n_new`` rows
            A DataFrame keeps its columns (with a new RangeIndex).
        y_resampled : same container and dtype as ``y``, ``n_samples + n_new`` rows
        """
        self._validate_params()
        X_checked, Y = self._check(X, y)
        X_res, new_labels, indices = self._fit_resample(X_checked, Y, check_random_state(self.random_state))
        self.sample_indices_ = indices
        dtype = np.asarray(y).dtype if not scipy.sparse.issparse(y) else y.dtype
        dtype = dtype if dtype.kind in "biuf" else np.uint8
        Y_res = np.vstack([Y, new_labels]).astype(dtype, copy=False)
        Y_res = _restore_Y(Y_res, y)
        if isinstance(X_res, pd.DataFrame) and isinstance(Y_res, pd.DataFrame):
            Y_res.index = X_res.index
        return X_res, Y_res

    def _bags(self, Y) -> dict:
        """Row indices of the samples carrying each minority label, in label order."""
        return {int(j): np.flatnonzero(Y[:, j]) for j in self.minority_labels_}

    def _label_name(self, j) -> str:
        name = self.label_names_[j]
        return f"{name!r} (column {j})" if not isinstance(name, (Integral, np.integer)) else f"column {j}"

    def _n_to_add(self, n_samples: int) -> int:
        return int(round(float(self.sampling_strategy) * n_samples))

    def _rotation(self, Y, bags, rng, make_row):
        """The float ``sampling_strategy``: seeds drawn in turns from the minority bags (MLROS's loop).

        ``make_row(label, position_in_bag)`` returns ``(record, label_row)``; the label
        counts, hence each label's ``IRLbl``, are updated with every new row.
        Returns the records, in order.
        """
        n_add = self._n_to_add(len(Y))
        counts = Y.sum(axis=0, dtype=float)
        active = list(bags)
        records = []
        while len(records) < n_add and active:
            for j in list(active):
                if counts.max() / counts[j] <= self.mean_ir_:
                    active.remove(j)
                    continue
                record, labels = make_row(j, int(rng.randint(len(bags[j]))))
                counts += labels
                records.append(record)
                if len(records) == n_add:
                    break
        return records


class MLROS(_MultilabelOverSampler):
    """Multi-label random over-sampling (ML-ROS): clone samples that carry a minority label.

    Minority labels are those whose imbalance ratio ``IRLbl`` exceeds the mean
    ``MeanIR`` (Charte et al. 2015, see :mod:`skcxr.sampling`). A clone copies
    the whole row, with all its labels. The original rows come first, in
    order, then the clones.

    Parameters
    ----------
    sampling_strategy : float > 0 or "minority", default=0.25
        A float ``f`` adds ``round(f * n_samples)`` clones (the paper's ``P``
        is ``100 f``): the minority bags take turns, each turn cloning a random
        member, and a label leaves once its ``IRLbl`` (clones counted) falls to
        the input's ``MeanIR``; fewer clones are made when every label has
        left. ``"minority"`` clones every member of every minority bag once
        per minority label it carries (as many rows as :class:`MLSMOTE` adds
        with ``"minority"``).
    random_state : int, RandomState instance or None, default=None
        Draws the clones (a float ``sampling_strategy``; ``"minority"`` draws nothing).

    Attributes
    ----------
    sample_indices_ : ndarray of shape (n_samples + n_new,)
        The input row of each output row: ``0..n_samples-1`` then the cloned rows.
    irlbl_ : ndarray of shape (n_labels,)
        ``IRLbl`` of each label in the input (NaN for a label without a positive).
    mean_ir_ : float
        ``MeanIR`` of the input.
    minority_labels_ : ndarray of int
        Columns with ``IRLbl > MeanIR``.
    label_names_ : ndarray
        The columns of ``y`` when it was a DataFrame, else ``0..n_labels-1``.
    n_features_in_, feature_names_in_
        When ``X`` is 2-D (a feature matrix or DataFrame).

    Notes
    -----
    ``X`` is only indexed, never computed on: a feature matrix, a DataFrame, a
    sparse matrix, an image stack ``(n, H, W)`` or an array of image paths
    (over-sampling before feature extraction) all work. Use
    :class:`skcxr.sampling.Pipeline` so that patient ids passed to later steps
    follow the clones.

    Examples
    --------
    >>> import numpy as np
    >>> from skcxr.sampling import MLROS, mean_ir
    >>> X = np.arange(20, dtype=float).reshape(10, 2)
    >>> Y = np.array([[1, 0]] * 8 + [[1, 1]] * 2)
    >>> ros = MLROS(sampling_strategy=0.3, random_state=0)
    >>> X_res, Y_res = ros.fit_resample(X, Y)
    >>> ros.irlbl_.tolist(), ros.mean_ir_
    ([1.0, 5.0], 3.0)
    >>> X_res.shape, Y_res.sum(axis=0).tolist(), ros.sample_indices_[10:].tolist()
    ((12, 2), [12, 4], [8, 9])

    Three clones were asked for; two were made, as label 1's ``IRLbl`` fell to ``MeanIR``.
    >>> bool(mean_ir(Y_res) < mean_ir(Y))
    True
    """

    def __init__(self, *, sampling_strategy=0.25, random_state=None):
        self.sampling_strategy = sampling_strategy
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.allow_nan = True
        return tags

    def _check_X(self, X):
        if isinstance(X, (str, bytes)) or not (hasattr(X, "__len__") or hasattr(X, "shape")):
            raise ValueError(
                f"X must hold one row per sample (an array, DataFrame, list, ...), got {type(X).__name__}.")
        if getattr(X, "ndim", np.ndim(X) if isinstance(X, list) else 0) == 2:
            validate_data(self, X, reset=True, skip_check_array=True)  # n_features_in_, feature_names_in_
        else:
            for name in ("n_features_in_", "feature_names_in_"):
                self.__dict__.pop(name, None)
        return X

    def _fit_resample(self, X, Y, rng):
        bags = self._bags(Y)
        if isinstance(self.sampling_strategy, str):  # "minority"
            clones = np.concatenate([np.zeros(0, dtype=np.intp), *bags.values()]).astype(np.intp)
        else:
            clones = np.asarray(
                self._rotation(Y, bags, rng, lambda j, pos: (bags[j][pos], Y[bags[j][pos]])), dtype=np.intp)
        indices = np.concatenate([np.arange(len(Y)), clones])
        X_res = _safe_indexing(X, indices)
        if isinstance(X_res, (pd.DataFrame, pd.Series)):
            X_res = X_res.reset_index(drop=True)
        return X_res, Y[clones], indices


class MLSMOTE(_MultilabelOverSampler):
    """Multi-label SMOTE: synthetic samples between a minority-label sample and a neighbour.

    For a minority label (``IRLbl > MeanIR``, see :mod:`skcxr.sampling`), a
    *seed* sample carrying it gets its ``k_neighbors`` nearest neighbours
    (Euclidean, :class:`sklearn.neighbors.NearestNeighbors`) among the other
    samples carrying that label. A synthetic sample is
    ``x = seed + u * (neighbour - seed)`` with one neighbour drawn at random
    and one ``u ~ U(0, 1)`` per sample, so it lies on the segment between
    them (SMOTE's rule; a convex combination keeps histogram features such as
    LBP summing to one). Its labels come from the seed and its ``k``
    neighbours (``label_generation``). The original rows come first, in
    order, then the synthetic ones.

    Parameters
    ----------
    sampling_strategy : "minority" or float > 0, default="minority"
        ``"minority"`` (the paper): every sample of every minority bag seeds
        one synthetic sample, once per minority label it carries. A float
        ``f`` adds ``round(f * n_samples)`` synthetic samples with seeds drawn
        in turns from the minority bags, as :class:`MLROS` draws its clones
        (a label leaves once its ``IRLbl``, synthetic rows counted, falls to
        the input's ``MeanIR``).
    k_neighbors : int, default=5
        Neighbours of each seed, among the samples carrying the label (the
        paper's k = 5). Every minority label needs ``k_neighbors + 1``
        samples.
    label_generation : {"ranking", "union", "intersection"}, default="ranking"
        Labels of a synthetic sample, counted over the seed and its
        ``k_neighbors`` neighbours: ``"ranking"`` keeps the labels carried by
        more than half of these ``k + 1`` samples (the paper's choice),
        ``"union"`` those carried by any, ``"intersection"`` those carried by
        all. The minority label being over-sampled is always kept.
    random_state : int, RandomState instance or None, default=None
        Draws seeds, neighbours and positions on the segments.

    Attributes
    ----------
    sample_indices_ : ndarray of shape (n_samples + n_new,)
        The input row of each output row: ``0..n_samples-1``, then the seed
        of each synthetic row (whose patient id it takes in :class:`Pipeline`).
    neighbor_indices_ : ndarray of shape (n_new,)
        The input row each synthetic row was drawn towards.
    irlbl_, mean_ir_, minority_labels_, label_names_
        As in :class:`MLROS`.
    n_features_in_, feature_names_in_
        Of ``X``.

    Notes
    -----
    The paper's pseudo-code can be read as drawing ``u`` per feature, which
    puts the sample in the box spanned by seed and neighbour; this
    implementation draws one ``u`` per sample. ``X`` must be a dense numeric
    feature matrix (standardise it first: the neighbours are Euclidean).

    Examples
    --------
    >>> import numpy as np
    >>> from skcxr.sampling import MLSMOTE
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 3))
    >>> Y = np.zeros((40, 3), dtype=int)
    >>> Y[:, 0] = 1
    >>> Y[:30, 1] = 1
    >>> Y[:6, 2] = 1                                    # rare: IRLbl 40/6 > MeanIR
    >>> smote = MLSMOTE(k_neighbors=3, random_state=0)
    >>> X_res, Y_res = smote.fit_resample(X, Y)
    >>> smote.minority_labels_.tolist(), X_res.shape, Y_res.sum(axis=0).tolist()
    ([2], (46, 3), [46, 36, 12])
    >>> smote.sample_indices_[40:].tolist()             # the seeds of the 6 synthetic rows
    [0, 1, 2, 3, 4, 5]
    """

    def __init__(self, *, sampling_strategy="minority", k_neighbors=5, label_generation="ranking",
                 random_state=None):
        self.sampling_strategy = sampling_strategy
        self.k_neighbors = k_neighbors
        self.label_generation = label_generation
        self.random_state = random_state

    _parameter_constraints = {
        **_MultilabelOverSampler._parameter_constraints,
        "k_neighbors": [Interval(Integral, 1, None, closed="left")],
        "label_generation": [StrOptions({"ranking", "union", "intersection"})],
    }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags

    def _check_X(self, X):
        return validate_data(self, X, reset=True, dtype=[np.float64, np.float32], accept_sparse=False)

    def _neighbours(self, X, bags) -> dict:
        """The ``k`` nearest neighbours (input rows) of every member of each bag, within the bag."""
        k = self.k_neighbors
        neighbours = {}
        for j, bag in bags.items():
            if len(bag) <= k:
                raise ValueError(
                    f"MLSMOTE: minority label {self._label_name(j)} has {len(bag)} sample(s), but "
                    f"k_neighbors={k} needs at least k_neighbors + 1 = {k + 1} samples carrying each "
                    "minority label. Lower k_neighbors."
                )
            nn = NearestNeighbors(n_neighbors=k).fit(X[bag])
            neighbours[j] = bag[nn.kneighbors(return_distance=False)]  # (len(bag), k); excludes the point itself
        return neighbours

    def _labels(self, Y, seed, nbrs) -> np.ndarray:
        votes = Y[seed].astype(np.intp) + Y[nbrs].sum(axis=0, dtype=np.intp)
        if self.label_generation == "union":
            return (votes > 0).astype(np.uint8)
        if self.label_generation == "intersection":
            return (votes == len(nbrs) + 1).astype(np.uint8)
        return (2 * votes > len(nbrs) + 1).astype(np.uint8)  # ranking: more than half of the k + 1

    def _fit_resample(self, X, Y, rng):
        bags = self._bags(Y)
        neighbours = self._neighbours(X, bags)

        def make_row(j, pos):
            seed, nbrs = bags[j][pos], neighbours[j][pos]
            labels = self._labels(Y, seed, nbrs)
            return (seed, nbrs[rng.randint(len(nbrs))], rng.uniform(), labels), labels

        if isinstance(self.sampling_strategy, str):  # "minority": one per (label, member of its bag)
            records = [make_row(j, pos)[0] for j, bag in bags.items() for pos in range(len(bag))]
        else:
            records = self._rotation(Y, bags, rng, make_row)
        n_labels = Y.shape[1]
        if records:
            seeds, refs, gaps, labels = (np.asarray(v) for v in zip(*records))
            seeds, refs = seeds.astype(np.intp), refs.astype(np.intp)
        else:
            seeds = refs = np.zeros(0, dtype=np.intp)
            gaps, labels = np.zeros(0), np.zeros((0, n_labels), dtype=np.uint8)
        synthetic = X[seeds] + gaps[:, None].astype(X.dtype) * (X[refs] - X[seeds])
        self.neighbor_indices_ = refs
        X_res = np.vstack([X, synthetic.astype(X.dtype, copy=False)])
        if hasattr(self, "feature_names_in_"):
            X_res = pd.DataFrame(X_res, columns=self.feature_names_in_)
        return X_res, labels.reshape(-1, n_labels), np.concatenate([np.arange(len(X)), seeds])


# -- the pipeline ----------------------------------------------------------------------------------


def _is_per_sample(value, n_rows: int) -> bool:
    """An array-like with one entry per row of X (the rule by which cross_validate slices params)."""
    if value is None or isinstance(value, (str, bytes, Mapping)):
        return False
    shape = getattr(value, "shape", None)
    if shape is not None:
        return len(shape) >= 1 and shape[0] == n_rows
    return hasattr(value, "__len__") and hasattr(value, "__getitem__") and len(value) == n_rows


class _RowFollowingParams(Bunch):
    """Routed fit parameters whose per-sample entries follow the rows through the samplers fitted so far.

    imbalanced-learn's ``Pipeline._fit`` reads ``routed_params[name]`` when it
    reaches step ``name``, after fitting every step before it; the samplers
    among those steps hold ``sample_indices_`` of this fit by then.
    """

    def __init__(self, routed_params, pipeline, n_rows):
        super().__init__(**routed_params)
        self.__dict__["_pipeline"] = pipeline
        self.__dict__["_n_rows"] = n_rows

    def __getitem__(self, name):
        params = super().__getitem__(name)
        n_rows = self.__dict__["_n_rows"]
        per_sample = {(method, key) for method, values in params.items() for key, value in values.items()
                      if _is_per_sample(value, n_rows)}
        samplers = []
        for step_name, step in self.__dict__["_pipeline"].steps:
            if step_name == name:
                break
            if step is not None and not isinstance(step, str) and hasattr(step, "fit_resample"):
                samplers.append((step_name, step))
        if not per_sample or not samplers:
            return params
        index = np.arange(n_rows)
        for step_name, sampler in samplers:
            indices = getattr(sampler, "sample_indices_", None)
            if indices is None:
                names = sorted({key for _, key in per_sample})
                raise ValueError(
                    f"Step {name!r} receives per-sample fit parameters {names}, but the sampler "
                    f"{step_name!r} ({type(sampler).__name__}) records no sample_indices_, so they cannot "
                    "follow its resampled rows. Use a sampler that records them (skcxr.sampling's, "
                    "RandomOverSampler, RandomUnderSampler, ...) or do not pass them to later steps."
                )
            indices = np.asarray(indices)
            if indices.ndim != 1 or (indices.size and (indices.min() < 0 or indices.max() >= len(index))):
                raise ValueError(f"The sample_indices_ of step {step_name!r} do not index its {len(index)} "
                                 "input rows.")
            index = index[indices]
        return Bunch(**{
            method: Bunch(**{key: _safe_indexing(value, index) if (method, key) in per_sample else value
                             for key, value in values.items()})
            for method, values in params.items()
        })


class Pipeline(imblearn.pipeline.Pipeline):
    """imbalanced-learn's Pipeline in which per-sample fit parameters (patient ids) follow the resampled rows.

    The same class as :class:`imblearn.pipeline.Pipeline` (samplers act in
    ``fit`` only; ``predict``, ``predict_proba`` and ``transform`` skip them),
    with one change: a fit parameter that holds one entry per row of ``X``
    (``groups``, ``sample_weight``, ...) is re-indexed through the
    ``sample_indices_`` of every sampler before the step that receives it, so
    it describes the rows that reach that step. Copies of a patient's image,
    and synthetic :class:`MLSMOTE` rows seeded by it, keep that patient's id,
    and a patient-disjoint inner validation split stays patient-disjoint.
    With imbalanced-learn's Pipeline the ids would arrive unresampled (skcxr's
    nets refuse them: one id per row is required). A per-sample parameter
    meant for a step after a sampler without ``sample_indices_`` (e.g.
    imbalanced-learn's SMOTE) raises ``ValueError``.

    Parameters are passed as in any Pipeline: ``fit(X, Y, clf__groups=ids)``
    with scikit-learn's metadata routing off
    (:func:`skcxr.model_selection.groups_params` builds the names), or
    ``fit(X, Y, groups=ids)`` with routing on (skcxr's nets request
    ``groups``).

    Parameters
    ----------
    steps, transform_input, memory, verbose
        As in :class:`imblearn.pipeline.Pipeline`.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_multilabel_classification
    >>> from skcxr.neural import MultilabelNeuralNetClassifier
    >>> from skcxr.sampling import MLROS, Pipeline
    >>> X, Y = make_multilabel_classification(120, n_features=8, n_classes=4, random_state=0)
    >>> patients = np.arange(120) // 3
    >>> pipe = Pipeline([("ros", MLROS(random_state=0)),
    ...                  ("clf", MultilabelNeuralNetClassifier(max_epochs=2, random_state=0))])
    >>> pipe = pipe.fit(X.astype(np.float32), Y, clf__groups=patients)
    >>> len(pipe["ros"].sample_indices_), pipe.predict_proba(X[:5].astype(np.float32)).shape
    (136, (5, 4))
    """

    def _fit(self, X, y=None, routed_params=None, raw_params=None):
        if routed_params is None:
            return super()._fit(X, y, routed_params, raw_params=raw_params)
        following = _RowFollowingParams(routed_params, self, _n_rows(X))
        Xt, yt = super()._fit(X, y, following, raw_params=raw_params)
        last = self.steps[-1][0] if self.steps else None
        if last is not None and last in routed_params:  # read by fit/fit_transform/... after _fit
            routed_params[last] = following[last]
        return Xt, yt


def make_pipeline(*steps, memory=None, transform_input=None, verbose=False) -> Pipeline:
    """:class:`Pipeline` from estimators, named as :func:`imblearn.pipeline.make_pipeline` names them.

    Examples
    --------
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skcxr.sampling import MLROS, make_pipeline
    >>> [name for name, _ in make_pipeline(StandardScaler(), MLROS()).steps]
    ['standardscaler', 'mlros']
    """
    named = imblearn.pipeline.make_pipeline(*steps, memory=memory, transform_input=transform_input,
                                            verbose=verbose)
    return Pipeline(named.steps, memory=memory, transform_input=transform_input, verbose=verbose)
