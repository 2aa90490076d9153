"""make_phantoms: shapes, determinism, prevalence, ground-truth consistency, anatomy, bad arguments."""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from skcxr.datasets import FINDINGS
from skcxr.datasets import phantoms
from skcxr.datasets.phantoms import DEFAULT_PREVALENCE, PHANTOM_FINDINGS, make_phantoms

S = 64


@pytest.fixture(scope="module")
def big():
    """400 small phantoms with the default prevalences (about 1 s)."""
    return make_phantoms(400, size=S, random_state=0)


def test_shapes_and_dtypes():
    d = make_phantoms(5, size=48, random_state=1)
    L = len(PHANTOM_FINDINGS)
    assert d.images.shape == (5, 48, 48) and d.images.dtype == np.uint8
    assert d.Y.shape == (5, L) and d.Y.dtype == np.uint8
    assert set(np.unique(d.Y)) <= {0, 1}
    assert d.target_names == list(PHANTOM_FINDINGS)
    assert d.lung_masks.shape == (5, 48, 48) and d.lung_masks.dtype == bool
    assert d.lesion_masks.shape == (5, L, 48, 48) and d.lesion_masks.dtype == bool
    assert isinstance(d.boxes, pd.DataFrame)
    assert list(d.boxes.columns) == ["image", "finding", "x", "y", "w", "h"]
    np.testing.assert_array_equal(d.patient_ids, np.arange(5))
    assert d.ctr.shape == (5,)
    # the images use the grey range like a radiograph: dark air, bright bone and abdomen
    assert d.images.min() < 30 and d.images.max() > 220


def test_target_names_are_nih_names_in_nih_order():
    positions = [FINDINGS.index(name) for name in PHANTOM_FINDINGS]
    assert positions == sorted(positions)
    assert {"Cardiomegaly", "Effusion", "Nodule", "Mass", "Pneumothorax", "Consolidation",
            "Infiltration"} <= set(PHANTOM_FINDINGS)


def test_deterministic_and_varied():
    a = make_phantoms(6, size=S, random_state=3)
    b = make_phantoms(6, size=S, random_state=3)
    c = make_phantoms(6, size=S, random_state=4)
    for key in ("images", "Y", "lung_masks", "lesion_masks", "ctr"):
        np.testing.assert_array_equal(a[key], b[key])
    pd.testing.assert_frame_equal(a.boxes, b.boxes)
    assert not np.array_equal(a.images, c.images)
    # no two images alike, even without findings
    d = make_phantoms(6, size=S, prevalence=0.0, random_state=0)
    diffs = [np.abs(d.images[i].astype(int) - d.images[j]).mean() for i in range(6) for j in range(i)]
    assert min(diffs) > 2


def test_rng_instance_accepted():
    a = make_phantoms(2, size=32, random_state=np.random.RandomState(5))
    b = make_phantoms(2, size=32, random_state=np.random.RandomState(5))
    np.testing.assert_array_equal(a.images, b.images)


def test_default_prevalence_honoured(big):
    expected = np.array([DEFAULT_PREVALENCE[name] for name in big.target_names])
    # binomial sd at n=400 is <= 0.025; allow about 3 sd
    np.testing.assert_allclose(big.Y.mean(0), expected, atol=0.075)
    assert 0.05 < (big.Y.sum(1) == 0).mean() < 0.4  # some "No Finding" images
    assert (big.Y.sum(1) >= 2).any()  # several findings per image happen


def test_prevalence_float_and_dict():
    d = make_phantoms(400, size=32, prevalence=0.5, random_state=1)
    np.testing.assert_allclose(d.Y.mean(0), 0.5, atol=0.08)
    d = make_phantoms(200, size=32, prevalence={"Nodule": 1.0, "Mass": 0.0}, random_state=1)
    k = d.target_names.index
    assert d.Y[:, k("Nodule")].all() and not d.Y[:, k("Mass")].any()
    assert 0.1 < d.Y[:, k("Effusion")].mean() < 0.4  # the others keep their default


def test_lesion_masks_nonempty_exactly_where_positive(big):
    nonempty = big.lesion_masks.any(axis=(2, 3))
    np.testing.assert_array_equal(nonempty, big.Y.astype(bool))


def test_lesion_masks_sit_where_they_belong(big):
    k = big.target_names.index
    lung = big.lung_masks
    for name in ("Infiltration", "Consolidation", "Pneumothorax"):
        pos = big.Y[:, k(name)] == 1
        m = big.lesion_masks[pos, k(name)]
        assert not (m & ~lung[pos]).any(), name  # inside the lung field
    for name in ("Nodule", "Mass"):
        pos = big.Y[:, k(name)] == 1
        m = big.lesion_masks[pos, k(name)]
        inside = (m & lung[pos]).sum((1, 2)) / m.sum((1, 2))
        assert np.median(inside) > 0.9, name
    for name in ("Cardiomegaly", "Effusion"):  # heart and fluid are not aerated lung
        pos = big.Y[:, k(name)] == 1
        assert not (big.lesion_masks[pos, k(name)] & lung[pos]).any(), name


