"""Tests of skcxr.features.deep: the 1-channel ResNet18 embedder and its fine-tuning."""

from __future__ import annotations

import pickle
import urllib.error

import joblib
import numpy as np
import pytest
import torch
import torchvision
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from skcxr.datasets.phantoms import make_phantoms
from skcxr import neural
from skcxr.features import deep
from skcxr.features.deep import ResNetEmbedder
from skcxr.neural import cached_fine_tune_cnn
from skcxr.nn import DEFAULT_AUGMENT, ResNet18Classifier, augment, load_resnet18_weights
from skcxr.preprocessing import CXRPreprocessor

SIZE = 32


# tiny images and nets gain nothing from a second thread, which only adds contention
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def phantoms():
    bunch = make_phantoms(48, size=SIZE, random_state=0)
    return CXRPreprocessor(size=SIZE).fit_transform(bunch.images), bunch.Y


@pytest.fixture(scope="module")
def tuned(phantoms):
    X, Y = phantoms
    params = dict(image_size=SIZE, fine_tune="all", epochs=3, lr=1e-3, batch_size=16, augment=False, random_state=0)
    return ResNetEmbedder(**params).fit(X, Y)


def _random_stack(n=4, size=SIZE, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, size, size)).astype(np.float32)


def test_three_channel_file_sums_rgb_kernels(tmp_path, device_close):
    torch.manual_seed(0)
    rgb = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18_rgb.pth"
    torch.save(rgb.state_dict(), path)

    X = _random_stack()
    emb = ResNetEmbedder(weights=str(path), image_size=SIZE, precision="fp32").fit(X)  # vs an fp32 reference
    expected = rgb.state_dict()["conv1.weight"].sum(dim=1, keepdim=True)
    assert torch.equal(emb.model_.conv1.weight, expected)
    assert torch.equal(emb.model_.layer4[1].bn2.running_var, rgb.layer4[1].bn2.running_var)

    # Same output as the 3-channel network on the gray image copied to R, G and B.
    rgb.fc = torch.nn.Identity()
    with torch.no_grad():
        reference = rgb.eval()(torch.from_numpy(X).unsqueeze(1).repeat(1, 3, 1, 1)).numpy()
    np.testing.assert_allclose(emb.transform(X), reference, **device_close)


def test_one_channel_file_round_trip_with_and_without_head(tmp_path):
    X = _random_stack()
    emb = ResNetEmbedder(image_size=SIZE, random_state=1).fit(X)
    bare = tmp_path / "bare.pt"
    torch.save(emb.model_.state_dict(), bare)
    with_fc = tmp_path / "with_fc.pt"
    torch.save({**emb.model_.state_dict(), "fc.weight": torch.zeros(14, 512), "fc.bias": torch.zeros(14)}, with_fc)
    classifier = tmp_path / "classifier.pt"
    net = ResNet18Classifier(3)
    net.backbone.load_state_dict(emb.model_.state_dict())
    torch.save(net.state_dict(), classifier)
    for path in (bare, with_fc, classifier):
        again = ResNetEmbedder(weights=path, image_size=SIZE, random_state=2).fit(X)
        np.testing.assert_array_equal(again.transform(X), emb.transform(X))


def test_mismatching_weights_file_names_file_and_keys(tmp_path):
    wrong = tmp_path / "resnet34.pth"
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), wrong)
    with pytest.raises(ValueError, match=r"resnet34\.pth.*unexpected keys: layer1\.2\."):
        ResNetEmbedder(weights=wrong).fit(_random_stack())

    state = torchvision.models.resnet18(weights=None).state_dict()
    state["layer2.0.conv1.weight"] = torch.zeros(128, 64, 5, 5)
    del state["layer3.1.bn1.bias"]
    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    with pytest.raises(ValueError, match=r"bad\.pth.*missing keys: layer3\.1\.bn1\.bias.*layer2\.0\.conv1\.weight"):
        load_resnet18_weights(bad)

    not_a_dict = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), not_a_dict)
    with pytest.raises(ValueError, match="tensor.pt"):
        load_resnet18_weights(not_a_dict)
    with pytest.raises(FileNotFoundError, match="no_such_file.pth"):
        load_resnet18_weights(tmp_path / "no_such_file.pth")


def test_torchvision_name_offline_says_to_pass_a_local_file(monkeypatch, tmp_path):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # empty download cache
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)  # the network step
    with pytest.raises(RuntimeError, match="pass the local file"):
        ResNetEmbedder(weights="IMAGENET1K_V1").fit(_random_stack())


