"""The key of one argument: files by content, estimators by parameters and the files they name (private)."""

from __future__ import annotations

import os

import numpy as np

from .._validation import is_path_array
from ._fingerprint import _is_existing_file, file_fingerprint, paths_fingerprint
from ._hashing import content_hash
from ._uncacheable import _is_unseeded_result, _Uncacheable, _Unseeded


def _is_estimator(value) -> bool:
    return hasattr(value, "get_params") and not isinstance(value, type)


def _unseeded(params: dict) -> list[str]:
    return [k for k, v in params.items() if (k == "random_state" or k.endswith("__random_state")) and v is None]


def _paths_key(value):
    """The key of a 1-D sequence of paths, or None when ``value`` is not one."""
    if isinstance(value, (list, tuple, np.ndarray)):
        items = value
    elif getattr(value, "ndim", None) == 1 and hasattr(value, "to_numpy") and hasattr(value, "index"):
        items = value.to_numpy()  # a pandas Series
    else:
        return None
    try:
        if not is_path_array(items):
            return None
    except ValueError:  # paths mixed with other objects, or a 2-D array of paths
        flat = np.asarray(items, dtype=object).ravel().tolist() if isinstance(items, np.ndarray) else list(items)
        parts = [("skcxr.file", os.fspath(v), file_fingerprint(v)) if _is_existing_file(v) else v for v in flat]
        return ("skcxr.mixed", type(value).__name__, getattr(items, "shape", len(items)), parts)
    items = np.asarray(items, dtype=object).ravel().tolist() if isinstance(items, np.ndarray) else list(items)
    key = ("skcxr.paths", type(value).__name__, len(items), paths_fingerprint(items))
    if not isinstance(value, (list, tuple, np.ndarray)):  # a Series: its index and name travel with it
        key += (content_hash(value.index), getattr(value, "name", None))
    return key


def _value_key(name: str, value):
    if name == "random_state" and value is None:
        raise _Unseeded("random_state=None")
    if _is_unseeded_result(value):
        raise _Unseeded(f"{name} is the output of an unseeded call")
    if _is_estimator(value):
        try:
            params = value.get_params(deep=True)
        except Exception as exc:  # noqa: BLE001 - a broken estimator: do not guess
            raise _Uncacheable(f"get_params failed: {exc}") from None
        unseeded = _unseeded(params)
        if unseeded:
            raise _Unseeded(f"unseeded {type(value).__name__}: {', '.join(unseeded)}=None")
        files = {}
        for k, v in sorted(params.items()):
            if _is_existing_file(v):
                files[k] = file_fingerprint(v)
            elif not _is_estimator(v):
                paths = _paths_key(v)
                if paths is not None:
                    files[k] = paths
        return ("skcxr.estimator", value, files)
    paths = _paths_key(value)
    if paths is not None:
        return paths
    if _is_existing_file(value):
        return ("skcxr.file", os.fspath(value), file_fingerprint(value))
    return value
