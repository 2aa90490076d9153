"""The hardware path of the torch estimators: parallel decoding of paths, batches per device, AMP training.

CPU tests check that the DataLoader path (worker processes decoding paths while
the network runs) gives exactly what the single-process path gives, in order,
with errors that name the file; CUDA tests (skipped without a GPU) check the
pinned, non-blocking, channels_last path against the CPU and AMP training.
"""

import copy
import os
import pickle

import joblib
import numpy as np
import pytest
import torch
from PIL import Image

from skcxr import _torch
from skcxr._torch import (
    ImageBatches,
    forward,
    inference_batch_size,
    iter_batches,
    loader_workers,
    resolve_precision,
)
from skcxr.attention import GradCAM
from skcxr.datasets import make_phantoms
from skcxr.features import ResNetEmbedder
from skcxr.neural import MultilabelNeuralNetClassifier
from skcxr.nn import MLP, resnet18_1ch
from skcxr.segmentation import load_lung_unet

pytestmark = pytest.mark.usefixtures("one_torch_thread")
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def png_paths(tmp_path_factory):
    """Nine phantom radiographs written as 8-bit PNGs of 96 px (uneven batches of 4: 4 + 4 + 1)."""
    folder = tmp_path_factory.mktemp("png")
    data = make_phantoms(9, size=96, random_state=0)
    paths = []
    for i, image in enumerate(data.images):
        path = folder / f"{i}.png"
        Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)).save(path)
        paths.append(str(path))
    return np.asarray(paths, dtype=object), data.Y


def _stack(batches):
    return torch.cat(list(batches)).numpy()


# --------------------------------------------------------------------------- batches and workers
def test_batch_size_for_the_device():
    assert inference_batch_size(None, "cpu") == 32
    assert inference_batch_size(None, "cpu", 128, cpu=16) == 16
    assert inference_batch_size(7, "cuda") == 7  # the user's value wins everywhere
    assert inference_batch_size(None, "cuda", 224) == 256
    assert inference_batch_size(None, "cuda", 128) == 784  # scaled by pixel count
    assert inference_batch_size(None, "cuda", 2048) == 32  # floor
    assert inference_batch_size(None, "cuda", 32) == 1024  # ceiling


def test_loader_workers_follow_joblib():
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert loader_workers(None, "cpu") == 0 and loader_workers(1, "cpu") == 0
    assert loader_workers(3, "cpu") == 3 and loader_workers(-1, "cpu") == cores
    assert loader_workers(None, "cuda") == cores  # decoding must keep up with the GPU
    with joblib.parallel_config(n_jobs=2):
        assert loader_workers(None, "cpu") == 2


def test_workers_give_the_same_batches_in_order(png_paths):
    paths, _ = png_paths
    alone = list(iter_batches(paths, 64, 4))
    workers = list(iter_batches(paths, 64, 4, n_jobs=2))
    assert [tuple(b.shape) for b in alone] == [(4, 1, 64, 64), (4, 1, 64, 64), (1, 1, 64, 64)]
    assert all(b.dtype == torch.float32 for b in workers)
    np.testing.assert_array_equal(_stack(workers), _stack(alone))
    # stacks of another side are resized in the workers the same way
    stack = np.random.default_rng(0).uniform(-1, 1, (5, 80, 80)).astype(np.float32)
    np.testing.assert_array_equal(_stack(iter_batches(stack, 64, 2, n_jobs=2)), _stack(iter_batches(stack, 64, 2)))


def test_image_batches_is_a_dataset_of_whole_batches():
    batches = ImageBatches(np.zeros((5, 16, 16), np.float32), image_size=16, batch_size=2)
    assert len(batches) == 3 and not batches.needs_work
    assert tuple(batches[2].shape) == (1, 1, 16, 16)
    with pytest.raises(IndexError):
        batches[3]


def test_a_corrupt_file_fails_in_a_worker_with_its_name(png_paths, tmp_path):
    paths, _ = png_paths
    bad = tmp_path / "corrupt.png"
    bad.write_bytes(open(paths[0], "rb").read()[:200])  # a truncated PNG
    with pytest.raises(ValueError, match="corrupt.png"):
        list(iter_batches(np.append(paths, str(bad)), 64, 4, n_jobs=2))


def test_estimators_on_paths_do_not_depend_on_n_jobs(png_paths, tmp_path):
    paths, Y = png_paths
    emb = ResNetEmbedder(image_size=64, batch_size=4, random_state=0).fit(paths)
    np.testing.assert_array_equal(emb.set_params(n_jobs=2).transform(paths), emb.set_params(n_jobs=None).transform(paths))
    seg = load_lung_unet(batch_size=4)
    np.testing.assert_array_equal(seg.set_params(n_jobs=2).transform(paths), seg.set_params(n_jobs=None).transform(paths))
    cnn = ResNetEmbedder(fine_tune="all", epochs=1, image_size=64, random_state=0)
    cam = GradCAM(cnn, batch_size=4, n_jobs=2).fit(paths, Y)
    np.testing.assert_array_equal(cam.transform(paths), cam.set_params(n_jobs=None).transform(paths))


def test_n_jobs_is_not_part_of_the_cache_key(png_paths, tmp_path):
    paths, _ = png_paths
    emb = ResNetEmbedder(image_size=64, random_state=0, memory=str(tmp_path)).fit(paths)
    first = emb.transform(paths)
    calls = []
    original = _torch.DataLoader
    try:
        _torch.DataLoader = lambda *a, **k: calls.append(k) or original(*a, **k)
        np.testing.assert_array_equal(emb.set_params(n_jobs=2, batch_size=3).transform(paths), first)
    finally:
        _torch.DataLoader = original
    assert calls == []  # served from the cache: no image was read


