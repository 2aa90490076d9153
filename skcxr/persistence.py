"""Fitted models that travel: one file for the model, a JSON sidecar that says what made it.

:func:`save_model` writes a fitted pipeline with :mod:`joblib` (atomically:
a temporary file in the same folder, then a rename, so a crash or Ctrl-C never
leaves half a model under the final name) and beside it ``<file>.json``: the
versions of skcxr, scikit-learn, torch, skorch, numpy and Python, a
fingerprint of the training data, the label names, the thresholds and the
metrics. :func:`load_model` reads the sidecar first and refuses a file written
by an incompatible version before unpickling anything.

.. warning::
   A model file is a pickle: loading one runs code it contains. Load only
   files from a source you trust, as with any pickle.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from pathlib import Path

import joblib
import numpy as np
from sklearn.utils import Bunch

__all__ = ["FORMAT", "data_fingerprint", "load_model", "save_model", "versions"]

#: The ``format`` field of files written by :func:`save_model`.
FORMAT = "skcxr.model/1"
#: Packages whose ``major.minor`` must match for a pickled model to load: their pickles are not
#: guaranteed across minor versions (scikit-learn says so for its estimators).
_MUST_MATCH = ("skcxr", "scikit-learn", "skorch")


def versions() -> dict:
    """The versions a model file records (and :func:`load_model` compares).

    Examples
    --------
    >>> sorted(versions())
    ['numpy', 'python', 'scikit-learn', 'skcxr', 'skorch', 'torch']
    """
    import sklearn
    import skorch
    import torch

    from . import __version__

    return {"skcxr": __version__, "scikit-learn": sklearn.__version__, "skorch": skorch.__version__,
            "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version()}


def data_fingerprint(X, Y) -> str:
    """A SHA-256 of the training data: image names and sizes (paths) or pixels (arrays), and the labels.

    Paths enter by file name and byte size (not by folder, so the same images
    elsewhere give the same fingerprint; not by content, which would mean
    reading them all again).

    Examples
    --------
    >>> import numpy as np
    >>> data_fingerprint(np.zeros((2, 4, 4)), np.eye(2)) == data_fingerprint(np.zeros((2, 4, 4)), np.eye(2))
    True
    """
    from ._validation import is_path_array

    digest = hashlib.sha256()
    if is_path_array(X):
        for path in np.ravel(np.asarray(X, dtype=object)):
            size = os.path.getsize(path) if os.path.isfile(path) else -1
            digest.update(f"{os.path.basename(os.fspath(path))}\0{size}\n".encode())
    else:
        digest.update(joblib.hash(np.asarray(X)).encode())
    Y = np.ascontiguousarray(Y, dtype=np.uint8)
    digest.update(str(Y.shape).encode() + Y.tobytes())
    return digest.hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _atomic_write(path: Path, write) -> None:
    """``write(temporary_path)``, then rename it to ``path`` (same folder, so the rename is atomic)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_model(model, path, *, target_names, thresholds=None, metrics=None, data=None, settings=None) -> Path:
    """Write a fitted model to ``path`` and its description to ``path + ".json"``; return the sidecar's path.

    Parameters
    ----------
    model : fitted estimator
        Anything with ``predict_proba`` (a skcxr pipeline).
    path : str or path-like
        The model file (joblib). Its folder must exist.
    target_names : sequence of str
        The label of each column of ``predict_proba``.
    thresholds : array-like (n_labels,) or None
        Per-label decision thresholds (None: 0.5 for every label).
    metrics, data, settings : dict or None
        JSON-able descriptions kept in the sidecar: test metrics, the training
        data (e.g. ``{"fingerprint": data_fingerprint(X, Y), "images": n}``),
        the command's settings.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.dummy import DummyClassifier
    >>> clf = DummyClassifier().fit([[0], [1]], [0, 1])
    >>> path = os.path.join(tempfile.mkdtemp(), "model.joblib")
    >>> _ = save_model(clf, path, target_names=["Effusion"])
    >>> load_model(path).target_names
    ['Effusion']
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"Cannot save the model to {str(path)!r}: no folder {str(path.parent)!r}.")
    target_names = [str(t) for t in target_names]
    if thresholds is not None:
        thresholds = [float(t) for t in np.ravel(thresholds)]
        if len(thresholds) != len(target_names):
            raise ValueError(f"{len(thresholds)} thresholds for {len(target_names)} labels.")
    payload = {"format": FORMAT, "model": model, "target_names": target_names, "thresholds": thresholds,
               "versions": versions()}
    _atomic_write(path, lambda tmp: joblib.dump(payload, tmp))
    sidecar = {"format": FORMAT, "model_file": path.name, "sha256": _sha256(path), "versions": versions(),
               "target_names": target_names, "thresholds": thresholds, "metrics": metrics, "data": data,
               "settings": settings, "estimator": type(model).__name__}
    text = json.dumps(sidecar, indent=2, allow_nan=False, ensure_ascii=False, default=str)
    _atomic_write(_sidecar(path), lambda tmp: Path(tmp).write_text(text))
    return _sidecar(path)


def _check_versions(saved: dict, where: str) -> None:
    here = versions()
    for name in _MUST_MATCH:
        then = str(saved.get(name, "?"))
        if then.split(".")[:2] != here[name].split(".")[:2]:
            raise ValueError(
                f"{where} was written with {name} {then}; this is {name} {here[name]}. Pickled models do not "
                f"load across {name} versions: refit it here, or install {name}=={then} to use it.")


def load_model(path) -> Bunch:
    """Read a model written by :func:`save_model` (or a bare ``joblib.dump`` of an estimator).

    Only load files from a source you trust: a model file is a pickle, and
    unpickling runs code it contains.

    Returns
    -------
    Bunch
        ``model``, ``target_names`` (list of str, or None for a bare
        estimator), ``thresholds`` (ndarray or None) and ``sidecar`` (the
        JSON description, or None).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the sidecar or the file says it was written by another
        ``major.minor`` of skcxr, scikit-learn or skorch (checked before
        unpickling when the sidecar is there), if the sidecar does not belong
        to the file, or if the file is not a model.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Model file not found: {str(path)!r}.")
    sidecar = None
    if _sidecar(path).is_file():
        sidecar = json.loads(_sidecar(path).read_text())
        _check_versions(sidecar.get("versions", {}), f"{str(path)!r} (by its sidecar)")
        if sidecar.get("sha256") != _sha256(path):
            raise ValueError(f"{str(_sidecar(path))!r} describes another file than {str(path)!r} "
                             "(checksum differs): the model was replaced; save it again.")
    try:
        saved = joblib.load(path)
    except Exception as exc:  # noqa: BLE001 - an unpickling error of another version says little by itself
        raise ValueError(f"Cannot load {str(path)!r} as a model ({type(exc).__name__}: {exc}); it may have been "
                         f"written by other versions of skcxr/scikit-learn than these ({versions()}).") from exc
    if isinstance(saved, dict) and saved.get("format") == FORMAT:
        _check_versions(saved["versions"], repr(str(path)))
        thresholds = None if saved["thresholds"] is None else np.asarray(saved["thresholds"], dtype=float)
        return Bunch(model=saved["model"], target_names=saved["target_names"], thresholds=thresholds,
                     sidecar=sidecar)
    if isinstance(saved, dict) and "model" in saved:  # skcxr explain's earlier {"model", "target_names"}
        return Bunch(model=saved["model"], target_names=saved.get("target_names"), thresholds=None, sidecar=None)
    if hasattr(saved, "predict_proba"):
        return Bunch(model=saved, target_names=None, thresholds=None, sidecar=None)
    raise ValueError(f"{str(path)!r} holds a {type(saved).__name__}, not a fitted model.")

