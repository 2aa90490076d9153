"""The attention systems end to end: real U-Net, real Grad-CAM, fusion, make_attention_pipeline and `skcxr explain`."""

from __future__ import annotations

import joblib
import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.utils._param_validation import InvalidParameterError

from skcxr.attention import AttentionMaps, GradCAM, _gradcam
from skcxr.cli import main
from skcxr.datasets.phantoms import make_phantoms
from skcxr.features import ResNetEmbedder
from skcxr.neural import ResNetFineTuner
from skcxr.nn import UNet
from skcxr.persistence import save_model
from skcxr.pipelines import (ATTENTION_C, BACKBONE, LUNG_MARGIN, POOLING, make_attention_pipeline,
                             make_classical_pipeline)
from skcxr.preprocessing import CXRPreprocessor
from skcxr.segmentation import UNetSegmenter

SIZE = 48
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data():
    return make_phantoms(40, size=SIZE, random_state=0)


@pytest.fixture(scope="module")
def unet_file(data, tmp_path_factory):
    X = CXRPreprocessor(size=SIZE).fit_transform(data.images)
    seg = UNetSegmenter(depth=2, base_width=4, image_size=SIZE, epochs=3, random_state=0).fit(X, data.lung_masks)
    path = tmp_path_factory.mktemp("unet") / "unet.pt"
    seg.save(path)
    return path


def _cnn():
    return ResNetEmbedder(fine_tune="all", epochs=1, image_size=32, batch_size=16, random_state=0)


def test_attention_maps_with_a_weights_file_and_real_gradcam(data, unet_file):
    X = CXRPreprocessor(size=SIZE).fit_transform(data.images)
    maps = clone(AttentionMaps(str(unet_file), GradCAM(_cnn()))).fit(X, data.Y).transform(X)
    assert maps.shape == (40, 2, SIZE, SIZE) and maps.dtype == np.float32
    np.testing.assert_array_equal(maps[:, 0], UNetSegmenter.load(unet_file).transform(X))
    assert 0 <= maps.min() and maps.max() <= 1


def _count(monkeypatch, owner, name):
    calls = []
    original = getattr(owner, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


def test_changing_lam_or_the_classifier_recomputes_no_mask_and_no_cam(data, unet_file, tmp_path, monkeypatch):
    unet = _count(monkeypatch, UNet, "forward")
    tune = _count(monkeypatch, ResNetFineTuner, "fit")
    cams = _count(monkeypatch, _gradcam, "_closed_form")
    pipe = make_attention_pipeline(segmenter=unet_file, cnn=_cnn(), size=SIZE, memory=tmp_path, random_state=0)
    params = pipe.get_params()  # the defaults chosen by nested CV (studies/pretrained_defaults.py, lung_variants.py)
    assert (params["clf__estimator__C"], params["features__lungs__region__margin"]) == (ATTENTION_C, LUNG_MARGIN)
    for branch in ("features__cnn", "features__lungs__features__cnn"):  # the frozen ImageNet CNN, whole and lungs
        assert (params[f"{branch}__backbone"], params[f"{branch}__weights"], params[f"{branch}__pooling"]) == (
            BACKBONE, "imagenet", POOLING)
    default_cam = make_attention_pipeline(segmenter=unet_file).get_params()["features__attention__maps__cam__cnn"]
    assert (default_cam.backbone, default_cam.weights, default_cam.fine_tune) == (BACKBONE, "imagenet", "last")
    with sklearn.config_context(enable_metadata_routing=True):
        pipe.fit(data.images, data.Y, groups=data.patient_ids)
        first = pipe.predict_proba(data.images)
        counts = len(unet), len(tune), len(cams)
        assert min(counts) > 0
        for params in ({"features__attention__fusion__lam": 0.25}, {"clf__estimator__C": 1e-3}):
            pipe = clone(pipe).set_params(**params).fit(data.images, data.Y, groups=data.patient_ids)
            pipe.predict_proba(data.images)
    assert (len(unet), len(tune), len(cams)) == counts  # masks, fine-tuning and CAMs all came from the cache
    assert first.shape == (40, 7)
    assert not np.allclose(pipe.predict_proba(data.images), first)


def test_maps_system_and_lam_validation(data, unet_file):
    pipe = make_attention_pipeline("maps", segmenter=unet_file, cnn=_cnn(), size=SIZE, random_state=0)
    pipe.set_params(clf__max_epochs=2)
    assert pipe.fit(data.images, data.Y).predict_proba(data.images[:3]).shape == (3, 7)
    assert [name for name, _ in pipe.steps] == ["prep", "maps", "fusion", "pool", "scale", "clf"]
    with pytest.raises(InvalidParameterError, match="lam"):
        clone(pipe).set_params(fusion__lam=1.5).fit(data.images, data.Y)
    with pytest.raises(ValueError, match="system"):
        make_attention_pipeline("week5")


def test_explain_writes_panels_and_refuses_other_models(data, unet_file, tmp_path, capsys):
    pipe = make_attention_pipeline(segmenter=FrozenEstimator(UNetSegmenter.load(unet_file)), cnn=_cnn(), size=SIZE,
                                   random_state=0).fit(data.images, data.Y)
    save_model(pipe, tmp_path / "model.skcxr", target_names=data.target_names)
    from PIL import Image

    image, twin = tmp_path / "a" / "chest.png", tmp_path / "b" / "chest.png"  # one file name, two images
    for path, k in [(image, 0), (twin, 1)]:
        path.parent.mkdir()
        Image.fromarray(data.images[k]).save(path)
    assert main(["explain", str(image), str(twin), "--model", str(tmp_path / "model.skcxr"),
                 "--out", str(tmp_path / "o")]) == 0
    pictures = sorted(p.name for p in (tmp_path / "o").iterdir())
    assert pictures == ["chest-2_attention.png", "chest_attention.png"]
    assert all((tmp_path / "o" / p).stat().st_size > 10_000 for p in pictures)
    assert (tmp_path / "o" / pictures[0]).read_bytes() != (tmp_path / "o" / pictures[1]).read_bytes()
    joblib.dump(make_classical_pipeline(size=SIZE).fit(data.images, data.Y), tmp_path / "classical.joblib")
    assert main(["explain", str(image), "--model", str(tmp_path / "classical.joblib"), "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "not an attention pipeline" in err and "skcxr explain IMAGE --data DIR --out OUT" in err
    assert main(["explain", str(tmp_path / "missing.png"), "--model", str(tmp_path / "model.skcxr"),
                 "--out", str(tmp_path)]) == 1
