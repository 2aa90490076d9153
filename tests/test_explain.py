"""Tests of skcxr.attention._gradcam: Grad-CAM maps of the fine-tuned ResNet18."""

from __future__ import annotations

import copy
import doctest
import functools
import pickle
import time

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from pytorch_grad_cam import GradCAM as ReferenceGradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from scipy.ndimage import gaussian_filter
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from skcxr import neural
from skcxr.attention import GradCAM, _gradcam, cnn_cams
from skcxr.features.deep import ResNetEmbedder
from skcxr.nn import resnet18_1ch

SIZE = 64
# tiny images and nets gain nothing from a second thread, which only adds contention
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _images(n, size, seed=0):
    """Smooth random images in [-1, 1] (blobs, so the maps have structure)."""
    x = gaussian_filter(np.random.default_rng(seed).normal(size=(n, size, size)), (0, size / 20, size / 20))
    return (x / np.abs(x).max()).astype(np.float32)


def _labels(n, n_labels=3, seed=0):
    Y = np.random.default_rng(seed).integers(0, 2, (n, n_labels))
    Y[0], Y[1] = 0, 1  # every label has a negative and a positive
    return Y


def _cnn(size=SIZE, **params):
    return ResNetEmbedder(fine_tune="all", epochs=1, batch_size=8, image_size=size, random_state=0, **params)


@pytest.fixture(scope="module")
def data():
    return _images(12, SIZE), _labels(12)


@pytest.fixture(scope="module")
def fitted(data):
    return GradCAM(_cnn()).fit(*data)


