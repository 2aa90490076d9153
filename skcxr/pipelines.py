"""Ready-made pipelines: classical texture features + logistic regression, and the hybrid system.

Every step has a name, so any part swaps with ``set_params`` (``clf=...``,
``features__hog__orientations=...``) or is tuned by ``GridSearchCV``.
"""

from __future__ import annotations

from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import StandardScaler

from .features import HOGFeatures, LBPFeatures, ResNetEmbedder
from .neural import MLP, MultilabelNeuralNetClassifier
from .preprocessing import CXRPreprocessor


def make_logistic_regression(C: float = 0.01) -> OneVsRestClassifier:
    """One-vs-rest logistic regression with balanced class weights, the classical baseline.

    Examples
    --------
    >>> from skcxr.pipelines import make_logistic_regression
    >>> make_logistic_regression().estimator.class_weight
    'balanced'
    """
    return OneVsRestClassifier(LogisticRegression(C=C, class_weight="balanced", max_iter=2000))


def _texture_features(n_jobs):
    return [("lbp", LBPFeatures(n_jobs=n_jobs)), ("hog", HOGFeatures(n_jobs=n_jobs))]


def make_classical_pipeline(classifier=None, *, size: int = 224, equalize: str | None = "global",
                            n_jobs: int | None = None) -> Pipeline:
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
    return Pipeline([
        ("prep", CXRPreprocessor(size=size, equalize=equalize, n_jobs=n_jobs)),
        ("features", FeatureUnion(_texture_features(n_jobs))),
        ("scale", StandardScaler()),
        ("clf", make_logistic_regression() if classifier is None else classifier),
    ])


def make_hybrid_pipeline(cnn=None, classifier=None, *, size: int = 224, texture: bool = True,
                         memory=None, n_jobs: int | None = None, random_state=None) -> Pipeline:
    """``CXRPreprocessor -> FeatureUnion(LBP, HOG, ResNetEmbedder) -> StandardScaler -> MLP``.

    The hybrid system: hand-crafted texture features next to a ResNet18
    embedding, classified by a skorch multi-label MLP.

    Parameters
    ----------
    cnn : ResNetEmbedder, default=None
        The deep feature extractor; ``None`` gives
        ``ResNetEmbedder(image_size=size, memory=memory)`` (random weights, not
        fine-tuned). Pass ``ResNetEmbedder(fine_tune="all", ...)`` to fine-tune
        it on the training labels, or ``"drop"`` for texture features only.
    classifier : estimator, default=None
        Any multi-label classifier; ``None`` gives
        ``MultilabelNeuralNetClassifier(MLP)``. Swap later with
        ``set_params(clf=make_logistic_regression())``.
    size : int, default=224
        Side of the preprocessed images.
    texture : bool, default=True
        Include the LBP and HOG features.
    memory : None, str or joblib.Memory, default=None
        Caches the preprocessing and feature steps of the pipeline and the
        ResNet work, so a grid over ``clf__*`` computes the features once.
    n_jobs : int, default=None
        Workers for reading images and texture features.
    random_state : int, default=None
        Seeds the ResNet initialisation and the MLP.

    Examples
    --------
    >>> from skcxr.datasets import make_phantoms
    >>> from skcxr.pipelines import make_hybrid_pipeline
    >>> data = make_phantoms(40, size=64, random_state=0)
    >>> pipe = make_hybrid_pipeline(size=64, random_state=0)
    >>> pipe.set_params(clf__max_epochs=3).fit(data.images, data.Y).predict_proba(data.images[:2]).shape
    (2, 7)
    """
    if cnn is None:
        cnn = ResNetEmbedder(image_size=size, memory=memory, random_state=random_state)
    if classifier is None:
        classifier = MultilabelNeuralNetClassifier(MLP, random_state=random_state)
    features = (_texture_features(n_jobs) if texture else []) + [("cnn", cnn)]
    return Pipeline([
        ("prep", CXRPreprocessor(size=size, n_jobs=n_jobs)),
        ("features", FeatureUnion(features)),
        ("scale", StandardScaler()),
        ("clf", classifier),
    ], memory=memory)
