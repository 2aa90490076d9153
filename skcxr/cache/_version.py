"""The code a key names: skcxr's version and source digest, the library versions, the cached function (private)."""

from __future__ import annotations

import functools
import hashlib
import inspect
from pathlib import Path

import numpy as np

import skcxr

from .._env import CACHE_LIBRARIES, library_versions
from ._uncacheable import _Uncacheable

#: The skcxr package folder: every ``.py`` file under it (sub-packages included) enters the source digest.
_PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def _source_files() -> list[Path]:
    """Every ``.py`` file of the skcxr package, sub-packages included, in sorted order."""
    return [path for path in sorted(_PACKAGE_ROOT.rglob("*.py")) if "__pycache__" not in path.parts]


@functools.lru_cache(maxsize=1)
def _source_digest() -> str:
    """BLAKE2b of every ``.py`` file of the skcxr package (relative name and bytes)."""
    h = hashlib.blake2b(digest_size=16)
    for path in _source_files():
        h.update(path.relative_to(_PACKAGE_ROOT).as_posix().encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def _dependency_versions() -> tuple:
    """``((name, version or None), ...)`` of :data:`skcxr._env.CACHE_LIBRARIES`."""
    return library_versions(CACHE_LIBRARIES)


def code_version() -> tuple:
    """``(skcxr.__version__, digest of skcxr's source files, versions of the libraries)``.

    Part of every key of a :class:`ContentMemory`: editing skcxr or upgrading
    a library invalidates old entries.

    Examples
    --------
    >>> version, source_digest, libraries = code_version()
    >>> import skcxr; version == skcxr.__version__
    True
    """
    return (skcxr.__version__, _source_digest(), _dependency_versions())


@functools.lru_cache(maxsize=256)
def _code_digest(code) -> str:
    """BLAKE2b of a function's source (of its bytecode and constants where the source is not found)."""
    try:
        source = inspect.getsource(code)
    except (OSError, TypeError):
        source = repr((code.co_code, code.co_consts, code.co_names))
    return hashlib.blake2b(source.encode("utf-8", "surrogatepass")).hexdigest()


def _func_key(func):
    """What identifies the code a cached call runs: module, name, source, closure, bound self."""
    if isinstance(func, functools.partial):
        return ("partial", _func_key(func.func), func.args, func.keywords)
    if inspect.ismethod(func):
        return ("method", _func_key(func.__func__), func.__self__)
    if inspect.isfunction(func):
        try:
            closure = tuple(cell.cell_contents for cell in func.__closure__ or ())
        except ValueError:  # an empty cell
            raise _Uncacheable(f"{func.__qualname__} has an unset closure variable.") from None
        return ("function", func.__module__, func.__qualname__, _code_digest(func.__code__), closure)
    if inspect.isbuiltin(func) or isinstance(func, (np.ufunc, type)):
        return ("builtin", getattr(func, "__module__", None), getattr(func, "__qualname__", repr(func)))
    return ("callable", func)  # a callable object: keyed by its pickled state
