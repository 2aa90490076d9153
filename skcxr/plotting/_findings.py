"""Charts per finding: AUC bars, ROC and reliability curves, the label distribution of each part of the data."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from sklearn.metrics import roc_auc_score, roc_curve

from .._validation import check_multilabel_Y
from ..metrics import brier_scores, calibration_bins
from ._comparison import _model_colours

__all__ = ["plot_class_auc", "plot_label_distribution", "plot_reliability", "plot_roc_curves"]


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