def test_transform_shape_dtype_determinism_and_names(device_close):
    X = _random_stack(5)
    emb = ResNetEmbedder(image_size=SIZE, batch_size=2, random_state=0, precision="fp32").fit(X)  # fp32 references
    Z = emb.transform(X)
    assert Z.shape == (5, 512) and Z.dtype == np.float32
    np.testing.assert_array_equal(emb.transform(X), Z)
    again = ResNetEmbedder(image_size=SIZE, batch_size=2, random_state=0, precision="fp32").fit(X)
    np.testing.assert_array_equal(again.transform(X), Z)
    np.testing.assert_allclose(emb.set_params(batch_size=5).transform(X), Z, **device_close)
    assert not np.allclose(ResNetEmbedder(image_size=SIZE, random_state=1).fit(X).transform(X), Z)
    # BatchNorm folding is exact: the unfused backbone gives the same features.
    with torch.no_grad():
        unfused = emb.model_.eval()(torch.from_numpy(X).unsqueeze(1)).numpy()
    np.testing.assert_allclose(Z, unfused, **device_close)

    assert list(emb.get_feature_names_out()[[0, -1]]) == ["cnn_0", "cnn_511"]
    frame = emb.set_output(transform="pandas").transform(X)
    assert frame.shape == (5, 512) and frame.columns[-1] == "cnn_511"
    # A stack of another size is resized to image_size.
    assert ResNetEmbedder(image_size=SIZE, random_state=0).fit(X).transform(_random_stack(2, 48)).shape == (2, 512)


@pytest.mark.real_data
def test_paths_give_the_same_features_as_preprocessed_arrays(nih_root):
    paths = np.array(sorted(str(p) for p in (nih_root / "images").glob("*.png"))[:5], dtype=object)
    emb = ResNetEmbedder(image_size=64, batch_size=2, random_state=0).fit(paths)
    from_paths = emb.transform(paths)
    from_arrays = emb.transform(CXRPreprocessor(size=64).fit_transform(paths))
    assert from_paths.shape == (5, 512)
    np.testing.assert_allclose(from_paths, from_arrays, rtol=1e-5, atol=1e-6)


def test_fine_tuning_lowers_training_loss(tuned, phantoms):
    losses = [h["train_loss"] for h in tuned.history_]
    assert len(losses) == 3 and losses[-1] < 0.9 * losses[0]
    assert sum(h["best"] for h in tuned.history_) == 1
    P = tuned.predict_proba(phantoms[0])
    assert P.shape == (48, 7) and P.dtype == np.float32 and (P >= 0).all() and (P <= 1).all()
    assert tuned.transform(phantoms[0]).shape == (48, 512)


def test_layer4_fine_tuning_keeps_frozen_weights_and_bn_buffers(tmp_path, phantoms):
    X, Y = phantoms
    start = ResNetEmbedder(image_size=SIZE, random_state=3).fit(X).model_.state_dict()
    path = tmp_path / "start.pt"
    torch.save(start, path)
    emb = ResNetEmbedder(weights=path, fine_tune="layer4", epochs=1, lr=1e-3, batch_size=16, image_size=SIZE,
                         random_state=0).fit(X, Y)  # fmt: skip
    after = emb.model_.state_dict()
    frozen = [k for k in start if not k.startswith("layer4.")]
    assert any("running_mean" in k for k in frozen)
    for key in frozen:
        assert torch.equal(after[key], start[key]), key
    assert not torch.equal(after["layer4.1.conv2.weight"], start["layer4.1.conv2.weight"])
    assert not torch.equal(after["layer4.1.bn2.running_mean"], start["layer4.1.bn2.running_mean"])


