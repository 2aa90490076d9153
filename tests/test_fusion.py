"""AttentionMaps, AttentionFusion and MapPooler: values, shapes, parameters, cloning, routing."""

from __future__ import annotations

import doctest
import pickle

import numpy as np
import pytest
import torch
from scipy import ndimage
from sklearn import config_context
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.metadata_routing import get_routing_for_object
from sklearn.utils.validation import check_is_fitted

from skcxr.attention import AttentionFusion, AttentionMaps, MapPooler, _fusion, _inference, _maps, _pooling
from skcxr.metrics import get_scorer


# Test doubles of the segmenter and CAM interfaces (UNetSegmenter, GradCAM): deterministic maps in [0, 1].
class DarkLungs(TransformerMixin, BaseEstimator):
    """Segmenter stand-in: lung probability = how dark the pixel is."""

    def fit(self, X, y=None):
        self.fitted_ = True
        return self

    def transform(self, X):
        check_is_fitted(self)
        return ((1 - np.asarray(X)) / 2).astype(np.float32)


class HalfSizeCAM(TransformerMixin, BaseEstimator):
    """CAM stand-in: the brightness at half resolution (or one constant per image); records what fit saw."""

    def __init__(self, constant=False, all_labels=False):
        self.constant = constant
        self.all_labels = all_labels

    def fit(self, X, y, groups=None):
        self.n_labels_ = np.asarray(y).shape[1]
        self.groups_ = groups
        return self

    def transform(self, X):
        check_is_fitted(self)
        maps = ((np.asarray(X)[:, ::2, ::2] + 1) / 2).astype(np.float32)
        if self.constant:
            maps[:] = np.linspace(0, 1, len(maps))[:, None, None]
        return np.repeat(maps[:, None], self.n_labels_, axis=1) if self.all_labels else maps


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (12, 16, 16)).astype(np.float32)
    Y = np.zeros((12, 3), dtype=np.uint8)  # 3 labels: with 2, sklearn's scorers take OneVsRest for binary
    Y[::2, 0] = 1
    Y[::3, 1] = 1
    Y[[1, 2, 7, 8, 11], 2] = 1
    return X, Y, np.arange(12) // 2


def _stacks(n=3, size=8, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, 2, size, size)).astype(np.float32)


# --- AttentionFusion ------------------------------------------------------------------------


@pytest.mark.parametrize("lam, channel", [(1, 0), (0, 1), (1.0, 0), (0.0, 1)])
def test_fusion_extremes_keep_one_map_exactly(lam, channel):
    maps = _stacks()
    fused = AttentionFusion(lam=lam, smooth_sigma=None).transform(maps)
    assert fused.dtype == np.float32 and fused.shape == (3, 8, 8)
    np.testing.assert_array_equal(fused, maps[:, channel])


def test_fusion_blends_then_smooths_each_image_alone():
    maps = _stacks()
    maps[1] = 0  # a blank image beside busy ones stays blank: no smoothing across images
    fused = AttentionFusion(lam=0.3, smooth_sigma=1.5).fit(maps).transform(maps)
    blend = 0.3 * maps[:, 0] + 0.7 * maps[:, 1]
    expected = np.stack([ndimage.gaussian_filter(b, 1.5) for b in blend])
    np.testing.assert_allclose(fused, expected, atol=1e-6)
    assert not fused[1].any()
    assert AttentionFusion(smooth_sigma=0).transform(maps).tolist() == AttentionFusion(
        smooth_sigma=None).transform(maps).tolist()


@pytest.mark.parametrize("scale, offset, shown", [(255, 0, r"\[0, 255\]"), (1, -0.5, r"\[-0.5, 0.5\]")])
def test_fusion_refuses_maps_outside_the_unit_interval(scale, offset, shown):
    maps = _stacks()
    maps[0, 0, 0, 0], maps[0, 1, 0, 0] = 0, 1
    maps = maps * scale + offset
    for call in (lambda est: est.fit(maps), lambda est: est.transform(maps)):
        with pytest.raises(ValueError, match=rf"maps in \[0, 1\].*got values in {shown}"):
            call(AttentionFusion(smooth_sigma=None))


