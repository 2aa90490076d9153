"""One computation per key across processes: ``flock`` lock files with a heartbeat, waiters that give up (private)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
import warnings

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no per-key locks
    fcntl = None

#: The sub-folder of the joblib store (``<location>/joblib``) holding the lock files: joblib's ``clear`` removes it.
_LOCKS = "skcxr_locks"


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
