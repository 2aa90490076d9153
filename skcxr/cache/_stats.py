"""The call log: one line per call of a cached function, from every process, and its counts (private)."""

from __future__ import annotations

import collections
import os
import threading

#: The sub-folder of the joblib store (``<location>/joblib``) holding ``calls.log``: joblib's ``clear`` removes it.
_STATS = "skcxr_stats"

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


def _read_stats(folder) -> collections.Counter:
    """``(function, event) -> count`` of the calls logged in ``folder/calls.log``; empty where there is none."""
    counts = collections.Counter()
    try:
        with open(os.path.join(folder, "calls.log"), encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                event, name, *_ = line.rstrip("\n").split("\t") + [""]
                counts[(name, event)] += 1
    except FileNotFoundError:
        pass
    return counts
