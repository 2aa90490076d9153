"""MLSMOTE: multi-label SMOTE, synthetic samples between a minority-label sample and a neighbour."""

from __future__ import annotations

from numbers import Integral

import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import validate_data

from ._base import _MultilabelOverSampler


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