def test_forward_outputs_float32_in_input_order():
    net = resnet18_1ch().eval()
    X = np.random.default_rng(1).uniform(-1, 1, (7, 48, 48)).astype(np.float32)
    out = forward(net, X, image_size=48, batch_size=3, device="cpu")
    assert out.dtype == np.float32 and out.shape[0] == 7
    with torch.inference_mode():
        one = net.to(memory_format=torch.channels_last)(torch.from_numpy(X[5:6, None])).numpy()
    np.testing.assert_allclose(out[5:6], one, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- AMP training
def _features(n=120, d=12, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    Y = (X[:, :3] + 0.3 * rng.normal(size=(n, 3)) > 0).astype(int)
    return X, Y


def test_training_precision_is_fp32_on_the_cpu_unless_asked():
    assert resolve_precision("auto", "cpu", mode="train") == "fp32"
    assert resolve_precision("fp32", "cpu", mode="train") == "fp32"
    assert resolve_precision("bf16", "cpu", mode="train") == "bf16"
    assert MultilabelNeuralNetClassifier()._resolved_precision() == ("bf16" if (
        torch.cuda.is_available() and torch.cuda.is_bf16_supported()) else "fp32")


def test_bf16_training_runs_under_autocast_and_predicts_float32():
    X, Y = _features()
    seen = []
    module = MLP(X.shape[1], Y.shape[1])
    same_start = copy.deepcopy(module)
    module.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    clf = MultilabelNeuralNetClassifier(module, max_epochs=3, precision="bf16", random_state=0, device="cpu")
    with pytest.warns(UserWarning, match="emulates") if not _torch.cpu_has_bf16() else _no_warning():
        clf.fit(X, Y)
    assert set(seen) == {torch.bfloat16}  # every forward pass, training and validation, autocast
    proba = clf.predict_proba(X)
    assert proba.dtype == np.float32 and np.isfinite(clf.history[:, "train_loss"]).all()
    fp32 = MultilabelNeuralNetClassifier(same_start, max_epochs=3, precision="fp32", random_state=0, device="cpu")
    assert np.corrcoef(proba.ravel(), fp32.fit(X, Y).predict_proba(X).ravel())[0, 1] > 0.99


def _no_warning():
    import contextlib

    return contextlib.nullcontext()


def test_precision_is_checked_and_pickled_resolved():
    X, Y = _features(40)
    with pytest.raises(ValueError, match="precision"):
        MultilabelNeuralNetClassifier(precision="fp16", max_epochs=1).fit(X, Y)
    clf = MultilabelNeuralNetClassifier(max_epochs=1, random_state=0)
    state = clf.__getstate__()
    assert state[_torch._RESOLVED_KEY] == clf._resolved_precision()
    again = pickle.loads(pickle.dumps(clf))
    assert again.get_params()["precision"] == "auto" and _torch._RESOLVED_KEY not in vars(again)


def test_fine_tuning_precision_enters_the_cache_key(tmp_path):
    X = np.random.default_rng(0).uniform(-1, 1, (12, 32, 32)).astype(np.float32)
    Y = np.array([[1, 0], [0, 1], [1, 1]] * 4)
    common = dict(fine_tune="all", epochs=1, image_size=32, random_state=0, memory=str(tmp_path), device="cpu")
    fp32 = ResNetEmbedder(precision="fp32", **common).fit(X, Y)
    with pytest.warns(UserWarning) if not _torch.cpu_has_bf16() else _no_warning():
        bf16 = ResNetEmbedder(precision="bf16", **common).fit(X, Y)
    w32 = fp32.head_.weight.detach().numpy()
    w16 = bf16.head_.weight.detach().numpy()
    assert not np.array_equal(w32, w16)  # trained under autocast, not served the fp32 result
    np.testing.assert_array_equal(ResNetEmbedder(precision="fp32", **common).fit(X, Y).head_.weight.detach(), w32)


# --------------------------------------------------------------------------- CUDA
@cuda
def test_cuda_batches_are_pinned_and_match_the_cpu(png_paths):
    paths, _ = png_paths
    batches = list(iter_batches(paths, 64, 4, n_jobs=2, device="cuda"))
    assert all(b.is_pinned() for b in batches)
    np.testing.assert_array_equal(_stack(batches), _stack(iter_batches(paths, 64, 4)))


@cuda
def test_cuda_embeddings_from_paths_and_arrays_match_the_cpu(png_paths, device_close):
    paths, _ = png_paths
    cpu = ResNetEmbedder(image_size=64, random_state=0, device="cpu", precision="fp32").fit(paths)
    gpu = ResNetEmbedder(image_size=64, random_state=0, device="cuda", precision="fp32").fit(paths)
    ref = cpu.transform(paths)
    out = gpu.transform(paths)  # batch_size=None: the device's batch; n_jobs=None: one worker per core
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref, **device_close)
    bf16 = gpu.set_params(precision="bf16").transform(paths)
    assert np.corrcoef(bf16.ravel(), ref.ravel())[0, 1] > 0.99


@cuda
def test_cuda_amp_training_learns():
    X, Y = _features(400)
    clf = MultilabelNeuralNetClassifier(max_epochs=20, device="cuda", random_state=0).fit(X, Y)
    assert clf._resolved_precision() == ("bf16" if torch.cuda.is_bf16_supported() else "fp32")
    proba = clf.predict_proba(X)
    assert proba.dtype == np.float32
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(Y, proba, average="macro") > 0.8
