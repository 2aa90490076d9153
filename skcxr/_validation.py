"""Input checks shared by the image estimators (private)."""

from __future__ import annotations

import os

import numpy as np


def is_path_like(x) -> bool:
    return isinstance(x, (str, os.PathLike))


def is_path_array(X) -> bool:
    """True when X is a 1-D sequence of file paths (str or PathLike), all of them."""
    if isinstance(X, (str, os.PathLike)):
        return False
    if isinstance(X, np.ndarray) and X.dtype != object and X.dtype.kind not in "US":
        return False
    try:
        items = list(X) if not isinstance(X, np.ndarray) else X.ravel().tolist()
    except TypeError:
        return False
    if not items:
        return False
    kinds = {is_path_like(x) for x in items}
    if kinds == {True}:
        if isinstance(X, np.ndarray) and X.ndim != 1:
            raise ValueError(f"Paths must be a 1-D array, got shape {X.shape}.")
        return True
    if True in kinds:
        raise ValueError(
            "X mixes file paths with other objects; pass either a 1-D array of paths "
            "or an array of images."
        )
    return False


def check_image_stack(X, *, name: str = "X") -> np.ndarray:
    """Validate a stack of preprocessed 2-D images and return it as float32 (n, H, W).

    The stack is what :class:`skcxr.preprocessing.CXRPreprocessor` produces.
    """
    if is_path_array(X):
        raise ValueError(
            f"{name} holds file paths; run CXRPreprocessor first "
            "(or put this estimator after it in a Pipeline)."
        )
    X = np.asarray(X)
    if X.dtype == object:
        raise ValueError(f"{name} must be a numeric array of images, got dtype=object.")
    if X.ndim != 3:
        raise ValueError(
            f"{name} must be a stack of 2-D images with shape (n, H, W), got shape {X.shape}."
        )
    if X.shape[0] == 0:
        raise ValueError(f"{name} is empty: found 0 images, at least 1 is required.")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype={X.dtype}.")
    X = X.astype(np.float32, copy=False)
    if not np.isfinite(X).all():
        raise ValueError(f"{name} contains NaN or infinity.")
    return X


def check_multilabel_Y(Y, n_samples: int | None = None, *, name: str = "Y") -> np.ndarray:
    """Validate a 2-D 0/1 indicator matrix; return it as uint8 (n, L)."""
    Y = np.asarray(Y)
    if Y.ndim != 2:
        raise ValueError(f"{name} must be a 2-D 0/1 indicator matrix (n, L), got shape {Y.shape}.")
    if n_samples is not None and Y.shape[0] != n_samples:
        raise ValueError(f"{name} has {Y.shape[0]} rows but X has {n_samples} samples.")
    if not np.isin(Y, (0, 1)).all():
        raise ValueError(f"{name} must contain only 0 and 1.")
    return Y.astype(np.uint8, copy=False)
