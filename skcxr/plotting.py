"""Figures: attention maps over radiographs, and model comparisons with intervals.

Everything returns a :class:`matplotlib.figure.Figure` (or an RGB array) built
with matplotlib's object API: no pyplot state, no window; save with
``fig.savefig(path)``. Images are drawn upright, as radiographs are read
(row 0 at the top), and maps in [0, 1] keep their values: a CAM of 0.1
everywhere shows faint, not as a full blob (unlike pytorch-grad-cam, which
min-max scales every map).
"""

from __future__ import annotations

import textwrap

import matplotlib
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from skimage.transform import resize

__all__ = ["attention_panel", "overlay", "plot_model_comparison"]

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
    gray = _display_gray(image)
    fig = Figure(figsize=(13, 3.9), layout="constrained")
    axes = fig.subplots(1, 4)
    axes[0].imshow(gray, cmap="gray", vmin=0, vmax=1, origin="upper")
    for ax, heatmap in zip(axes[1:], (cam, mask, fused)):
        ax.imshow(overlay(image, heatmap), origin="upper")
    axes[2].contour(_map_at(mask, gray.shape, "mask"), levels=[0.5], colors="white", linewidths=1)
    for ax, label in zip(axes, labels):
        ax.set_title(label, fontsize=10)
        ax.set_axis_off()
        for box in boxes or ():
            x, y, w, h = box[:4]
            ax.add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, edgecolor="lime", linewidth=1.2))
            if len(box) > 4:
                ax.text(x - 0.5, y - 1.5, str(box[4]), color="lime", fontsize=7, va="bottom",
                        bbox={"facecolor": "black", "alpha": 0.6, "pad": 1, "edgecolor": "none"})
    fig.colorbar(ScalarMappable(Normalize(0, 1), cmap="jet"), ax=axes[1:], shrink=0.8, label="map value")
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def plot_model_comparison(result, *, baseline=None, title="") -> Figure:
    """Macro-AUC of several models with intervals, pooled and within each source, and ΔAUC vs a baseline.

    One row per model; a point with its interval per part of the test set
    (pooled in black, then each source). Left: macro-AUC with its
    patient-bootstrap interval, against chance (0.5). Right (with a baseline):
    the difference to the baseline with its paired interval, against 0.

    Parameters
    ----------
    result : skcxr.evaluation.HoldoutResult or alike
        Anything with ``summary`` (one row per model, columns ``Macro-AUC``,
        ``AUC low``, ``AUC high`` and, with a baseline, ``ΔAUC``, ``ΔAUC low``,
        ``ΔAUC high``) and ``by_source`` (``{source: table}`` with the same
        columns; may be empty).
    baseline : str, optional
        Name of the baseline row; ``result.baseline`` by default. Without one
        (or without ``ΔAUC`` columns) only the AUC panel is drawn.
    title : str, default=""

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> from types import SimpleNamespace
    >>> from skcxr.plotting import plot_model_comparison
    >>> summary = pd.DataFrame({"Macro-AUC": [0.62, 0.70], "AUC low": [0.58, 0.66], "AUC high": [0.66, 0.74],
    ...                         "ΔAUC": [float("nan"), 0.08], "ΔAUC low": [float("nan"), 0.03],
    ...                         "ΔAUC high": [float("nan"), 0.13]}, index=["LR", "MLP"])
    >>> fig = plot_model_comparison(SimpleNamespace(summary=summary, by_source={}, baseline="LR"))
    >>> len(fig.axes)
    2
    """
    baseline = getattr(result, "baseline", None) if baseline is None else baseline
    names = list(result.summary.index)
    if baseline is not None and baseline not in names:
        raise ValueError(f"baseline={baseline!r} is not one of the models {names}.")
    panels = [(("Macro-AUC", "AUC low", "AUC high"), 0.5, "macro-AUC on the test part (patient-bootstrap interval)")]
    if baseline is not None and "ΔAUC" in result.summary:
        panels.append((("ΔAUC", "ΔAUC low", "ΔAUC high"), 0.0, f"ΔAUC vs {baseline} (paired interval)"))
    parts = {"pooled": result.summary, **{f"within {s}": t for s, t in result.by_source.items()}}
    colours = ["black"] + [f"C{k}" for k in range(len(parts) - 1)]
    fig = Figure(figsize=(5.5 + 6.5 * (len(panels) - 1), 0.7 * len(names) + 2.4))
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False,
                        gridspec_kw={"width_ratios": [1.15, 1][:len(panels)]})[0]
    y = np.arange(len(names))[::-1]
    offsets = np.linspace(0.22, -0.22, len(parts))  # pooled on top
    for ax, ((col, lo, hi), ref, xlabel) in zip(axes, panels):
        for (part, table), dy, colour in zip(parts.items(), offsets, colours):
            v = table.loc[names, col].to_numpy(float)
            err = np.vstack([v - table.loc[names, lo].to_numpy(float), table.loc[names, hi].to_numpy(float) - v])
            ok = np.isfinite(v)
            ax.errorbar(v[ok], (y + dy)[ok], xerr=err[:, ok], fmt="o", color=colour, ms=5, capsize=3, lw=1.2,
                        label=part)
        ax.axvline(ref, color="grey", ls="--", lw=1)
        ax.set_xlabel(textwrap.fill(xlabel, 60))
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, [textwrap.fill(n, 34, break_on_hyphens=False) for n in names], fontsize=9)
    axes[0].set_ylim(-0.6, len(names) - 0.4)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, [f"{lab} test images" for lab in labels], loc="lower center", ncol=len(labels),
               fontsize=9, frameon=False)
    if len(panels) == 2:
        axes[1].text(0.0, y[names.index(baseline)], "  (the baseline)", fontsize=8, color="grey", va="center")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig
