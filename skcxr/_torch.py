"""Batch helpers shared by the torch estimators (private): device, precision, tensors, batched inference."""

from __future__ import annotations

import contextlib
import os
import warnings
from numbers import Integral

import numpy as np
import torch
import torch.nn.functional as F
from joblib import effective_n_jobs
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions, validate_parameter_constraints
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ._env import cpu_has_bf16
from ._parallel import N_JOBS_CONSTRAINT
from ._validation import check_image_stack, is_path_array
from .preprocessing import CXRPreprocessor


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else is passed to ``torch.device``."""
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


#: The values of the torch estimators' ``precision`` parameter.
PRECISIONS = ("auto", "fp32", "bf16")


def _cuda_has_bf16() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


#: The modes of :func:`resolve_precision`: what the forward passes are for.
PRECISION_MODES = ("infer", "train")


def resolve_precision(precision: str, device="auto", *, mode: str = "infer") -> str:
    """The arithmetic of inference (``mode="infer"``) or of training (``mode="train"``) on ``device``.

    Returns ``"fp32"`` or ``"bf16"`` (bf16 autocast; for training that is AMP,
    with float32 weights, gradients and optimizer state and no loss scaling).
    For inference, ``"auto"`` is bf16 where the hardware computes it natively
    (a CUDA GPU with ``torch.cuda.is_bf16_supported()``, a CPU with bf16 units
    by :func:`cpu_has_bf16`), else fp32. For training, ``"auto"`` is bf16 on
    such a CUDA GPU only, and fp32 on the CPU (where the nets' training is not
    the bottleneck and fp32 keeps results as they were). An explicit
    ``"bf16"`` is honoured everywhere, with a warning where it is emulated
    (slower than fp32).

    Examples
    --------
    >>> resolve_precision("fp32", "cpu")
    'fp32'
    >>> resolve_precision("auto", "cpu") == ("bf16" if cpu_has_bf16() else "fp32")
    True
    >>> resolve_precision("auto", "cpu", mode="train"), resolve_precision("fp32", "cpu", mode="train")
    ('fp32', 'fp32')
    """
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; got {precision!r}.")
    if mode not in PRECISION_MODES:
        raise ValueError(f"mode must be one of {PRECISION_MODES}; got {mode!r}.")
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
        return "bf16" if native and (mode == "infer" or device.type == "cuda") else "fp32"
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

    Pipeline caches (``Pipeline(memory=...)``, :mod:`skcxr.cache`) key a
    step on its pickled state: with the resolved value in it, a step set to
    ``"auto"`` is never served a result computed under the other precision
    (on another machine, or on CUDA instead of the CPU).
    :func:`drop_precision_state` removes it when unpickling.
    """
    state = dict(state)  # object.__getstate__ returns the instance's own __dict__: never change that
    if getattr(est, "precision", None) == "auto":
        try:
            state[_RESOLVED_KEY] = est._resolved_precision()
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

    ``_run_constraints`` holds the constraints of ``batch_size``, ``n_jobs``, ``device``,
    ``precision``, ``memory`` and ``verbose`` (merged into each estimator's
    ``_parameter_constraints``); ``_resolved_precision(mode)`` checks
    ``precision`` and resolves it for ``device`` (:func:`resolve_precision`),
    by default for the estimator's ``_precision_mode``; pickled state carries
    ``precision="auto"`` resolved for that mode beside it (:func:`precision_state`).
    """

    #: What the estimator's own forward passes are for: "infer" for transformers (their fits call
    #: ``_resolved_precision("train")``), "train" for the skorch nets, which predict as they train.
    _precision_mode = "infer"

    _run_constraints = {
        "batch_size": [None, Interval(Integral, 1, None, closed="left")],
        "n_jobs": N_JOBS_CONSTRAINT,
        "device": [str, torch.device],
        "precision": [StrOptions(set(PRECISIONS))],
        "memory": [None, str, os.PathLike, HasMethods(["cache"])],
        "verbose": ["verbose"],
    }

    def _resolved_precision(self, mode: str | None = None) -> str:
        """``precision`` checked and resolved for ``device`` and ``mode`` (default ``_precision_mode``)."""
        constraint = {"precision": self._run_constraints["precision"]}
        validate_parameter_constraints(constraint, {"precision": self.precision}, type(self).__name__)
        return resolve_precision(self.precision, self.device, mode=mode or self._precision_mode)

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
    """Move a (b, C, H, W) batch to ``device`` (asynchronously from pinned memory), channels_last."""
    return x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)


#: Inference images per batch when ``batch_size=None``, by device type, at 224 px.
AUTO_BATCH = {"cpu": 32, "cuda": 256}


def inference_batch_size(batch_size, device, image_size: int = 224, cpu: int = AUTO_BATCH["cpu"]) -> int:
    """``batch_size``, or for None the batch for ``device``: ``cpu`` images on the CPU, 256 on CUDA at 224 px.

    On CUDA the batch scales with the pixel count (``256 * (224 / S)**2``,
    between 32 and 1024): large enough to keep the GPU busy, small enough for
    a few GiB of activations. Inference results do not depend on it beyond
    floating-point summation order.

    Examples
    --------
    >>> inference_batch_size(None, "cpu"), inference_batch_size(8, "cpu")
    (32, 8)
    """
    if batch_size is not None:
        return int(batch_size)
    if resolve_device(device).type != "cuda":
        return cpu
    return int(np.clip(AUTO_BATCH["cuda"] * (224 / image_size) ** 2, 32, 1024))


def loader_workers(n_jobs, device) -> int:
    """DataLoader worker processes for ``n_jobs``: 0 (read in the calling process) or more.

    joblib's convention (-1: every core; 1: none), read inside
    ``joblib.parallel_config`` too. None means no workers on the CPU and one
    per core on CUDA, where the GPU would otherwise wait for the decoding.

    Examples
    --------
    >>> loader_workers(None, "cpu"), loader_workers(1, "cpu"), loader_workers(3, "cpu")
    (0, 0, 3)
    """
    if n_jobs is None and resolve_device(device).type == "cuda":
        n_jobs = -1
    n = effective_n_jobs(n_jobs)
    return 0 if n <= 1 else n


class ImageBatches(Dataset):
    """Batch ``k`` of X as a float32 (b, 1, S, S) tensor: a torch Dataset of whole batches.

    Paths are read and preprocessed (:class:`CXRPreprocessor` at ``S``) when a
    batch is asked for, so a :class:`torch.utils.data.DataLoader` with workers
    decodes in parallel processes while the network runs; stacks are sliced
    (and resized when their side is not ``S``).

    Examples
    --------
    >>> import numpy as np
    >>> batches = ImageBatches(np.zeros((5, 16, 16), np.float32), image_size=8, batch_size=2)
    >>> len(batches), tuple(batches[2].shape)
    (3, (1, 1, 8, 8))
    """

    def __init__(self, X, image_size: int, batch_size: int):
        self.paths = is_path_array(X)
        self.X = np.asarray(list(X), dtype=object) if self.paths else check_stack(X, stacklevel=4)
        self.image_size, self.batch_size = image_size, batch_size

    def __len__(self) -> int:
        return -(-len(self.X) // self.batch_size)

    def __getitem__(self, k: int) -> torch.Tensor:
        if not 0 <= k < len(self):
            raise IndexError(k)
        chunk = self.X[k * self.batch_size : (k + 1) * self.batch_size]
        if self.paths:
            chunk = CXRPreprocessor(size=self.image_size).transform(chunk)  # stateless: checks X itself
        return as_tensor(chunk, self.image_size)

    @property
    def needs_work(self) -> bool:
        """Whether a batch costs more than a slice: paths to decode, or images to resize."""
        return self.paths or self.X.shape[1:] != (self.image_size, self.image_size)


def iter_batches(X, image_size: int, batch_size: int, *, n_jobs=None, device="cpu"):
    """Yield X as float32 (b, 1, S, S) CPU tensors, in order, ready for ``to_device``.

    A :class:`torch.utils.data.DataLoader` over :class:`ImageBatches`: with
    :func:`loader_workers` > 0 (paths or stacks to resize, more than one
    batch) worker processes prepare the next batches while the caller
    computes; on CUDA batches come in pinned memory, so ``to_device`` copies
    them without blocking the host.
    """
    batches = ImageBatches(X, image_size, batch_size)
    device = resolve_device(device)
    workers = loader_workers(n_jobs, device) if batches.needs_work or device.type == "cuda" else 0
    workers = min(workers, len(batches) - 1)  # a single batch gains nothing from a worker
    loader = DataLoader(batches, batch_size=None, num_workers=workers, pin_memory=device.type == "cuda",
                        prefetch_factor=2 if workers > 0 else None)
    yield from loader


def check_stack(X, owner: str = "The network", stacklevel: int = 3) -> np.ndarray:
    """A preprocessed (n, H, W) float32 stack; warns when it is not scaled to [-1, 1]."""
    X = check_image_stack(X)
    lo, hi = float(X.min()), float(X.max())
    if lo < -1.05 or hi > 1.05:
        warnings.warn(
            f"{owner} expects CXRPreprocessor output scaled to [-1, 1]; X spans [{lo:.3g}, {hi:.3g}].",
            stacklevel=stacklevel,
        )
    return X


def load_images(X, image_size: int, n_jobs=None) -> np.ndarray:
    """All images of X as float32 (n, S, S) at ``image_size`` (for training); paths read with ``n_jobs``."""
    if is_path_array(X):
        return CXRPreprocessor(size=image_size, n_jobs=n_jobs).fit_transform(np.asarray(list(X), dtype=object))
    X = check_stack(X)
    if X.shape[1:] == (image_size, image_size):
        return X
    return np.concatenate([as_tensor(X[i : i + 64], image_size).squeeze(1).numpy() for i in range(0, len(X), 64)])


#: Bytes of outputs :func:`forward` lets gather on the device before copying them to the host.
_PENDING_BYTES = 256 * 2**20


def forward(net: torch.nn.Module, X, *, image_size: int, batch_size=None, device, precision: str = "fp32",
            n_jobs=None, verbose=0, desc="") -> np.ndarray:
    """Run ``net`` (eval, inference mode, channels_last) over X batch by batch; float32 (n, ...).

    ``batch_size`` None is :func:`inference_batch_size`; ``n_jobs`` the
    decoding workers of :func:`iter_batches`. ``precision`` (resolved:
    ``"fp32"`` or ``"bf16"``, see :func:`resolve_precision`): bf16 runs the
    network under ``torch.autocast(dtype=torch.bfloat16)``; the outputs are
    float32 either way. Outputs stay on the device until a few hundred MB have
    gathered, so the host does not wait for the GPU after every batch.
    """
    device = resolve_device(device)
    net = net.to(device).eval().to(memory_format=torch.channels_last)
    batch_size = inference_batch_size(batch_size, device, image_size)
    outputs, pending = [], []
    bar = tqdm(total=len(X), desc=desc, unit="img", disable=not verbose)
    with torch.inference_mode(), autocast(precision, device):
        for x in iter_batches(X, image_size, batch_size, n_jobs=n_jobs, device=device):
            pending.append(net(to_device(x, device)).float())
            if sum(p.nbytes for p in pending) > _PENDING_BYTES:
                outputs.append(torch.cat(pending).cpu())
                pending = []
            bar.update(len(x))
    bar.close()
    return torch.cat(outputs + [torch.cat(pending).cpu()] if pending else outputs).numpy()

