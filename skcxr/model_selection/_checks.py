"""Input checks of the splitters: patient ids, test sizes and the number of rows of X."""

from __future__ import annotations

import numbers

import numpy as np


def _check_groups(groups, n_samples: int) -> np.ndarray:
    if groups is None:
        raise ValueError(
            "The 'groups' parameter should not be None: pass one group (patient) id per sample."
        )
    groups = np.asarray(groups)
    if groups.ndim != 1 or groups.shape[0] != n_samples:
        raise ValueError(
            f"groups must be 1-D with one id per sample ({n_samples}), got shape {groups.shape}."
        )
    return groups


def _test_fraction(test_size, n_samples: int) -> float:
    if isinstance(test_size, numbers.Integral) and not isinstance(test_size, bool):
        if not 0 < test_size < n_samples:
            raise ValueError(f"test_size={test_size} must be between 1 and n_samples - 1 = {n_samples - 1}.")
        return test_size / n_samples
    if isinstance(test_size, numbers.Real) and 0 < test_size < 1:
        return float(test_size)
    raise ValueError(f"test_size must be a float in (0, 1) or a positive int, got {test_size!r}.")


def _n_rows(X) -> int:
    """The number of rows (samples) of ``X``: its first dimension, or its length."""
    shape = getattr(X, "shape", None)
    return int(shape[0]) if shape is not None and len(shape) else len(X)
