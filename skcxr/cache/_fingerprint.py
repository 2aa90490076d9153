"""File fingerprints: size, mtime and a BLAKE2b hash of the bytes, memoised per unchanged file (private)."""

from __future__ import annotations

import hashlib
import os
import stat
import time

from ._uncacheable import _Uncacheable

#: A file whose mtime/ctime is closer than this to the moment it was hashed is not memoised.
_RACY_NS = 2_000_000_000

_CHUNK = 1 << 20

# (realpath, st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns) -> hex digest of the bytes
_HASH_MEMO: dict[tuple, str] = {}


def _hash_file(path: str) -> str:
    """BLAKE2b-128 of the file's bytes (about 0.9 GB/s on one core here: the disk is usually the limit)."""
    with open(path, "rb") as f:
        if hasattr(hashlib, "file_digest"):  # Python >= 3.11: reads straight into the hash
            return hashlib.file_digest(f, lambda: hashlib.blake2b(digest_size=16)).hexdigest()
        h = hashlib.blake2b(digest_size=16)  # pragma: no cover - Python 3.10
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
        return h.hexdigest()


def _stat_signature(st: os.stat_result) -> tuple:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def file_fingerprint(path) -> tuple:
    """``(size, mtime_ns, blake2b hex digest)`` of a regular file.

    A path that does not exist gives ``("missing",)`` and one that is not a
    regular file ``("not-a-file", file type)``, so a name that is not a file
    is keyed by name only (and keyed again by content once the file appears).
    The hash of an unchanged file is read from an in-process memo.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "a.bin")
    >>> with open(path, "wb") as f:
    ...     _ = f.write(b"abc")
    >>> size, mtime_ns, digest = file_fingerprint(path)
    >>> size, len(digest)
    (3, 32)
    >>> file_fingerprint(path + ".absent")
    ('missing',)
    """
    path = os.fspath(path)
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return ("missing",)
    except (OSError, ValueError) as exc:
        return ("unstatable", type(exc).__name__, getattr(exc, "errno", None))
    if not stat.S_ISREG(st.st_mode):
        return ("not-a-file", stat.S_IFMT(st.st_mode))
    real = os.path.realpath(path)
    digest = _HASH_MEMO.get((real, *_stat_signature(st)))
    if digest is None:
        for _ in range(3):
            started = time.time_ns()
            try:
                digest = _hash_file(path)
                after = os.stat(path)
            except OSError as exc:
                return ("unreadable", type(exc).__name__, exc.errno, st.st_size, st.st_mtime_ns)
            if _stat_signature(after) == _stat_signature(st):
                break
            st = after  # changed while it was read: read it again
        else:
            raise _Uncacheable(f"{path!r} kept changing while it was read.")
        if started - max(st.st_mtime_ns, st.st_ctime_ns) > _RACY_NS:
            _HASH_MEMO[(real, *_stat_signature(st))] = digest
    return (st.st_size, st.st_mtime_ns, digest)


def paths_fingerprint(paths) -> str:
    """One digest of the names and :func:`file_fingerprint` of a sequence of paths, in order.

    Examples
    --------
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> for name, data in (("a.png", b"1"), ("b.png", b"2")):
    ...     with open(os.path.join(folder, name), "wb") as f:
    ...         _ = f.write(data)
    >>> paths = [os.path.join(folder, "a.png"), os.path.join(folder, "b.png")]
    >>> before = paths_fingerprint(paths)
    >>> with open(paths[1], "wb") as f:  # same name, same size, other bytes
    ...     _ = f.write(b"3")
    >>> paths_fingerprint(paths) == before
    False
    """
    h = hashlib.blake2b(digest_size=16)
    for p in paths:
        name = os.fspath(p)
        h.update(repr((name, file_fingerprint(name))).encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()


def _is_existing_file(value) -> bool:
    if not isinstance(value, (str, os.PathLike)):
        return False
    try:
        return os.path.isfile(value)
    except (OSError, ValueError, TypeError):
        return False
