"""``ContentMemory``: joblib.Memory's ``cache`` interface over content keys, locks and the call log (private)."""

from __future__ import annotations

import collections
import functools
import inspect
import numbers
import os
import warnings

import joblib

from ._hashing import content_hash
from ._keys import _is_estimator, _value_key
from ._locks import _LOCKS, _key_lock
from ._stats import _STATS, _read_stats, _record
from ._uncacheable import _mark_unseeded, _Uncacheable, _Unseeded
from ._version import _func_key, code_version


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
        store = self._store()
        return collections.Counter() if store is None else _read_stats(os.path.join(store, _STATS))

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
