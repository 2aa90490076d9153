"""Attention maps: Grad-CAM of a fine-tuned CNN, lung masks, their fusion and pooling into features.

Three transformers chain in a ``Pipeline`` after the preprocessor:

- :class:`AttentionMaps` stacks, for each image, the lung probability map of a
  prefit U-Net (it never sees disease labels) and the Grad-CAM map of a
  network it fits on the disease labels (:class:`GradCAM`): ``(n, 2, S, S)``
  in [0, 1];
- :class:`AttentionFusion` blends them, ``F = lam * U + (1 - lam) * G``,
  smoothed: ``(n, S, S)`` in [0, 1];
- :class:`MapPooler` averages maps over a coarse grid: ``(n, size * size)``
  features with names.

:class:`AttentionFusion` and :class:`MapPooler` are stateless, so a grid over
``lam`` or ``size`` refits nothing upstream when the heavy steps cache their
work (``memory=`` of the segmenter and of the CAM). :func:`attention_maps`
gives the maps of new images under a fitted attention pipeline
(:func:`attention_steps` finds its steps); ``skcxr explain`` and the report's
gallery draw them.
"""

from ._fusion import AttentionFusion
from ._gradcam import GradCAM, cnn_cams
from ._inference import attention_maps, attention_steps
from ._maps import AttentionMaps
from ._pooling import MapPooler

__all__ = ["AttentionFusion", "AttentionMaps", "GradCAM", "MapPooler", "attention_maps", "attention_steps",
           "cnn_cams"]
