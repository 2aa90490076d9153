"""Tests of the U-Net (skcxr.nn.unet), its skorch net, UNetSegmenter, the shipped lung U-Net and LungRegion."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import make_pipeline

from skcxr.datasets import load_lung_masks
from skcxr.datasets.phantoms import make_phantoms
from skcxr.features import HOGFeatures
from skcxr.lung_region import LungRegion, lung_boxes
from skcxr.neural import SegmentationNet
from skcxr.nn import UNet, augment
from skcxr.preprocessing import CXRPreprocessor
from skcxr.segmentation import LUNG_UNET, UNetSegmenter, frozen_segmenter, load_lung_unet

SIZE = 48
TINY = dict(depth=2, base_width=4, image_size=SIZE, batch_size=8)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def phantoms():
    data = make_phantoms(40, size=SIZE, random_state=0)
    return CXRPreprocessor(size=SIZE).fit_transform(data.images), data.lung_masks


@pytest.fixture(scope="module")
def fitted(phantoms):
    X, masks = phantoms
    return UNetSegmenter(**TINY, epochs=30, lr=3e-3, patience=30, random_state=0).fit(X, masks)


def test_unet_keeps_any_input_size_and_its_receptive_field_is_local():
    net = UNet(depth=3, base_width=4).eval()
    for side in (32, 37, 50):
        assert net(torch.zeros(1, 1, side, side)).shape == (1, 1, side, side)
    with pytest.raises(ValueError, match="depth"):
        UNet(depth=0)


def test_segmentation_net_learns_phantom_lungs(fitted, phantoms):
    X, masks = phantoms
    # 30 epochs of a 4-channel, 2-level U-Net on 40 phantoms: far from converged, far above chance
    assert fitted.score(X, masks) > 0.6
    history = fitted.history_
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert sum(h["best"] for h in history) == 1


def test_transform_shape_range_and_resizing(fitted, phantoms):
    X, _ = phantoms
    maps = fitted.transform(X[:3])
    assert maps.shape == (3, SIZE, SIZE) and maps.dtype == np.float32
    assert 0 <= maps.min() and maps.max() <= 1
    big = torch.nn.functional.interpolate(torch.from_numpy(X[:3])[:, None], size=2 * SIZE, mode="bilinear")[:, 0]
    assert fitted.transform(big.numpy()).shape == (3, 2 * SIZE, 2 * SIZE)  # maps at the input's side
    assert fitted.predict(X[:3]).dtype == bool


def test_masks_move_with_the_image_under_augmentation():
    x = torch.linspace(-1, 1, 32 * 32).reshape(1, 1, 32, 32).repeat(4, 1, 1, 1)
    masks = torch.zeros(4, 1, 32, 32)
    masks[:, :, 10:20, 8:14] = 1
    params = dict(degrees=7.0, translate=0.06, brightness=0.0, contrast=0.0, hflip=False)
    _, moved = augment(x, torch.Generator().manual_seed(0), masks=masks, **params)
    # the same warp of the image with the mask as its "image" channel
    marker = torch.where(masks > 0, torch.ones_like(x), -torch.ones_like(x))
    warped = augment(marker, torch.Generator().manual_seed(0), **params)
    assert ((warped > 0) != (moved > 0.5)).float().mean() < 0.01  # edge pixels may round differently
    assert not torch.equal(moved, masks)


def test_fit_is_reproducible_and_cached(phantoms, tmp_path, monkeypatch):
    X, masks = phantoms
    calls = []
    fit = SegmentationNet.fit
    monkeypatch.setattr(SegmentationNet, "fit", lambda self, *a, **k: calls.append(1) or fit(self, *a, **k))
    params = dict(TINY, epochs=2, random_state=0, memory=str(tmp_path))
    a = UNetSegmenter(**params).fit(X, masks)
    b = UNetSegmenter(**params).fit(X, masks)
    assert len(calls) == 1  # the second fit came from the cache
    np.testing.assert_array_equal(a.transform(X[:2]), b.transform(X[:2]))
    c = UNetSegmenter(**dict(params, memory=None)).fit(X, masks)
    np.testing.assert_array_equal(a.transform(X[:2]), c.transform(X[:2]))


def test_save_load_half_and_pickle(fitted, phantoms, tmp_path):
    X, _ = phantoms
    path = tmp_path / "unet.pt"
    fitted.save(path, record={"dice": 0.5})
    again = UNetSegmenter.load(path)
    np.testing.assert_array_equal(again.transform(X[:2]), fitted.transform(X[:2]))
    assert again.record_ == {"dice": 0.5} and again.get_params()["depth"] == 2
    fitted.save(path, half=True)
    assert np.abs(UNetSegmenter.load(path).transform(X[:2]) - fitted.transform(X[:2])).max() < 2e-2
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(fitted)).transform(X[:2]), fitted.transform(X[:2]))
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a file written by UNetSegmenter.save"):
        UNetSegmenter.load(tmp_path / "other.pt")


def test_bad_inputs_are_refused(phantoms):
    X, masks = phantoms
    with pytest.raises(ValueError, match="masks"):
        SegmentationNet(**{"module__depth": 2, "module__base_width": 4, "max_epochs": 1}).fit(X, masks[:, :10])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        SegmentationNet(max_epochs=1).fit(X, masks * 2.0)
    with pytest.raises(ValueError, match="images but"):
        UNetSegmenter(**TINY, epochs=1).fit(X, masks[:5])
    with pytest.raises(ValueError, match="depth"):
        UNetSegmenter(depth=0).fit(X, masks)
    with pytest.raises(NotFittedError):
        UNetSegmenter().transform(X)


def test_frozen_segmenter_takes_none_paths_and_fitted(fitted, tmp_path):
    path = tmp_path / "unet.pt"
    fitted.save(path)
    assert isinstance(frozen_segmenter(str(path)).estimator, UNetSegmenter)
    frozen = frozen_segmenter(fitted)
    assert frozen.estimator is fitted and clone(frozen) is frozen
    with pytest.raises(NotFittedError, match="weights file"):
        frozen_segmenter(UNetSegmenter(), owner="LungRegion")


# -- the shipped lung U-Net


def test_shipped_unet_loads_weights_only_and_is_small():
    data = torch.load(LUNG_UNET, map_location="cpu", weights_only=True)
    assert all(v.dtype == torch.float16 for v in data["state"].values() if v.is_floating_point())
    assert LUNG_UNET.stat().st_size < 5e6
    seg = load_lung_unet()
    assert seg.record_["dice_heldout_256px"] >= 0.95


@pytest.mark.real_data
def test_shipped_unet_segments_real_lungs(lungs_root):
    data = load_lung_masks(lungs_root)
    pick = np.r_[0:3, -3:0]  # Montgomery and Shenzhen images
    X = CXRPreprocessor(size=256).fit_transform(data.paths[pick])
    assert load_lung_unet().score(X, data.mask_paths[pick]) > 0.9


@pytest.mark.real_data
def test_lung_region_crops_real_nih_images_to_the_chest(nih_root):
    paths = sorted(str(p) for p in (nih_root / "images").glob("*.png"))[:4]
    X = CXRPreprocessor(size=128).fit_transform(np.asarray(paths, dtype=object))
    region = LungRegion().fit(X)
    boxes = region.get_lung_boxes(X)
    w, h = boxes[:, 2], boxes[:, 3]
    assert ((w > 50) & (w < 128) & (h > 50)).all()  # the lungs, not the whole film and not a speck
    assert region.transform(X).shape == X.shape


# -- LungRegion


def test_lung_boxes_ignore_specks_and_fall_back_to_the_whole_image():
    maps = np.zeros((2, 50, 50), np.float32)
    maps[0, 10:30, 5:45] = 1
    maps[0, 48, 48] = 1  # a speck
    assert lung_boxes(maps, margin=0.0).tolist() == [[5, 10, 40, 20], [0, 0, 50, 50]]
    assert lung_boxes(maps[:1], margin=0.1).tolist() == [[0, 5, 50, 30]]


@pytest.mark.parametrize("margin", [False, True])
def test_lung_region_margin_is_a_number_not_a_bool(margin):
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match=rf"'margin' parameter of LungRegion.*Got {margin}"):
        LungRegion(margin=margin).fit(np.zeros((1, 16, 16), np.float32))


def test_lung_region_crop_and_mask(fitted, phantoms):
    X, masks = phantoms
    region = LungRegion(FrozenEstimator(fitted)).fit(X)
    cropped = region.transform(X[:4])
    assert cropped.shape == (4, SIZE, SIZE) and cropped.dtype == np.float32
    masked = clone(region).set_params(mode="mask").fit(X).transform(X[:4])
    lung = fitted.predict(X[:4])
    np.testing.assert_array_equal(masked[~lung], -1)
    np.testing.assert_array_equal(masked[lung], X[:4][lung])
    pipe = make_pipeline(LungRegion(FrozenEstimator(fitted)), HOGFeatures()).fit(X)
    assert pipe.transform(X[:2]).shape[0] == 2
    with pytest.raises(NotFittedError):
        LungRegion(UNetSegmenter()).fit(X)


def test_masks_of_different_sizes_load_from_files_and_fp16_states_build_float32_nets(tmp_path, fitted):
    from PIL import Image

    from skcxr.features import ResNetEmbedder
    from skcxr.nn.backbones import build_cnn
    from skcxr.nn.resnet import resnet18_1ch
    from skcxr.segmentation import _resized_masks

    paths = []
    for i, side in enumerate((40, 64)):
        m = np.zeros((side, side), np.uint8)
        m[side // 4 : side // 2] = 255
        Image.fromarray(m).save(tmp_path / f"m{i}.png")
        paths.append(str(tmp_path / f"m{i}.png"))
    masks = _resized_masks(np.asarray(paths, dtype=object), 32)
    assert masks.shape == (2, 32, 32) and 0 <= masks.min() and masks.max() == 1
    half = {k: v.half() if v.is_floating_point() else v for k, v in resnet18_1ch().state_dict().items()}
    assert build_cnn("resnet18", half).conv1.weight.dtype == torch.float32
    torch.save(half, tmp_path / "half.pt")
    X = np.zeros((2, 32, 32), np.float32)
    assert ResNetEmbedder(weights=str(tmp_path / "half.pt"), image_size=32).fit(X).transform(X).dtype == np.float32


def test_lung_region_resizes_maps_of_another_size(phantoms):
    X, _ = phantoms

    class Coarse(TransformerMixin, BaseEstimator):  # a prefit segmenter whose maps are half the image's side
        def fit(self, X, y=None):
            self.fitted_ = True
            return self

        def transform(self, X):
            m = np.zeros((len(X), SIZE // 2, SIZE // 2), np.float32)
            m[:, 4:20, 2:22] = 1
            return m

    region = LungRegion(FrozenEstimator(Coarse().fit(X))).fit(X)
    assert region.get_lung_boxes(X[:1]).tolist() == [[2, 6, 44, 36]]  # lungs at x 4-44, y 8-40; margin 2 px
    # size: the box's pixels resized straight to the asked side (not to X's side first)
    box = torch.from_numpy(np.ascontiguousarray(X[:2, 6:42, 2:46]))[:, None]
    expected = torch.nn.functional.interpolate(box, size=(24, 24), mode="bilinear", antialias=True)[:, 0].numpy()
    np.testing.assert_allclose(region.set_params(size=24).transform(X[:2]), expected, atol=1e-6)
    masked = region.set_params(mode="mask").transform(X[:2])
    assert masked.shape == (2, 24, 24) and masked[:, 0, 0].tolist() == [-1, -1]  # outside the lungs: black


def test_partial_fit_after_initialize_and_predict_before_fit():
    X = np.random.default_rng(0).uniform(-1, 1, (8, 32, 32)).astype(np.float32)
    net = SegmentationNet(max_epochs=1, module__depth=2, module__base_width=4, random_state=0).initialize()
    with pytest.raises(NotFittedError):
        net.predict_proba(X)
    assert net.partial_fit(X, X > 0).predict_proba(X[:1]).shape == (1, 32, 32)
