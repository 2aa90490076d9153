"""CXRPreprocessor on real NIH files and on arrays of every dtype/layout; bad inputs; sklearn API."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from PIL import Image
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from skcxr.preprocessing import CXRPreprocessor

# 1024 px L, 512 px L, 512 px RGBA (NIH ships a few RGBA PNGs), 512 px L.
NIH_FILES = ["00000075_000.png", "00000574_000.png", "00002578_000.png", "00000679_000.png"]


@pytest.fixture(scope="module")
def nih_paths(nih_root):
    paths = [str(nih_root / "images" / name) for name in NIH_FILES]
    assert Image.open(paths[2]).mode == "RGBA"
    return paths


@pytest.fixture(scope="module")
def nih_arrays(nih_paths):
    """The raw pixels as Pillow gives them: uint8 (H, W) or (H, W, 4), different sizes."""
    return [np.asarray(Image.open(p)) for p in nih_paths]


def _ramp(h=80, w=96):
    rr, cc = np.mgrid[0:h, 0:w]
    return (np.sin(rr / 9.0) + np.cos(cc / 13.0) + rr / h).astype(np.float64)


# --- real files -----------------------------------------------------------------


def test_real_paths_give_float32_stack_in_range(nih_paths):
    Xt = CXRPreprocessor(size=64).fit_transform(nih_paths)
    assert Xt.shape == (4, 64, 64) and Xt.dtype == np.float32
    assert Xt.min() >= -1 and Xt.max() <= 1
    # Global equalisation spreads gray levels: about half the pixels below 0 in each image.
    below = (Xt < 0).mean(axis=(1, 2))
    assert np.all(np.abs(below - 0.5) < 0.1), below
    assert len({x.tobytes() for x in Xt}) == 4


def test_paths_and_their_arrays_give_the_same_images(nih_paths, nih_arrays):
    # A list of per-image arrays of different sizes, one RGBA: same result as the files.
    pre = CXRPreprocessor(size=64, equalize=None)
    from_files = pre.transform(nih_paths)
    from_arrays = pre.transform(nih_arrays)
    np.testing.assert_allclose(from_arrays, from_files, atol=1e-5)
    # No equalisation: per-image min-max reaches both ends of the range exactly.
    assert np.all(from_files.min(axis=(1, 2)) == -1) and np.all(from_files.max(axis=(1, 2)) == 1)


def test_equalize_variants_on_a_real_image(nih_paths):
    outs = {eq: CXRPreprocessor(size=64, equalize=eq).transform(nih_paths[:1]) for eq in ("global", "clahe", None)}
    assert not np.allclose(outs["global"], outs[None])
    assert not np.allclose(outs["clahe"], outs[None])
    assert not np.allclose(outs["clahe"], outs["global"])
    more = CXRPreprocessor(size=64, equalize="clahe", clip_limit=0.05).transform(nih_paths[:1])
    assert not np.allclose(more, outs["clahe"])  # clip_limit is used
    for out in [*outs.values(), more]:
        assert out.min() >= -1 and out.max() <= 1


def test_parallel_paths_equal_sequential(nih_paths):
    seq = CXRPreprocessor(size=32, batch_size=1).transform(nih_paths)
    par = CXRPreprocessor(size=32, batch_size=1, n_jobs=2).transform(nih_paths)
    np.testing.assert_array_equal(par, seq)


def test_missing_file_is_named(nih_paths, tmp_path):
    missing = str(tmp_path / "no_such_image.png")
    with pytest.raises(FileNotFoundError, match="no_such_image.png"):
        CXRPreprocessor(size=32).transform([nih_paths[0], missing])


def test_corrupt_file_is_named(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png at all")
    with pytest.raises(ValueError, match="broken.png"):
        CXRPreprocessor(size=32).transform([str(bad)])


# --- arrays -----------------------------------------------------------------------


def test_dtypes_and_value_ranges_give_the_same_images():
    base = np.round(_ramp() / _ramp().max() * 127 + 128).astype(np.uint8)[None]
    variants = {
        "uint8": base,
        "uint16": base.astype(np.uint16) * 257,
        "uint16 12-bit": base.astype(np.uint16) * 16,
        "int32": base.astype(np.int32) - 1000,
        "float64 [0,1]": base / 255.0,
        "float32 [0,255]": base.astype(np.float32),
        "float16": (base / 255.0).astype(np.float16),
    }
    pre = CXRPreprocessor(size=32, equalize=None)
    ref = pre.transform(base)
    for name, X in variants.items():
        atol = 2e-3 if X.dtype == np.float16 else 1e-4  # float16 keeps ~3 digits
        np.testing.assert_allclose(pre.transform(X), ref, atol=atol, err_msg=name)
    eq = CXRPreprocessor(size=32)
    ref_eq = eq.transform(base)
    for name, X in variants.items():
        assert np.abs(eq.transform(X) - ref_eq).mean() < 1e-3, name


def test_channel_layouts():
    gray = _ramp().astype(np.float32)
    rng = np.random.default_rng(0)
    alpha = rng.uniform(0, 1, gray.shape).astype(np.float32)
    pre = CXRPreprocessor(size=32)
    ref = pre.transform(gray[None])
    stacks = {
        "(n,H,W,1)": gray[None, :, :, None],
        "(n,H,W,3)": np.repeat(gray[None, :, :, None], 3, axis=3),
        "(n,H,W,4) alpha dropped": np.stack([gray, gray, gray, alpha], axis=-1)[None],
        "list of (H,W)": [gray],
        "list of (H,W,3)": [np.repeat(gray[:, :, None], 3, axis=2)],
    }
    for name, X in stacks.items():
        np.testing.assert_allclose(pre.transform(X), ref, atol=1e-4, err_msg=name)
    # Colour becomes Rec. 601 luminance.
    rgb = rng.uniform(0, 1, (1, 40, 40, 3))
    lum = rgb @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(pre.transform(rgb), pre.transform(lum), atol=1e-4)


def test_list_of_different_sizes_and_upsampling():
    images = [_ramp(80, 96), _ramp(20, 20), _ramp(300, 200).astype(np.float32)]
    Xt = CXRPreprocessor(size=48, out_range=(0, 1)).transform(images)
    assert Xt.shape == (3, 48, 48) and Xt.dtype == np.float32
    assert Xt.min() >= 0 and Xt.max() <= 1


def test_resize_is_antialiased():
    # A 1-pixel checkerboard on a smooth ramp: downscaling must average the
    # checkerboard away (a plain subsample keeps it at full contrast).
    ramp = _ramp(256, 256)
    ramp = (ramp - ramp.min()) / np.ptp(ramp)
    checker = (np.indices((256, 256)).sum(0) % 2) * 0.5
    pre = CXRPreprocessor(size=32, equalize=None)
    got, want = pre.transform((ramp + checker)[None])[0], pre.transform(ramp[None])[0]
    assert np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.99


def test_out_range_and_constant_image():
    X = np.stack([_ramp(), np.full((80, 96), 7.0)])
    Xt = CXRPreprocessor(size=32, out_range=(2, 5), equalize=None).transform(X)
    assert Xt[0].min() == 2 and Xt[0].max() == 5
    np.testing.assert_array_equal(Xt[1], 2)  # a constant image carries no contrast
    for eq in ("global", "clahe"):
        Xt = CXRPreprocessor(size=32, equalize=eq).transform(X)
        assert np.isfinite(Xt).all() and Xt.min() >= -1 and Xt.max() <= 1


# --- bad inputs --------------------------------------------------------------------

GOOD = np.zeros((2, 16, 16), dtype=np.uint8)


def _with_nan():
    X = np.ones((3, 16, 16))
    X[1, 4, 4] = np.nan
    return X


def _with_inf():
    X = np.ones((3, 16, 16), dtype=np.float32)
    X[2, 0, 0] = np.inf
    return X


@pytest.mark.parametrize(
    "X, match",
    [
        ([], "0 images"),
        (np.zeros((0, 16, 16)), "0 images"),
        (_with_nan(), r"X\[1\] contains NaN"),
        (_with_inf(), r"X\[2\] contains NaN or infinity"),
        ([np.ones((8, 8)), np.full((9, 9), np.nan)], r"X\[1\] contains NaN"),
        (np.zeros((16, 16)), "np.newaxis"),
        (np.zeros(16), r"shape \(16,\)"),
        (np.zeros((1, 2, 16, 16, 1)), "shape"),
        (np.zeros((2, 16, 16, 2)), "2 channels"),
        ([np.zeros((8, 8, 5))], "5 channels"),
        (np.zeros((2, 16, 16), dtype=bool), "boolean"),
        ([np.zeros((8, 8), dtype=bool)], "boolean"),
        (np.zeros((2, 16, 16), dtype=complex), "real numbers"),
        ([np.zeros((8, 8)), np.zeros(3)], r"X\[1\] has shape"),
        ([np.zeros((8, 8)), "x.png"], "mixes file paths"),
        ("images/x.png", "single str"),
        ([np.zeros((0, 8))], "empty image"),
        ([{"a": 1}], "not a numeric image"),
        (42, "got int"),
    ],
)
def test_bad_X_raises_value_error(X, match):
    with pytest.raises(ValueError, match=match):
        CXRPreprocessor(size=16).fit_transform(X)
    with pytest.raises(ValueError, match=match):
        CXRPreprocessor(size=16).fit(X)


@pytest.mark.parametrize(
    "X, match",
    [
        # One RGB/RGBA/gray-with-channel image where a stack (n, H, W) is expected.
        (np.zeros((64, 48, 3)), r"ONE image with 3 channels.*X\[np.newaxis\] \(shape \(1, 64, 48, 3\)\)"),
        (np.zeros((64, 64, 4), dtype=np.uint8), r"ONE image with 4 channels.*X\[np.newaxis\]"),
        (np.zeros((32, 32, 1)), r"ONE image with 1 channels.*list\(X\)"),
        # Channels first.
        (np.zeros((2, 3, 32, 32)), r"channels first \(n, C, H, W\).*np.moveaxis\(X, 1, -1\)"),
        (np.zeros((2, 1, 32, 32)), r"np.moveaxis\(X, 1, -1\)"),
        ([np.zeros((3, 32, 32))], r"X\[0\].*channels first \(C, H, W\).*np.moveaxis\(X\[0\], 0, -1\)"),
        # A last axis that is no channel axis.
        (np.zeros((2, 32, 32, 7)), r"7 channels in its last axis.*expected 1, 3 or 4"),
    ],
)
def test_ambiguous_layouts_are_refused_not_guessed(X, match):
    with pytest.raises(ValueError, match=match):
        CXRPreprocessor(size=16).fit(X)
    with pytest.raises(ValueError, match=match):
        CXRPreprocessor(size=16).transform(X)


def test_what_the_layout_messages_suggest_works():
    rgb = np.repeat(_ramp(64, 48)[:, :, None], 3, axis=2)
    pre = CXRPreprocessor(size=16)
    want = pre.transform(_ramp(64, 48)[None])
    np.testing.assert_allclose(pre.transform(rgb[np.newaxis]), want, atol=1e-4)
    np.testing.assert_allclose(pre.transform([rgb]), want, atol=1e-4)
    channels_first = np.moveaxis(rgb[np.newaxis], -1, 1)  # (1, 3, 64, 48): refused as such
    np.testing.assert_allclose(pre.transform(np.moveaxis(channels_first, 1, -1)), want, atol=1e-4)
    # Unambiguous stacks keep working: 3 or 4 gray images, tiny images, channels last.
    assert pre.transform(np.zeros((3, 64, 64))).shape == (3, 16, 16)
    assert pre.transform(np.zeros((4, 40, 40, 4))).shape == (4, 16, 16)
    assert pre.transform(np.zeros((5, 4, 4))).shape == (5, 16, 16)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"size": 4}, "size"),
        ({"size": 32.0}, "size"),
        ({"size": True}, "size"),
        ({"equalize": "hist"}, "equalize"),
        ({"clip_limit": 0}, "clip_limit"),
        ({"clip_limit": 1.5}, "clip_limit"),
        ({"clip_limit": True}, "clip_limit"),
        ({"out_range": (1, -1)}, "out_range"),
        ({"out_range": (0, np.inf)}, "out_range"),
        ({"out_range": (0,)}, "out_range"),
        ({"out_range": "ab"}, "out_range"),
        ({"n_jobs": 0}, "n_jobs"),
        ({"n_jobs": 1.5}, "n_jobs"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_params_raise_at_fit_and_at_transform(params, match):
    # scikit-learn's message names the parameter and the estimator; the transformer is stateless, so
    # transform without fit validates too.
    match = rf"'{match}' parameter of CXRPreprocessor"
    with pytest.raises(ValueError, match=match):
        CXRPreprocessor(**params).fit(GOOD)
    with pytest.raises(ValueError, match=match):
        CXRPreprocessor(**params).transform(GOOD)


# --- scikit-learn API ------------------------------------------------------------
# sklearn.utils.estimator_checks.check_estimator feeds 2-D tabular data, which is
# not an image stack; with the input_tags.two_d_array=False tag it skips every
# check. The checks that need no data run below; the data-dependent properties
# (stateless transform, clone, pickling, parallel = sequential) are tested
# explicitly with images.

def test_stateless_clone_get_params_and_pickle():
    pre = CXRPreprocessor(size=32, equalize="clahe", out_range=(0, 1))
    check_is_fitted(pre)  # stateless: no fit needed
    X = _ramp()[None]
    out = pre.transform(X)
    assert pre.fit(X) is pre
    assert vars(pre) == vars(clone(pre))  # fit stores nothing
    assert clone(pre).get_params() == pre.get_params()
    assert pre.get_params()["equalize"] == "clahe"
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(pre)).transform(X), out)
    np.testing.assert_array_equal(pre.set_params(n_jobs=2, batch_size=1).transform(np.repeat(X, 3, 0)),
                                  np.repeat(out, 3, 0))


def test_set_output_keeps_ndarray():
    X = _ramp()[None]
    assert isinstance(CXRPreprocessor(size=16).set_output(transform="pandas").transform(X), np.ndarray)
