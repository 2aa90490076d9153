"""Tests of skcxr.nn.backbones and the backbone-generic estimators: offline ImageNet weights wired through the
1-channel stem, fine-tuning the last stage, and Grad-CAM equal to pytorch-grad-cam on every shipped backbone."""

from __future__ import annotations

import copy
import glob
import os

import cv2
import numpy as np
import pytest
import timm
import torch
from pytorch_grad_cam import GradCAM as ReferenceGradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from scipy.ndimage import gaussian_filter
from skimage import color, data, transform

from skcxr.attention import GradCAM, cnn_cams
from skcxr.features import CNNEmbedder, ResNetEmbedder
from skcxr.neural import CNNFineTuner, numpy_state
from skcxr.nn import CNNClassifier, build_cnn, imagenet_classifier
from skcxr.nn.backbones import OFFLINE_IMAGENET, load_imagenet_state, native_image_size

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LITES = tuple(OFFLINE_IMAGENET)
CATS = range(281, 286)  # ImageNet's tabby, tiger cat, Persian, Siamese, Egyptian cat


def _grey_cat(size):
    """``skimage.data.chelsea()`` in gray, resized, in [-1, 1]: what CXRPreprocessor hands a backbone."""
    grey = transform.resize(color.rgb2gray(data.chelsea()), (size, size), anti_aliasing=True)
    return torch.tensor(grey * 2 - 1, dtype=torch.float32)[None, None]


def _images(n, size, seed=0):
    x = gaussian_filter(np.random.default_rng(seed).normal(size=(n, size, size)), (0, size / 20, size / 20))
    return (x / np.abs(x).max()).astype(np.float32)


@pytest.mark.parametrize("name", LITES)
def test_imagenet_weights_rank_a_cat_first_on_a_grey_cat_through_the_1_channel_stem(name):
    net = build_cnn(name, weights="imagenet").eval()
    assert net.model.conv_stem.weight.shape[1] == 1
    with torch.inference_mode():
        proba = imagenet_classifier(name)(net(_grey_cat(native_image_size(name)))).softmax(1)[0]
    assert int(proba.argmax()) in CATS, proba.topk(3)
    assert float(proba[list(CATS)].sum()) > 0.8


@pytest.mark.parametrize("name", LITES)
def test_summed_stem_computes_what_the_3_channel_network_computes_on_a_grey_image(name):
    state = load_imagenet_state(name)
    rgb = timm.create_model(OFFLINE_IMAGENET[name].timm_name, pretrained=False).eval()
    rgb.load_state_dict(state)
    x = _grey_cat(128)
    with torch.inference_mode():
        ours = build_cnn(name, weights="imagenet").eval().feature_map(x)
        theirs = rgb.forward_features(x.repeat(1, 3, 1, 1))
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


def test_weights_from_local_files_in_any_naming_equal_the_packaged_ones(tmp_path):
    name = "efficientnet_lite0"
    reference = build_cnn(name, weights="imagenet").state_dict()
    timm_file = tmp_path / "timm.pth"  # the bare timm network's names, 3-channel stem, classifier included
    torch.save(load_imagenet_state(name), timm_file)
    wheel_file = glob.glob(os.path.join(os.path.dirname(__import__(OFFLINE_IMAGENET[name].package).__file__),
                                        "models", "*.pth"))[0]  # the 2020 package's own names
    own_file = tmp_path / "own.pth"  # skcxr's names, 1-channel stem
    torch.save(reference, own_file)
    for path in (timm_file, wheel_file, own_file):
        state = build_cnn(name, weights=str(path)).state_dict()
        assert state.keys() == reference.keys()
        for key in reference:
            torch.testing.assert_close(state[key], reference[key], rtol=0, atol=0, msg=key)


