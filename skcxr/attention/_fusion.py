"""The blend of lung maps and CAMs, ``F = lam * U + (1 - lam) * G``, smoothed: :class:`AttentionFusion`."""

from __future__ import annotations

from numbers import Real

import numpy as np
from scipy import ndimage
from sklearn.utils._param_validation import Interval

from .._validation import NumberInterval
from ._base import StatelessMaps, check_maps

__all__ = ["AttentionFusion"]

# How far outside [0, 1] AttentionFusion lets a map stray: float32 rounding of a resized map, clipped after fusion.
_ROUNDING = 1e-5


class AttentionFusion(StatelessMaps):
    """Blend lung maps and CAMs, ``F = lam * U + (1 - lam) * G``, then smooth.

    Takes the ``(n, 2, S, S)`` stacks of :class:`AttentionMaps` (channel 0 the
    lung map ``U``, channel 1 the CAM ``G``), both in [0, 1], and returns the
    fused maps, Gaussian-smoothed within each image and clipped to [0, 1].
    Stateless: ``fit`` only checks the parameters and the maps.

    Parameters
    ----------
    lam : float in [0, 1], default=0.5
        Weight of the lung map: 1 keeps the U-Net map only, 0 the CAM only (a
        number: booleans are refused).
    smooth_sigma : float >= 0 or None, default=2.0
        Standard deviation, in pixels, of the Gaussian smoothing
        (:func:`scipy.ndimage.gaussian_filter`, edges reflected); None or 0
        does not smooth.

    Examples
    --------
    >>> import numpy as np
    >>> from skcxr.attention import AttentionFusion
    >>> maps = np.zeros((1, 2, 8, 8), dtype=np.float32)
    >>> maps[0, 0, :, :4] = 1                                 # lung map: left half
    >>> maps[0, 1, :4] = 1                                    # CAM: top half
    >>> fused = AttentionFusion(lam=0.5, smooth_sigma=None).transform(maps)
    >>> fused.shape, float(fused[0, 0, 0]), float(fused[0, 0, 7]), float(fused[0, 7, 7])
    ((1, 8, 8), 1.0, 0.5, 0.0)
    """

    _parameter_constraints = {
        "lam": [NumberInterval(Real, 0, 1, closed="both")],
        "smooth_sigma": [Interval(Real, 0, None, closed="left"), None],
    }

    def __init__(self, lam=0.5, smooth_sigma=2.0):
        self.lam = lam
        self.smooth_sigma = smooth_sigma

    def fit(self, X, y=None):
        """Check the parameters and the input (nothing is learned).

        Parameters
        ----------
        X : array-like of shape (n, 2, S, S)
            Lung maps and CAMs, in [0, 1].
        y : ignored

        Returns
        -------
        self
        """
        self._validate_params()
        self._check_stacks(X)
        return self

    def transform(self, X):
        """Fused maps.

        Parameters
        ----------
        X : array-like of shape (n, 2, S, S)
            Lung maps and CAMs, in [0, 1].

        Returns
        -------
        fused : ndarray of shape (n, S, S), dtype float32, in [0, 1]
        """
        self._validate_params()
        X = self._check_stacks(X)
        lam = np.float32(self.lam)
        fused = lam * X[:, 0] + (np.float32(1) - lam) * X[:, 1]
        if self.smooth_sigma:
            fused = ndimage.gaussian_filter(fused, sigma=(0, self.smooth_sigma, self.smooth_sigma))
        return np.clip(fused, 0, 1, out=fused)

    @staticmethod
    def _check_stacks(X):
        X = check_maps(X, "AttentionFusion")
        if X.ndim != 4 or X.shape[1] != 2:
            raise ValueError(
                f"AttentionFusion expects stacks of shape (n, 2, S, S) (lung map, Grad-CAM), as AttentionMaps "
                f"gives; got shape {X.shape}."
            )
        low, high = float(X.min()), float(X.max())
        if low < -_ROUNDING or high > 1 + _ROUNDING:
            raise ValueError(
                f"AttentionFusion expects maps in [0, 1] (lung probabilities, normalised Grad-CAMs); got values "
                f"in [{low:g}, {high:g}]. Scale them first (8-bit maps: divide by 255)."
            )
        return X
