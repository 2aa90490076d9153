"""From a fitted attention pipeline to the maps of new images: :func:`attention_steps` and :func:`attention_maps`."""

from __future__ import annotations

import copy

import numpy as np
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.utils import Bunch

from .._fitted import fitted_model
from ._fusion import AttentionFusion
from ._maps import AttentionMaps, stack_maps

__all__ = ["attention_maps", "attention_steps", "fused_maps", "label_cams"]


def attention_steps(model):
    """The fitted ``(preprocessor, AttentionMaps, AttentionFusion)`` of an attention pipeline.

    Looks through a fitted :class:`~sklearn.pipeline.Pipeline` (inside a
    search's ``best_estimator_``) and its ``FeatureUnion`` members, as
    :func:`skcxr.pipelines.make_attention_pipeline` builds them; the
    preprocessor is the pipeline's first step. With them, the maps of new
    images are ``maps.transform(prep.transform(X))`` (``[:, 0]`` the lung
    map, ``[:, 1]`` the CAM) and ``fusion.transform`` of those
    (:func:`attention_maps` computes them all).

    Raises
    ------
    ValueError
        If ``model`` is not a pipeline holding both an ``AttentionMaps`` and
        an ``AttentionFusion`` step.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> attention_steps(make_pipeline(StandardScaler(), LogisticRegression()))
    Traceback (most recent call last):
    ...
    ValueError: not an attention pipeline (make_attention_pipeline): it has no AttentionMaps and AttentionFusion steps
    """
    model = fitted_model(model)
    found = {}

    def walk(est):
        if isinstance(est, Pipeline):
            for _, step in est.steps:
                walk(step)
        elif isinstance(est, FeatureUnion):
            for _, part in est.transformer_list:
                walk(part)
        elif isinstance(est, (AttentionMaps, AttentionFusion)):
            found.setdefault(type(est).__name__, est)

    walk(model)
    if not isinstance(model, Pipeline) or len(found) < 2:
        raise ValueError("not an attention pipeline (make_attention_pipeline): it has no AttentionMaps and "
                         "AttentionFusion steps")
    return model.steps[0][1], found["AttentionMaps"], found["AttentionFusion"]


def label_cams(cam, X, label=None):
    """A fitted CAM's maps of X as float32, and their name ("Grad-CAM", or "CAM" for another transformer).

    With ``label`` (an index into the labels), that label's maps: a GradCAM
    (anything with ``classes_`` and a ``target`` parameter) is asked for it on
    a copy, the caller's is unchanged; of ``(n, L, S, S)`` maps, ``[:, label]``.
    """
    classes = getattr(cam, "classes_", None)
    if classes is not None and hasattr(cam, "set_params") and "target" in cam.get_params(deep=False):
        if label is not None:
            cam = copy.copy(cam)
            cam.set_params(target=classes[label])
        return np.asarray(cam.transform(X), dtype=np.float32), "Grad-CAM"
    maps = np.asarray(cam.transform(X), dtype=np.float32)
    if maps.ndim == 4 and label is not None:
        return maps[:, label], "Grad-CAM"
    return maps, "CAM"


def fused_maps(images, segmenter, cam, fusion=None, label=None) -> Bunch:
    """Lung maps, CAMs and fused maps of preprocessed images; None for what is not given.

    Parameters
    ----------
    images : float32 array (n, S, S)
        Preprocessed images.
    segmenter, cam : fitted transformer or None
        The lung maps' and the CAMs' source (see :func:`label_cams` for ``cam`` and ``label``).
    fusion : AttentionFusion or None
        Fuses the two where both are given.
    label : int or None
        As in :func:`label_cams`.

    Returns
    -------
    Bunch
        ``lungs`` (n, S, S), ``cams`` (n, S, S) at the lung maps' size where there are lung maps,
        ``fused`` (n, S, S), each float32 or None; ``cam_name`` (None without ``cam``).
    """
    lungs = None if segmenter is None else np.asarray(segmenter.transform(images), dtype=np.float32)
    cams, cam_name = (None, None) if cam is None else label_cams(cam, images, label)
    fused = None
    if lungs is not None and cams is not None:
        stacks = stack_maps(lungs, cams)
        cams = stacks[:, 1]
        if fusion is not None:
            fused = fusion.transform(stacks)
    return Bunch(lungs=lungs, cams=cams, fused=fused, cam_name=cam_name)


