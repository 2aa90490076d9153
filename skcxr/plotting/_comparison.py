"""Model comparisons, a point and its interval per row: :func:`plot_model_comparison`, :func:`plot_subgroup_auc`."""

from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.figure import Figure

__all__ = ["plot_model_comparison", "plot_subgroup_auc"]


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
