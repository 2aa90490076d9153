"""What the stateless map transformers share: their tags and the check of their input maps."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


class StatelessMaps(TransformerMixin, BaseEstimator):
    """Tags shared by the stateless map transformers.

    Their ``transform`` needs no ``fit``, so both check the parameters (``self._validate_params()``).
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


def check_maps(X, owner):
    """A finite numeric array as float32, with at least one map."""
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{owner} expects a numeric array of maps, got dtype={X.dtype}.")
    if X.ndim < 3 or X.shape[0] == 0:
        raise ValueError(f"{owner} expects a non-empty stack of maps, got shape {X.shape}.")
    X = X.astype(np.float32, copy=False)
    if not np.isfinite(X).all():
        raise ValueError(f"{owner}: the maps contain NaN or infinity.")
    return X