@pytest.mark.parametrize("lam", [True, False])
def test_fusion_refuses_a_boolean_lam(lam):
    for call in (lambda est: est.fit(_stacks()), lambda est: est.transform(_stacks())):
        with pytest.raises(InvalidParameterError, match=rf"'lam' parameter of AttentionFusion.*not a bool. Got {lam}"):
            call(AttentionFusion(lam=lam))


def test_fusion_is_stateless():
    fusion_ = AttentionFusion()
    check_is_fitted(fusion_)  # requires_fit is False
    assert fusion_.__sklearn_tags__().requires_fit is False
    assert fusion_.__sklearn_tags__().input_tags.two_d_array is False
    maps = _stacks()
    np.testing.assert_array_equal(fusion_.transform(maps), clone(fusion_).fit_transform(maps))
    assert pickle.loads(pickle.dumps(fusion_)).get_params() == fusion_.get_params()


@pytest.mark.parametrize("params", [{"lam": 1.5}, {"lam": -0.1}, {"lam": "half"}, {"smooth_sigma": -1}])
def test_fusion_bad_parameters(params):
    for call in (lambda est: est.fit(_stacks()), lambda est: est.transform(_stacks())):
        with pytest.raises(InvalidParameterError):
            call(AttentionFusion(**params))


@pytest.mark.parametrize("shape", [(3, 8, 8), (3, 3, 8, 8), (3, 1, 8, 8), (0, 2, 8, 8)])
def test_fusion_refuses_other_shapes(shape):
    with pytest.raises(ValueError, match=r"\(n, 2, S, S\)|non-empty"):
        AttentionFusion().transform(np.zeros(shape, dtype=np.float32))


def test_fusion_refuses_nan():
    maps = _stacks()
    maps[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        AttentionFusion().transform(maps)


# --- MapPooler ------------------------------------------------------------------------------


@pytest.mark.parametrize("side, size", [(16, 4), (10, 3), (7, 4), (9, 9), (5, 8)])
def test_pooler_equals_torch_adaptive_average_pooling(side, size):
    maps = np.random.default_rng(side).uniform(0, 1, (2, 3, side, side)).astype(np.float32)
    expected = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(maps), size).numpy()
    out = MapPooler(size=size).transform(maps)
    assert out.dtype == np.float32 and out.shape == (2, 3 * size * size)
    np.testing.assert_allclose(out, expected.reshape(2, -1), atol=1e-6)


def test_pooler_names_and_pandas_output():
    maps = np.random.default_rng(0).uniform(0, 1, (4, 12, 12)).astype(np.float32)
    pooler = MapPooler(size=3).fit(maps)
    assert pooler.n_channels_ == 1
    names = pooler.get_feature_names_out()
    assert names.tolist()[:4] == ["map_r0_c0", "map_r0_c1", "map_r0_c2", "map_r1_c0"] and len(names) == 9
    frame = clone(pooler).set_output(transform="pandas").fit_transform(maps)
    assert frame.columns.tolist() == names.tolist()
    np.testing.assert_array_equal(frame.to_numpy(), pooler.transform(maps))

    stacks = np.stack([maps, 1 - maps], axis=1)
    two = MapPooler(size=2).fit(stacks)
    assert two.get_feature_names_out().tolist() == [
        f"ch{k}_map_r{i}_c{j}" for k in range(2) for i in range(2) for j in range(2)]
    with pytest.raises(ValueError, match="fitted on 2 map"):
        two.transform(maps)


def test_pooler_is_stateless_but_names_need_fit():
    maps = np.ones((2, 6, 6), dtype=np.float32)
    pooler = MapPooler(size=2)
    check_is_fitted(pooler)
    np.testing.assert_array_equal(pooler.transform(maps), np.ones((2, 4), dtype=np.float32))
    with pytest.raises(NotFittedError):
        pooler.get_feature_names_out()


@pytest.mark.parametrize("X, match", [
    (np.zeros((2, 6), dtype=np.float32), "non-empty stack"),
    (np.zeros((2, 1, 1, 6, 6), dtype=np.float32), r"\(n, H, W\) or \(n, C, H, W\)"),
    (np.array([[["a"]]]), "numeric"),
])
def test_pooler_bad_input(X, match):
    with pytest.raises(ValueError, match=match):
        MapPooler(size=2).transform(X)
    with pytest.raises(InvalidParameterError):
        MapPooler(size=0).transform(np.zeros((1, 4, 4)))


