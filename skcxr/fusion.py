"""Attention fusion: lung masks and Grad-CAM maps, fused and pooled into features.

Three transformers chain in a ``Pipeline`` after the preprocessor:

- :class:`AttentionMaps` stacks, for each image, the lung probability map of a
  prefit U-Net (it never sees disease labels) and the Grad-CAM map of a
  network it fits on the disease labels: ``(n, 2, S, S)`` in [0, 1];
- :class:`AttentionFusion` blends them, ``F = lam * U + (1 - lam) * G``,
  smoothed: ``(n, S, S)`` in [0, 1];
- :class:`MapPooler` averages maps over a coarse grid: ``(n, size * size)``
  features with names.

:class:`AttentionFusion` and :class:`MapPooler` are stateless, so a grid over
``lam`` or ``size`` refits nothing upstream when the heavy steps cache their
work (``memory=`` of the segmenter and of the CAM).
"""

from __future__ import annotations

import os
from numbers import Integral, Real

import numpy as np
from scipy import ndimage
from skimage.transform import resize
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import check_is_fitted

from ._validation import NumberInterval, image_stack_tags

__all__ = ["AttentionMaps", "AttentionFusion", "MapPooler", "attention_steps"]

# How far outside [0, 1] AttentionFusion lets a map stray: float32 rounding of a resized map, clipped after fusion.
_ROUNDING = 1e-5


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
        None: ``skcxr.explain.GradCAM()``; else a transformer fitted with ``fit(X, y, groups=groups)`` whose
        ``transform(X)`` gives one map per image, ``(n, h, w)`` in [0, 1]
        (:class:`skcxr.explain.GradCAM` with ``target="predicted"``).

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
    >>> from skcxr.fusion import AttentionMaps
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
        from .segmentation import frozen_segmenter  # torch: imported on first use

        self.segmenter_ = frozen_segmenter(self.segmenter, owner=type(self).__name__)
        if self.cam is None:
            from .explain import GradCAM

            self.cam_ = GradCAM()
        else:
            self.cam_ = clone(self.cam)
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
        lungs = np.asarray(self.segmenter_.transform(X), dtype=np.float32)
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


class _StatelessMaps(TransformerMixin, BaseEstimator):
    """Tags shared by the stateless map transformers.

    Their ``transform`` needs no ``fit``, so both check the parameters (``self._validate_params()``).
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


class AttentionFusion(_StatelessMaps):
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
    >>> from skcxr.fusion import AttentionFusion
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
        X = _check_maps(X, "AttentionFusion")
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


class MapPooler(_StatelessMaps):
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
    >>> from skcxr.fusion import MapPooler
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
        X = _check_maps(X, "MapPooler")
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


def _check_maps(X, owner):
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


def attention_steps(model):
    """The fitted ``(preprocessor, AttentionMaps, AttentionFusion)`` of an attention pipeline.

    Looks through a fitted :class:`~sklearn.pipeline.Pipeline` (inside a
    search's ``best_estimator_``) and its ``FeatureUnion`` members, as
    :func:`skcxr.pipelines.make_attention_pipeline` builds them; the
    preprocessor is the pipeline's first step. With them, the maps of new
    images are ``maps.transform(prep.transform(X))`` (``[:, 0]`` the lung
    map, ``[:, 1]`` the CAM) and ``fusion.transform`` of those.

    Raises
    ------
    ValueError
        If ``model`` is not a pipeline holding both an ``AttentionMaps`` and
        an ``AttentionFusion`` step.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> attention_steps(make_pipeline(StandardScaler(), LogisticRegression()))
    Traceback (most recent call last):
    ...
    ValueError: not an attention pipeline (make_attention_pipeline): it has no AttentionMaps and AttentionFusion steps
    """
    from sklearn.pipeline import FeatureUnion, Pipeline

    model = getattr(model, "best_estimator_", model)
    found = {}

    def walk(est):
        if isinstance(est, Pipeline):
            for _, step in est.steps:
                walk(step)
        elif isinstance(est, FeatureUnion):
            for _, part in est.transformer_list:
                walk(part)
        elif isinstance(est, (AttentionMaps, AttentionFusion)):
            found.setdefault(type(est).__name__, est)

    walk(model)
    if not isinstance(model, Pipeline) or len(found) < 2:
        raise ValueError("not an attention pipeline (make_attention_pipeline): it has no AttentionMaps and "
                         "AttentionFusion steps")
    return model.steps[0][1], found["AttentionMaps"], found["AttentionFusion"]
