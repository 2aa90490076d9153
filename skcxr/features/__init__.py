"""Feature extractors for preprocessed radiographs: float32 (n, H, W) in, float32 (n, d) out."""

from __future__ import annotations

from .texture import HOGFeatures, LBPFeatures

__all__ = ["LBPFeatures", "HOGFeatures", "CNNEmbedder", "ResNetEmbedder"]


def __getattr__(name):
    # CNNEmbedder (and its former name ResNetEmbedder) needs torch. Importing it on first use keeps torch out
    # of processes that only compute texture features (the joblib workers of LBPFeatures/HOGFeatures), which
    # would otherwise each load it.
    if name in ("CNNEmbedder", "ResNetEmbedder"):
        from . import deep

        return getattr(deep, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