def test_memory_caches_fine_tuning_shared_and_keyed_on_params(tmp_path, phantoms, monkeypatch):
    calls = {"fine_tune": 0, "embed": 0}
    fit, forward = neural.ResNetFineTuner.fit, deep.forward

    def counting_fit(self, *args, **kwargs):
        calls["fine_tune"] += 1
        return fit(self, *args, **kwargs)

    def counting_forward(*args, **kwargs):
        calls["embed"] += 1
        return forward(*args, **kwargs)

    monkeypatch.setattr(neural.ResNetFineTuner, "fit", counting_fit)
    monkeypatch.setattr(deep, "forward", counting_forward)
    X, Y = phantoms[0][:24], phantoms[1][:24]
    params = dict(image_size=SIZE, fine_tune="layer4", epochs=1, batch_size=16, random_state=0, memory=str(tmp_path))
    first = ResNetEmbedder(**params).fit(X, Y)
    assert calls["fine_tune"] == 1
    # Same data and parameters, another device spelling: read from the cache, not trained again.
    again = ResNetEmbedder(**{**params, "device": "cpu"}).fit(X, Y)
    assert calls["fine_tune"] == 1 and again.history_ == first.history_
    # Embeddings are cached too (computed once), and equal the uncached ones on the same device.
    cached = again.transform(X)
    np.testing.assert_array_equal(again.transform(X), cached)
    assert calls["embed"] == 1
    uncached = pickle.loads(pickle.dumps(first)).set_params(memory=None)
    np.testing.assert_array_equal(uncached.transform(X), cached)
    # Another caller of the shared function gets the same network without training.
    state, history = cached_fine_tune_cnn(
        str(tmp_path), X, Y, weights=None, fine_tune="layer4", epochs=1, lr=1e-4, batch_size=16,
        augment=True, patience=3, random_state=0, device="cpu", verbose=0,
    )  # fmt: skip
    assert calls["fine_tune"] == 1 and history == first.history_
    assert torch.equal(state["head.weight"], first.head_.weight)
    # Changed parameters or data train again; so does an unseeded fit, every time.
    ResNetEmbedder(**{**params, "lr": 1e-3}).fit(X, Y)
    assert calls["fine_tune"] == 2
    ResNetEmbedder(**params).fit(X[:20], Y[:20])
    assert calls["fine_tune"] == 3
    ResNetEmbedder(**{**params, "random_state": None}).fit(X, Y)
    ResNetEmbedder(**{**params, "random_state": None}).fit(X, Y)
    assert calls["fine_tune"] == 5


def test_pickle_and_joblib_round_trip(tuned, phantoms, tmp_path):
    X = phantoms[0][:6]
    restored = pickle.loads(pickle.dumps(tuned))
    np.testing.assert_array_equal(restored.transform(X), tuned.transform(X))
    np.testing.assert_array_equal(restored.predict_proba(X), tuned.predict_proba(X))
    joblib.dump(tuned, tmp_path / "emb.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "emb.joblib").transform(X), tuned.transform(X))


def test_save_load(tuned, phantoms, tmp_path):
    X = phantoms[0][:6]
    path = tmp_path / "tuned.pt"
    tuned.save(path)
    assert torch.load(path, weights_only=True)["params"]["fine_tune"] == "all"
    loaded = ResNetEmbedder.load(path)
    assert loaded.get_params() == tuned.get_params()
    np.testing.assert_array_equal(loaded.transform(X), tuned.transform(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), tuned.predict_proba(X))
    assert loaded.history_ == tuned.history_
    # The saved network also serves as start weights.
    start = ResNetEmbedder(weights=path, image_size=SIZE).fit(X)
    np.testing.assert_array_equal(start.transform(X), tuned.transform(X))
    torch.save({"a": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a file written by CNNEmbedder.save"):
        ResNetEmbedder.load(tmp_path / "other.pt")


def test_fit_without_fine_tuning_needs_no_y_and_has_no_head():
    X = _random_stack(3)
    emb = ResNetEmbedder(image_size=SIZE, random_state=0).fit(X)
    assert emb.head_ is None and emb.history_ == [] and emb.n_features_out_ == 512
    assert not hasattr(emb, "predict_proba")
    with pytest.raises(AttributeError) as excinfo:
        emb.predict_proba(X)
    assert "fine_tune='last' or 'all'" in str(excinfo.value.__cause__)
    with pytest.raises(ValueError, match="needs Y"):
        ResNetEmbedder(fine_tune="all", image_size=SIZE).fit(X)
    with pytest.raises(NotFittedError):
        ResNetEmbedder().transform(X)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"fine_tune": "layer3"}, "fine_tune"),
        ({"epochs": 0}, "epochs"),
        ({"lr": -1.0}, "lr"),
        ({"augment": {"vflip": True}}, "vflip"),
    ],
)
def test_bad_parameters(params, message):
    with pytest.raises(ValueError, match=message):
        ResNetEmbedder(**params).fit(_random_stack(4), np.zeros((4, 2)))


