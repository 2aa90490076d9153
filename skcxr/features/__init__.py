"""Feature extractors for preprocessed radiographs: float32 (n, H, W) in, float32 (n, d) out."""

from __future__ import annotations

from .texture import HOGFeatures, LBPFeatures
from .deep import ResNetEmbedder