# --- AttentionMaps --------------------------------------------------------------------------


def test_maps_stack_lungs_and_resized_cam(data):
    X, Y, groups = data
    seg = DarkLungs().fit(X)
    cam = HalfSizeCAM()
    maps = AttentionMaps(FrozenEstimator(seg), cam).fit(X, Y, groups=groups)
    out = maps.transform(X)
    assert out.shape == (12, 2, 16, 16) and out.dtype == np.float32
    np.testing.assert_array_equal(out[:, 0], seg.transform(X))
    assert not hasattr(cam, "n_labels_")  # the caller's CAM is cloned, not fitted
    np.testing.assert_array_equal(maps.cam_.groups_, groups)
    constant = AttentionMaps(FrozenEstimator(seg), HalfSizeCAM(constant=True)).fit(X, Y).transform(X)[:, 1]
    np.testing.assert_allclose(constant, np.linspace(0, 1, 12)[:, None, None] * np.ones((1, 16, 16)), atol=1e-6)


def test_maps_feed_fusion_and_pooler_in_a_grid_search_with_groups(data):
    X, Y, groups = data
    pipe = make_pipeline(AttentionMaps(FrozenEstimator(DarkLungs().fit(X)), HalfSizeCAM()), AttentionFusion(),
                         MapPooler(size=2), OneVsRestClassifier(LogisticRegression()))
    search = GridSearchCV(pipe, {"attentionfusion__lam": [0.0, 1.0]}, cv=GroupKFold(2),
                          scoring=get_scorer("macro_auc"))
    with config_context(enable_metadata_routing=True):
        search.fit(X, Y, groups=groups)
    fitted = search.best_estimator_.named_steps["attentionmaps"]
    np.testing.assert_array_equal(fitted.cam_.groups_, groups)  # the CAM got the patient ids
    assert search.predict_proba(X).shape == (12, 3)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_raw_fitted_segmenter_works_until_cloned(data):
    X, Y, _ = data
    maps = AttentionMaps(DarkLungs().fit(X), HalfSizeCAM())
    assert maps.fit(X, Y).transform(X).shape == (12, 2, 16, 16)
    assert isinstance(maps.segmenter_, FrozenEstimator)
    with pytest.raises(NotFittedError, match="FrozenEstimator"):
        clone(maps).fit(X, Y)
    frozen = AttentionMaps(FrozenEstimator(DarkLungs().fit(X)), HalfSizeCAM())
    clone(frozen).fit(X, Y)  # FrozenEstimator survives clone
    refit = pickle.loads(pickle.dumps(frozen.fit(X, Y)))
    np.testing.assert_array_equal(refit.transform(X), frozen.transform(X))


def test_unfitted_segmenter_is_refused_with_advice(data):
    X, Y, _ = data
    with pytest.raises(NotFittedError, match="fit a UNetSegmenter on lung masks first, or pass a weights file"):
        AttentionMaps(DarkLungs(), HalfSizeCAM()).fit(X, Y)


def test_maps_refuse_multi_label_cams_and_bad_parameters(data):
    X, Y, _ = data
    with pytest.raises(ValueError, match="target='predicted'"):
        AttentionMaps(FrozenEstimator(DarkLungs().fit(X)), HalfSizeCAM(all_labels=True)).fit(X, Y).transform(X)
    with pytest.raises(InvalidParameterError, match="segmenter"):
        AttentionMaps(3, HalfSizeCAM()).fit(X, Y)
    with pytest.raises(NotFittedError):
        AttentionMaps(FrozenEstimator(DarkLungs().fit(X)), HalfSizeCAM()).transform(X)


def test_maps_request_groups():
    routing = get_routing_for_object(AttentionMaps(DarkLungs(), HalfSizeCAM()))
    assert routing.fit.requests == {"groups": True}
    tags = AttentionMaps(DarkLungs(), HalfSizeCAM()).__sklearn_tags__()
    assert tags.input_tags.three_d_array and not tags.input_tags.two_d_array


@pytest.mark.parametrize("module", [_maps, _fusion, _pooling, _inference])
def test_docstring_examples(module):
    result = doctest.testmod(module, raise_on_error=False)
    assert result.attempted > 0 and result.failed == 0