def test_random_weights_are_seeded_and_leave_torch_alone():
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    a, b = build_cnn("efficientnet_lite0", random_state=0), build_cnn("efficientnet_lite0", random_state=0)
    assert torch.rand(1) == before  # the global generator was not advanced
    c = build_cnn("efficientnet_lite0", random_state=1)
    assert torch.equal(a.model.conv_stem.weight, b.model.conv_stem.weight)
    assert not torch.equal(a.model.conv_stem.weight, c.model.conv_stem.weight)


@pytest.mark.parametrize(("backbone", "message"), [
    ("resnet18", "No ImageNet weights for backbone 'resnet18' can be loaded offline"),
    ("convnext_atto", "No ImageNet weights for backbone 'convnext_atto'"),
])
def test_backbones_without_offline_weights_say_so_in_one_line(backbone, message):
    with pytest.raises(ValueError, match=message) as err:
        build_cnn(backbone, weights="imagenet")
    assert "\n" not in str(err.value)


def test_unknown_names_mismatched_files_and_modules_without_a_spatial_map_are_refused(tmp_path):
    with pytest.raises(ValueError, match="Unknown backbone 'no_such_net'"):
        build_cnn("no_such_net")
    torch.save(build_cnn("resnet18").state_dict(), tmp_path / "resnet.pt")
    with pytest.raises(ValueError, match="does not fit backbone 'efficientnet_lite0'"):
        build_cnn("efficientnet_lite0", weights=str(tmp_path / "resnet.pt"))
    pooled = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    with pytest.raises(ValueError, match=r"spatial feature map .* returned \(1, 8\)"):
        build_cnn(pooled)
    own = build_cnn(torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3), torch.nn.ReLU()))
    assert own.n_features == 8 and own(torch.zeros(2, 1, 16, 16)).shape == (2, 8)


def test_embedder_pools_mean_then_max_and_keeps_its_old_name():
    assert ResNetEmbedder is CNNEmbedder
    X = _images(3, 64)
    avg = CNNEmbedder("efficientnet_lite0", weights="imagenet", image_size=64, precision="fp32").fit(X)
    both = CNNEmbedder("efficientnet_lite0", weights="imagenet", pooling="avgmax", image_size=64,
                       precision="fp32").fit(X)
    a, b = avg.transform(X), both.transform(X)
    assert a.shape == (3, 1280) and b.shape == (3, 2560)
    np.testing.assert_allclose(b[:, :1280], a, rtol=1e-6)
    with torch.inference_mode():
        A = avg.model_.feature_map(torch.from_numpy(X)[:, None])
    np.testing.assert_allclose(b[:, 1280:], A.amax((-2, -1)).numpy(), rtol=1e-4, atol=1e-5)
    assert both.get_feature_names_out()[-1] == "cnn_2559"


def test_fine_tuning_the_last_stage_freezes_the_rest_batchnorm_included():
    rng = np.random.default_rng(0)
    X, Y = _images(16, 64), rng.integers(0, 2, (16, 3))
    Y[0], Y[1] = 0, 1
    net = CNNFineTuner(module__backbone="efficientnet_lite0", module__weights="imagenet", module__fine_tune="last",
                       max_epochs=1, batch_size=8, lr=1e-3, random_state=0).fit(X, Y)
    start = build_cnn("efficientnet_lite0", weights="imagenet").state_dict()
    after = net.module_.backbone.state_dict()
    last = net.module_.backbone.last_stage
    assert last == ["model.blocks.5", "model.blocks.6", "model.conv_head", "model.bn2"]
    for key, value in start.items():
        changed = not torch.equal(after[key].cpu(), value)
        trained = any(key.startswith(s + ".") for s in last)
        if key.endswith("num_batches_tracked"):
            continue
        assert changed == trained, key  # frozen: weights *and* BatchNorm statistics unchanged
    model = net.module_.train().backbone.model
    assert (model.bn1.training, model.blocks[4].training, model.blocks[5].training, model.bn2.training) == (
        False, False, True, True)


