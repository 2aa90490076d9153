"""A self-contained HTML report of a held-out evaluation: :func:`write_report`.

One page, ``report.html``, with every figure embedded as a PNG data URI (no
network, no script): open it from disk, mail it, archive it next to the
results. It reads a :class:`skcxr.evaluation.HoldoutResult` (which keeps the
test labels, patients and sources next to the probabilities) and, optionally,
the test images, their metadata and the run's settings:

- **results**: the summary table with patient-bootstrap intervals, ΔAUC to
  the baseline with paired intervals, the within-source tables and their
  chart (:func:`skcxr.plotting.plot_model_comparison`);
- **AUC per finding** with intervals (:func:`skcxr.evaluation.bootstrap_class_auc`);
- **ROC curves** of every finding;
- **sensitivity at fixed specificities** (:func:`skcxr.metrics.sensitivity_at_specificity`);
- **calibration**: reliability curves and Brier scores;
- **thresholds** tuned on the training part, and F1/precision/recall there;
- **subgroups** (sex, age band, view position) with intervals, from ``metadata``;
- **data**: the label distribution of the training and test parts per source;
- **gallery**: test radiographs of one finding (true positives, false
  positives, false negatives) with their Grad-CAM, U-Net lung mask and fused
  map where the model has them;
- **model card** (intended use: research, not diagnosis; NIH label noise;
  data and citation) and the **settings and versions** of the run.

The page is written by Python alone; the command line reaches it through
``skcxr run ... --report DIR``.
"""

from ._page import SECTIONS, write_report

__all__ = ["SECTIONS", "write_report"]