def test_lung_masks_plausible(big):
    frac = big.lung_masks.mean((1, 2))
    assert frac.min() > 0.08 and frac.max() < 0.45
    assert 0.15 < np.median(frac) < 0.35
    # two lungs: the patient's left (image right) is the smaller one, the heart takes room
    right_lung = big.lung_masks[:, :, : S // 2].sum((1, 2))
    left_lung = big.lung_masks[:, :, S // 2 :].sum((1, 2))
    assert (right_lung > 0).all() and (left_lung > 0).all()
    assert np.median(left_lung / right_lung) < 0.95


def _width(mask):
    cols = np.flatnonzero(mask.any(0))
    return cols[-1] - cols[0] + 1


def test_cardiomegaly_heart_width_ratio(big):
    k = big.target_names.index("Cardiomegaly")
    pos = big.Y[:, k] == 1
    assert (big.ctr[pos] > 0.5).all() and (big.ctr[~pos] < 0.5).all()
    # measured independently on the returned masks: heart / outer lung width
    for i in np.flatnonzero(pos)[:30]:
        heart = big.lesion_masks[i, k]
        assert _width(heart) / _width(big.lung_masks[i]) > 0.5
        # the heart lies mostly to the image's right of the centre line (patient's left)
        cols = np.nonzero(heart)[1]
        assert cols.mean() > (S - 1) / 2


def test_boxes_match_masks(big):
    assert len(big.boxes) == int(big.Y.sum())
    for row in big.boxes.sample(40, random_state=0).itertuples():
        m = big.lesion_masks[row.image, big.target_names.index(row.finding)]
        r, c = np.nonzero(m)
        box = (c.min(), r.min(), c.max() - c.min() + 1, r.max() - r.min() + 1)
        assert box == (row.x, row.y, row.w, row.h)


def test_lesion_sizes_at_224():
    d = make_phantoms(6, size=224, prevalence={"Nodule": 1.0, "Mass": 1.0}, random_state=2)
    b = d.boxes
    nodules = b[b.finding == "Nodule"]
    masses = b[b.finding == "Mass"]
    assert nodules.w.between(4, 16).all() and nodules.h.between(4, 16).all()
    assert (masses[["w", "h"]].max(axis=1) >= 20).all()


def test_cardiomegaly_separable_by_a_simple_feature(big):
    """Share of bright pixels across the heart's level: a crude cardiothoracic measurement."""
    im = big.images.astype(float)
    band = im[:, int(0.5 * S) : int(0.62 * S), int(0.15 * S) : int(0.85 * S)]
    thorax = im[:, int(0.2 * S) : int(0.6 * S), int(0.1 * S) : int(0.9 * S)].reshape(len(im), -1)
    bright = band > np.percentile(thorax, 60, axis=1)[:, None, None]
    k = big.target_names.index("Cardiomegaly")
    assert roc_auc_score(big.Y[:, k], bright.mean((1, 2))) > 0.8


def test_effusion_brightens_the_lung_bases(big):
    k = big.target_names.index("Effusion")
    fluid = big.lesion_masks[:, k]
    pos = big.Y[:, k] == 1
    im = big.images.astype(float)
    # inside the fluid the image is brighter than the same patient's aerated lung
    for i in np.flatnonzero(pos)[:30]:
        assert im[i][fluid[i]].mean() > im[i][big.lung_masks[i]].mean() + 10


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n": 0}, "n must be"),
        ({"n": -3}, "n must be"),
        ({"n": 2.5}, "n must be"),
        ({"n": 2, "size": 8}, "size must be"),
        ({"n": 2, "prevalence": 1.5}, r"\[0, 1\]"),
        ({"n": 2, "prevalence": -0.1}, r"\[0, 1\]"),
        ({"n": 2, "prevalence": {"Nodule": 2.0}}, "Nodule"),
        ({"n": 2, "prevalence": "high"}, "prevalence must be"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_phantoms(**kwargs)


def test_unknown_finding_lists_valid_ones():
    with pytest.raises(ValueError, match="Nodules") as err:
        make_phantoms(2, prevalence={"Nodules": 0.5})
    for name in PHANTOM_FINDINGS:
        assert name in str(err.value)


def test_docstring_example():
    result = doctest.testmod(phantoms, verbose=False)
    assert result.attempted > 0 and result.failed == 0
