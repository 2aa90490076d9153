"""Tests of skcxr.model_selection: patient-grouped iterative stratification.

Tolerances on real data (measured on this machine, 5 folds, seeds 0-9):

* nih-64 (995 images, 263 patients, up to 66 images per patient). Patient 32
  holds 21 of the 31 Edema images, so any patient-wise 5-fold split has a fold
  with >= 21 Edema positives against an ideal 6.2: no grouped split can deviate
  less than 14.8 (the "group floor", max over labels of the largest patient
  count minus the ideal). Ungrouped iterstrat reaches 0.8, which says nothing
  about what a patient-wise split can reach, so the brief's "iterstrat + 2"
  is read as max(iterstrat, group floor) + 2 = 16.8. Measured: ours 14.8-16.2
  (mean 15.0); sklearn GroupKFold 23.2 (shuffled 19.8-32.8). Summed over the
  14 labels (max deviation per label): ours 88-101, GroupKFold 151 (shuffled
  148-193); the test requires ours <= 0.75 x GroupKFold's.
* Full label file (112,120 images, 30,805 patients): ours and iterstrat both
  0.8, per label identical; the test requires ours <= iterstrat + 2 per label.
* train_test_split_by_patient on nih-64, test_size=0.2: test fraction
  0.200-0.206; mean over labels of |prevalence(test) - prevalence(train)|
  0.010-0.032 per seed, mean 0.015 against GroupShuffleSplit's 0.037.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from iterstrat.ml_stratifiers import MultilabelStratifiedKFold
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, GroupShuffleSplit, cross_validate
from sklearn.multiclass import OneVsRestClassifier

from skcxr.model_selection import MultilabelStratifiedGroupKFold, train_test_split_by_patient

FINDINGS = [
    "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
    "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening",
    "Hernia",
]


def _grouped_problem(n_groups, n_labels, seed):
    """Groups of 1-8 samples; labels correlated within a group, with rare labels."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 9, n_groups)
    groups = np.repeat(rng.permutation(10 * n_groups)[:n_groups], sizes)
    prevalence = np.geomspace(0.4, 0.02, n_labels)
    group_prone = rng.random((n_groups, n_labels)) < prevalence
    per_group = np.repeat(group_prone, sizes, axis=0)
    Y = (per_group & (rng.random(per_group.shape) < 0.7)).astype(np.uint8)
    return np.zeros((len(groups), 2)), Y, groups


def _max_deviation(Y, test_folds):
    """Per label, the largest |positives in a test fold - ideal| over the folds."""
    ideal = Y.sum(axis=0) / len(test_folds)
    return np.array([np.abs(Y[test].sum(axis=0) - ideal) for test in test_folds]).max(axis=0)


def _folds(cv, Y, groups=None):
    return [test for _, test in cv.split(np.zeros((len(Y), 1)), Y, groups)]


@pytest.mark.parametrize("n_groups, n_labels, n_splits", [(12, 2, 2), (80, 5, 5), (150, 14, 4)])
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("shuffle", [False, True])
def test_folds_partition_samples_and_never_split_a_group(n_groups, n_labels, n_splits, seed, shuffle):
    X, Y, groups = _grouped_problem(n_groups, n_labels, seed)
    cv = MultilabelStratifiedGroupKFold(n_splits, shuffle=shuffle, random_state=seed if shuffle else None)
    assert cv.get_n_splits(X, Y, groups) == n_splits
    splits = list(cv.split(X, Y, groups))
    assert len(splits) == n_splits
    tests = np.concatenate([test for _, test in splits])
    np.testing.assert_array_equal(np.sort(tests), np.arange(len(Y)))  # each sample in one test fold
    for train, test in splits:
        assert len(test) > 0
        np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(len(Y)))
        assert not set(groups[train]) & set(groups[test])


def test_singleton_groups_match_iterstrat():
    # With one sample per group the method is Sechidis' iterative stratification.
    _, Y, _ = _grouped_problem(400, 6, seed=0)
    groups = np.arange(len(Y))
    ours = _max_deviation(Y, _folds(MultilabelStratifiedGroupKFold(5, shuffle=True, random_state=0), Y, groups))
    theirs = _max_deviation(Y, _folds(MultilabelStratifiedKFold(5, shuffle=True, random_state=0), Y))
    assert (ours <= theirs + 1).all(), (ours, theirs)


def test_stratifies_better_than_group_kfold_on_synthetic_data():
    X, Y, groups = _grouped_problem(300, 8, seed=1)
    ours = _max_deviation(Y, _folds(MultilabelStratifiedGroupKFold(5), Y, groups))
    group_kfold = _max_deviation(Y, _folds(GroupKFold(5), Y, groups))
    assert ours.sum() < 0.2 * group_kfold.sum()  # measured 6.6 vs 78.8


