"""Plain JSON values from results: str keys, lists, Python numbers, None for NaN."""

from __future__ import annotations

import math

import numpy as np


def jsonable(value):
    """``value`` as plain JSON values: dict keys as str, tuples and arrays as lists, numpy scalars as Python
    numbers, NaN and infinity as None (so ``json.dumps(..., allow_nan=False)`` succeeds).

    Examples
    --------
    >>> import numpy as np
    >>> jsonable({1: (np.float32(0.5), float("nan"))})
    {'1': [0.5, None]}
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
