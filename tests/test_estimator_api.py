"""scikit-learn's API on every image estimator: the data-free checks, fit signatures, tags.

Image estimators take stacks of images (or paths), not the 2-D tables that
``check_estimator`` feeds, so its data-driven checks cannot run. The checks that
need no data run as they are; the fit signature and the tags are checked below
on a small image stack, and the modules' own tests check the other properties
(clone, pickling, fit/transform contracts) on images.
"""

import inspect

import numpy as np
import pytest
from PIL import Image
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import estimator_checks, get_tags

from skcxr.features import HOGFeatures, LBPFeatures, ResNetEmbedder
from skcxr.preprocessing import CXRPreprocessor

API_CHECKS = [
    "check_no_attributes_set_in_init",
    "check_get_params_invariance",
    "check_set_params",
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_parameters_default_constructible",
    "check_mixin_order",
    "check_valid_tag_types",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_estimator_tags_renamed",
]
ESTIMATORS = [CXRPreprocessor(), LBPFeatures(), HOGFeatures(), ResNetEmbedder()]
# The same estimators set up for a small 32-px stack (ResNetEmbedder on the CPU: exact comparisons).
SMALL = [
    CXRPreprocessor(size=32),
    LBPFeatures(grid=(2, 2)),
    HOGFeatures(pixels_per_cell=(8, 8)),
    ResNetEmbedder(image_size=32, device="cpu", random_state=0),
]


def _name(est):
    return type(est).__name__


@pytest.mark.parametrize("check", API_CHECKS)
@pytest.mark.parametrize("est", ESTIMATORS, ids=_name)
def test_sklearn_api_checks_without_data(est, check):
    getattr(estimator_checks, check)(type(est).__name__, clone(est))


def _stack(n=4, size=32, seed=0):
    """Preprocessed-looking images: float32 (n, size, size) in [-1, 1]."""
    return np.random.default_rng(seed).uniform(-1, 1, (n, size, size)).astype(np.float32)


def _Y(n=4):
    return np.array([[0, 1, 0], [1, 0, 0], [1, 1, 0], [0, 0, 1]])[:n]


@pytest.mark.parametrize("est", SMALL, ids=_name)
def test_fit_takes_y_positionally_as_keyword_or_not_at_all(est):
    params = list(inspect.signature(type(est).fit).parameters.values())
    assert [p.name for p in params[:3]] == ["self", "X", "y"] and params[2].default is None
    X, Y = _stack(), _Y()
    want = clone(est).fit(X).transform(X)
    for fit in (lambda e: e.fit(X), lambda e: e.fit(X, Y), lambda e: e.fit(X, y=Y)):
        fitted = clone(est)
        assert fit(fitted) is fitted
        np.testing.assert_array_equal(fitted.transform(X), want)
    np.testing.assert_array_equal(clone(est).fit_transform(X, y=Y), want)
    np.testing.assert_array_equal(clone(est).fit_transform(X), want)


@pytest.fixture(scope="module")
def png_paths(tmp_path_factory):
    """Four 8-bit grayscale PNGs of different sizes."""
    root = tmp_path_factory.mktemp("pngs")
    rng = np.random.default_rng(1)
    paths = []
    for i, shape in enumerate([(40, 48), (32, 32), (64, 56), (48, 40)]):
        path = root / f"image_{i}.png"
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("est", SMALL, ids=_name)
def test_tags_match_what_fit_and_transform_do(est, png_paths):
    tags = get_tags(est)
    X = _stack()
    assert tags.transformer_tags is not None and not tags.target_tags.required  # fit(X) works: tested above
    # Output dtype: float32 whatever comes in, so float32 is the one dtype preserved.
    assert tags.transformer_tags.preserves_dtype == ["float32"]
    for dtype in (np.float32, np.float64):
        Xd = X.astype(dtype)
        assert clone(est).fit(Xd).transform(Xd).dtype == np.float32
    # Input: stacks of 2-D images (3-D arrays), not 2-D tables, no NaN.
    assert tags.input_tags.three_d_array and not tags.input_tags.two_d_array
    with pytest.raises(ValueError, match=r"shape \(4, 32\)"):
        clone(est).fit(X[:, 0, :])  # a 2-D table (n, features)
    assert not tags.input_tags.allow_nan
    X_nan = X.copy()
    X_nan[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clone(est).fit(X_nan)
    # Strings: the estimators tagged string=True read image paths, the others refuse them.
    if tags.input_tags.string:
        out = clone(est).fit(png_paths).transform(png_paths)
        assert out.dtype == np.float32 and len(out) == len(png_paths)
    else:
        with pytest.raises(ValueError, match="paths"):
            clone(est).fit(png_paths)
    # requires_fit: only the stateless preprocessor transforms unfitted.
    if tags.requires_fit:
        with pytest.raises(NotFittedError):
            clone(est).transform(X)
    else:
        assert clone(est).transform(X).dtype == np.float32
