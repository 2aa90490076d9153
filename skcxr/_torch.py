"""Batch helpers shared by the torch estimators (private): device, tensors, batched inference."""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ._validation import check_image_stack, is_path_array
from .preprocessing import CXRPreprocessor


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else is passed to ``torch.device``."""
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def as_tensor(batch: np.ndarray, image_size: int) -> torch.Tensor:
    """float32 (b, H, W) numpy -> (b, 1, S, S) tensor, resized (antialiased bilinear) when H or W != S."""
    x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).unsqueeze(1)
    if x.shape[-2:] != (image_size, image_size):
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False)
    return x


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move a (b, C, H, W) batch to ``device``; channels_last on the CPU (faster convolutions there)."""
    fmt = torch.channels_last if device.type == "cpu" else torch.contiguous_format
    return x.to(device).contiguous(memory_format=fmt)


def check_stack(X, owner: str = "The network") -> np.ndarray:
    """A preprocessed (n, H, W) float32 stack; warns when it is not scaled to [-1, 1]."""
    X = check_image_stack(X)
    lo, hi = float(X.min()), float(X.max())
    if lo < -1.05 or hi > 1.05:
        warnings.warn(
            f"{owner} expects CXRPreprocessor output scaled to [-1, 1]; X spans [{lo:.3g}, {hi:.3g}].",
            stacklevel=3,
        )
    return X


def iter_batches(X, image_size: int, batch_size: int):
    """Yield float32 (b, H, W) batches; paths are read and preprocessed one batch at a time."""
    if is_path_array(X):
        paths = np.asarray(list(X), dtype=object)
        pre = CXRPreprocessor(size=image_size)
        for start in range(0, len(paths), batch_size):
            chunk = paths[start : start + batch_size]
            yield pre.fit(chunk).transform(chunk)
    else:
        X = check_stack(X)
        for start in range(0, len(X), batch_size):
            yield X[start : start + batch_size]


def load_images(X, image_size: int) -> np.ndarray:
    """All images of X as float32 (n, S, S) at ``image_size`` (for training)."""
    if is_path_array(X):
        return CXRPreprocessor(size=image_size).fit_transform(np.asarray(list(X), dtype=object))
    X = check_stack(X)
    if X.shape[1:] == (image_size, image_size):
        return X
    return np.concatenate([as_tensor(X[i : i + 64], image_size).squeeze(1).numpy() for i in range(0, len(X), 64)])


def forward(net: torch.nn.Module, X, *, image_size: int, batch_size: int, device, verbose=0, desc="") -> np.ndarray:
    """Run ``net`` (eval, inference mode) over X batch by batch; float32 (n, d)."""
    device = resolve_device(device)
    net = net.to(device).eval()
    if device.type == "cpu":
        net = net.to(memory_format=torch.channels_last)
    outputs = []
    bar = tqdm(total=len(X), desc=desc, unit="img", disable=not verbose)
    with torch.inference_mode():
        for batch in iter_batches(X, image_size, batch_size):
            outputs.append(net(to_device(as_tensor(batch, image_size), device)).float().cpu().numpy())
            bar.update(len(batch))
    bar.close()
    return np.concatenate(outputs).astype(np.float32, copy=False)