@pytest.mark.parametrize("backbone", ["efficientnet_lite0", "efficientnet_lite2", "resnet18", "densenet121"])
def test_closed_form_maps_equal_pytorch_grad_cam_on_the_post_activation_module(backbone):
    """Per map r > 0.99 against pytorch-grad-cam hooking the module whose output is the map.

    The shipped backbones with their ImageNet weights (ResNet18: random, none ship); DenseNet121 (torchvision,
    its final ReLU a module of its own) with random weights. The head's rows are made orthogonal to the mean
    activation so that each map has positive and zero parts.
    """
    weights = "imagenet" if backbone in OFFLINE_IMAGENET else None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = CNNClassifier(3, backbone, weights).eval()
    X = _images(3, 128, seed=1)
    x = torch.from_numpy(X)[:, None]
    with torch.no_grad():
        mean = net.backbone.feature_map(x).mean((0, 2, 3))
        net.head.weight -= (net.head.weight @ mean)[:, None] * mean / (mean @ mean)
        net.head.weight *= 100 / net.head.weight.norm(dim=1, keepdim=True)
    model = copy.deepcopy(net)
    reference = ReferenceGradCAM(model, target_layers=[model.backbone.map_layer])
    grid, _ = cnn_cams(X, net.backbone, numpy_state(net.head.state_dict()), image_size=128, precision="fp32")
    compared = 0
    for c in range(3):
        theirs = reference(x, [ClassifierOutputTarget(c)] * len(X))
        for i in range(len(X)):
            ours = cv2.resize(grid[i, c], (128, 128))
            if ours.max() == 0:  # no positive evidence anywhere: both are blank
                assert theirs[i].max() < 1e-6, (backbone, i, c)
                continue
            assert np.corrcoef(ours.ravel(), theirs[i].ravel())[0, 1] > 0.99, (backbone, i, c)
            compared += 1
    assert compared >= 6, compared  # most of the 9 maps have structure to compare


def test_gradcam_explains_a_fine_tuned_efficientnet():
    rng = np.random.default_rng(0)
    X, Y = _images(16, 96), rng.integers(0, 2, (16, 2))
    Y[0], Y[1] = 0, 1
    cnn = CNNEmbedder("efficientnet_lite0", weights="imagenet", fine_tune="last", epochs=1, batch_size=8,
                      image_size=96, random_state=0)
    maps = GradCAM(cnn, target="all").fit(X, Y).transform(X[:4])
    assert maps.shape == (4, 2, 96, 96) and 0 <= maps.min() and maps.max() <= 1 and maps.max() > 0.5


def test_a_pretrained_embedder_saves_weights_only_and_loads_equal(tmp_path):
    X = _images(2, 64)
    emb = CNNEmbedder("efficientnet_lite0", weights="imagenet", pooling="avgmax", image_size=64,
                      precision="fp32").fit(X)
    emb.save(tmp_path / "lite0.pt")
    loaded = CNNEmbedder.load(tmp_path / "lite0.pt")
    assert loaded.get_params()["backbone"] == "efficientnet_lite0" and loaded.n_features_out_ == 2560
    np.testing.assert_array_equal(loaded.transform(X), emb.transform(X))
    with pytest.raises(ValueError, match="cannot hold a backbone module"):
        CNNEmbedder(torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU())).fit(X).save(tmp_path / "m.pt")


@pytest.mark.parametrize("backbone", ["efficientnet_lite0", "resnet10t", "convnext_atto", "densenet121", "resnet18"])
def test_the_map_layer_outputs_the_feature_map(backbone):
    net = build_cnn(backbone, random_state=0).eval()
    seen = []
    handle = net.map_layer.register_forward_hook(lambda module, args, out: seen.append(out))
    x = torch.from_numpy(_images(2, 64))[:, None]
    with torch.no_grad():
        A = net.feature_map(x)
    handle.remove()
    torch.testing.assert_close(seen[-1], A)
    assert A.shape[1] == net.n_features
