"""Fitted models that travel: one file holding the model and a JSON description of what made it.

:func:`save_model` writes one zip file with two members: ``skcxr.json``, the
description (the versions of skcxr, scikit-learn, torch, skorch, numpy and
Python, a fingerprint of the training data, the label names, the thresholds,
the metrics, the settings), and ``model.joblib``, the pickled model.

**Atomic.** The file is written under a temporary name in the same folder,
flushed to disk, then renamed into place in one step, so whatever stops a save
(an invalid description, an exception, Ctrl-C, SIGKILL, a full disk) the path
holds the previous model or the new one, each whole. That is why model and
description are one file: two files cannot be replaced in one step, and a kill
between two renames would pair a new model with an old description. A
temporary file left by a killed save is removed by the next save to the same
path. The description reads without unpickling anything
(:func:`read_description`, or ``unzip -p model.skcxr skcxr.json``):
:func:`load_model` reads it first and refuses a file written by an
incompatible version before it unpickles the model.

.. warning::
   A model file is a pickle: loading one runs code it contains. Load only
   files from a source you trust, as with any pickle.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

import joblib
import numpy as np
from sklearn.utils import Bunch

from ._env import versions

__all__ = ["FORMAT", "data_fingerprint", "image_fingerprints", "load_model", "read_description", "save_model",
           "versions"]

#: The ``format`` field of the description in files written by :func:`save_model`.
FORMAT = "skcxr.model/2"
#: The zip members of a model file.
DESCRIPTION, MODEL = "skcxr.json", "model.joblib"
#: Packages whose ``major.minor`` must match for a pickled model to load: their pickles are not
#: guaranteed across minor versions (scikit-learn says so for its estimators).
_MUST_MATCH = ("skcxr", "scikit-learn", "skorch")


def _path_key(path) -> str:
    size = os.path.getsize(path) if os.path.isfile(path) else -1
    return f"{os.path.basename(os.fspath(path))}\0{size}"


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
            digest.update(f"{_path_key(path)}\n".encode())
    else:
        digest.update(joblib.hash(np.asarray(X)).encode())
    Y = np.ascontiguousarray(Y, dtype=np.uint8)
    digest.update(str(Y.shape).encode() + Y.tobytes())
    return digest.hexdigest()


def image_fingerprints(X) -> list[str]:
    """One short hash per image (file name and byte size of a path, or the pixels of an array), to tell later
    which images a model was trained on (``skcxr predict`` warns about them).

    Examples
    --------
    >>> import numpy as np
    >>> a, b = image_fingerprints(np.arange(32.0).reshape(2, 4, 4))
    >>> len(a), a != b
    (16, True)
    """
    from ._validation import is_path_array

    if is_path_array(X):
        keys = [_path_key(path).encode() for path in np.ravel(np.asarray(X, dtype=object))]
    else:
        keys = [np.ascontiguousarray(image).tobytes() for image in np.asarray(X)]
    return [hashlib.sha256(key).hexdigest()[:16] for key in keys]


def _temporary_files(path: Path):
    """The temporary files of saves to ``path`` and their writers' pids: ``.<name>.<pid>.<random>.tmp``."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit():
            yield tmp, int(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _atomic_write(path: Path, write) -> None:
    """``write(file)`` into a temporary file beside ``path``, flush it to disk, rename it to ``path``.

    First removes the temporary files that killed saves to ``path`` left (their
    writer is gone); a concurrent save's is left alone.
    """
    for tmp, pid in _temporary_files(path):
        if pid != os.getpid() and not _alive(pid):
            tmp.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable where the OS allows it
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def _write_zip(f, text: str, model) -> None:
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(DESCRIPTION, text)
        with zf.open(MODEL, "w", force_zip64=True) as member:
            joblib.dump(model, member)


def save_model(model, path, *, target_names, thresholds=None, metrics=None, data=None, settings=None) -> Path:
    """Write a fitted model and its description to one file, atomically; return the file's path.

    Parameters
    ----------
    model : fitted estimator
        Anything with ``predict_proba`` (a skcxr pipeline).
    path : str or path-like
        The model file (a zip; ``.skcxr`` is the suffix the CLI uses). Its
        folder must exist. An existing file is replaced only once the new one
        is complete.
    target_names : sequence of str
        The label of each column of ``predict_proba``.
    thresholds : array-like (n_labels,) or None
        Per-label decision thresholds (None: 0.5 for every label).
    metrics, data, settings : dict or None
        JSON-able descriptions kept in the file: test metrics, the training
        data (e.g. ``{"fingerprint": data_fingerprint(X, Y), "images": n}``),
        the command's settings. Checked (no NaN, no infinity) before anything
        is written.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.dummy import DummyClassifier
    >>> clf = DummyClassifier().fit([[0], [1]], [0, 1])
    >>> path = save_model(clf, os.path.join(tempfile.mkdtemp(), "model.skcxr"), target_names=["Effusion"])
    >>> load_model(path).target_names, read_description(path)["estimator"]
    (['Effusion'], 'DummyClassifier')
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"Cannot save the model to {str(path)!r}: no folder {str(path.parent)!r}.")
    if path.is_dir():
        raise IsADirectoryError(f"Cannot save the model to {str(path)!r}: it is a folder.")
    target_names = [str(t) for t in target_names]
    if thresholds is not None:
        thresholds = [float(t) for t in np.ravel(thresholds)]
        if len(thresholds) != len(target_names):
            raise ValueError(f"{len(thresholds)} thresholds for {len(target_names)} labels.")
    description = {"format": FORMAT, "versions": versions(), "estimator": type(model).__name__,
                   "target_names": target_names, "thresholds": thresholds, "metrics": metrics, "data": data,
                   "settings": settings}
    try:
        text = json.dumps(description, indent=2, allow_nan=False, ensure_ascii=False, default=str)
    except ValueError as exc:
        raise ValueError(f"Cannot save the model to {str(path)!r}: its description is not valid JSON ({exc}; "
                         "NaN and infinity have no JSON form).") from None
    _atomic_write(path, lambda f: _write_zip(f, text, model))
    return path


def _check_versions(saved: dict, where: str) -> None:
    here = versions()
    for name in _MUST_MATCH:
        then = str(saved.get(name, "?"))
        if then.split(".")[:2] != here[name].split(".")[:2]:
            raise ValueError(
                f"{where} was written with {name} {then}; this is {name} {here[name]}. Pickled models do not "
                f"load across {name} versions: refit it here, or install {name}=={then} to use it.")


def _damaged(path: Path, why: str) -> ValueError:
    return ValueError(f"{str(path)!r} is damaged ({why}); save the model again.")


def read_description(path) -> dict:
    """The JSON description inside a model file written by :func:`save_model`, without unpickling anything.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        One line naming the file, if it is not a model file or is damaged.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.dummy import DummyClassifier
    >>> path = os.path.join(tempfile.mkdtemp(), "m.skcxr")
    >>> _ = save_model(DummyClassifier().fit([[0], [1]], [0, 1]), path, target_names=["Mass"], metrics={"auc": 0.7})
    >>> read_description(path)["metrics"]
    {'auc': 0.7}
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Model file not found: {str(path)!r}.")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{str(path)!r} is not a model file of skcxr.persistence.save_model (not a zip).")
    try:
        with zipfile.ZipFile(path) as zf:
            description = json.loads(zf.read(DESCRIPTION))
    except KeyError:
        raise _damaged(path, f"no {DESCRIPTION} in it") from None
    except (zipfile.BadZipFile, UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise _damaged(path, f"{DESCRIPTION}: {' '.join(str(exc).split())}") from None
    if not isinstance(description, dict) or not isinstance(description.get("versions"), dict):
        raise _damaged(path, f"{DESCRIPTION} is not a model description")
    if description.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is in format {description.get('format')!r}; this skcxr reads {FORMAT!r}.")
    return description


def load_model(path) -> Bunch:
    """Read a model written by :func:`save_model` (or a bare ``joblib.dump`` of an estimator).

    Only load files from a source you trust: a model file is a pickle, and
    unpickling runs code it contains.

    Returns
    -------
    Bunch
        ``model``, ``target_names`` (list of str, or None for a bare
        estimator), ``thresholds`` (ndarray or None) and ``description`` (the
        JSON description, or None for a bare estimator).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        One line naming the file: written by another ``major.minor`` of
        skcxr, scikit-learn or skorch (checked before unpickling), damaged,
        or not a model.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Model file not found: {str(path)!r}.")
    if not zipfile.is_zipfile(path):
        return _load_bare(path)
    description = read_description(path)
    _check_versions(description["versions"], repr(str(path)))
    try:
        with zipfile.ZipFile(path) as zf, zf.open(MODEL) as member:
            model = joblib.load(member)
    except KeyError:
        raise _damaged(path, f"no {MODEL} in it") from None
    except zipfile.BadZipFile as exc:
        raise _damaged(path, str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - an unpickling error says little by itself
        raise ValueError(f"Cannot unpickle the model in {str(path)!r} ({type(exc).__name__}: {exc}).") from exc
    thresholds = description["thresholds"]
    return Bunch(model=model, target_names=description["target_names"],
                 thresholds=None if thresholds is None else np.asarray(thresholds, dtype=float),
                 description=description)


def _load_bare(path: Path) -> Bunch:
    try:
        saved = joblib.load(path)
    except Exception as exc:  # noqa: BLE001 - an unpickling error of another version says little by itself
        raise ValueError(f"Cannot load {str(path)!r} as a model ({type(exc).__name__}: {exc}); it may have been "
                         f"written by other versions of skcxr/scikit-learn than these ({versions()}).") from exc
    if not hasattr(saved, "predict_proba"):
        hint = " (a model saved by skcxr 0.2 or earlier: joblib.load(path)['model'])" if isinstance(saved, dict) else ""
        raise ValueError(f"{str(path)!r} holds a {type(saved).__name__}, not a fitted model{hint}.")
    return Bunch(model=saved, target_names=None, thresholds=None, description=None)
