"""Maps over radiographs: :func:`overlay`, :func:`attention_panel` and :func:`map_panel`."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from skimage.transform import resize

__all__ = ["attention_panel", "map_panel", "overlay"]


_PANEL_TITLES = ("X-ray", "Grad-CAM", "U-Net lung mask", "Fused map")


def _display_gray(image) -> np.ndarray:
    """A 2-D image as float in [0, 1] for display: its 0.5-99.5 percentile range stretched (constant: zeros)."""
    image = np.asarray(image, dtype=float)
    if image.ndim != 2:
        raise ValueError(f"image must be a 2-D gray image (H, W), got shape {image.shape}.")
    if not np.isfinite(image).all():
        raise ValueError("image contains NaN or infinity.")
    lo, hi = np.percentile(image, [0.5, 99.5])
    if hi <= lo:
        return np.zeros(image.shape)
    return np.clip((image - lo) / (hi - lo), 0, 1)


def _map_at(heatmap, shape, name="heatmap") -> np.ndarray:
    """A 2-D map as float, clipped to [0, 1] and resized (bilinear) to ``shape``."""
    heatmap = np.asarray(heatmap, dtype=float)
    if heatmap.ndim != 2:
        raise ValueError(f"{name} must be a 2-D map (h, w), got shape {heatmap.shape}.")
    if not np.isfinite(heatmap).all():
        raise ValueError(f"{name} contains NaN or infinity.")
    if heatmap.shape != tuple(shape):
        heatmap = resize(heatmap, shape, order=1)
    return np.clip(heatmap, 0, 1)


def overlay(image, heatmap, alpha=0.4, cmap="jet") -> np.ndarray:
    """A colour-mapped heatmap blended over a gray radiograph, as an RGB image.

    ``rgb = (1 - alpha) * gray + alpha * cmap(heatmap)``. The image is shown by
    its own range (its 0.5-99.5 percentiles map to black and white, so uint8,
    [0, 1] and [-1, 1] images look alike); the heatmap is **not** stretched:
    values are clipped to [0, 1] and coloured as they are, so 0 gets the
    colormap's lowest colour (dark blue for ``"jet"``) and a weak map stays
    weak. A heatmap of another size is resized (bilinear) to the image's.

    Parameters
    ----------
    image : array-like of shape (H, W)
        Gray radiograph, any numeric range.
    heatmap : array-like of shape (h, w)
        Map in [0, 1] (Grad-CAM, lung probability, fused map).
    alpha : float in [0, 1], default=0.4
        Weight of the coloured map.
    cmap : str or matplotlib Colormap, default="jet"

    Returns
    -------
    rgb : ndarray of shape (H, W, 3), dtype uint8

    Examples
    --------
    >>> import numpy as np
    >>> from skcxr.plotting import overlay
    >>> image = np.tile(np.linspace(-1, 1, 64, dtype=np.float32), (64, 1))
    >>> cam = np.zeros((8, 8))
    >>> cam[2:4, 2:4] = 1
    >>> rgb = overlay(image, cam)
    >>> rgb.shape, rgb.dtype
    ((64, 64, 3), dtype('uint8'))
    """
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}.")
    gray = _display_gray(image)
    colours = matplotlib.colormaps.get_cmap(cmap)(_map_at(heatmap, gray.shape))[..., :3]
    rgb = (1 - alpha) * gray[..., None] + alpha * colours
    return np.round(rgb * 255).astype(np.uint8)


def attention_panel(image, cam, mask, fused, *, title=None, boxes=None, labels=None) -> Figure:
    """Four views of one radiograph: the image, its Grad-CAM, its lung mask and the fused map.

    The three maps are drawn with :func:`overlay` (``"jet"``, fixed range 0-1,
    one shared colorbar); the lung mask also gets its 0.5 contour. Images are
    upright (row 0 at the top) and axes carry no ticks.

    Parameters
    ----------
    image : array-like of shape (H, W)
        Gray radiograph, any numeric range.
    cam, mask, fused : array-like of shape (h, w)
        Maps in [0, 1] (a boolean mask is fine); resized to ``(H, W)`` when
        their size differs.
    title : str, optional
        Figure title (e.g. the image name and its findings).
    boxes : sequence of (x, y, w, h) or (x, y, w, h, label), optional
        Boxes in the image's pixels (NIH's convention, see
        :func:`skcxr.metrics.boxes_to_masks`), drawn on every view.
    labels : sequence of four str, optional
        Titles of the four views; ``("X-ray", "Grad-CAM", "U-Net lung mask",
        "Fused map")`` by default.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from skcxr.datasets import make_phantoms
    >>> from skcxr.plotting import attention_panel
    >>> data = make_phantoms(1, size=64, random_state=0)
    >>> lungs = data.lung_masks[0].astype(float)
    >>> cam = np.zeros((8, 8))
    >>> cam[3:5, 2:4] = 1
    >>> fig = attention_panel(data.images[0], cam, lungs, (cam.repeat(8, 0).repeat(8, 1) + lungs) / 2,
    ...                       title="phantom 0", boxes=[(10, 20, 12, 12, "Mass")])
    >>> sum(len(ax.images) for ax in fig.axes)
    4
    """
    labels = _PANEL_TITLES if labels is None else tuple(labels)
    if len(labels) != 4:
        raise ValueError(f"labels must hold four titles, got {len(labels)}.")
    return map_panel(image, list(zip(labels[1:], (cam, mask, fused))), image_title=labels[0],
                     contour=(labels[2],), title=title, boxes=boxes)


def map_panel(image, maps, *, image_title="X-ray", contour=(), title=None, boxes=None) -> Figure:
    """A radiograph beside any number of maps drawn over it, in one row.

    The first view is the image (gray); each map follows as an
    :func:`overlay` (``"jet"``, fixed range 0-1, one shared colorbar). Maps
    named in ``contour`` (a lung mask, say) also get their 0.5 contour.
    :func:`attention_panel` is this panel with Grad-CAM, lung mask and fused
    map; with a lung mask only, it is an image and its mask.

    Parameters
    ----------
    image : array-like of shape (H, W)
        Gray radiograph, any numeric range.
    maps : dict of {str: array-like (h, w)} or sequence of (str, array-like) pairs
        Title and map (values in [0, 1]; resized to ``(H, W)``), in drawing order. May be empty.
    image_title : str, default="X-ray"
    contour : collection of str, default=()
        Titles of the maps that get a white 0.5 contour.
    title : str, optional
        Figure title.
    boxes : sequence of (x, y, w, h) or (x, y, w, h, label), optional
        Boxes in the image's pixels, drawn on every view.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from skcxr.plotting import map_panel
    >>> image = np.random.default_rng(0).uniform(size=(32, 32))
    >>> lungs = np.zeros((32, 32))
    >>> lungs[4:28, 4:14] = lungs[4:28, 18:28] = 1
    >>> fig = map_panel(image, {"U-Net lung mask": lungs}, contour=["U-Net lung mask"], title="one mask")
    >>> [ax.get_title() for ax in fig.axes if ax.images]
    ['X-ray', 'U-Net lung mask']
    """
    items = list(maps.items()) if isinstance(maps, Mapping) else [tuple(m) for m in maps]
    gray = _display_gray(image)
    fig = Figure(figsize=(3.25 * (len(items) + 1), 3.9), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(items) + 1))
    axes[0].imshow(gray, cmap="gray", vmin=0, vmax=1, origin="upper")
    for ax, (name, heatmap) in zip(axes[1:], items):
        ax.imshow(overlay(image, heatmap), origin="upper")
        if name in contour:
            ax.contour(_map_at(heatmap, gray.shape, "mask"), levels=[0.5], colors="white", linewidths=1)
    for ax, label in zip(axes, [image_title] + [name for name, _ in items]):
        ax.set_title(label, fontsize=10)
        ax.set_axis_off()
        for box in boxes or ():
            x, y, w, h = box[:4]
            ax.add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, edgecolor="lime", linewidth=1.2))
            if len(box) > 4:
                ax.text(x - 0.5, y - 1.5, str(box[4]), color="lime", fontsize=7, va="bottom",
                        bbox={"facecolor": "black", "alpha": 0.6, "pad": 1, "edgecolor": "none"})
    if items:
        fig.colorbar(ScalarMappable(Normalize(0, 1), cmap="jet"), ax=axes[1:], shrink=0.8, label="map value")
    if title:
        fig.suptitle(title, fontsize=11)
    return fig
