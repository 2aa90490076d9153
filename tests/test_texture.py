"""LBPFeatures and HOGFeatures on real preprocessed NIH images: values, names, pandas output, API, errors."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from skimage.feature import hog, local_binary_pattern
from sklearn import config_context
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline, make_union
from sklearn.utils.metadata_routing import get_routing_for_object

from skcxr.features import HOGFeatures, LBPFeatures, texture
from skcxr.preprocessing import CXRPreprocessor

NIH_FILES = ["00000075_000.png", "00000574_000.png", "00002578_000.png", "00000679_000.png", "00000797_000.png"]


@pytest.fixture(scope="module")
def nih_paths(nih_root):
    return [str(nih_root / "images" / name) for name in NIH_FILES]


@pytest.fixture(scope="module")
def X(nih_paths):
    """Five real radiographs preprocessed to 64 px, float32 in [-1, 1]."""
    return CXRPreprocessor(size=64).transform(nih_paths)


def _uint8(image):
    lo, hi = image.min(), image.max()
    return np.floor((image - lo) / (hi - lo) * 255 + 0.5).astype(np.uint8)


# --- LBP ---------------------------------------------------------------------------


@pytest.mark.parametrize("grid", [(4, 4), (3, 5)])
def test_lbp_equals_per_cell_histograms(X, grid):
    lbp = LBPFeatures(grid=grid).fit(X)
    F = lbp.transform(X)
    gr, gc = grid
    assert F.shape == (5, gr * gc * 10) and F.dtype == np.float32
    # Reference: scikit-image codes + np.histogram on each cell (cells as equal as possible).
    row_cell, col_cell = np.arange(64) * gr // 64, np.arange(64) * gc // 64
    for i, image in enumerate(X):
        codes = local_binary_pattern(_uint8(image), 8, 1, "uniform")
        want = []
        for r in range(gr):
            for c in range(gc):
                cell = codes[row_cell == r][:, col_cell == c]
                want.append(np.histogram(cell, bins=10, range=(0, 10))[0] / cell.size)
        np.testing.assert_allclose(F[i], np.concatenate(want), rtol=1e-6)
    np.testing.assert_allclose(F.reshape(5, gr * gc, 10).sum(-1), 1, rtol=1e-5)


def test_lbp_depends_on_gray_level_order_not_range(X):
    lbp = LBPFeatures().fit(X)
    F = lbp.transform(X)
    G = lbp.transform(X * 0.5 + 0.5)  # e.g. a preprocessor with out_range=(0, 1)
    # Rounding to uint8 may move a few pixels by one level: each is 1/256 of a cell.
    assert np.abs(F - G).max() <= 3 / 256
    assert not np.allclose(F[0], F[1])  # different radiographs, different texture


@pytest.mark.parametrize(
    "params, bins",
    [({"method": "nri_uniform"}, 59), ({"method": "default"}, 256), ({"method": "ror"}, 256),
     ({"P": 16, "R": 2}, 18), ({"R": 1.5}, 10)],
)
def test_lbp_variants(X, params, bins):
    lbp = LBPFeatures(grid=(2, 2), **params).fit(X)
    F = lbp.transform(X)
    assert F.shape == (5, 4 * bins) == (5, lbp.n_features_out_)
    np.testing.assert_allclose(F.reshape(5, 4, bins).sum(-1), 1, rtol=1e-5)


def test_lbp_feature_names(X):
    names = LBPFeatures(grid=(2, 3)).fit(X).get_feature_names_out()
    assert names.dtype == object and len(names) == 60 == len(set(names))
    assert names[0] == "lbp_r0c0_b0" and names[11] == "lbp_r0c1_b1" and names[-1] == "lbp_r1c2_b9"


# --- HOG ---------------------------------------------------------------------------


def test_hog_equals_skimage(X):
    est = HOGFeatures(orientations=8, pixels_per_cell=(8, 8), cells_per_block=(2, 2)).fit(X)
    F = est.transform(X)
    want = np.stack([hog(x, 8, (8, 8), (2, 2), block_norm="L2-Hys") for x in X])
    assert F.shape == want.shape == (5, 7 * 7 * 2 * 2 * 8) and F.dtype == np.float32
    np.testing.assert_allclose(F, want, rtol=1e-5, atol=1e-7)


def test_hog_feature_names(X):
    est = HOGFeatures(orientations=9, pixels_per_cell=(16, 16), cells_per_block=(2, 2)).fit(X)
    names = est.get_feature_names_out()
    assert len(names) == est.n_features_out_ == 3 * 3 * 2 * 2 * 9 == len(set(names))
    assert names[0] == "hog_r0c0_cell0_0_o0"
    assert names[9] == "hog_r0c0_cell0_1_o0"
    assert names[-1] == "hog_r2c2_cell1_1_o8"


def test_hog_image_too_small():
    with pytest.raises(ValueError, match="smaller than one block"):
        HOGFeatures(pixels_per_cell=(16, 16), cells_per_block=(3, 3)).fit(np.zeros((1, 40, 40)))


# skcxr.features.texture guards its import of scikit-image's private kernel skimage.feature._hoghistogram;
# without it HOGFeatures falls back to the public skimage.feature.hog.
def test_hog_falls_back_to_public_skimage_hog(monkeypatch):
    assert texture._hoghistogram is not None  # the fast path is the one normally taken
    X = np.random.default_rng(0).uniform(-1, 1, (3, 48, 40)).astype(np.float32)
    est = HOGFeatures(orientations=8, pixels_per_cell=(8, 8), cells_per_block=(2, 2)).fit(X)
    fast = est.transform(X)
    monkeypatch.setattr(texture, "_hoghistogram", None)  # a scikit-image without the private module
    slow = est.transform(X)
    assert slow.dtype == np.float32 and slow.shape == fast.shape
    np.testing.assert_allclose(slow, fast, rtol=1e-5, atol=1e-6)
    want = np.stack([hog(x, 8, (8, 8), (2, 2), block_norm="L2-Hys") for x in X])
    np.testing.assert_allclose(slow, want, rtol=1e-6, atol=1e-7)


# --- shared behaviour ----------------------------------------------------------------

ESTIMATORS = [LBPFeatures(grid=(2, 2)), HOGFeatures(pixels_per_cell=(16, 16))]
IDS = ["LBPFeatures", "HOGFeatures"]


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_pandas_output_columns_are_feature_names(X, est):
    est = clone(est).set_output(transform="pandas")
    df = est.fit_transform(X)
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == list(est.get_feature_names_out())
    assert (df.dtypes == np.float32).all()
    np.testing.assert_array_equal(df.to_numpy(), clone(est).set_output(transform="default").fit(X).transform(X))


def test_pipeline_with_feature_union_to_pandas(nih_paths):
    pipe = make_pipeline(CXRPreprocessor(size=64), make_union(LBPFeatures(), HOGFeatures()))
    df = pipe.set_output(transform="pandas").fit_transform(nih_paths[:2])
    union = pipe[-1]
    assert df.shape == (2, 160 + 324) and list(df.columns) == list(union.get_feature_names_out())
    assert df.columns[0] == "lbpfeatures__lbp_r0c0_b0" and df.columns[-1].startswith("hogfeatures__hog_")


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_parallel_equals_sequential(X, est):
    X16 = np.concatenate([X] * 4)  # 20 images: several tasks per worker
    est = clone(est).fit(X16)
    np.testing.assert_array_equal(clone(est).set_params(n_jobs=2).fit(X16).transform(X16), est.transform(X16))


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_clone_get_params_pickle(X, est):
    est = clone(est).fit(X)
    assert clone(est).get_params() == est.get_params()
    assert not hasattr(clone(est), "image_shape_")
    again = pickle.loads(pickle.dumps(est))
    assert again.image_shape_ == (64, 64)
    np.testing.assert_array_equal(again.transform(X), est.transform(X))


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_shape_and_input_errors(X, est):
    with pytest.raises(NotFittedError):
        clone(est).transform(X)
    est = clone(est).fit(X)
    with pytest.raises(ValueError, match=r"fitted on images of shape \(64, 64\)"):
        est.transform(np.zeros((2, 64, 48), dtype=np.float32))
    bad_nan = X.copy()
    bad_nan[1, 3, 3] = np.nan
    for bad, match in [
        (bad_nan, "NaN"),
        (X[0], r"\(n, H, W\)"),
        (X[..., None], r"\(n, H, W\)"),
        (X[:0], "empty"),
        (["a.png", "b.png"], "CXRPreprocessor"),
    ]:
        with pytest.raises(ValueError, match=match):
            est.transform(bad)
        with pytest.raises(ValueError, match=match):
            clone(est).fit(bad)


def test_constant_image_gives_finite_features():
    X = np.zeros((2, 64, 64), dtype=np.float32)
    X[1] = 0.3
    F = LBPFeatures().fit_transform(X)
    np.testing.assert_allclose(F.reshape(2, 16, 10).sum(-1), 1, rtol=1e-6)
    H = HOGFeatures().fit_transform(X)
    assert np.isfinite(H).all() and not H.any()


@pytest.mark.parametrize(
    "est, match",
    [
        # scikit-learn's messages (constraints and the pair checks) name the parameter and the estimator.
        (LBPFeatures(P=0), "'P' parameter of LBPFeatures"),
        (LBPFeatures(P=8.0), "'P' parameter of LBPFeatures"),
        (LBPFeatures(R=0), "'R' parameter of LBPFeatures"),
        (LBPFeatures(method="var"), "'method' parameter of LBPFeatures"),
        (LBPFeatures(grid=(0, 4)), "'grid' parameter of LBPFeatures"),
        (LBPFeatures(grid=4), "'grid' parameter of LBPFeatures"),
        (LBPFeatures(n_jobs=0), "'n_jobs' parameter of LBPFeatures"),
        (HOGFeatures(orientations=0), "'orientations' parameter of HOGFeatures"),
        (HOGFeatures(pixels_per_cell=(16,)), "'pixels_per_cell' parameter of HOGFeatures"),
        (HOGFeatures(cells_per_block=(2, 0)), "'cells_per_block' parameter of HOGFeatures"),
        (HOGFeatures(n_jobs=1.5), "'n_jobs' parameter of HOGFeatures"),
        # Checks across parameters, or parameters against the images.
        (LBPFeatures(method="default", P=16), "method='default' with P=16 gives 65536 bins per cell"),
        (LBPFeatures(grid=(100, 4)), "more cells than pixels"),
    ],
)
def test_bad_params_raise_at_fit(est, match):
    with pytest.raises(ValueError, match=match):
        est.fit(np.zeros((2, 64, 64), dtype=np.float32))


# sklearn.utils.estimator_checks.check_estimator feeds 2-D tabular data, not image
# stacks, and skips estimators tagged input_tags.two_d_array=False. The checks that
# need no data run here; the data-dependent ones (fit returns self, clone, pickle,
# shape mismatch at transform, n_jobs invariance, pandas output) are tested above.
@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_fit_returns_self_and_keeps_params(X, est):
    est = clone(est)
    params = est.get_params()
    assert est.fit(X) is est
    assert est.get_params() == params


# ``groups`` (patient ids) reaches every member of a FeatureUnion beside a ResNetEmbedder: the texture
# transformers accept it and ignore it, and with metadata routing on they do not request it.
@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_fit_accepts_and_ignores_groups(X, est):
    Y = np.array([[0, 1], [1, 0], [1, 1], [0, 0], [1, 0]])
    groups = np.array([7, 7, 8, 9, 9])
    want = clone(est).fit(X).transform(X)
    fitted = clone(est)
    assert fitted.fit(X, Y, groups=groups) is fitted
    np.testing.assert_array_equal(fitted.transform(X), want)
    np.testing.assert_array_equal(clone(est).fit(X, y=Y, groups=groups).transform(X), want)
    # Metadata routing off: a FeatureUnion hands its fit parameters to every member.
    np.testing.assert_array_equal(make_union(clone(est)).fit(X, Y, groups=groups).transform(X), want)
    with config_context(enable_metadata_routing=True):
        routing = get_routing_for_object(clone(est))
        assert routing.consumes("fit", ["groups"]) == set()
        # UNUSED, not merely unrequested: setting a request for it is refused.
        assert not hasattr(clone(est), "set_fit_request")
