"""Chunked parallel map over images, shared by the image transformers (private).

Every per-image transformer in skcxr (preprocessing, texture features) has the
same shape of work: a function that turns a slice of the input (paths or
images) into a block of rows of a preallocated output. :func:`map_batches`
runs it sequentially or with joblib, one task per *batch* of many images, so
the per-task overhead (process dispatch, pickling) is paid once per batch and
not once per image, and the output is filled in place as tasks finish: memory
stays at the output array plus the batches in flight (at most ``2 * n_jobs``).
"""

from __future__ import annotations

import math
from numbers import Integral

from joblib import Parallel, delayed, effective_n_jobs
from sklearn.utils._param_validation import Interval
from tqdm.auto import tqdm


def _run(func, start, items, args):
    return start, func(items, *args)


def map_batches(func, items, out, *, args=(), n_jobs=None, batch_size=None, prefer=None, verbose=0, desc=""):
    """Fill ``out[i:j] = func(items[i:j], *args)`` batch by batch; return ``out``.

    Parameters
    ----------
    func : callable
        Module-level function (picklable), ``func(batch, *args) -> array`` with
        ``len(batch)`` rows.
    items : sliceable sequence
        ndarray or list of images or paths; ``items[i:j]`` is a batch.
    out : ndarray
        Output with ``len(items)`` rows, written in place.
    n_jobs : int or None
        joblib's convention (None: 1 unless inside ``joblib.parallel_config``;
        -1: all cores).
    batch_size : int or None
        Most items per task. None: about four tasks per worker (load balance),
        at most 64 items each (bounds the per-task memory).
    prefer : {"threads", "processes"} or None
        joblib's soft backend hint: threads for functions that release the GIL.
    verbose : int
        >0 shows a tqdm progress bar (images and images/s) labelled ``desc``.
    """
    n = len(items)
    n_jobs = effective_n_jobs(n_jobs)
    if batch_size is None:
        batch_size = min(64, max(1, math.ceil(n / (4 * n_jobs))))
    if n_jobs > 1 and n > batch_size:
        # Give each worker a few batches even when the caller's batch is large.
        batch_size = max(1, min(batch_size, math.ceil(n / (2 * n_jobs))))
    starts = range(0, n, batch_size)
    with tqdm(total=n, desc=desc, unit="img", disable=not verbose) as bar:
        if n_jobs == 1 or len(starts) == 1:
            for i in starts:
                out[i : i + batch_size] = block = func(items[i : i + batch_size], *args)
                bar.update(len(block))
            return out
        tasks = (delayed(_run)(func, i, items[i : i + batch_size], args) for i in starts)
        parallel = Parallel(n_jobs=n_jobs, prefer=prefer, return_as="generator_unordered")
        for i, block in parallel(tasks):
            out[i : i + len(block)] = block
            bar.update(len(block))
    return out


# The ``n_jobs`` entry of a ``_parameter_constraints`` dict: None or a non-zero int
# (joblib's convention; -1 is all cores, 0 is an error).
N_JOBS_CONSTRAINT = [
    None,
    Interval(Integral, None, -1, closed="right"),
    Interval(Integral, 1, None, closed="left"),
]
