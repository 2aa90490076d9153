"""Maps averaged over a coarse grid of areas, features for a classifier: :class:`MapPooler`."""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from ._base import StatelessMaps, check_maps

__all__ = ["MapPooler"]


class MapPooler(StatelessMaps):
    """Average maps over a ``size x size`` grid of areas: features for a classifier.

    Adaptive average pooling (as :func:`torch.nn.functional.adaptive_avg_pool2d`):
    output cell ``(i, j)`` averages rows ``floor(i * H / size)`` to
    ``ceil((i + 1) * H / size) - 1`` and the same columns, so ``H`` and ``W``
    need not be multiples of ``size``. Stateless: ``fit`` records the number of
    channels, for the feature names.

    Parameters
    ----------
    size : int, default=8
        Cells along each side.

    Attributes
    ----------
    n_channels_ : int
        Maps per image seen in ``fit``: 1 for ``(n, H, W)``, ``C`` for ``(n, C, H, W)``.

    Examples
    --------
    >>> import numpy as np
    >>> from skcxr.attention import MapPooler
    >>> maps = np.zeros((2, 10, 10), dtype=np.float32)
    >>> maps[:, :5, :5] = 1                                   # top-left quarter
    >>> pooler = MapPooler(size=2).fit(maps)
    >>> pooler.transform(maps)[0].tolist()
    [1.0, 0.0, 0.0, 0.0]
    >>> pooler.get_feature_names_out().tolist()
    ['map_r0_c0', 'map_r0_c1', 'map_r1_c0', 'map_r1_c1']
    """

    _parameter_constraints = {"size": [Interval(Integral, 1, None, closed="left")]}

    def __init__(self, size=8):
        self.size = size

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags

    def fit(self, X, y=None):
        """Record the number of maps per image.

        Parameters
        ----------
        X : array-like of shape (n, H, W) or (n, C, H, W)
            Maps.
        y : ignored

        Returns
        -------
        self
        """
        self._validate_params()
        self.n_channels_ = self._as_4d(X).shape[1]
        return self

    def transform(self, X):
        """Pooled maps.

        Parameters
        ----------
        X : array-like of shape (n, H, W) or (n, C, H, W)
            Maps (with the ``C`` seen in ``fit``, when fitted).

        Returns
        -------
        features : ndarray of shape (n, C * size * size), dtype float32
            Channel-major, then rows, then columns.
        """
        self._validate_params()
        X = self._as_4d(X)
        n_channels = getattr(self, "n_channels_", X.shape[1])
        if X.shape[1] != n_channels:
            raise ValueError(f"MapPooler was fitted on {n_channels} map(s) per image, got {X.shape[1]}.")
        n, C, H, W = X.shape
        # Average over rows, then over columns: one matrix product on each side.
        pooled = _pooling_matrix(H, self.size) @ X @ _pooling_matrix(W, self.size).T
        return pooled.reshape(n, -1)

    def get_feature_names_out(self, input_features=None):
        """Names ``map_r{i}_c{j}``, with a ``ch{k}_`` prefix when there are several maps per image.

        Parameters
        ----------
        input_features : ignored

        Returns
        -------
        names : ndarray of str, dtype object
        """
        check_is_fitted(self, "n_channels_")
        cells = [f"map_r{i}_c{j}" for i in range(self.size) for j in range(self.size)]
        if self.n_channels_ == 1:
            return np.asarray(cells, dtype=object)
        return np.asarray([f"ch{k}_{cell}" for k in range(self.n_channels_) for cell in cells], dtype=object)

    @staticmethod
    def _as_4d(X):
        X = check_maps(X, "MapPooler")
        if X.ndim == 3:
            return X[:, None]
        if X.ndim != 4:
            raise ValueError(f"MapPooler expects maps of shape (n, H, W) or (n, C, H, W), got shape {X.shape}.")
        return X


def _pooling_matrix(length, size):
    """float32 (size, length): row ``i`` averages the pixels of adaptive-pooling bin ``i``."""
    i = np.arange(size)[:, None]
    start, end = i * length // size, -(-(i + 1) * length // size)
    pixels = np.arange(length)[None, :]
    return (((pixels >= start) & (pixels < end)) / (end - start)).astype(np.float32)
