"""What the multi-label over-samplers share: 2-D Y, the imbalance statistics, the rotation of minority bags."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import pandas as pd
import scipy.sparse
from imblearn.base import BaseSampler
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from .._validation import check_multilabel_Y
from ..model_selection._checks import _n_rows
from ._measures import _irlbl, _mean_ir


def _restore_Y(Y_res: np.ndarray, y):
    """``Y_res`` in the container of the ``y`` given (DataFrame, sparse matrix, ndarray)."""
    if isinstance(y, pd.DataFrame):
        return pd.DataFrame(Y_res, columns=y.columns).astype(y.dtypes)
    if scipy.sparse.issparse(y):
        return scipy.sparse.csr_matrix(Y_res)
    return Y_res


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
