"""The lung map of a prefit U-Net and the Grad-CAM map of each image, stacked: :class:`AttentionMaps`."""

from __future__ import annotations

import os

import numpy as np
from skimage.transform import resize
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.validation import check_is_fitted

from .._validation import image_stack_tags
from ..segmentation import frozen_segmenter
from ._gradcam import GradCAM

__all__ = ["AttentionMaps"]


class AttentionMaps(TransformerMixin, BaseEstimator):
    """Stack a prefit U-Net's lung map and a Grad-CAM map per image: ``(n, 2, S, S)``.

    Channel 0 is the segmenter's lung probability map ``U``, channel 1 the CAM's
    map ``G`` (resized, bilinear, to the lung map's size when they differ). The
    segmenter is prefit on lung masks and never trained here; the CAM is cloned
    and fitted on the disease labels (with the patient ids, for its inner
    validation split).

    Parameters
    ----------
    segmenter : None, fitted estimator, FrozenEstimator, str or os.PathLike, default=None
        None: the lung U-Net that ships with skcxr
        (:func:`skcxr.segmentation.load_lung_unet`); else a fitted estimator whose ``transform(X)`` gives ``(n, S, S)`` maps in
        [0, 1] (a fitted :class:`skcxr.segmentation.UNetSegmenter`), that
        estimator wrapped in :class:`sklearn.frozen.FrozenEstimator`, or the path
        of a weights file for ``UNetSegmenter.load``. Pass
        ``FrozenEstimator(segmenter)`` or a path when the pipeline will be cloned
        (``GridSearchCV``, ``cross_validate``, ``holdout_report``): ``clone`` of a
        raw fitted estimator drops its fit.
    cam : None or estimator, default=None
        None: ``skcxr.attention.GradCAM()``; else a transformer fitted with ``fit(X, y, groups=groups)`` whose
        ``transform(X)`` gives one map per image, ``(n, h, w)`` in [0, 1]
        (:class:`skcxr.attention.GradCAM` with ``target="predicted"``).

    Attributes
    ----------
    segmenter_ : FrozenEstimator
        The segmenter, frozen (loaded from the file for a path).
    cam_ : estimator
        The fitted clone of ``cam``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.base import BaseEstimator, TransformerMixin
    >>> from sklearn.frozen import FrozenEstimator
    >>> from skcxr.attention import AttentionMaps
    >>> class Dark(TransformerMixin, BaseEstimator):  # stand-in segmenter: dark pixels are lung
    ...     def fit(self, X, y=None):
    ...         self.fitted_ = True
    ...         return self
    ...     def transform(self, X):
    ...         return (np.asarray(X) < 0).astype(np.float32)
    >>> class Bright(Dark):  # stand-in CAM: a 4x4 map of bright regions
    ...     def fit(self, X, y, groups=None):
    ...         return super().fit(X)
    ...     def transform(self, X):
    ...         return (np.asarray(X)[:, ::8, ::8] > 0.5).astype(np.float32)
    >>> X = np.random.default_rng(0).uniform(-1, 1, (3, 32, 32)).astype(np.float32)
    >>> Y = np.array([[1, 0], [0, 1], [1, 1]])
    >>> maps = AttentionMaps(FrozenEstimator(Dark().fit(X)), Bright()).fit(X, Y).transform(X)
    >>> maps.shape, maps.dtype
    ((3, 2, 32, 32), dtype('float32'))
    """

    __metadata_request__fit = {"groups": True}

    _parameter_constraints = {
        "segmenter": [None, HasMethods(["transform"]), str, os.PathLike],
        "cam": [None, HasMethods(["fit", "transform"])],
    }

    def __init__(self, segmenter=None, cam=None):
        self.segmenter = segmenter
        self.cam = cam

    def __sklearn_tags__(self):
        return image_stack_tags(super().__sklearn_tags__(), target_required=True)

    def fit(self, X, y, groups=None):
        """Freeze the segmenter and fit a clone of the CAM on the disease labels.

        Parameters
        ----------
        X : array-like of shape (n, S, S)
            Preprocessed images (or what the segmenter and CAM accept).
        y : array-like of shape (n, L)
            0/1 disease labels, for the CAM.
        groups : array-like of shape (n,), default=None
            Patient ids, passed to the CAM's ``fit``.

        Returns
        -------
        self
        """
        self._fit_cam(X, y, groups, transform=False)
        return self

    def fit_transform(self, X, y, groups=None):
        """Fit, then the maps of X; the CAM's own ``fit_transform`` gives its maps (cross-fitted with ``cv``).

        Parameters
        ----------
        X, y, groups
            As in :meth:`fit`.

        Returns
        -------
        maps : ndarray of shape (n, 2, S, S), dtype float32
        """
        return self._stack(self._fit_cam(X, y, groups, transform=True), X)

    def _fit_cam(self, X, y, groups, transform):
        """Freeze the segmenter, fit a clone of the CAM; its training maps when ``transform``."""
        self._validate_params()
        self.segmenter_ = frozen_segmenter(self.segmenter, owner=type(self).__name__)
        self.cam_ = GradCAM() if self.cam is None else clone(self.cam)
        if transform:
            return self.cam_.fit_transform(X, y, groups=groups)
        self.cam_.fit(X, y, groups=groups)
        return None

    def transform(self, X):
        """Lung map and CAM of each image.

        Parameters
        ----------
        X : array-like of shape (n, S, S)
            Preprocessed images.

        Returns
        -------
        maps : ndarray of shape (n, 2, S, S), dtype float32
            ``maps[:, 0]`` the lung maps, ``maps[:, 1]`` the CAMs at the lung maps' size.
        """
        check_is_fitted(self)
        return self._stack(self.cam_.transform(X), X)

    def _stack(self, cams, X):
        return stack_maps(self.segmenter_.transform(X), cams)


def stack_maps(lungs, cams):
    """Lung maps and CAMs as float32 stacks ``(n, 2, S, S)``, the CAMs resized (bilinear) to the lung maps' size."""
    lungs = np.asarray(lungs, dtype=np.float32)
    cams = np.asarray(cams, dtype=np.float32)
    if lungs.ndim != 3:
        raise ValueError(f"AttentionMaps: the segmenter gave maps of shape {lungs.shape}; expected (n, S, S).")
    if cams.ndim != 3 or len(cams) != len(lungs):
        raise ValueError(
            f"AttentionMaps: the CAM gave maps of shape {cams.shape}; expected one map per image, "
            f"({len(lungs)}, h, w) (GradCAM with target='predicted' or one label, not 'all')."
        )
    if cams.shape[1:] != lungs.shape[1:]:
        cams = resize(cams, lungs.shape, order=1, preserve_range=True).astype(np.float32)
    return np.stack([lungs, cams], axis=1)
