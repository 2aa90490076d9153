"""Caches that cannot lie: joblib.Memory keyed on file content, code version and seeds.

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
``<location>/joblib/skcxr/cache/_memory/_call/``. ``ContentMemory.clear()`` (the
same as ``joblib.Memory(location).clear()``) or deleting the folder empties
it, the call counts included.

Examples
--------
>>> import tempfile
>>> import numpy as np
>>> from skcxr.cache import check_memory
>>> memory = check_memory(tempfile.mkdtemp())
>>> square = memory.cache(np.square)
>>> square.check_call_in_cache(np.arange(3))
False
>>> square(np.arange(3))
array([0, 1, 4])
>>> square.check_call_in_cache(np.arange(3))
True
"""

from ._fingerprint import file_fingerprint, paths_fingerprint
from ._hashing import content_hash
from ._locks import LOCK_TIMEOUT
from ._memory import ContentCachedFunction, ContentMemory, check_memory
from ._version import code_version

__all__ = ["LOCK_TIMEOUT", "ContentCachedFunction", "ContentMemory", "check_memory", "code_version", "content_hash",
           "file_fingerprint", "paths_fingerprint"]
