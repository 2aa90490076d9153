"""Lung-guided images: :class:`LungRegion` crops (or masks) each radiograph to the lungs a prefit U-Net finds.

Texture outside the lungs (text labels, tubes, collimation borders, the
scanner's own patterns) differs between hospitals and sources and can drive a
classifier trained on a mixture of them. Computing the LBP, HOG or CNN features
on the lung region instead is the report's "attention-guided" idea, as a step
that one ``X`` flows through::

    Pipeline([("prep", CXRPreprocessor()), ("lungs", LungRegion()), ("lbp", LBPFeatures()), ...])
"""

from __future__ import annotations

import os
from numbers import Integral, Real

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import metadata_routing
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions, validate_parameter_constraints
from sklearn.utils.validation import check_is_fitted

from ._validation import NumberInterval, check_image_stack, image_stack_tags
from .segmentation import frozen_segmenter

__all__ = ["LungRegion", "lung_boxes"]


def lung_boxes(maps, *, threshold=0.5, margin=0.05, min_share=0.02) -> np.ndarray:
    """Bounding boxes ``(x, y, w, h)`` in pixels of the lungs in probability maps (n, S, S).

    The box encloses the pixels ``>= threshold`` of the connected regions that
    hold at least ``min_share`` of the image (so a stray speck does not widen
    it), grown by ``margin`` of the side on every edge and clipped to the
    image. A map with no such region gives the whole image.

    Examples
    --------
    >>> import numpy as np
    >>> maps = np.zeros((1, 100, 100), np.float32)
    >>> maps[0, 20:60, 30:80] = 1
    >>> lung_boxes(maps, margin=0.0).tolist()
    [[30, 20, 50, 40]]
    """
    maps = np.asarray(maps)
    n, H, W = maps.shape
    boxes = np.tile(np.array([0, 0, W, H]), (n, 1))
    grow_y, grow_x = round(margin * H), round(margin * W)
    for i, m in enumerate(maps >= threshold):
        labels, k = ndimage.label(m)
        if k == 0:
            continue
        sizes = np.bincount(labels.ravel(), minlength=k + 1)[1:]
        keep = np.isin(labels, 1 + np.flatnonzero(sizes >= min_share * H * W))
        rows, cols = np.flatnonzero(keep.any(1)), np.flatnonzero(keep.any(0))
        if len(rows) == 0:
            continue
        y0, y1 = max(rows[0] - grow_y, 0), min(rows[-1] + 1 + grow_y, H)
        x0, x1 = max(cols[0] - grow_x, 0), min(cols[-1] + 1 + grow_x, W)
        boxes[i] = (x0, y0, x1 - x0, y1 - y0)
    return boxes


def _resize(images, size):
    """Antialiased bilinear resize of a (n, c, h, w) tensor to ``size``, as numpy."""
    return F.interpolate(images, size=size, mode="bilinear", antialias=True, align_corners=False).numpy()


class LungRegion(TransformerMixin, BaseEstimator):
    """Crop each preprocessed radiograph to its lungs (or blank what is not lung).

    A prefit lung segmenter (never trained on the disease labels) finds the
    lungs; then ``mode="crop"`` cuts the image to the lungs' bounding box
    (:func:`lung_boxes`, grown by ``margin``) and resizes it to ``size``
    (antialiased bilinear), and ``mode="mask"`` sets the pixels outside the
    lung mask to the background value -1 (black), then resizes. Features
    computed after it describe the lungs only (``studies/attention.py``
    measures what that is worth).

    Parameters
    ----------
    segmenter : None, fitted estimator, FrozenEstimator, str or os.PathLike, default=None
        None: the lung U-Net that ships with skcxr
        (:func:`skcxr.segmentation.load_lung_unet`); else a fitted
        :class:`~skcxr.segmentation.UNetSegmenter` (wrap it in
        ``FrozenEstimator`` when the pipeline is cloned) or a weights file.
    mode : {"crop", "mask"}, default="crop"
    margin : float, default=0.05
        Share of the side added around the lung box (``"crop"``).
    threshold : float, default=0.5
        Probability above which a pixel is lung.
    size : int, default=None
        Side of the output images; None keeps the input's side.

    Attributes
    ----------
    segmenter_ : FrozenEstimator
        The segmenter in use.

    Examples
    --------
    >>> from skcxr.datasets import make_phantoms
    >>> from skcxr.preprocessing import CXRPreprocessor
    >>> X = CXRPreprocessor(size=128).fit_transform(make_phantoms(2, size=128, random_state=0).images)
    >>> LungRegion().fit(X).transform(X).shape
    (2, 128, 128)
    >>> LungRegion(size=64).fit(X).transform(X).shape
    (2, 64, 64)
    """

    __metadata_request__fit = {"groups": metadata_routing.UNUSED}

    _parameter_constraints = {
        "segmenter": [None, HasMethods(["transform"]), str, os.PathLike],
        "mode": [StrOptions({"crop", "mask"})],
        "margin": [NumberInterval(Real, 0, 0.5, closed="left")],
        "threshold": [Interval(Real, 0, 1, closed="neither")],
        "size": [None, Interval(Integral, 8, None, closed="left")],
    }

    def __init__(self, segmenter=None, mode="crop", margin=0.05, threshold=0.5, size=None):
        self.segmenter = segmenter
        self.mode = mode
        self.margin = margin
        self.threshold = threshold
        self.size = size

    def fit(self, X, y=None, groups=None):
        """Take the prefit segmenter (nothing is trained). ``X``, ``y`` and ``groups`` are ignored."""
        validate_parameter_constraints(self._parameter_constraints, self.get_params(deep=False), type(self).__name__)
        self.segmenter_ = frozen_segmenter(self.segmenter, owner=type(self).__name__)
        return self

    def transform(self, X):
        """The lung regions, float32 (n, size, size) (``X``'s side when ``size`` is None; ``X`` in [-1, 1])."""
        check_is_fitted(self, "segmenter_")
        X = check_image_stack(X)
        maps = self._lung_maps(X)
        S = X.shape[1:] if self.size is None else (self.size, self.size)
        if self.mode == "mask":
            X = np.where(maps >= self.threshold, X, np.float32(-1)).astype(np.float32)
            return X if X.shape[1:] == S else _resize(torch.from_numpy(X)[:, None], S)[:, 0]
        out = np.empty((len(X), *S), np.float32)
        for i, (x, y, w, h) in enumerate(lung_boxes(maps, threshold=self.threshold, margin=self.margin)):
            out[i] = _resize(torch.from_numpy(np.ascontiguousarray(X[i, y : y + h, x : x + w]))[None, None], S)[0, 0]
        return out

    def get_lung_boxes(self, X) -> np.ndarray:
        """The ``(x, y, w, h)`` lung box of each image (pixels of X), as ``"crop"`` uses it."""
        check_is_fitted(self, "segmenter_")
        return lung_boxes(self._lung_maps(check_image_stack(X)), threshold=self.threshold, margin=self.margin)

    def _lung_maps(self, X):
        """The segmenter's maps of X, resized (bilinear) to X's side when they differ."""
        maps = torch.from_numpy(np.asarray(self.segmenter_.transform(X), dtype=np.float32))
        if maps.shape[1:] != X.shape[1:]:
            maps = F.interpolate(maps[:, None], size=X.shape[1:], mode="bilinear", align_corners=False)[:, 0]
        return maps.numpy()

    def __sklearn_tags__(self):
        return image_stack_tags(super().__sklearn_tags__())
