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

from ._comparison import plot_model_comparison, plot_subgroup_auc
from ._findings import plot_class_auc, plot_label_distribution, plot_reliability, plot_roc_curves
from ._maps import attention_panel, map_panel, overlay

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
