"""Figures: attention maps over radiographs, model comparisons with intervals, ROC and reliability curves.

Everything returns a :class:`matplotlib.figure.Figure` (or an RGB array) built
with matplotlib's object API: no pyplot state, no window; save with
``fig.savefig(path)``. Images are drawn upright, as radiographs are read
(row 0 at the top), and maps in [0, 1] keep their values: a CAM of 0.1
everywhere shows faint, not as a full blob (unlike pytorch-grad-cam, which
min-max scales every map).

- maps: :func:`overlay`, :func:`map_panel`, :func:`attention_panel`;
- model comparisons (point and interval per row): :func:`plot_model_comparison`
  (pooled and within each source), :func:`plot_subgroup_auc`;
- per finding: :func:`plot_class_auc` (AUC bars with intervals),
  :func:`plot_roc_curves`, :func:`plot_reliability` (calibration),
  :func:`plot_label_distribution` (prevalence in each part of the data).

Each axis carries one metric, so "higher is better" never shares an axis with
"lower is better"; models keep one colour (``C0``, ``C1``, ... in the order
given) in every per-finding figure.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping

import matplotlib
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from skimage.transform import resize

__all__ = [
    "attention_panel",
    "map_panel",
    "overlay",
    "plot_class_auc",
    "plot_label_distribution",
    "plot_model_comparison",
    "plot_reliability",
    "plot_roc_curves",
    "plot_subgroup_auc",
]

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
    for ax, (columns, ref, xlabel) in zip(axes, panels):
        _interval_points(ax, parts, names, columns, y, offsets, colours)
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


def _interval_points(ax, parts, names, columns, y, offsets, colours):
    """One point with its horizontal interval per row and part (``parts``: {label: table}); NaN rows skipped."""
    col, lo, hi = columns
    for (part, table), dy, colour in zip(parts.items(), offsets, colours):
        table = table.reindex(names)
        v = table[col].to_numpy(float)
        err = np.vstack([v - table[lo].to_numpy(float), table[hi].to_numpy(float) - v])
        ok = np.isfinite(v)
        err = np.clip(np.where(np.isfinite(err), err, 0), 0, None)  # a percentile interval may miss its estimate
        ax.errorbar(v[ok], (y + dy)[ok], xerr=err[:, ok], fmt="o", color=colour, ms=5, capsize=3, lw=1.2,
                    label=part)


def _model_colours(names):
    return {name: f"C{k % 10}" for k, name in enumerate(names)}


def plot_subgroup_auc(tables, *, title="") -> Figure:
    """Macro-AUC with intervals in each subgroup of the test set (sex, age band, view...), one colour per model.

    Parameters
    ----------
    tables : dict of {str: pandas.DataFrame}
        Per model, one row per subgroup (the row labels are shown, e.g.
        ``"sex: F (212 images)"``) with columns ``Macro-AUC``, ``AUC low``,
        ``AUC high``; NaN rows (AUC undefined) are left out.
    title : str, default=""

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> from skcxr.plotting import plot_subgroup_auc
    >>> table = pd.DataFrame({"Macro-AUC": [0.6, 0.7], "AUC low": [0.5, 0.6], "AUC high": [0.7, 0.8]},
    ...                      index=["sex: F", "sex: M"])
    >>> fig = plot_subgroup_auc({"LR": table, "MLP": table + 0.05})
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
    ['sex: F', 'sex: M']
    """
    if not tables:
        raise ValueError("tables must hold at least one model's table.")
    names = list(dict.fromkeys(label for table in tables.values() for label in table.index))
    fig = Figure(figsize=(9, 0.45 * len(names) * max(1, len(tables) / 2) + 2.0))
    ax = fig.subplots()
    y = np.arange(len(names))[::-1].astype(float)
    offsets = np.linspace(0.25, -0.25, len(tables)) if len(tables) > 1 else np.zeros(1)
    _interval_points(ax, tables, names, ("Macro-AUC", "AUC low", "AUC high"), y, offsets,
                     list(_model_colours(tables).values()))
    ax.axvline(0.5, color="grey", ls="--", lw=1)
    for row, label in zip(y, names):
        if all(not np.isfinite(float(t["Macro-AUC"].get(label, np.nan))) for t in tables.values()):
            ax.text(0.5, row, "  undefined (too few images or findings)", fontsize=8, color="grey", va="center")
    ax.set_yticks(y, [textwrap.fill(str(n), 40) for n in names], fontsize=9)
    ax.set_ylim(-0.6, len(names) - 0.4)
    ax.set_xlabel("macro-AUC within the subgroup (patient-bootstrap interval; dashed: chance)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(len(tables), 3), fontsize=9, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_class_auc(tables, *, title="") -> Figure:
    """Per-finding AUC of one or several models: bars from chance (0.5) to the AUC, with their intervals.

    Parameters
    ----------
    tables : dict of {str: pandas.DataFrame}
        Per model, one row per finding (index: finding names, in display
        order, top to bottom) with columns ``AUC``, ``AUC low``, ``AUC high``,
        as :func:`skcxr.evaluation.bootstrap_class_auc` returns; a NaN AUC
        (one label value only in the test set) is marked "undefined".
    title : str, default=""

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from skcxr.plotting import plot_class_auc
    >>> table = pd.DataFrame({"AUC": [0.8, 0.55, np.nan], "AUC low": [0.7, 0.45, np.nan],
    ...                       "AUC high": [0.9, 0.65, np.nan]}, index=["Effusion", "Nodule", "Hernia"])
    >>> fig = plot_class_auc({"LR": table})
    >>> len(fig.axes[0].patches)          # one bar per defined AUC
    2
    """
    if not tables:
        raise ValueError("tables must hold at least one model's table.")
    names = list(dict.fromkeys(label for table in tables.values() for label in table.index))
    colours = _model_colours(tables)
    n_models = len(tables)
    height = 0.8 / n_models
    fig = Figure(figsize=(9, 0.32 * len(names) * max(n_models, 1.5) + 1.8))
    ax = fig.subplots()
    y = np.arange(len(names))[::-1].astype(float)
    lows = []
    for k, (model, table) in enumerate(tables.items()):
        table = table.reindex(names)
        v = table["AUC"].to_numpy(float)
        lo, hi = table["AUC low"].to_numpy(float), table["AUC high"].to_numpy(float)
        yk = y + (n_models - 1) / 2 * height - k * height
        ok = np.isfinite(v)
        ax.barh(yk[ok], v[ok] - 0.5, left=0.5, height=height * 0.9, color=colours[model], alpha=0.85, label=model)
        ax.plot(v[ok], yk[ok], "|", color=colours[model], ms=height * 22, mew=2.5)  # visible at AUC = 0.5 too
        has_ci = ok & np.isfinite(lo) & np.isfinite(hi)
        err = np.clip(np.vstack([v - lo, hi - v]), 0, None)  # a percentile interval may miss its estimate
        ax.errorbar(v[has_ci], yk[has_ci], xerr=err[:, has_ci], fmt="none",
                    ecolor="black", capsize=2, lw=0.9)
        for yy in yk[~ok]:
            ax.text(0.505, yy, "undefined (one label value only)", fontsize=7, va="center", color="grey")
        lows.extend(lo[has_ci].tolist() + v[ok].tolist())
    ax.axvline(0.5, color="grey", ls="--", lw=1)
    left = min([0.4] + [v - 0.03 for v in lows])
    ax.set_xlim(max(0.0, left), 1.02)
    ax.set_yticks(y, [str(n).replace("_", " ") for n in names], fontsize=9)
    ax.set_ylim(-0.6, len(names) - 0.4)
    ax.set_xlabel("AUC on the test part (bar from chance = 0.5; whisker: patient-bootstrap interval)")
    ax.grid(axis="x", alpha=0.3)
    if n_models > 1:
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(n_models, 3), fontsize=9, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def _finding_grid(n_panels, ncols):
    ncols = max(1, min(ncols, n_panels))
    nrows = math.ceil(n_panels / ncols)
    fig = Figure(figsize=(3.1 * ncols, 3.0 * nrows + 0.9), layout="constrained")
    axes = np.atleast_2d(fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False))
    for ax in axes.ravel()[n_panels:]:
        ax.set_visible(False)
    for ax in axes.ravel()[max(0, n_panels - ncols):n_panels]:  # the lowest panel of each column
        ax.xaxis.set_tick_params(labelbottom=True)
    return fig, axes.ravel()[:n_panels]


def _check_curves_input(Y_true, scores, target_names):
    from ._validation import check_multilabel_Y

    Y = check_multilabel_Y(Y_true, name="Y_true")
    if not scores:
        raise ValueError("scores must hold at least one model's (n, L) scores.")
    scores = {name: np.asarray(P, dtype=float) for name, P in scores.items()}
    for name, P in scores.items():
        if P.shape != Y.shape:
            raise ValueError(f"scores of {name!r} have shape {P.shape} but Y_true has shape {Y.shape}.")
    names = [str(k) for k in range(Y.shape[1])] if target_names is None else [str(t) for t in target_names]
    if len(names) != Y.shape[1]:
        raise ValueError(f"target_names has {len(names)} names but Y_true has {Y.shape[1]} columns.")
    return Y, scores, names


def _diagonal_grid(titles, ncols):
    """One square panel per finding, titled, with the grey diagonal (chance for ROC, perfect calibration)."""
    fig, axes = _finding_grid(len(titles), ncols)
    for ax, text in zip(axes, titles):
        ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=0.8)
        ax.set_title(text, fontsize=9)
        ax.set_aspect("equal")
    return fig, axes


def _finish_diagonal_grid(fig, axes, models, colours, xlabel, ylabel, title, marker=None):
    """Axes on [0, 1], the shared axis labels, one legend entry per model, the title."""
    from matplotlib.lines import Line2D

    axes[0].set_xlim(0, 1)
    axes[0].set_ylim(0, 1)
    fig.supxlabel(xlabel, fontsize=10)
    fig.supylabel(ylabel, fontsize=10)
    handles = [Line2D([], [], color=colours[m], marker=marker, lw=2) for m in models]
    fig.legend(handles, list(models), loc="outside upper center", ncol=min(len(models), 3), fontsize=10,
               frameon=False)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def plot_roc_curves(Y_true, scores, target_names=None, *, ncols=4, title="") -> Figure:
    """ROC curve of every finding, one panel each, one curve per model (its AUC in the panel's legend).

    Parameters
    ----------
    Y_true : array-like of shape (n_samples, n_labels)
        0/1 indicator matrix of the test images.
    scores : dict of {str: array-like (n_samples, n_labels)}
        Scores (probabilities) of each model.
    target_names : list of str, optional
    ncols : int, default=4
        Panels per row.
    title : str, default=""

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from skcxr.plotting import plot_roc_curves
    >>> rng = np.random.default_rng(0)
    >>> Y = rng.integers(0, 2, (50, 2))
    >>> fig = plot_roc_curves(Y, {"LR": Y + rng.uniform(0, 1, Y.shape)}, ["Mass", "Nodule"])
    >>> [ax.get_title() for ax in fig.axes]
    ['Mass (27 positive)', 'Nodule (29 positive)']
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    Y, scores, names = _check_curves_input(Y_true, scores, target_names)
    colours = _model_colours(scores)
    fig, axes = _diagonal_grid([f"{name.replace('_', ' ')} ({int(Y[:, k].sum())} positive)"
                                for k, name in enumerate(names)], ncols)
    for k, ax in enumerate(axes):
        y = Y[:, k]
        if y.min() == y.max():
            ax.text(0.5, 0.5, "undefined:\none label value only", ha="center", va="center", fontsize=8,
                    color="grey")
            continue
        for model, P in scores.items():
            fpr, tpr, _ = roc_curve(y, P[:, k])
            ax.plot(fpr, tpr, color=colours[model], lw=1.4, label=f"AUC {roc_auc_score(y, P[:, k]):.3f}")
        ax.legend(loc="lower right", fontsize=7, handlelength=1.2, frameon=True, framealpha=0.8)
    return _finish_diagonal_grid(fig, axes, scores, colours, "1 − specificity (false-positive rate)",
                                 "sensitivity (true-positive rate)", title)


def plot_reliability(Y_true, probas, target_names=None, *, n_bins=10, confidence=0.95, ncols=4,
                     title="") -> Figure:
    """Reliability (calibration) curve of every finding: observed frequency against predicted probability.

    Per panel and model, the bins of :func:`skcxr.metrics.calibration_bins`
    (uniform width, empty bins left out) with the Wilson interval of each
    observed frequency; the diagonal is perfect calibration. The legend gives
    each model's Brier score (:func:`skcxr.metrics.brier_scores`; lower is
    better).

    Parameters
    ----------
    Y_true : array-like of shape (n_samples, n_labels)
    probas : dict of {str: array-like (n_samples, n_labels)}
        Probabilities in [0, 1] of each model.
    target_names : list of str, optional
    n_bins : int, default=10
    confidence : float, default=0.95
    ncols : int, default=4
    title : str, default=""

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from skcxr.plotting import plot_reliability
    >>> rng = np.random.default_rng(0)
    >>> P = rng.uniform(0, 1, (200, 1))
    >>> fig = plot_reliability((rng.uniform(0, 1, P.shape) < P).astype(int), {"calibrated": P}, ["Mass"])
    >>> fig.axes[0].get_xlabel() == "" and fig.axes[0].get_xlim() == (0.0, 1.0)
    True
    """
    from .metrics import brier_scores, calibration_bins

    Y, probas, names = _check_curves_input(Y_true, probas, target_names)
    colours = _model_colours(probas)
    briers = {model: brier_scores(Y, P) for model, P in probas.items()}
    fig, axes = _diagonal_grid([f"{name.replace('_', ' ')} (prevalence {Y[:, k].mean():.0%})"
                                for k, name in enumerate(names)], ncols)
    for k, ax in enumerate(axes):
        for m, (model, P) in enumerate(probas.items()):
            bins = calibration_bins(Y[:, k], P[:, k], n_bins, confidence=confidence)
            x = bins["mean predicted"].to_numpy() + (m - (len(probas) - 1) / 2) * 0.008  # dodge the whiskers
            v = bins["observed"].to_numpy()
            ax.errorbar(x, v, yerr=np.vstack([v - bins["low"], bins["high"] - v]), color=colours[model], fmt="-o",
                        ms=3, lw=1.1, elinewidth=0.7, capsize=1.5, label=f"Brier {briers[model][k]:.3f}")
        ax.legend(loc="upper left", fontsize=7, handlelength=1.2, frameon=True, framealpha=0.8)
    return _finish_diagonal_grid(fig, axes, probas, colours, "mean predicted probability in the bin",
                                 f"observed frequency ({confidence:.0%} Wilson interval)", title, marker="o")


def plot_label_distribution(parts, target_names=None, *, no_finding=True, colors=None, hatches=None,
                            title="") -> Figure:
    """Prevalence of every finding in each part of the data (train/test, per source), as grouped bars.

    Parameters
    ----------
    parts : dict of {str: array-like (n_i, n_labels)}
        Label matrices, e.g. ``{"train · nih": Y1, "test · nih": Y2, ...}``;
        the legend adds each part's number of images.
    target_names : list of str, optional
    no_finding : bool, default=True
        Add a "No Finding" row (images without any of the findings).
    colors, hatches : sequence, optional
        A colour and a hatch (``""``, ``"//"``, ...) per part, e.g. one
        colour per source and a hatch for the test parts; ``C0, C1, ...``
        and no hatches by default.
    title : str, default=""

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from skcxr.plotting import plot_label_distribution
    >>> Y = np.array([[1, 0], [0, 0], [1, 1], [0, 0]])
    >>> fig = plot_label_distribution({"train": Y, "test": Y[:2]}, ["Mass", "Nodule"])
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
    ['Mass', 'Nodule', 'No Finding']
    """
    from ._validation import check_multilabel_Y

    if not parts:
        raise ValueError("parts must hold at least one label matrix.")
    parts = {label: check_multilabel_Y(Y, name=f"parts[{label!r}]") for label, Y in parts.items()}
    n_labels = {Y.shape[1] for Y in parts.values()}
    if len(n_labels) != 1:
        raise ValueError(f"every part must have the same number of labels, got {sorted(n_labels)}.")
    n_labels = n_labels.pop()
    names = [str(k) for k in range(n_labels)] if target_names is None else [str(t) for t in target_names]
    if len(names) != n_labels:
        raise ValueError(f"target_names has {len(names)} names but the label matrices have {n_labels} columns.")
    rows = [n.replace("_", " ") for n in names] + (["No Finding"] if no_finding else [])
    colors = [f"C{k % 10}" for k in range(len(parts))] if colors is None else list(colors)
    hatches = [""] * len(parts) if hatches is None else list(hatches)
    if len(colors) != len(parts) or len(hatches) != len(parts):
        raise ValueError(f"colors and hatches need one entry per part ({len(parts)}).")
    height = 0.8 / len(parts)
    fig = Figure(figsize=(9, 0.15 * len(rows) * max(len(parts), 2.5) + 1.6))
    ax = fig.subplots()
    y = np.arange(len(rows))[::-1].astype(float)
    for k, (label, Y) in enumerate(parts.items()):
        counts = Y.sum(axis=0).astype(int)
        if no_finding:
            counts = np.append(counts, int((Y.sum(axis=1) == 0).sum()))
        share = 100 * counts / max(len(Y), 1)
        yk = y + (len(parts) - 1) / 2 * height - k * height
        ax.barh(yk, share, height=height * 0.9, color=colors[k], hatch=hatches[k], edgecolor="white", linewidth=0,
                label=f"{label} ({len(Y):,} images)")
    ax.set_yticks(y, rows, fontsize=9)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_xlabel("images with the finding (%)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=9, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