@pytest.fixture(scope="module")
def random_net():
    """A random ResNet18 and a 4-label head whose maps are non-trivial, and 128-px images (a 4x4 layer4 grid).

    Each label's weights are made orthogonal to the mean layer4 activation, so no label's map is all
    positive or all zero.
    """
    X = _images(4, 128, seed=1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        backbone, head = resnet18_1ch().eval(), torch.nn.Linear(512, 4)
    with torch.no_grad():
        mean = torch.nn.Sequential(*list(backbone.children())[:-2])(torch.from_numpy(X)[:, None]).mean((0, 2, 3))
        head.weight -= (head.weight @ mean)[:, None] * mean / (mean @ mean)
        head.bias.zero_()
    return backbone, head, X


def _states(backbone, head):
    return backbone, neural.numpy_state(head.state_dict())


def _pearson(a, b):
    return np.corrcoef(a.ravel(), b.ravel())[0, 1]


# --------------------------------------------------------------------------- maps
def test_closed_form_and_autograd_agree_on_a_random_network(random_net, device_close):
    backbone, head, X = random_net
    closed, logits = cnn_cams(X, *_states(backbone, head), image_size=128)
    auto, auto_logits = cnn_cams(X, *_states(backbone, head), image_size=128, method="autograd", batch_size=3)
    assert closed.shape == (4, 4, 4, 4) and closed.dtype == np.float32
    assert (closed > 0).mean() > 0.2 and (closed == 0).mean() > 0.2  # ReLU cuts part of each map
    tol = {"rtol": device_close["rtol"], "atol": device_close["atol"] * closed.max()}  # maps are about 0.05 here
    np.testing.assert_allclose(auto, closed, **tol)
    np.testing.assert_allclose(auto_logits, logits, **device_close)
    with torch.no_grad():  # the logits are the network's own (BatchNorm unfolded, contiguous)
        np.testing.assert_allclose(logits, head(backbone(torch.from_numpy(X)[:, None])).numpy(), **device_close)
    with pytest.raises(ValueError, match="closed_form"):
        cnn_cams(X, *_states(backbone, head), method="gradient")


def test_maps_match_pytorch_grad_cam_before_its_scaling(random_net, device_close):
    backbone, head, X = random_net
    model = torch.nn.Sequential(copy.deepcopy(backbone), copy.deepcopy(head))
    layer = model[0].layer4[-1]
    reference = ReferenceGradCAM(model, target_layers=[layer])
    x = torch.from_numpy(X)[:, None]
    raw = []
    for c in range(4):  # its forward and backward, then its own CAM formula without ReLU, min-max and resizing
        targets = [ClassifierOutputTarget(c)] * len(X)
        reference(x, targets)
        acts, grads = reference.activations_and_grads.activations[0], reference.activations_and_grads.gradients[0]
        raw.append(np.maximum(reference.get_cam_image(x, layer, targets, acts.numpy(), grads.numpy()), 0))
    raw = np.stack(raw, 1)  # (n, L, 4, 4)

    ours, _ = cnn_cams(X, *_states(backbone, head), image_size=128)
    np.testing.assert_allclose(ours, raw, rtol=device_close["rtol"], atol=device_close["atol"] * raw.max())
    # At full size: GradCAM (normalize=None) against its raw maps resized as it resizes them (cv2, bilinear).
    cam = GradCAM(_cnn(128), target="all", normalize=None, precision="fp32").fit(_images(8, 128), _labels(8, 4))
    cam.cnn_.model_.load_state_dict(backbone.state_dict())
    cam.cnn_.head_.load_state_dict(head.state_dict())
    maps = cam.transform(X)
    assert maps.shape == (4, 4, 128, 128)
    for i in range(4):
        for c in range(4):
            assert raw[i, c].std() > 0
            assert _pearson(maps[i, c], cv2.resize(raw[i, c], (128, 128))) > 0.99, (i, c)


def _with(cam, **params):
    """A copy of a fitted GradCAM with other transform parameters (no refit)."""
    return copy.deepcopy(cam).set_params(**params)


def test_target_shapes_range_and_sizes(fitted, data):
    X, _ = data
    for target, shape in (("predicted", (12, SIZE, SIZE)), ("all", (12, 3, SIZE, SIZE)), (1, (12, SIZE, SIZE))):
        out = _with(fitted, target=target).transform(X)
        assert out.shape == shape and out.dtype == np.float32
        assert out.min() >= 0 and out.max() <= 1 and out.max() > 0.5
    # Maps come at the input stack's size (the network sees image_size).
    assert fitted.transform(_images(2, 48)).shape == (2, 48, 48)


def test_label_target_is_that_column_of_all(fitted, data):
    X, _ = data
    every = _with(fitted, target="all").transform(X)
    np.testing.assert_array_equal(_with(fitted, target=2).transform(X), every[:, 2])


def test_predicted_is_the_maximum_over_the_predicted_labels(fitted, data):
    X, _ = data
    every = _with(fitted, target="all").transform(X)
    proba = fitted.cnn_.predict_proba(X)
    for i, image in enumerate(fitted.transform(X)):
        labels = np.flatnonzero(proba[i] >= 0.5) if (proba[i] >= 0.5).any() else [proba[i].argmax()]
        np.testing.assert_allclose(image, every[i, labels].max(0))
    # Where the head predicts nothing, the most probable label's map.
    shy = copy.deepcopy(fitted)
    with torch.no_grad():
        shy.cnn_.head_.bias -= 100
        shy.cnn_.head_.bias[1] += 1
    np.testing.assert_allclose(shy.transform(X), _with(shy, target=1).transform(X))


def test_fitted_normalisation_divides_by_the_99th_percentile_of_training_maps(fitted, data):
    X, _ = data
    raw = _with(fitted, target="all", normalize=None).transform(X)
    assert raw.min() >= 0
    expected = np.percentile(raw.swapaxes(0, 1).reshape(3, -1), 99, axis=1)
    np.testing.assert_allclose(fitted.scale_, expected, rtol=0.1)
    normalised = _with(fitted, target="all").transform(X)
    np.testing.assert_allclose(normalised, np.clip(raw / fitted.scale_[:, None, None], 0, 1), rtol=1e-5)
    assert (normalised.max(axis=(2, 3)) < 0.9).any()  # no per-image stretching: weak maps stay weak
    unscaled = GradCAM(_cnn(), normalize=None).fit(*data)
    assert unscaled.scale_ is None
    with pytest.raises(NotFittedError, match="normalize=None"):
        unscaled.set_params(normalize="fitted").transform(X)


def test_smoothing_is_a_gaussian_of_the_raw_maps_in_output_pixels(fitted, data):
    X, _ = data
    raw = _with(fitted, target="all", normalize=None).transform(X)
    smooth = _with(fitted, target="all", normalize=None, smooth_sigma=3.0).transform(X)
    np.testing.assert_allclose(smooth, gaussian_filter(raw, (0, 0, 3, 3)), rtol=1e-5, atol=1e-7)


def test_paths_and_dataframe_labels(tmp_path, data):
    X, Y = data
    paths = []
    for i, image in enumerate(X[:8]):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(((image + 1) * 127.5).astype(np.uint8)).resize((80, 80)).save(paths[-1])
    Y = pd.DataFrame(Y[:8], columns=["Mass", "Nodule", "Effusion"])
    cam = GradCAM(_cnn(), target="Nodule").fit(np.asarray(paths, dtype=object), Y)
    assert cam.classes_.tolist() == ["Mass", "Nodule", "Effusion"]
    assert cam.transform(paths).shape == (8, SIZE, SIZE)  # paths: at cnn.image_size
    with pytest.raises(ValueError, match=r"target=1 is not a label.*'Mass', 'Nodule', 'Effusion'"):
        cam.set_params(target=1).transform(paths)


def test_parameters_are_checked(data):
    X, Y = data
    with pytest.raises(ValueError, match="fine_tune=None.*no classification head"):
        GradCAM(ResNetEmbedder(image_size=SIZE)).fit(X, Y)
    with pytest.raises(ValueError, match="method"):
        GradCAM(_cnn(), method="gradient").fit(X, Y)
    with pytest.raises(ValueError, match="needs Y"):
        GradCAM(_cnn()).fit(X)
    calls = []
    with pytest.MonkeyPatch.context() as mp:  # an unknown label fails before any training
        mp.setattr("skcxr.neural._training.fine_tune_cnn", lambda *a, **k: calls.append(1))
        with pytest.raises(ValueError, match="'Mass' is not a label"):
            GradCAM(_cnn(), target="Mass").fit(X, Y)
    assert not calls
    tags = GradCAM().__sklearn_tags__()
    assert tags.input_tags.three_d_array and tags.input_tags.string and tags.target_tags.required


def test_clone_and_pickle_round_trip(fitted, data):
    X, _ = data
    twin = clone(fitted)
    assert twin.get_params()["cnn"].get_params() == fitted.cnn.get_params() and not hasattr(twin, "cnn_")
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(fitted)).transform(X), fitted.transform(X))


