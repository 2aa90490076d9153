"""Torch modules and plain-torch training pieces (no scikit-learn, no skorch).

- :mod:`skcxr.nn.backbones`: every CNN backbone as a 1-channel feature-map network (ResNet18, ImageNet
  EfficientNet-Lite0/2 loaded offline, timm and torchvision architectures, your module).
- :mod:`skcxr.nn.resnet`: the 1-channel ResNet18, weight loading and conversion, BatchNorm folding, and
  :class:`CNNClassifier` (any backbone + a linear multi-label head).
- :mod:`skcxr.nn.mlp`: :class:`MLP`, :class:`DeeperMLP`.
- :mod:`skcxr.nn.unet`: :class:`UNet` and its BCE + Dice loss.
- :mod:`skcxr.nn.augment`: one random geometry applied to an image batch and, optionally, its masks.
- :mod:`skcxr.nn.training`: seeding that restores CPU and CUDA generators, ``pos_weight``.

The estimators that train these modules live in :mod:`skcxr.neural` (one skorch stack).
"""

from .augment import DEFAULT_AUGMENT, augment, augment_params
from .mlp import MLP, DeeperMLP
from .backbones import build_cnn, imagenet_classifier
from .resnet import N_FEATURES, CNNClassifier, ResNet18Classifier, load_resnet18_weights, resnet18_1ch
from .training import MAX_POS_WEIGHT, balanced_pos_weight, seeded
from .unet import BCEDiceLoss, UNet, dice_coefficient

__all__ = [
    "BCEDiceLoss",
    "CNNClassifier",
    "DEFAULT_AUGMENT",
    "MAX_POS_WEIGHT",
    "MLP",
    "N_FEATURES",
    "DeeperMLP",
    "ResNet18Classifier",
    "UNet",
    "augment",
    "augment_params",
    "balanced_pos_weight",
    "build_cnn",
    "dice_coefficient",
    "imagenet_classifier",
    "load_resnet18_weights",
    "resnet18_1ch",
    "seeded",
]
