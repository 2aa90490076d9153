"""Fitting several models on one patient-wise split, patient bootstrap intervals, result tables.

:func:`holdout_report` is the honest way to compare models on a held-out
test set:

- every model is cloned before it is fitted (the caller's objects stay
  unfitted) and the patient ids reach every inner validation split
  (:func:`skcxr.model_selection.groups_params`);
- F1 and Hamming loss are reported at the threshold 0.5 *and* at per-label
  thresholds tuned on the training data only (the model's own
  ``tuned_thresholds_``, found on a patient-disjoint inner validation split,
  or out-of-fold training predictions), never on the test part;
- macro-AUC comes with a percentile interval from a bootstrap over test
  *patients* (:func:`bootstrap_macro_auc`), and differences to a baseline with
  a paired interval on the same resamples (:func:`paired_bootstrap_macro_auc`);
- with ``sources_test`` (e.g. two data sets of different resolution and label
  mix) every metric is also given within each source, where a model cannot
  score by telling the sources apart.

:func:`subgroup_table` gives macro-AUC by sex, age band and view position,
pooled and within each source, and refuses an AUC to subgroups too small to
say anything (``MIN_SUBGROUP_IMAGES``).

Resampling patients, not images, matters: the images of one patient are
correlated, and an image bootstrap gives intervals that are too narrow.
"""

from ._bootstrap import BootstrapInterval, bootstrap_class_auc, bootstrap_macro_auc, paired_bootstrap_macro_auc
from ._holdout import holdout_report
from ._json import jsonable
from ._result import HoldoutResult
from ._subgroups import MIN_SUBGROUP_IMAGES, subgroup_masks, subgroup_table

__all__ = [
    "BootstrapInterval",
    "MIN_SUBGROUP_IMAGES",
    "HoldoutResult",
    "bootstrap_class_auc",
    "bootstrap_macro_auc",
    "holdout_report",
    "jsonable",
    "paired_bootstrap_macro_auc",
    "subgroup_masks",
    "subgroup_table",
]