def test_clone_keeps_params_and_drops_fit(tuned):
    copy = clone(tuned)
    assert copy.get_params() == tuned.get_params()
    assert not hasattr(copy, "model_")


def test_augmentation_is_seeded_bounded_and_not_a_flip():
    x = torch.linspace(-1, 1, SIZE).repeat(4, 1, SIZE, 1)  # left-to-right ramp
    a = augment(x, torch.Generator().manual_seed(0), **DEFAULT_AUGMENT)
    b = augment(x, torch.Generator().manual_seed(0), **DEFAULT_AUGMENT)
    assert torch.equal(a, b) and a.shape == x.shape
    assert a.min() >= -1 and a.max() <= 1
    assert not torch.equal(a[0], a[1])  # a different draw per image
    left, right = a[..., : SIZE // 4].mean(dim=(1, 2, 3)), a[..., -SIZE // 4 :].mean(dim=(1, 2, 3))
    assert (left < right).all()  # never mirrored
    flipped = augment(x, torch.Generator().manual_seed(0), **{**DEFAULT_AUGMENT, "hflip": True})
    assert (flipped[..., : SIZE // 4].mean(dim=(1, 2, 3)) > flipped[..., -SIZE // 4 :].mean(dim=(1, 2, 3))).any()


def test_cross_fitting_gives_each_patient_probabilities_of_a_network_that_never_saw_it(phantoms, monkeypatch):
    X, Y = phantoms[0][:36], phantoms[1][:36]
    patients = np.arange(36) // 3
    trained_on = []
    fit = neural.ResNetFineTuner.fit

    def recording_fit(self, images, Y, groups=None, **kwargs):
        trained_on.append(set(groups))
        return fit(self, images, Y, groups=groups, **kwargs)

    monkeypatch.setattr(neural.ResNetFineTuner, "fit", recording_fit)
    params = dict(image_size=SIZE, fine_tune="all", epochs=1, batch_size=16, output="proba", random_state=0)
    emb = ResNetEmbedder(cv=3, **params)
    crossed = emb.fit_transform(X, Y, groups=patients)
    assert crossed.shape == (36, Y.shape[1]) and ((crossed >= 0) & (crossed <= 1)).all()
    assert list(emb.get_feature_names_out()[:2]) == ["cnn_proba_0", "cnn_proba_1"]
    assert len(trained_on) == 4 and trained_on[0] == set(patients)  # the full fit, then one per fold
    folds = [set(patients) - seen for seen in trained_on[1:]]
    assert sorted(p for fold in folds for p in fold) == sorted(set(patients))  # every patient held out once
    # each held-out fold is scored by its fold's network, not by the network that trained on it
    full = emb.transform(X)
    np.testing.assert_array_equal(full, emb.predict_proba(X))
    for fold in folds:
        rows = np.isin(patients, list(fold))
        assert not np.allclose(crossed[rows], full[rows])
    # without cv, fit_transform is fit().transform()
    np.testing.assert_array_equal(ResNetEmbedder(**params).fit_transform(X, Y, groups=patients), full)
    # embeddings of networks fitted on different folds share no feature space: refused
    with pytest.raises(ValueError, match="feature space"):
        ResNetEmbedder(image_size=SIZE, fine_tune="all", cv=3).fit(X, Y)
    with pytest.raises(ValueError, match="fine_tune"):
        ResNetEmbedder(image_size=SIZE, output="proba").fit(X)


def test_fine_tuning_takes_lr_schedules_and_checkpoints_through_skorch(phantoms, tmp_path):
    from skorch.callbacks import Checkpoint

    X, Y = phantoms[0][:24], phantoms[1][:24]
    checkpoint = Checkpoint(dirname=str(tmp_path / "ckpt"), monitor="valid_loss_best")
    emb = ResNetEmbedder(image_size=SIZE, fine_tune="layer4", epochs=2, batch_size=16, patience=5, random_state=0,
                         net_params={"lr_scheduler": "cosine", "callbacks": [("checkpoint", checkpoint)]})
    emb.fit(X, Y)
    assert len(emb.history_) == 2
    assert (tmp_path / "ckpt" / "params.pt").exists()  # skorch's Checkpoint wrote the best epoch's weights
    with pytest.raises(ValueError, match="net_params"):
        ResNetEmbedder(fine_tune="all", net_params=[("lr", 1)]).fit(X, Y)
