"""MLROS: multi-label random over-sampling, cloning samples that carry a minority label."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import validate_data

from ._base import _MultilabelOverSampler


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