def attention_maps(model, X, *, segmenter="auto", cam="auto", label=None, proba=True) -> Bunch:
    """What a fitted attention pipeline sees in images X: preprocessed images, maps and probabilities.

    The pipeline's preprocessor prepares X; its U-Net (``AttentionMaps.segmenter_``)
    draws the lung maps, its Grad-CAM network (``AttentionMaps.cam_``) the
    CAMs, resized to the lung maps' size; its ``AttentionFusion`` fuses the two.

    Parameters
    ----------
    model : fitted Pipeline or search
        An attention pipeline (:func:`skcxr.pipelines.make_attention_pipeline`), see :func:`attention_steps`.
    X : array-like
        Images as the pipeline takes them (paths, or arrays).
    segmenter : "auto", fitted transformer or None, default="auto"
        "auto": the pipeline's own U-Net; a transformer draws the lung maps instead; None draws none (and
        there are no fused maps).
    cam : "auto", fitted transformer or None, default="auto"
        "auto": the pipeline's own Grad-CAM network; else as ``segmenter``.
    label : int or None, default=None
        None: the CAM's own maps (for a GradCAM, its ``target``: the predicted labels' maps in the
        pipeline); an index: that label's maps (:func:`label_cams`).
    proba : bool, default=True
        Also ``model.predict_proba(X)``.

    Returns
    -------
    Bunch
        ``images`` float32 (n, S, S), the preprocessed images; ``lungs``, ``cams``, ``fused``, ``cam_name``
        as in :func:`fused_maps`; ``proba`` (n, L) or None.

    Raises
    ------
    ValueError
        If ``model`` is not an attention pipeline (the message of :func:`attention_steps`).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.base import BaseEstimator, TransformerMixin
    >>> from sklearn.frozen import FrozenEstimator
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.multiclass import OneVsRestClassifier
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import FunctionTransformer
    >>> from skcxr.attention import AttentionFusion, AttentionMaps, MapPooler
    >>> class Dark(TransformerMixin, BaseEstimator):  # stand-in segmenter: dark pixels are lung
    ...     def fit(self, X, y=None, groups=None):
    ...         self.fitted_ = True
    ...         return self
    ...     def transform(self, X):
    ...         return (np.asarray(X) < 0).astype(np.float32)
    >>> class Bright(Dark):  # stand-in CAM: a 4x4 map of bright regions
    ...     def transform(self, X):
    ...         return (np.asarray(X)[:, ::8, ::8] > 0.5).astype(np.float32)
    >>> X = np.random.default_rng(0).uniform(-1, 1, (6, 32, 32)).astype(np.float32)
    >>> Y = np.array([[1, 0], [0, 1], [1, 1]] * 2)
    >>> maps = AttentionMaps(FrozenEstimator(Dark().fit(X)), Bright())
    >>> pipe = make_pipeline(FunctionTransformer(), maps, AttentionFusion(smooth_sigma=None), MapPooler(4),
    ...                      OneVsRestClassifier(LogisticRegression())).fit(X, Y)
    >>> out = attention_maps(pipe, X)
    >>> out.images.shape, out.lungs.shape, out.cams.shape, out.fused.shape, out.proba.shape
    ((6, 32, 32), (6, 32, 32), (6, 32, 32), (6, 32, 32), (6, 2))
    """
    prep, maps_step, fusion = attention_steps(model)
    images = np.asarray(prep.transform(X), dtype=np.float32)
    maps = fused_maps(images, maps_step.segmenter_ if _is_auto(segmenter) else segmenter,
                      maps_step.cam_ if _is_auto(cam) else cam, fusion, label)
    return Bunch(images=images, **maps, proba=model.predict_proba(X) if proba else None)


def _is_auto(value) -> bool:
    return isinstance(value, str) and value == "auto"
