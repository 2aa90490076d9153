"""Multi-label over-sampling with imbalanced-learn's API, and a pipeline whose patient ids follow the rows.

imbalanced-learn's samplers take a 1-D target only (its issue #1123); the two
here take skcxr's 2-D 0/1 indicator matrix ``Y`` and work as a step of an
:class:`imblearn.pipeline.Pipeline` (resampling at fit time only; ``predict``
and ``transform`` pass every row through untouched):

- :class:`MLROS`, multi-label random over-sampling (Charte, Rivera, del Jesus
  & Herrera 2015, "Addressing imbalance in multilabel classification:
  Measures and random resampling algorithms", Neurocomputing 163), clones
  samples that carry a minority label;
- :class:`MLSMOTE` (Charte, Rivera, del Jesus & Herrera 2015, "MLSMOTE:
  Approaching imbalanced multilabel learning through synthetic instance
  generation", Knowledge-Based Systems 89) adds synthetic samples between a
  sample carrying a minority label and one of its nearest neighbours among
  the samples carrying that label, with a label set drawn from the sample and
  its neighbours.

Imbalance measures (Charte et al. 2015)
---------------------------------------
For a label ``l`` with ``c_l`` positives, ``IRLbl(l) = max_m c_m / c_l``: 1 for
the most frequent label, larger for rarer ones (:func:`irlbl`). ``MeanIR`` is
the mean of ``IRLbl`` over the labels (:func:`mean_ir`). A **minority label**
is one with ``IRLbl > MeanIR``; the samples carrying it are its *bag*. Labels
without a positive in ``Y`` have no ``IRLbl`` (NaN): they are left out of
``MeanIR`` and cannot be over-sampled.

``sampling_strategy`` (both samplers)
------------------------------------
- a float ``f > 0``: add ``round(f * n_samples)`` rows (the paper's
  percentage ``P`` is ``100 f``). The bags of the minority labels take turns;
  each turn draws a random seed sample from the bag (with replacement) and
  adds one row made from it. A label leaves the rotation once its ``IRLbl``,
  counted over the rows so far (original and added), is at most the
  ``MeanIR`` of the input; sampling ends early when every label has left.
  This is MLROS as published; for MLSMOTE it is a budgeted variant.
- ``"minority"``: every sample of every minority bag seeds one new row, once
  per minority label it carries. This is MLSMOTE as published; for MLROS it
  duplicates every minority bag once. Both samplers then add the same number
  of rows, which makes them comparable.

``IRLbl``, ``MeanIR`` and the minority labels are computed once, on the data
given to ``fit_resample``, and only original rows seed or neighbour a new row.

Patient ids follow the rows
---------------------------
Every sampler records ``sample_indices_``: the original row each output row
comes from (for a synthetic MLSMOTE row, its seed). imbalanced-learn's own
:class:`~imblearn.pipeline.Pipeline` passes fit parameters to the steps after a
sampler unresampled, so ``clf__groups`` no longer matches the rows that reach
``clf`` (skcxr's nets refuse them). :class:`Pipeline` here is imbalanced-learn's,
plus one rule: every per-sample fit parameter (an array-like with one entry
per row of ``X``, the rule by which ``cross_validate`` slices ``params``;
``groups``, ``sample_weight``) is re-indexed through the ``sample_indices_`` of
the samplers before the step that receives it. A clone therefore carries its
patient's id, and so does a synthetic MLSMOTE row (its seed's patient), so an
inner patient-disjoint validation split (:class:`skcxr.neural.MultilabelValidSplit`)
keeps all copies of a patient on one side.

Caveats: the inner validation part of a net after the sampler is itself
over-sampled (its early stopping and tuned thresholds see the resampled label
mix), and a synthetic MLSMOTE row mixes its seed's features with a neighbour's,
possibly another patient's, whose own rows may land in the validation part.
"""

from ._measures import irlbl, mean_ir
from ._mlros import MLROS
from ._mlsmote import MLSMOTE
from ._pipeline import Pipeline, make_pipeline

__all__ = ["MLROS", "MLSMOTE", "Pipeline", "irlbl", "make_pipeline", "mean_ir"]
