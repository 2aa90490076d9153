"""The torch estimators' ``precision``: resolution (inference and training), accuracy, repeatability, cache keys.

Small inputs and one torch thread: the whole module runs in a few seconds.
"""

import copy
import functools
import sys
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError

from skcxr import _torch
from skcxr._torch import cpu_has_bf16, resolve_precision
from skcxr.attention import GradCAM, cnn_cams
from skcxr.cache import check_memory
from skcxr.datasets import make_phantoms
from skcxr.features import ResNetEmbedder
from skcxr.features import deep
from skcxr.neural import MultilabelNeuralNetClassifier, numpy_state
from skcxr.nn import resnet18_1ch
from skcxr.preprocessing import CXRPreprocessor
from skcxr.segmentation import UNetSegmenter, load_lung_unet

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _images(n=6, size=64, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, size, size)).astype(np.float32)


def _pearson(a, b):
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


@pytest.fixture
def bf16_cpu(monkeypatch):
    """Pretend this CPU has bf16 units (and no GPU), whatever it has."""
    monkeypatch.setattr(_torch, "cpu_has_bf16", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def plain_cpu(monkeypatch):
    """Pretend this CPU has no bf16 units (and there is no GPU)."""
    monkeypatch.setattr(_torch, "cpu_has_bf16", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


# --------------------------------------------------------------------------- resolution
def test_auto_is_bf16_only_where_the_hardware_has_it(monkeypatch, bf16_cpu):
    assert resolve_precision("auto", "cpu") == "bf16"
    assert resolve_precision("auto", "auto") == "bf16"  # device "auto" is the CPU without a GPU
    assert resolve_precision("fp32", "cpu") == "fp32"
    assert resolve_precision("bf16", "cpu") == "bf16"
    monkeypatch.setattr(_torch, "cpu_has_bf16", lambda: False)
    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("fp32", "cpu") == "fp32"


def test_auto_on_cuda_follows_is_bf16_supported(monkeypatch):
    monkeypatch.setattr(_torch, "cpu_has_bf16", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("auto", "auto") == "bf16"  # device "auto" is CUDA now
    assert resolve_precision("auto", "cuda") == "bf16"
    assert resolve_precision("auto", "cpu") == "fp32"  # the CPU has no bf16 units
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_precision("auto", "cuda:0") == "fp32"
    assert resolve_precision("fp32", "cuda") == "fp32"


def test_explicit_bf16_without_bf16_units_works_and_warns(plain_cpu):
    with pytest.warns(UserWarning, match="no native bfloat16"):
        assert resolve_precision("bf16", "cpu") == "bf16"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_precision("auto", "cpu") == "fp32"  # auto never warns


@pytest.mark.parametrize("bad", ["fp16", "BF16", "float32", None, 16])
def test_resolve_precision_rejects_unknown_values(bad):
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision(bad, "cpu")


def test_training_mode_keeps_auto_fp32_off_cuda(monkeypatch, bf16_cpu):
    assert resolve_precision("auto", "cpu", mode="train") == "fp32"  # bf16 units or not: CPU training is fp32
    assert resolve_precision("bf16", "cpu", mode="train") == "bf16"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("auto", "cuda", mode="train") == "bf16"
    with pytest.raises(ValueError, match="mode must be one of"):
        resolve_precision("auto", "cpu", mode="fit")


def test_estimators_resolve_for_their_own_mode(bf16_cpu):
    assert ResNetEmbedder(device="cpu")._resolved_precision() == "bf16"  # inference
    assert ResNetEmbedder(device="cpu")._resolved_precision("train") == "fp32"  # its fine-tuning
    assert MultilabelNeuralNetClassifier(device="cpu")._resolved_precision() == "fp32"  # nets predict as they train


def test_cpu_detection_reads_the_cpuinfo_flags(monkeypatch):
    detected = cpu_has_bf16()
    assert detected is cpu_has_bf16()  # cached: read once per process
    if sys.platform.startswith("linux"):
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
        assert detected == bool({"avx512_bf16", "amx_bf16"} & set(flags))
    monkeypatch.setattr(sys, "platform", "darwin")
    assert cpu_has_bf16.__wrapped__() is False  # no /proc/cpuinfo: never bf16 by "auto"


def test_auto_gives_what_it_resolves_to():
    X = _images(3)
    emb = ResNetEmbedder(image_size=64, random_state=0).fit(X)
    resolved = resolve_precision("auto", emb.device)
    if torch.cuda.is_available():  # device "auto" is the GPU
        assert resolved == ("bf16" if torch.cuda.is_bf16_supported() else "fp32")
    else:
        assert resolved == ("bf16" if cpu_has_bf16() and torch.backends.mkldnn.is_available() else "fp32")
    auto = emb.set_params(precision="auto").transform(X)
    np.testing.assert_array_equal(auto, emb.set_params(precision=resolved).transform(X))


# --------------------------------------------------------------------------- parameters
@pytest.mark.parametrize("make", [
    lambda p: ResNetEmbedder(precision=p).fit(_images(2)),
    lambda p: GradCAM(precision=p).fit(_images(2), np.eye(2, dtype=int)),
    lambda p: UNetSegmenter(precision=p).fit(_images(2), np.ones((2, 64, 64))),
], ids=["ResNetEmbedder", "GradCAM", "UNetSegmenter"])
def test_fit_rejects_an_unknown_precision(make):
    with pytest.raises(InvalidParameterError, match="precision"):
        make("fp16")


def test_every_torch_estimator_defaults_to_auto():
    for est in (ResNetEmbedder(), GradCAM(), UNetSegmenter()):
        assert est.get_params()["precision"] == "auto"


def test_loaded_estimators_check_precision_at_transform():
    seg = load_lung_unet(precision="half")  # load() fits nothing: transform validates
    with pytest.raises(InvalidParameterError, match="precision"):
        seg.transform(_images(1))


# --------------------------------------------------------------------------- outputs
def test_embeddings_float32_close_to_fp32_and_repeatable():
    X = _images(6)
    emb = ResNetEmbedder(image_size=64, batch_size=4, random_state=0).fit(X)
    fp32 = emb.set_params(precision="fp32").transform(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # emulated bf16 on CPUs without bf16 units
        bf16 = emb.set_params(precision="bf16").transform(X)
        assert bf16.dtype == np.float32 and bf16.shape == fp32.shape
        assert not np.array_equal(bf16, fp32)  # bf16 did run
        assert _pearson(bf16, fp32) > 0.99
        np.testing.assert_array_equal(emb.transform(X), bf16)  # bit-for-bit per precision
    np.testing.assert_array_equal(emb.set_params(precision="fp32").transform(X), fp32)


def test_cached_functions_refuse_an_unresolved_precision():
    X = _images(2, 32)
    state = resnet18_1ch()
    with pytest.raises(ValueError, match="resolved"):
        deep.embed_cnn(X, state, image_size=32, precision="auto")
    head = {"weight": np.zeros((2, 512), np.float32), "bias": np.zeros(2, np.float32)}
    with pytest.raises(ValueError, match="resolved"):
        cnn_cams(X, state, head, image_size=32, precision="auto")


@pytest.fixture(scope="module")
def cam(one_torch_thread):
    """A GradCAM (fp32) on a ResNet18 fine-tuned one epoch on 8 random 64-px images, and the images."""
    X = _images(8, 64, seed=1)
    Y = np.array([[1, 0], [0, 1]] * 4)
    cnn = ResNetEmbedder(fine_tune="all", epochs=1, image_size=64, batch_size=8, random_state=0)
    return GradCAM(cnn, target="all", normalize=None, precision="fp32").fit(X, Y), X


def test_head_probabilities_float32_close_to_fp32(cam):
    cam, X = cam
    cnn = copy.deepcopy(cam.cnn_)
    fp32 = cnn.set_params(precision="fp32").predict_proba(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        bf16 = cnn.set_params(precision="bf16").predict_proba(X)
        np.testing.assert_array_equal(cnn.predict_proba(X), bf16)
    assert bf16.dtype == np.float32
    np.testing.assert_allclose(bf16, fp32, atol=0.02)


def test_gradcam_logits_are_the_head_probabilities_at_either_precision(cam, device_close):
    """Under bf16 too, Grad-CAM's logits (float32 means of the maps) and predict_proba's agree."""
    cam, X = cam
    states = cam.cnn_.model_, numpy_state(cam.cnn_.head_.state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for precision in ("fp32", "bf16"):
            _, logits = cnn_cams(X, *states, image_size=64, batch_size=8, precision=precision)
            proba = copy.deepcopy(cam.cnn_).set_params(precision=precision, batch_size=8).predict_proba(X)
            np.testing.assert_allclose(proba, 1 / (1 + np.exp(-logits)), **device_close)


def test_gradcam_maps_float32_close_to_fp32_and_repeatable(cam):
    cam, X = cam
    fp32 = cam.transform(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        bf16_cam = copy.deepcopy(cam).set_params(precision="bf16")
        bf16 = bf16_cam.transform(X)
        np.testing.assert_array_equal(bf16_cam.transform(X), bf16)
    assert bf16.dtype == np.float32 and bf16.shape == fp32.shape == (8, 2, 64, 64)
    assert fp32.std() > 0 and not np.array_equal(bf16, fp32)
    assert _pearson(bf16, fp32) > 0.99


def test_closed_form_and_autograd_agree_under_bf16():
    X = _images(3, 128)
    torch.manual_seed(0)
    backbone, head = resnet18_1ch().eval(), torch.nn.Linear(512, 3)
    states = backbone, numpy_state(head.state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        closed, logits = cnn_cams(X, *states, image_size=128, precision="bf16")
        auto, auto_logits = cnn_cams(X, *states, image_size=128, method="autograd", precision="bf16")
    fp32, fp32_logits = cnn_cams(X, *states, image_size=128, precision="fp32")
    assert closed.dtype == logits.dtype == np.float32
    np.testing.assert_allclose(auto, closed, rtol=1e-4, atol=1e-5 * closed.max())  # both from the same bf16 A
    np.testing.assert_allclose(auto_logits, logits, rtol=1e-4, atol=1e-5)
    assert _pearson(closed, fp32) > 0.99 and _pearson(logits, fp32_logits) > 0.99


def test_gradcam_fit_learns_its_scale_at_the_transform_precision(cam, monkeypatch):
    cam, X = cam
    seen = []
    original = cnn_cams

    @functools.wraps(original)
    def recording(*args, **kwargs):
        seen.append(kwargs["precision"])
        return original(*args, **kwargs)

    monkeypatch.setattr("skcxr.attention._gradcam.cnn_cams", recording)
    monkeypatch.setattr(_torch, "cpu_has_bf16", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    fitted = copy.deepcopy(cam).set_params(normalize="fitted", precision="auto")
    fitted._fit_scale(X)  # what fit does after the fine-tuning
    fitted.transform(X)
    assert seen == ["bf16", "bf16"]  # resolved, in fit's scale_ and in transform


def test_unet_maps_float32_close_to_fp32_and_repeatable():
    data = make_phantoms(4, size=64, random_state=0)
    X = CXRPreprocessor(size=64).fit_transform(data.images)
    seg = load_lung_unet(batch_size=4)
    fp32 = seg.set_params(precision="fp32").transform(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        bf16 = seg.set_params(precision="bf16").transform(X)
        np.testing.assert_array_equal(seg.transform(X), bf16)
    assert bf16.dtype == np.float32 and bf16.shape == (4, 64, 64)
    assert 0 <= bf16.min() and bf16.max() <= 1
    assert fp32.std() > 0.1 and not np.array_equal(bf16, fp32)
    assert _pearson(bf16, fp32) > 0.99
    np.testing.assert_array_equal(seg.set_params(precision="fp32").transform(X), fp32)


# --------------------------------------------------------------------------- cache keys
_embed_cnn = deep.embed_cnn
EMBED_CALLS = []


@functools.wraps(_embed_cnn)  # module-level, no closure: the cache can key it (as it keys embed_cnn)
def counting_embed(*args, **kwargs):
    EMBED_CALLS.append(kwargs["precision"])
    return _embed_cnn(*args, **kwargs)


def test_cache_never_serves_a_bf16_result_to_an_fp32_request(tmp_path, monkeypatch):
    X = _images(4)
    calls = EMBED_CALLS
    calls.clear()
    monkeypatch.setattr(deep, "embed_cnn", counting_embed)
    emb = ResNetEmbedder(image_size=64, random_state=0, memory=str(tmp_path)).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        bf16 = emb.set_params(precision="bf16").transform(X)
    fp32 = emb.set_params(precision="fp32").transform(X)
    assert calls == ["bf16", "fp32"]  # the fp32 request was computed, not read
    assert not np.array_equal(fp32, bf16)
    np.testing.assert_array_equal(fp32, emb.set_params(memory=None).transform(X))  # computed: a third call
    emb.set_params(memory=str(tmp_path))
    np.testing.assert_array_equal(emb.set_params(precision="fp32").transform(X), fp32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        np.testing.assert_array_equal(emb.set_params(precision="bf16").transform(X), bf16)
    assert calls == ["bf16", "fp32", "fp32"]  # both requests again: each read from its own entry


def test_unet_and_gradcam_cache_keys_hold_the_resolved_precision(tmp_path, monkeypatch, cam):
    cam, X = cam
    memory = check_memory(tmp_path)
    seg = load_lung_unet()
    from skcxr import segmentation

    run = memory.cache(segmentation.segment, ignore=["batch_size", "device", "verbose"])
    state = numpy_state(seg.model_.state_dict())
    kw = dict(depth=seg.depth, base_width=seg.base_width, image_size=seg.image_size)
    assert run.cache_key(X, state, precision="fp32", **kw) != run.cache_key(X, state, precision="bf16", **kw)

    cams = memory.cache(cnn_cams, ignore=["batch_size", "device", "verbose"])
    states = cam.cnn_.model_, numpy_state(cam.cnn_.head_.state_dict())
    assert cams.cache_key(X, *states, image_size=64, precision="fp32") != cams.cache_key(
        X, *states, image_size=64, precision="bf16")


def test_auto_in_a_step_is_keyed_on_what_it_resolves_to(monkeypatch, tmp_path):
    """A Pipeline cache keys a step on its parameters: "auto" on a bf16 machine must not match "auto" elsewhere."""
    cached = check_memory(tmp_path).cache(lambda est: None)
    keys = {}
    for has_bf16 in (True, False):
        monkeypatch.setattr(_torch, "cpu_has_bf16", lambda v=has_bf16: v)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        for est in (ResNetEmbedder(random_state=0), GradCAM(), UNetSegmenter(random_state=0)):
            keys[type(est).__name__, has_bf16] = (joblib.hash(est), cached.cache_key(est))
    for name in ("CNNEmbedder", "GradCAM", "UNetSegmenter"):
        assert keys[name, True][0] != keys[name, False][0]
        assert keys[name, True][1] != keys[name, False][1]
    # An explicit precision is a parameter like any other: the same key on every machine.
    monkeypatch.setattr(_torch, "cpu_has_bf16", lambda: True)
    first = joblib.hash(ResNetEmbedder(random_state=0, precision="fp32"))
    monkeypatch.setattr(_torch, "cpu_has_bf16", lambda: False)
    assert joblib.hash(ResNetEmbedder(random_state=0, precision="fp32")) == first


def test_pickles_do_not_carry_the_resolved_precision():
    import pickle

    for est in (ResNetEmbedder(), GradCAM(), UNetSegmenter()):
        again = pickle.loads(pickle.dumps(est))
        assert vars(again).keys() == vars(est).keys()
        assert again.get_params()["precision"] == "auto"
        assert copy.copy(est).get_params() == est.get_params()


# --------------------------------------------------------------------------- CUDA
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_bf16_embeddings_and_maps():
    assert resolve_precision("auto", "cuda") == ("bf16" if torch.cuda.is_bf16_supported() else "fp32")
    X = _images(8, 64)
    emb = ResNetEmbedder(image_size=64, device="cuda", random_state=0).fit(X)
    fp32 = emb.set_params(precision="fp32").transform(X)
    bf16 = emb.set_params(precision="bf16").transform(X)
    assert bf16.dtype == np.float32 and _pearson(bf16, fp32) > 0.99
    np.testing.assert_array_equal(emb.transform(X), bf16)
    seg = load_lung_unet(device="cuda")
    maps_fp32 = seg.set_params(precision="fp32").transform(X)
    maps_bf16 = seg.set_params(precision="bf16").transform(X)
    assert maps_bf16.dtype == np.float32 and np.abs(maps_bf16 - maps_fp32).max() < 0.05
