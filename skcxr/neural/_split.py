"""The inner validation split of the skorch nets: patient-disjoint and label-stratified."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Subset

from ..model_selection import MultilabelStratifiedGroupShuffleSplit


class MultilabelValidSplit:
    """The internal train/validation split of the skorch nets: patient-disjoint, label-stratified.

    A skorch ``train_split``: called with the dataset, the 2-D ``y`` and the
    patient ``groups``, it returns ``(train, valid)`` subsets drawn by
    :class:`skcxr.model_selection.MultilabelStratifiedGroupShuffleSplit`, so
    every label's positives land in both parts as evenly as whole patients
    allow, and no patient is on both sides. Without ``groups`` each sample is
    its own group. (skorch's own ``ValidSplit(stratified=True)`` rejects a 2-D
    ``y``.)

    Parameters
    ----------
    valid_size : float or int, default=0.2
        Fraction (or number) of samples used for validation.
    stratified : bool, default=True
        Multi-label stratification; ``False`` balances sizes only.
    random_state : int or None, default=None
        ``None`` draws the seed from torch's global generator, which the nets
        seed from their ``random_state``, so the net's ``random_state`` fixes
        the split too.

    Examples
    --------
    >>> import numpy as np
    >>> from skorch.dataset import Dataset
    >>> from skcxr.neural import MultilabelValidSplit
    >>> X = np.zeros((10, 3), dtype="float32")
    >>> Y = np.eye(2, dtype="float32")[np.arange(10) % 2]
    >>> patients = np.repeat(np.arange(5), 2)
    >>> train, valid = MultilabelValidSplit(0.2, random_state=0)(Dataset(X, Y), Y, groups=patients)
    >>> set(patients[train.indices]) & set(patients[valid.indices])
    set()
    """

    def __init__(self, valid_size=0.2, stratified=True, random_state=None):
        self.valid_size = valid_size
        self.stratified = stratified
        self.random_state = random_state

    def __call__(self, dataset, y=None, groups=None):
        seed = self.random_state
        if seed is None:
            seed = int(torch.randint(2**31 - 1, (1,)).item())
        Y = None
        if self.stratified and y is not None:
            Y = (np.asarray(y) > 0.5).astype(np.uint8)
            if Y.ndim == 1:
                Y = Y[:, None]
        splitter = MultilabelStratifiedGroupShuffleSplit(1, test_size=self.valid_size, random_state=seed)
        train, valid = next(splitter.split(np.zeros(len(dataset)), Y, groups))
        return Subset(dataset, train), Subset(dataset, valid)

    def __repr__(self):
        return (
            f"{type(self).__name__}(valid_size={self.valid_size!r}, "
            f"stratified={self.stratified!r}, random_state={self.random_state!r})"
        )