def test_random_state_and_shuffle():
    X, Y, groups = _grouped_problem(100, 5, seed=2)

    def assignment(cv):
        fold = np.empty(len(Y), dtype=int)
        for k, (_, test) in enumerate(cv.split(X, Y, groups)):
            fold[test] = k
        return fold

    plain = assignment(MultilabelStratifiedGroupKFold(4))
    np.testing.assert_array_equal(plain, assignment(MultilabelStratifiedGroupKFold(4)))
    seeded = [assignment(MultilabelStratifiedGroupKFold(4, shuffle=True, random_state=s)) for s in range(3)]
    np.testing.assert_array_equal(
        seeded[0], assignment(MultilabelStratifiedGroupKFold(4, shuffle=True, random_state=0))
    )
    assert not np.array_equal(seeded[0], plain)
    assert not np.array_equal(seeded[0], seeded[1]) and not np.array_equal(seeded[1], seeded[2])
    # The same split again from a RandomState instance with the same seed.
    np.testing.assert_array_equal(
        seeded[1],
        assignment(MultilabelStratifiedGroupKFold(4, shuffle=True, random_state=np.random.RandomState(1))),
    )


@pytest.mark.parametrize(
    "params, y, groups, match",
    [
        ({}, "ok", None, "groups"),
        ({}, "1d", "ok", "2-D"),
        ({}, "non01", "ok", "0 and 1"),
        ({}, None, "ok", "y is required"),
        ({}, "ok", "short", "inconsistent numbers of samples"),
        ({"n_splits": 1}, "ok", "ok", "n_splits"),
        ({"n_splits": 2.5}, "ok", "ok", "n_splits"),
        ({"random_state": 0}, "ok", "ok", "shuffle is False"),
        ({"n_splits": 7}, "ok", "few", "6 distinct groups"),
    ],
)
def test_errors(params, y, groups, match):
    X, Y, g = _grouped_problem(20, 3, seed=3)
    y = {"ok": Y, "1d": Y[:, 0], "non01": Y * 2, None: None}[y]
    groups = {"ok": g, None: None, "short": g[:-1], "few": np.arange(len(Y)) % 6}[groups]
    with pytest.raises(ValueError, match=match):
        list(MultilabelStratifiedGroupKFold(**params).split(X, y, groups))


def test_works_in_cross_validate_and_clones():
    X, Y, groups = _grouped_problem(60, 3, seed=4)
    X = np.random.default_rng(0).normal(size=(len(Y), 4)) + Y[:, :1]
    cv = MultilabelStratifiedGroupKFold(3, shuffle=True, random_state=0)
    result = cross_validate(
        OneVsRestClassifier(LogisticRegression(solver="liblinear")), X, Y, groups=groups, cv=cv,
        return_indices=True, error_score="raise",
    )
    for train, test in zip(result["indices"]["train"], result["indices"]["test"]):
        assert not set(groups[train]) & set(groups[test])
    assert repr(cv) == "MultilabelStratifiedGroupKFold(n_splits=3, random_state=0, shuffle=True)"


# -- train_test_split_by_patient -----------------------------------------------------

def test_split_returns_like_sklearn_and_keeps_patients_apart():
    X, Y, groups = _grouped_problem(80, 4, seed=5)
    frame = pd.DataFrame(X, columns=["a", "b"], index=np.arange(len(Y)) * 10)
    as_list = list(range(len(Y)))
    out = train_test_split_by_patient(frame, Y, as_list, groups, groups=groups, stratify=Y, random_state=0)
    assert len(out) == 8
    f_tr, f_te, Y_tr, Y_te, l_tr, l_te, g_tr, g_te = out
    assert isinstance(f_tr, pd.DataFrame) and isinstance(l_te, list)
    assert not set(g_tr) & set(g_te)
    assert len(f_tr) + len(f_te) == len(Y)
    np.testing.assert_array_equal(f_te.index.to_numpy() // 10, l_te)
    np.testing.assert_array_equal(Y_te, Y[l_te])
    assert abs(len(l_te) / len(Y) - 0.2) <= 0.03


@pytest.mark.parametrize("seed", range(3))
def test_split_without_stratify_and_with_int_test_size(seed):
    X, Y, groups = _grouped_problem(90, 3, seed=seed)
    _, X_te, g_tr, g_te = train_test_split_by_patient(X, groups, groups=groups, random_state=seed)
    assert not set(g_tr) & set(g_te)
    assert abs(len(X_te) / len(X) - 0.2) <= 0.03
    _, X_te = train_test_split_by_patient(X, groups=groups, test_size=100, random_state=seed)
    assert abs(len(X_te) - 100) <= 8  # within one group's size


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"groups": None}, "groups"),
        ({"test_size": 1.5}, "test_size"),
        ({"test_size": 0}, "test_size"),
        ({"stratify": "1d"}, "2-D"),
    ],
)
def test_split_errors(kwargs, match):
    X, Y, groups = _grouped_problem(20, 3, seed=6)
    kwargs = {"groups": groups, **kwargs}
    if kwargs.get("stratify") == "1d":
        kwargs["stratify"] = Y[:, 0]
    with pytest.raises(ValueError, match=match):
        train_test_split_by_patient(X, **kwargs)
    with pytest.raises(ValueError, match="At least one array"):
        train_test_split_by_patient(groups=groups)


