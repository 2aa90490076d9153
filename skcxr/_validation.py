"""Input checks shared by the image estimators (private)."""

from __future__ import annotations

import os

import numpy as np
import scipy.sparse
from sklearn.utils._param_validation import Interval


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


#: How to build a target, appended to every refusal of check_multilabel_Y.
HOW_TO_BUILD_Y = (
    "Build Y with skcxr.datasets.findings_to_Y(labels) from NIH 'Finding Labels' strings "
    "('Effusion|Mass', 'No Finding'), as load_chestxray14(root).Y is built, or with "
    "sklearn.preprocessing.MultiLabelBinarizer().fit_transform(lists_of_names) from lists of names."
)


def _show(value) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value)


def check_multilabel_Y(Y, n_samples: int | None = None, *, name: str = "Y",
                       allow_missing: bool = False) -> np.ndarray:
    """Validate a 2-D 0/1 indicator matrix; return it as uint8 (n, L).

    The one check of a disease target in skcxr. Accepted: any 2-D array-like
    (ndarray, DataFrame, list of lists, scipy sparse matrix) of 0/1 values,
    as integers, booleans or floats. Refused, with a ``ValueError`` saying how
    to build one: label strings or lists of names, a 1-D target, -1/1 (±1)
    targets and any other value. With ``allow_missing``, NaN is accepted as a
    missing label and Y is returned as float64 (0, 1 or NaN).
    """
    if scipy.sparse.issparse(Y):
        Y = Y.toarray()
    if isinstance(Y, (str, bytes)):
        raise ValueError(
            f"{name} must be a 2-D 0/1 indicator matrix (n_samples, n_labels), got the string {Y!r}. "
            + HOW_TO_BUILD_Y
        )
    try:
        Y = np.asarray(Y)
    except (ValueError, TypeError):  # ragged: lists of names of different lengths
        raise ValueError(
            f"{name} must be a 2-D 0/1 indicator matrix (n_samples, n_labels), got a ragged "
            "sequence (lists of label names?). " + HOW_TO_BUILD_Y
        ) from None
    if Y.dtype == object:
        strings = [v for v in Y.ravel()[:1000] if isinstance(v, (str, bytes, list, tuple, set))]
        if strings:
            raise ValueError(
                f"{name} must be a 2-D 0/1 indicator matrix (n_samples, n_labels), got label names "
                f"such as {_show(strings[0])}. " + HOW_TO_BUILD_Y
            )
        try:
            Y = Y.astype(float)
        except (TypeError, ValueError):
            raise ValueError(
                f"{name} must be a 2-D 0/1 indicator matrix (n_samples, n_labels) of numbers, "
                f"got objects such as {_show(Y.ravel()[0])}. " + HOW_TO_BUILD_Y
            ) from None
    if Y.dtype.kind in "USV":
        example = f" such as {_show(Y.ravel()[0])}" if Y.size else ""
        raise ValueError(
            f"{name} must be a 2-D 0/1 indicator matrix (n_samples, n_labels), got label strings"
            f"{example}. " + HOW_TO_BUILD_Y
        )
    if Y.ndim != 2:
        hint = ""
        if Y.ndim == 1:
            hint = (" A 1-D target is one label per sample; a single finding is Y[:, np.newaxis], "
                    "several findings per image need one column each.")
        raise ValueError(
            f"{name} must be a 2-D 0/1 indicator matrix (n_samples, n_labels), got shape {Y.shape}."
            f"{hint} " + HOW_TO_BUILD_Y
        )
    if n_samples is not None and Y.shape[0] != n_samples:
        raise ValueError(f"{name} has {Y.shape[0]} rows but X has {n_samples} samples.")
    if Y.dtype.kind not in "biuf":
        raise ValueError(
            f"{name} must be a 2-D 0/1 indicator matrix of numbers, got dtype={Y.dtype}. " + HOW_TO_BUILD_Y
        )
    valid = np.isin(Y, (0, 1))
    if allow_missing:
        valid |= np.isnan(Y)
    if not valid.all():
        values = np.unique(Y[~valid])
        if (values == -1).all():
            raise ValueError(
                f"{name} must contain only 0 and 1, got -1/1 (±1) labels; "
                "convert them with (Y > 0).astype(np.uint8). " + HOW_TO_BUILD_Y
            )
        shown = ", ".join(str(v) for v in values[:5]) + (", ..." if len(values) > 5 else "")
        raise ValueError(
            f"{name} must contain only 0 and 1 (a 2-D indicator matrix, one column per finding), "
            f"got also {shown}. " + HOW_TO_BUILD_Y
        )
    return Y.astype(float if allow_missing else np.uint8, copy=False)


class NumberInterval(Interval):
    """scikit-learn's ``Interval`` constraint, refusing booleans: ``True`` is not the number 1 here."""

    def is_satisfied_by(self, val):
        return not isinstance(val, bool) and super().is_satisfied_by(val)

    def __str__(self):
        return f"{super().__str__()}, not a bool"


def image_stack_tags(tags, *, paths: bool = False, target_required: bool | None = None, requires_fit: bool = True):
    """scikit-learn tags of an estimator whose ``X`` is an image stack (n, H, W), or with ``paths`` image paths.

    float32 in, float32 out; ``target_required`` sets whether ``fit`` needs ``y`` (None leaves the default).
    """
    tags.requires_fit = requires_fit
    tags.input_tags.two_d_array = False
    tags.input_tags.three_d_array = True
    tags.input_tags.string = paths
    if target_required is not None:
        tags.target_tags.required = target_required
    tags.transformer_tags.preserves_dtype = ["float32"]
    return tags
