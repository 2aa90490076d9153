"""MultilabelValidSplit: the skorch nets' inner validation split (patient-disjoint, label-stratified)."""

import numpy as np
import pytest
import torch
from skorch.dataset import Dataset

from skcxr.neural import MultilabelValidSplit


def test_valid_split_is_stratified():
    rng = np.random.default_rng(0)
    Y = (rng.random((200, 5)) < [0.5, 0.2, 0.1, 0.05, 0.03]).astype(np.float32)
    X = np.zeros((200, 3), dtype=np.float32)
    train, valid = MultilabelValidSplit(0.2, random_state=0)(Dataset(X, Y), Y)
    assert len(valid) == 40 and len(train) == 160
    assert set(train.indices).isdisjoint(valid.indices)
    # every label's positives split close to 80/20, the rarest included
    np.testing.assert_allclose(Y[valid.indices].sum(0), 0.2 * Y.sum(0), atol=1.01)
    one_label = MultilabelValidSplit(0.25, random_state=0)(Dataset(X, Y[:, :1]), Y[:, :1])[1]
    assert Y[one_label.indices, 0].sum() == pytest.approx(0.25 * Y[:, 0].sum(), abs=1)
    with pytest.raises(ValueError, match="Cannot split 1 distinct groups"):
        MultilabelValidSplit(0.2)(Dataset(X[:1], Y[:1]), Y[:1])


def test_valid_split_takes_whole_patients_and_follows_torch_seed():
    X = np.zeros((40, 3), dtype=np.float32)
    Y = np.eye(2, dtype=np.float32)[np.arange(40) % 2]
    patients = np.repeat(np.arange(10), 4)
    split = MultilabelValidSplit(0.2)  # random_state=None: the seed comes from torch's generator
    torch.manual_seed(0)
    train, valid = split(Dataset(X, Y), Y, groups=patients)
    assert set(patients[train.indices]).isdisjoint(patients[valid.indices])
    assert len(valid) == 8 and len(train) == 32  # two whole patients of ten
    torch.manual_seed(0)
    assert split(Dataset(X, Y), Y, groups=patients)[1].indices.tolist() == valid.indices.tolist()
    assert repr(split) == "MultilabelValidSplit(valid_size=0.2, stratified=True, random_state=None)"
