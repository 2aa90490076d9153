"""Output folders and model paths, checked writable before any heavy work (private)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from ._errors import _UsageError


def _write_test(folder: Path) -> None:
    """Create and delete a file in ``folder``: an OSError if it cannot be written."""
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".skcxr-write-test-"):
        pass


def _check_out(out: Path | None, flag: str = "--out") -> None:
    """Create ``--out`` (or another output folder, ``flag``) and prove it writable, before any heavy work."""
    if out is None:
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
        _write_test(out)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise _UsageError(f"{flag} {out}: cannot create or write this folder ({reason})") from None


def _check_model_path(path: Path | None, flag: str = "--save-model") -> None:
    """A model file can be written at ``path`` (its folder exists and is writable, it is no folder), before work.

    The file is replaced by a rename in its folder, so the folder's write permission is what counts.
    """
    if path is None:
        return
    if path.is_dir():
        raise _UsageError(f"{flag} {path}: is a folder; give a file name, e.g. {path / 'model.skcxr'}")
    if not path.parent.is_dir():
        raise _UsageError(f"{flag} {path}: no folder {path.parent}")
    try:
        _write_test(path.parent)
    except OSError as exc:
        raise _UsageError(f"{flag} {path}: cannot write in {path.parent} ({exc.strerror or exc})") from None
