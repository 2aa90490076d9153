"""Patient-grouped, label-stratified splitting of multi-label data.

Chest X-ray data sets hold several images per patient; a patient on both sides
of a split leaks and inflates the score. Both tools here assign whole groups
(patients) with the iterative stratification of Sechidis, Tsoumakas & Vlahavas
(2011, "On the stratification of multi-label data", ECML PKDD), run over
groups instead of samples:

1. Sum the label indicators per group, giving per-group positive counts, and
   count the samples of each group.
2. Each part ``j`` of the split desires ``p_j * total`` samples and
   ``p_j * positives(l)`` positives of every label ``l``.
3. Repeatedly take the label with the fewest positives among the groups not yet
   assigned, and give each unassigned group carrying it (most positives first)
   to the part that still desires most positives of that label; ties go to the
   part that desires most samples, then to a random one. Every assignment
   lowers the part's desires by the group's counts.
4. Groups without any positive go, largest first, to the part that desires
   most samples.

:class:`MultilabelStratifiedGroupKFold` uses parts of ``1/n_splits`` each;
:func:`train_test_split_by_patient` uses ``[1 - test_size, test_size]``.

:func:`groups_params` (and :func:`groups_fit_params` with :func:`routing_context`,
where only metadata routing can deliver them) bring the patient ids to every
inner split of a pipeline. Hyper-parameter search under these splits is in
:mod:`skcxr.tuning`.
"""

from ._routing import groups_fit_params, groups_params, routing_context
from ._split import (
    MultilabelStratifiedGroupKFold,
    MultilabelStratifiedGroupShuffleSplit,
    train_test_split_by_patient,
)

__all__ = [
    "MultilabelStratifiedGroupKFold",
    "MultilabelStratifiedGroupShuffleSplit",
    "groups_fit_params",
    "groups_params",
    "routing_context",
    "train_test_split_by_patient",
]