# --------------------------------------------------------------------------- caching
CALLS = {"fine_tune": 0, "cams": 0}
_fine_tune_cnn, _cnn_cams = neural.fine_tune_cnn, _gradcam.cnn_cams


@functools.wraps(_fine_tune_cnn)
def counting_fine_tune(*args, **kwargs):
    CALLS["fine_tune"] += 1
    return _fine_tune_cnn(*args, **kwargs)


@functools.wraps(_cnn_cams)
def counting_cams(*args, **kwargs):
    CALLS["cams"] += 1
    return _cnn_cams(*args, **kwargs)


@pytest.fixture
def counting(monkeypatch):
    """Count the calls that really run (the cache keys on these module-level wrappers, not on a counter)."""
    monkeypatch.setattr("skcxr.neural._training.fine_tune_cnn", counting_fine_tune)
    monkeypatch.setattr(_gradcam, "cnn_cams", counting_cams)
    monkeypatch.setitem(CALLS, "fine_tune", 0)
    monkeypatch.setitem(CALLS, "cams", 0)
    return CALLS


def test_memory_caches_the_maps_and_shares_the_network_with_the_embedder(tmp_path, data, counting):
    X, Y = data
    X, Y = X[:8], Y[:8]
    memory = str(tmp_path)
    embedder = _cnn(32, memory=memory).fit(X, Y)
    assert counting == {"fine_tune": 1, "cams": 0}
    cam = GradCAM(_cnn(32), memory=memory).fit(X, Y)  # memory passed on to the cnn: the same cache entry
    assert counting == {"fine_tune": 1, "cams": 1}  # fit's maps (for scale_)
    assert cam.cnn_.memory == memory
    torch.testing.assert_close(cam.cnn_.head_.weight, embedder.head_.weight, rtol=0, atol=0)
    cached = cam.transform(X)
    assert counting["cams"] == 1
    # A grid over the other steps: nothing recomputed, whatever target, smoothing or normalisation.
    other = GradCAM(_cnn(32), target="all", smooth_sigma=1.0, memory=memory).fit(X, Y)
    other.transform(X)
    assert counting == {"fine_tune": 1, "cams": 1}
    # The same maps as without a cache.
    np.testing.assert_array_equal(GradCAM(_cnn(32)).fit(X, Y).transform(X), cached)
    assert counting == {"fine_tune": 2, "cams": 3}  # uncached: fit and transform each compute the maps


def test_cross_fitting_embedder_and_gradcam_share_the_full_data_network(tmp_path, data, counting):
    X, Y = data
    embedder = _cnn(32, cv=2, output="proba", memory=str(tmp_path))
    embedder.fit_transform(X, Y)
    assert counting["fine_tune"] == 3  # the full-data network and one per fold
    cam = GradCAM(embedder).fit(X, Y)
    assert counting["fine_tune"] == 3
    torch.testing.assert_close(cam.cnn_.head_.weight, clone(embedder).fit(X, Y).head_.weight, rtol=0, atol=0)
    assert counting["fine_tune"] == 3


# --------------------------------------------------------------------------- speed
def test_all_label_maps_cost_about_one_forward(fitted):
    """All labels' maps of a batch against its 512-d embedding: both build the folded network and run one forward.

    Relaxed (2x) for shared cores; studies/gradcam_speed.py measures at 224 px against a bare forward.
    """
    X = _images(32, SIZE, seed=2)
    every = _with(fitted, target="all")

    def best(run, repeats=5):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run(X)
            times.append(time.perf_counter() - start)
        return min(times)

    forward, maps = best(fitted.cnn_.transform), best(every.transform)
    assert maps <= 2 * forward, (maps, forward)


def test_docstring_examples():
    result = doctest.testmod(_gradcam, raise_on_error=False)
    assert result.attempted > 0 and result.failed == 0  # the examples ran, and passed


def test_cross_fitted_maps_come_from_the_embedders_fold_networks(tmp_path, data, counting):
    X, Y = data
    memory = str(tmp_path)
    _cnn(32, cv=2, output="proba", memory=memory).fit_transform(X, Y)
    assert counting["fine_tune"] == 3  # the full-data network and one per fold
    cam = GradCAM(_cnn(32), cv=2, target="all", memory=memory)
    oof = cam.fit_transform(X, Y)
    assert counting["fine_tune"] == 3  # the same fold networks, from the cache
    assert oof.shape == (len(X), Y.shape[1], *X.shape[1:]) and 0 <= oof.min() and oof.max() <= 1
    assert not np.allclose(oof, cam.transform(X))  # training maps from networks that did not see the image
