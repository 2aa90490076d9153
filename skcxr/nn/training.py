"""Plain-torch pieces that every network's training shares: seeding and ``pos_weight``."""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import torch

__all__ = ["MAX_POS_WEIGHT", "balanced_pos_weight", "seed_from", "seeded"]

#: Upper bound of the balanced ``pos_weight`` (and 1/MAX_POS_WEIGHT the lower one):
#: a finding with 1 positive in 10,000 images must not dominate the loss.
MAX_POS_WEIGHT = 100.0


def seed_from(random_state) -> int:
    """A 31-bit seed drawn from ``random_state``: an int, a ``numpy.random.RandomState`` (advanced) or None (fresh).

    Examples
    --------
    >>> seed_from(0) == seed_from(0)
    True
    """
    rng = random_state if isinstance(random_state, np.random.RandomState) else np.random.RandomState(random_state)
    return int(rng.randint(np.iinfo(np.int32).max))


@contextlib.contextmanager
def seeded(random_state):
    """Seed torch from ``random_state`` inside the block; restore every generator after it.

    ``torch.manual_seed`` seeds the CPU generator *and* every CUDA device's
    generator, so all of them are forked and restored (``fork_rng(devices=[])``
    alone would leave the CUDA generators reseeded). ``None`` seeds nothing and
    leaves torch's global state to advance as usual.

    Examples
    --------
    >>> import torch
    >>> with seeded(0):
    ...     a = torch.rand(2)
    >>> with seeded(0):
    ...     b = torch.rand(2)
    >>> bool((a == b).all())
    True
    """
    if random_state is None:
        yield
        return
    seed = seed_from(random_state)
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def balanced_pos_weight(Y, names=None) -> np.ndarray:
    """``n_negative / n_positive`` per label, clipped to ``[1/MAX_POS_WEIGHT, MAX_POS_WEIGHT]``.

    A label with one value only in ``Y`` gets 1, with a warning naming it.

    Examples
    --------
    >>> balanced_pos_weight([[1, 0], [0, 0], [0, 1], [0, 0]]).tolist()
    [3.0, 3.0]
    """
    Y = np.asarray(Y)
    n_pos = Y.sum(axis=0, dtype=np.float64)
    n_neg = Y.shape[0] - n_pos
    defined = (n_pos > 0) & (n_neg > 0)
    if not defined.all():
        labels = np.flatnonzero(~defined) if names is None else np.asarray(names)[~defined]
        warnings.warn(
            f"Labels {labels.tolist()} have one value only in Y (no positive or no negative sample); "
            "their pos_weight is 1.",
            UserWarning,
            stacklevel=2,
        )
    ratio = np.divide(n_neg, n_pos, out=np.ones(Y.shape[1]), where=defined)
    return np.clip(ratio, 1.0 / MAX_POS_WEIGHT, MAX_POS_WEIGHT).astype(np.float32)