# -- real data ---------------------------------------------------------------------

def _read_labels(csv):
    frame = pd.read_csv(csv, usecols=["Finding Labels", "Patient ID"])
    Y = frame["Finding Labels"].str.get_dummies("|").reindex(columns=FINDINGS, fill_value=0)
    return Y.to_numpy(np.uint8), frame["Patient ID"].to_numpy()


@pytest.fixture(scope="module")
def nih64(nih64_root):
    return _read_labels(nih64_root / "Data_Entry_2017.csv")


@pytest.mark.real_data
def test_nih64_kfold_against_iterstrat_and_group_kfold(nih64):
    Y, groups = nih64
    assert Y.shape == (995, 14) and len(np.unique(groups)) == 263
    ideal = Y.sum(axis=0) / 5
    per_patient = pd.DataFrame(Y).groupby(groups).sum().to_numpy()
    group_floor = np.maximum(per_patient.max(axis=0) - ideal, 0).max()  # 14.8 (Edema)
    group_kfold = _max_deviation(Y, _folds(GroupKFold(5), Y, groups))
    for seed in range(3):
        folds = _folds(MultilabelStratifiedGroupKFold(5, shuffle=True, random_state=seed), Y, groups)
        for test in folds:
            assert not set(groups[test]) & set(groups[np.setdiff1d(np.arange(len(Y)), test)])
        ours = _max_deviation(Y, folds)
        iterstrat = _max_deviation(Y, _folds(MultilabelStratifiedKFold(5, shuffle=True, random_state=seed), Y))
        assert ours.max() <= max(iterstrat.max(), group_floor) + 2, (ours, iterstrat, group_floor)
        assert ours.max() <= group_kfold.max()
        assert ours.sum() <= 0.75 * group_kfold.sum(), (ours.sum(), group_kfold.sum())


@pytest.mark.real_data
def test_nih64_train_test_split_by_patient(nih64):
    Y, groups = nih64
    ours, random_split = [], []
    for seed in range(10):
        train, test = train_test_split_by_patient(
            np.arange(len(Y)), groups=groups, stratify=Y, test_size=0.2, random_state=seed
        )
        assert not set(groups[train]) & set(groups[test])
        assert abs(len(test) / len(Y) - 0.2) <= 0.03
        gap = np.abs(Y[test].mean(axis=0) - Y[train].mean(axis=0)).mean()
        assert gap <= 0.04, (seed, gap)
        ours.append(gap)
        train, test = next(GroupShuffleSplit(1, test_size=0.2, random_state=seed).split(Y, Y, groups))
        random_split.append(np.abs(Y[test].mean(axis=0) - Y[train].mean(axis=0)).mean())
    assert np.mean(ours) <= 0.6 * np.mean(random_split), (np.mean(ours), np.mean(random_split))


@pytest.mark.real_data
def test_full_label_file_matches_iterstrat(full_label_file):
    Y, groups = _read_labels(full_label_file)
    assert Y.shape == (112120, 14)
    ours = _max_deviation(Y, _folds(MultilabelStratifiedGroupKFold(5, shuffle=True, random_state=0), Y, groups))
    iterstrat = _max_deviation(Y, _folds(MultilabelStratifiedKFold(5, shuffle=True, random_state=0), Y))
    assert (ours <= iterstrat + 2).all(), (ours, iterstrat)
    train, test = train_test_split_by_patient(
        np.arange(len(Y)), groups=groups, stratify=Y, test_size=0.2, random_state=0
    )
    assert not np.isin(groups[test], groups[train]).any()
    assert abs(len(test) / len(Y) - 0.2) <= 0.005
    np.testing.assert_allclose(Y[test].mean(axis=0), Y[train].mean(axis=0), atol=0.002)
