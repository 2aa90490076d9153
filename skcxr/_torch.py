"""Batch helpers shared by the torch estimators (private): device, precision, tensors, batched inference."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import warnings
from numbers import Integral

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions, validate_parameter_constraints
from tqdm.auto import tqdm

from ._validation import check_image_stack, is_path_array
from .preprocessing import CXRPreprocessor


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else is passed to ``torch.device``."""
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


#: The values of the torch estimators' ``precision`` parameter.
PRECISIONS = ("auto", "fp32", "bf16")


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """Whether this CPU has bfloat16 arithmetic units (``avx512_bf16`` or ``amx_bf16`` in /proc/cpuinfo).

    Read once per process. False where there is no /proc/cpuinfo (other
    systems than Linux) or it cannot be read: bf16 is then never chosen by
    ``precision="auto"``.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def _cuda_has_bf16() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def resolve_precision(precision: str, device="auto") -> str:
    """The arithmetic of inference on ``device``: ``"fp32"`` or ``"bf16"``.

    ``"auto"`` is bf16 where the hardware computes it natively (a CUDA GPU
    with ``torch.cuda.is_bf16_supported()``, a CPU with bf16 units by
    :func:`cpu_has_bf16`), else fp32. An explicit ``"bf16"`` is honoured
    everywhere, with a warning where it is emulated (slower than fp32).

    Examples
    --------
    >>> resolve_precision("fp32", "cpu")
    'fp32'
    >>> resolve_precision("auto", "cpu") == ("bf16" if cpu_has_bf16() else "fp32")
    True
    """
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; got {precision!r}.")
    if precision == "fp32":
        return "fp32"
    device = resolve_device(device)
    if device.type == "cuda":
        native = _cuda_has_bf16()
    elif device.type == "cpu":
        native = cpu_has_bf16() and torch.backends.mkldnn.is_available()
    else:  # mps, xpu...: bf16 only when asked for
        native = False
    if precision == "auto":
        return "bf16" if native else "fp32"
    if not native:
        warnings.warn(
            f"precision='bf16' on {device}, which has no native bfloat16 units: torch emulates it, "
            "usually slower than fp32. Use precision='auto' or 'fp32' here.",
            UserWarning,
            stacklevel=2,
        )
    return "bf16"


#: The key :func:`precision_state` adds to a pickled estimator's state.
_RESOLVED_KEY = "_skcxr_resolved_precision"


def precision_state(est, state: dict) -> dict:
    """``state`` (a ``__getstate__`` dict) with ``precision="auto"`` resolved on this machine beside it.

    Pipeline caches (``Pipeline(memory=...)``, :mod:`skcxr._cache`) key a
    step on its pickled state: with the resolved value in it, a step set to
    ``"auto"`` is never served a result computed under the other precision
    (on another machine, or on CUDA instead of the CPU).
    :func:`drop_precision_state` removes it when unpickling.
    """
    state = dict(state)  # object.__getstate__ returns the instance's own __dict__: never change that
    if getattr(est, "precision", None) == "auto":
        try:
            state[_RESOLVED_KEY] = resolve_precision("auto", getattr(est, "device", "auto"))
        except Exception:  # noqa: BLE001 - a bad device: fit says so; pickling must not fail here
            pass
    return state


def drop_precision_state(state: dict) -> dict:
    """``state`` without what :func:`precision_state` added (for ``__setstate__``)."""
    if _RESOLVED_KEY in state:
        state = {k: v for k, v in state.items() if k != _RESOLVED_KEY}
    return state


class TorchEstimatorMixin:
    """What the torch estimators share: their run-time parameters' constraints and the resolved precision.

    ``_run_constraints`` holds the constraints of ``batch_size``, ``device``,
    ``precision``, ``memory`` and ``verbose`` (merged into each estimator's
    ``_parameter_constraints``); ``_resolved_precision()`` checks
    ``precision`` and resolves it for ``device``; pickled state carries
    ``precision="auto"`` resolved beside it (:func:`precision_state`).
    """

    _run_constraints = {
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "precision": [StrOptions(set(PRECISIONS))],
        "memory": [None, str, os.PathLike, HasMethods(["cache"])],
        "verbose": ["verbose"],
    }

    def _resolved_precision(self) -> str:
        """``precision`` checked and resolved for ``device``: "fp32" or "bf16" (transform-time, no fit needed)."""
        constraint = {"precision": self._run_constraints["precision"]}
        validate_parameter_constraints(constraint, {"precision": self.precision}, type(self).__name__)
        return resolve_precision(self.precision, self.device)

    def __getstate__(self):
        return precision_state(self, super().__getstate__())

    def __setstate__(self, state):
        super().__setstate__(drop_precision_state(state))


def autocast(precision: str, device) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to bfloat16 for ``precision="bf16"`` (already resolved); a no-op for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision != "bf16":
        raise ValueError(f"precision must be resolved to 'fp32' or 'bf16'; got {precision!r}.")
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


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


def forward(net: torch.nn.Module, X, *, image_size: int, batch_size: int, device, precision: str = "fp32",
            verbose=0, desc="") -> np.ndarray:
    """Run ``net`` (eval, inference mode) over X batch by batch; float32 (n, d).

    ``precision`` (resolved: ``"fp32"`` or ``"bf16"``, see :func:`resolve_precision`):
    bf16 runs the network under ``torch.autocast(dtype=torch.bfloat16)``; the
    outputs are float32 either way.
    """
    device = resolve_device(device)
    net = net.to(device).eval()
    if device.type == "cpu":
        net = net.to(memory_format=torch.channels_last)
    outputs = []
    bar = tqdm(total=len(X), desc=desc, unit="img", disable=not verbose)
    with torch.inference_mode(), autocast(precision, device):
        for batch in iter_batches(X, image_size, batch_size):
            outputs.append(net(to_device(as_tensor(batch, image_size), device)).float().cpu().numpy())
            bar.update(len(batch))
    bar.close()
    return np.concatenate(outputs).astype(np.float32, copy=False)
