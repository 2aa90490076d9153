"""The skorch training stack: every torch network in skcxr trains through these classes.

:class:`MultilabelNeuralNetClassifier` is a :class:`skorch.NeuralNet` that
takes float features ``X`` of shape ``(n, d)`` and a 0/1 indicator matrix ``Y``
of shape ``(n, L)``, trains with :class:`torch.nn.BCEWithLogitsLoss` (one
sigmoid per label), stops early on the loss of an internal validation part
that is label-stratified and patient-disjoint when ``fit`` gets ``groups``,
keeps the weights of its best epoch and tunes per-label thresholds on that
part. It behaves like any scikit-learn classifier: ``clone``,
``get_params``/``set_params``, pickling, ``GridSearchCV``/``cross_validate``
with multi-label scorers.

:class:`BaseNet` holds what every net shares (seeding, ``device="auto"``,
patient-disjoint validation, early stopping, Ctrl-C, parameter checks).
:class:`CNNFineTuner` is the same classifier for image stacks: it trains a
:class:`skcxr.nn.resnet.CNNClassifier` (any backbone of :mod:`skcxr.nn.backbones`)
with batch augmentation; with ``fine_tune="last"`` the module freezes all but the
backbone's last stage. :func:`fine_tune_cnn` and its cached form
:func:`cached_fine_tune_cnn` are what :class:`skcxr.features.CNNEmbedder` (and
every other estimator that needs the fine-tuned network) call. :class:`SegmentationNet` trains the U-Net of
:class:`skcxr.segmentation.UNetSegmenter` on image/mask pairs.

Patient ids
-----------
Chest X-ray sets hold several images per patient. Pass ``groups`` (one patient
id per sample) to ``fit`` so the inner validation part never shares a patient
with the training part; without it, early stopping and tuned thresholds are
chosen on images of patients the network trains on, which makes them
optimistic. Inside a ``Pipeline`` with scikit-learn's metadata routing off (its
default), pass ``clf__groups=...`` (:func:`skcxr.model_selection.groups_params`
builds these names); with routing on, ``fit(X, Y, groups=...)`` reaches these
estimators by default, as it reaches the cross-validation splitter.

Layout
------
One concept per private module: ``_split`` (:class:`MultilabelValidSplit`),
``_callbacks`` (the skorch callbacks), ``_interrupt`` (the Ctrl-C guard),
``_base`` (:class:`BaseNet`), ``_classifier``
(:class:`MultilabelNeuralNetClassifier`), ``_image_nets``
(:class:`CNNFineTuner`, :class:`SegmentationNet`) and ``_training`` (the
functional trainers and ``numpy_state``, their cache-key helper).
"""

from ..nn import MLP, DeeperMLP
from ._base import BaseNet
from ._callbacks import EpochProgress, TuneThresholds
from ._classifier import MultilabelNeuralNetClassifier
from ._image_nets import CNNFineTuner, ResNetFineTuner, SegmentationNet
from ._split import MultilabelValidSplit
from ._training import cached_fine_tune_cnn, fine_tune_cnn, fit_state
from ._training import numpy_state  # noqa: F401 - the cache-key helper skcxr's modules import; not in __all__

__all__ = [
    "MLP",
    "DeeperMLP",
    "BaseNet",
    "MultilabelValidSplit",
    "TuneThresholds",
    "EpochProgress",
    "MultilabelNeuralNetClassifier",
    "CNNFineTuner",
    "ResNetFineTuner",
    "SegmentationNet",
    "fine_tune_cnn",
    "cached_fine_tune_cnn",
    "fit_state",
]
