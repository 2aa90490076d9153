"""Calls that run around the cache: the exceptions that say so, and the results of unseeded calls (private)."""

from __future__ import annotations

import weakref

# id -> weakref of the objects returned by unseeded calls (arrays made from unseeded randomness)
_UNSEEDED_RESULTS: dict[int, weakref.ref] = {}


class _Uncacheable(Exception):
    """This call cannot be keyed faithfully: run it without the cache."""


class _Unseeded(_Uncacheable):
    """This call draws unseeded randomness (or takes what such a call returned): never cache it."""


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
