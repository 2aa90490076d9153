"""Localisation: pointing game and IoU of saliency maps against target masks or NIH boxes."""

from __future__ import annotations

import numbers

import numpy as np

# Localisation: does a saliency map point at the finding? Maps are (n, H, W) arrays, any range; targets are
# boolean masks (n, H, W) or one box (x, y, w, h) per map, in the map's pixels.


def boxes_to_masks(boxes, shape, scale=1.0) -> np.ndarray:
    """Boolean masks of boxes given as ``(x, y, w, h)`` in pixels, NIH's ``BBox_List_2017.csv`` convention.

    Pixel ``(row, col)`` covers ``[col, col + 1) x [row, row + 1)``; it belongs to a
    box when its centre ``(col + 0.5, row + 0.5)`` lies in ``[x, x + w) x [y, y + h)``
    after scaling. Boxes are clipped to the image; a box less than a pixel wide
    may contain no pixel centre (NIH's smallest boxes, about 27 x 22 px at 1024,
    keep at least one pixel down to 64 px).

    Parameters
    ----------
    boxes : array-like of shape (k, 4)
        ``x, y`` of the top-left corner, width and height.
    shape : tuple of two ints
        ``(H, W)`` of the masks.
    scale : float, default=1.0
        Multiplies every coordinate first, e.g. ``224 / 1024`` for NIH boxes on
        images resized from 1024 to 224 px.

    Returns
    -------
    masks : ndarray of shape (k, H, W), dtype bool

    Examples
    --------
    >>> from skcxr.metrics import boxes_to_masks
    >>> boxes_to_masks([[1, 0, 2, 1]], (2, 4)).astype(int)
    array([[[0, 1, 1, 0],
            [0, 0, 0, 0]]])
    >>> int(boxes_to_masks([[512, 0, 512, 1024]], (4, 4), scale=4 / 1024).sum())  # the right half
    8
    """
    boxes = np.asarray(boxes, dtype=float)
    if boxes.ndim != 2 or boxes.shape[1] != 4 or not np.isfinite(boxes).all():
        raise ValueError(f"boxes must be a finite array of shape (k, 4) (x, y, w, h), got shape {boxes.shape}.")
    if (boxes[:, 2:] < 0).any():
        raise ValueError("boxes must have widths and heights >= 0.")
    H, W = shape
    x, y, w, h = (boxes * scale).T
    cols, rows = np.arange(W) + 0.5, np.arange(H) + 0.5
    in_cols = (cols >= x[:, None]) & (cols < (x + w)[:, None])
    in_rows = (rows >= y[:, None]) & (rows < (y + h)[:, None])
    return in_rows[:, :, None] & in_cols[:, None, :]


def _check_localisation(maps, targets):
    """maps as float (n, H, W) and targets as bool masks of the same shape (boxes are rasterised)."""
    maps = np.asarray(maps, dtype=float)
    if maps.ndim != 3 or len(maps) == 0:
        raise ValueError(f"maps must be a non-empty stack of 2-D maps (n, H, W), got shape {maps.shape}.")
    if not np.isfinite(maps).all():
        raise ValueError("maps contain NaN or infinity.")
    targets = np.asarray(targets)
    if targets.shape == (len(maps), 4):
        return maps, boxes_to_masks(targets, maps.shape[1:])
    if targets.shape != maps.shape:
        raise ValueError(
            f"targets must be boolean masks of the maps' shape {maps.shape} or one box (x, y, w, h) per "
            f"map, shape ({len(maps)}, 4); got shape {targets.shape}."
        )
    return maps, targets.astype(bool)


def pointing_game(maps, targets, tolerance=0, return_hits=False):
    """Share of maps whose maximum lies on the target (the pointing game of Zhang et al. 2016).

    A map scores a hit when its peak pixel (``argmax``, the first one in
    row-major order on ties) lies inside the target, or within ``tolerance``
    pixels of it (distance between pixel centres). A constant map (all zeros,
    say) points nowhere and is a miss, as is an empty target.

    Parameters
    ----------
    maps : array-like of shape (n, H, W)
        Saliency maps (Grad-CAM, fused maps), any range.
    targets : array-like of bool, shape (n, H, W), or of shape (n, 4)
        Target masks, or one box ``(x, y, w, h)`` per map in the map's pixels
        (see :func:`boxes_to_masks` to scale NIH boxes first).
    tolerance : float, default=0
        Slack in pixels of the maps. Zhang et al. used 15 px at the images'
        original resolution: scale it as the boxes, ``15 * 224 / 1024`` (about
        3.3 px) on 224 px maps of 1024 px radiographs.
    return_hits : bool, default=False
        Also return the hit of each map.

    Returns
    -------
    hit_rate : float
    hits : ndarray of shape (n,), dtype bool
        Only with ``return_hits=True``.

    Examples
    --------
    >>> import numpy as np
    >>> from skcxr.metrics import pointing_game
    >>> maps = np.zeros((2, 8, 8))
    >>> maps[0, 2, 2] = maps[1, 6, 6] = 1                     # peaks at (2, 2) and (6, 6)
    >>> boxes = [[1, 1, 3, 3], [1, 1, 3, 3]]                  # both targets cover rows and columns 1-3
    >>> pointing_game(maps, boxes, return_hits=True)
    (0.5, array([ True, False]))
    >>> pointing_game(maps, boxes, tolerance=3)               # (6, 6) is 3 * sqrt(2) = 4.2 px from (3, 3)
    0.5
    """
    maps, targets = _check_localisation(maps, targets)
    if not (isinstance(tolerance, numbers.Real) and np.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(f"tolerance must be a number of pixels >= 0, got {tolerance!r}.")
    n, H, W = maps.shape
    flat = maps.reshape(n, -1)
    peaks = np.stack(np.unravel_index(flat.argmax(axis=1), (H, W)), axis=1)
    hits = np.zeros(n, dtype=bool)
    for k, (peak, target) in enumerate(zip(peaks, targets)):
        if flat[k].max() > flat[k].min() and target.any():
            hits[k] = np.hypot(*(np.argwhere(target) - peak).T).min() <= tolerance
    rate = float(hits.mean())
    return (rate, hits) if return_hits else rate


def map_iou(maps, targets, threshold=0.5) -> np.ndarray:
    """Intersection over union of each thresholded map (``map >= threshold``) with its target.

    Parameters
    ----------
    maps : array-like of shape (n, H, W)
        Maps, e.g. in [0, 1].
    targets : array-like of bool, shape (n, H, W), or of shape (n, 4)
        Target masks, or one box ``(x, y, w, h)`` per map in the map's pixels.
    threshold : float, default=0.5
        A pixel is on the map's region when ``map >= threshold``.

    Returns
    -------
    iou : ndarray of shape (n,), float
        NaN where both the region and the target are empty (the union is
        empty); ``np.nanmean(iou)`` is the mean over the others.

    Examples
    --------
    >>> import numpy as np
    >>> from skcxr.metrics import map_iou
    >>> maps = np.zeros((2, 4, 4))
    >>> maps[0, :2] = 1                                       # top half
    >>> iou = map_iou(maps, [[0, 0, 4, 1], [0, 0, 0, 0]])    # top row; an empty box
    >>> iou
    array([0.5, nan])
    >>> float(np.nanmean(iou))
    0.5
    """
    maps, targets = _check_localisation(maps, targets)
    region = maps >= threshold
    inter = (region & targets).sum(axis=(1, 2))
    union = (region | targets).sum(axis=(1, 2))
    return np.divide(inter, union, out=np.full(len(maps), np.nan), where=union > 0)
