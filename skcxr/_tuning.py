"""Optuna tuning of any skcxr estimator under patient-grouped, multi-label cross-validation.

Public as :func:`skcxr.model_selection.tune` (re-exported lazily: this module
imports :mod:`skcxr.evaluation`, which sits above ``model_selection`` in the
import order, and Optuna). It drives an Optuna study directly rather than
``OptunaSearchCV``, whose pruning needs ``partial_fit``, which pipelines lack:
every trial cross-validates a clone of the estimator with the trial's
parameters, and the skorch nets inside report their validation loss per epoch
(:class:`skcxr.model_selection.OptunaPruning`), so a hopeless trial stops early.

Several processes may work on one study (an RDB storage such as
``sqlite:///study.db``); a process that dies mid-trial leaves a trial whose
heartbeat stops, which the next worker marks ``FAIL`` and queues again with
the same parameters. Ctrl-C ends the running trial ``PRUNED`` (never
``RUNNING``) and the study with it; a study records what it tunes (estimator,
space, data, scoring) and refuses a rerun of something else under its name.
"""

from __future__ import annotations

import contextlib
import numbers
import os
import re
import signal
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import NamedTuple

import joblib
import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import check_consistent_length, column_or_1d

from ._validation import check_multilabel_Y
from .evaluation import groups_fit_params, routing_context
from .metrics import get_scorer
from .model_selection import MultilabelStratifiedGroupKFold

__all__ = ["TuneResult", "open_storage", "tune"]

#: The study name used with a persistent ``storage`` when ``study_name`` is None.
DEFAULT_STUDY_NAME = "skcxr-tune"
_STORAGE_ATTEMPTS = 5
#: The name of the pruning callback added to every skorch net during a trial.
PRUNING_CALLBACK = "optuna_pruning"
#: The study user attribute that records what a study tunes.
IDENTITY_ATTR = "skcxr_identity"


class TuneResult(NamedTuple):
    """What :func:`tune` returns: unpacks as ``study, best_estimator``.

    Attributes
    ----------
    study : optuna.Study
        The study, with every trial of every process that worked on it.
    best_estimator : estimator or None
        A clone of the estimator with the best trial's parameters, fitted on
        all data (``refit=True``); None with ``refit=False``.
    """

    study: optuna.Study
    best_estimator: object

    @property
    def best_params(self) -> dict:
        """The best trial's suggested values (``study.best_params``): estimator parameters for a dict space."""
        return self.study.best_params

    @property
    def best_score(self) -> float:
        """The best trial's mean cross-validated score (``study.best_value``)."""
        return self.study.best_value


# -- search spaces -------------------------------------------------------------------------------


def _suggest_one(trial, name: str, dist: BaseDistribution):
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    raise TypeError(f"space[{name!r}]: unsupported distribution {dist!r}; use optuna.distributions."
                    "FloatDistribution, IntDistribution or CategoricalDistribution.")


def _example_value(dist: BaseDistribution):
    return dist.choices[0] if isinstance(dist, CategoricalDistribution) else dist.low


def _check_space(space, estimator) -> None:
    if callable(space):
        return
    if not isinstance(space, dict) or not space:
        raise ValueError("space must be a non-empty dict {parameter name: optuna distribution} or a callable "
                         f"taking a trial and returning a dict of parameters, got {space!r}.")
    for name, dist in space.items():
        if not isinstance(name, str) or not isinstance(dist, BaseDistribution):
            raise ValueError(f"space: {name!r} -> {dist!r}; expected a parameter name (as in "
                             "estimator.get_params()) -> an optuna.distributions object.")
        _suggest_one(optuna.trial.FixedTrial({name: _example_value(dist)}), name, dist)  # type check
    try:
        clone(estimator).set_params(**{name: _example_value(dist) for name, dist in space.items()})
    except (ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"space: {exc}") from None


def _params(space, trial) -> dict:
    """The estimator parameters of a trial (or of a FixedTrial, to rebuild the best one)."""
    if not callable(space):
        return {name: _suggest_one(trial, name, dist) for name, dist in space.items()}
    params = space(trial)
    if not isinstance(params, dict):
        raise TypeError(f"space(trial) must return a dict of estimator parameters, got {type(params).__name__}.")
    return params


# -- pruning: a callback on every skorch net of the estimator ------------------------------------


def _skorch_nets(estimator) -> list:
    """The skorch nets inside ``estimator`` (pipelines, unions, wrappers), skipping frozen (prefit) parts."""
    skorch = sys.modules.get("skorch")  # no skorch loaded: no net can be in there
    if skorch is None:
        return []
    found, seen = [], set()

    def walk(obj):
        if id(obj) in seen or isinstance(obj, (type, FrozenEstimator)):
            return
        seen.add(id(obj))
        if isinstance(obj, skorch.NeuralNet):
            found.append(obj)
        elif isinstance(obj, (list, tuple)):
            for item in obj:
                walk(item)
        elif hasattr(obj, "get_params"):
            for value in obj.get_params(deep=False).values():
                walk(value)

    walk(estimator)
    return found


def _attach_pruning(model, trial, monitor, pruning):
    """Add the trial's pruning callback to every net in ``model`` (a fresh clone); returns the callback."""
    nets = [net for net in _skorch_nets(model) if not (isinstance(net.callbacks, str) and net.callbacks == "disable")]
    if not nets:
        return pruning
    if pruning is None:
        from ._pruning import OptunaPruning

        pruning = OptunaPruning(trial, monitor=monitor)
    for net in nets:
        net.set_params(callbacks=[*(net.callbacks or []), (PRUNING_CALLBACK, pruning)])
    return pruning


# -- storage and study ---------------------------------------------------------------------------


def redact(url: str) -> str:
    """A database URL with its password hidden: ``postgresql://me:***@host/db``.

    Examples
    --------
    >>> redact("postgresql://me:secret@db.example/optuna")
    'postgresql://me:***@db.example/optuna'
    """
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


@contextlib.contextmanager
def _storage_errors(url):
    """Database problems (bad file, driver missing, unknown scheme, ...) as one ValueError line naming the URL."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except (SQLAlchemyError, ImportError) as exc:
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split("(Background on")[0].split())
        if isinstance(exc, ImportError):
            reason += " (install the database driver for this URL)"
        raise ValueError(f"storage {redact(str(url))}: {reason}") from None


def _check_sqlite_writable(url: str) -> None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    path = Path(parsed.database)
    problem = ("is a folder" if path.is_dir()
               else "no such folder" if not path.parent.is_dir()
               else "read-only file" if path.exists() and not os.access(path, os.W_OK)
               else "read-only folder (sqlite writes its journal beside the file)"
               if not os.access(path.parent, os.W_OK) else None)
    if problem:
        raise ValueError(f"storage {redact(url)}: {problem}")


def open_storage(storage, heartbeat_interval=60, grace_period=None, max_retry=3):
    """Open an Optuna storage now, so that a bad one is found before any work: one line naming the URL.

    ``storage``: None (in memory) or an optuna storage object are returned as
    given; a database URL gets an ``RDBStorage`` with the heartbeat settings
    of :func:`tune`. A sqlite file is checked to be a writable database.

    Examples
    --------
    >>> open_storage("sqlite:///no/such/folder/study.db")
    Traceback (most recent call last):
    ...
    ValueError: storage sqlite:///no/such/folder/study.db: no such folder
    """
    if not isinstance(storage, str):
        return storage
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    with _storage_errors(storage):
        _check_sqlite_writable(storage)
        # sqlite: wait for another process's write instead of failing with "database is locked" after 5 s
        engine_kwargs = {"connect_args": {"timeout": 60}} if storage.startswith("sqlite") else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            retry = None if heartbeat_interval is None else RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
            for attempt in range(_STORAGE_ATTEMPTS):
                try:
                    opened = RDBStorage(storage, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_interval,
                                        grace_period=grace_period, heartbeat_stale_trial_callback=retry)
                    opened.get_all_studies()  # reads the tables: a damaged file fails here, not mid-study
                    return opened
                except Exception as exc:  # noqa: BLE001 - sqlalchemy's errors; re-raised unless a creation race
                    # Workers started together on a new database race to create its tables ("table ... already
                    # exists", a duplicate schema version); the next attempt finds them made.
                    if attempt + 1 == _STORAGE_ATTEMPTS or type(exc).__name__ not in ("OperationalError",
                                                                                       "IntegrityError"):
                        raise
                    time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


def _identity(estimator, space, X, Y, groups, scoring) -> dict:
    """What a study tunes, to refuse a rerun of something else under its name: readable names and hashes."""
    def digest(obj):
        try:
            return joblib.hash(obj)
        except Exception:  # noqa: BLE001 - an object that does not pickle (a lambda inside): not compared
            return None

    steps = getattr(estimator, "steps", None)
    name = " -> ".join(type(step).__name__ for _, step in steps) if steps else type(estimator).__name__
    space_text = (getattr(space, "__qualname__", repr(space)) if callable(space)
                  else {key: repr(dist) for key, dist in sorted(space.items())})
    return {"estimator": name, "estimator_hash": digest(clone(estimator)), "space": space_text,
            "data": f"{len(Y)} samples, hash {digest((X, Y, groups))}", "scoring": str(scoring)}


def _check_identity(study, identity, where) -> None:
    saved = study.user_attrs.get(IDENTITY_ATTR)
    if saved is None:
        study.set_user_attr(IDENTITY_ATTR, identity)
        return
    for key, what in [("estimator", "estimator"), ("estimator_hash", "estimator's settings"),
                      ("space", "search space"), ("data", "data (other images, labels, size or split)"),
                      ("scoring", "scoring")]:
        then, now = saved.get(key), identity[key]
        if then != now and None not in (then, now):
            shown = "" if key == "estimator_hash" else f": it has {then}, this run {now}"
            raise ValueError(f"study {study.study_name!r} in {where} tunes another {what}{shown}. Use another "
                             "study name, or delete that study (optuna.delete_study).")


class _Interrupt:
    """Ctrl-C during :func:`tune`: the running trial ends ``PRUNED`` (``user_attrs["interrupted"]``), no new
    trial starts, and ``tune`` raises ``KeyboardInterrupt`` once Optuna has recorded it.

    A SIGINT handler (main thread only) raises ``KeyboardInterrupt`` while a trial's folds run in this thread
    and only takes note otherwise (inside Optuna's bookkeeping, or a second Ctrl-C while the first is handled),
    so a trial is never left ``RUNNING`` by an interrupt.
    """

    def __init__(self):
        self.requested, self._raising = False, threading.local()

    def _handler(self, signum, frame):
        first = not self.requested
        self.requested = True
        if first and getattr(self._raising, "on", False):
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.signal(signal.SIGINT, self._handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    @contextlib.contextmanager
    def trial(self, study, trial):
        """Around a trial's folds: an interrupt there prunes the trial and stops the study."""
        self._raising.on = True
        try:
            if self.requested:
                raise KeyboardInterrupt
            yield
        except KeyboardInterrupt:
            self._raising.on = False
            self.requested = True
            trial.set_user_attr("interrupted", True)
            study.stop()
            raise optuna.TrialPruned("interrupted (Ctrl-C)") from None
        finally:
            self._raising.on = False


def _n_complete(study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


@contextlib.contextmanager
def _optuna_logging(verbose: int):
    """Optuna's per-trial INFO lines only with ``verbose > 0`` (library code prints nothing otherwise)."""
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.INFO if verbose > 0 else optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


# -- checks --------------------------------------------------------------------------------------


def _check_int(value, name, low, allow_none=False):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an int >= {low}{' or None' if allow_none else ''}, got {value!r}.")


def _splits(cv, X, Y, groups, n):
    if cv is None:
        cv = MultilabelStratifiedGroupKFold(3)
    elif isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
        cv = MultilabelStratifiedGroupKFold(cv)
    split_groups = np.arange(n) if groups is None else groups
    splits = list(cv.split(X, Y, split_groups) if hasattr(cv, "split") else cv)
    if not splits:
        raise ValueError(f"cv={cv!r} gave no split.")
    return splits


# -- the search ----------------------------------------------------------------------------------


def tune(estimator, X, Y, groups=None, *, space, n_trials=20, cv=None, scoring="macro_auc", storage=None,
         study_name=None, timeout=None, n_jobs=1, random_state=None, refit=True, sampler=None, pruner=None,
         monitor="valid_loss", heartbeat_interval=60, grace_period=None, max_retry=3, catch=(),
         verbose=0) -> TuneResult:
    """Tune an estimator's hyper-parameters with Optuna under patient-grouped, multi-label CV.

    Each trial sets the parameters the sampler proposes on a clone of
    ``estimator`` and scores it by cross-validation: fit on each training
    fold (with the patient ids routed to every nested step that takes them,
    :func:`skcxr.evaluation.groups_fit_params`, so the nets' inner validation
    splits are patient-disjoint too), ``scoring`` on the held-out fold; the
    trial's value is the mean over folds (the folds' scores are kept in the
    trial's ``user_attrs["fold_scores"]``). The study maximizes it.

    **Pruning.** Every skorch net inside the estimator (a pipeline step, a
    ``FeatureUnion`` member, ... ; prefit parts in a ``FrozenEstimator`` are
    left alone) gets an :class:`~skcxr.model_selection.OptunaPruning`
    callback for the trial's fits: each epoch's ``monitor`` (the validation
    loss) is reported to the trial, negated so that larger is better like
    the objective, at step ``fold * max_epochs + epoch`` (with several nets
    per fold, each fit gets the next block of ``max_epochs`` steps, so steps
    only grow within a trial and mean the same fit and epoch in every trial
    as long as ``max_epochs`` is not tuned). When ``pruner`` says so the fit
    stops and the trial ends ``PRUNED``. Nets that an estimator builds
    internally (the fine-tuning inside ``CNNEmbedder``) are not reached.
    Estimators without nets are never pruned.

    **Storage, reruns, several workers.** ``storage=None`` keeps the study in
    memory. A database URL (``"sqlite:///study.db"``, any SQLAlchemy URL:
    ``postgresql://...``) makes it persistent and shareable: the study
    ``study_name`` is loaded if it exists, and ``n_trials`` counts the
    ``COMPLETE`` trials of the whole study, so a rerun continues where the
    last one stopped and several processes started on one storage (each
    calling ``tune`` with the same arguments) finish ``n_trials`` together.
    While a trial runs, its process writes a heartbeat every
    ``heartbeat_interval`` seconds; a trial whose heartbeat is older than
    ``grace_period`` (its process was killed) is marked ``FAIL`` by the next
    worker that starts a trial and queued again with the same parameters
    (:class:`optuna.storages.RetryHeartbeatStaleTrialCallback`, up to
    ``max_retry`` times), so no trial is lost.

    **Overshoot.** Each worker (process, or thread with ``n_jobs > 1``) checks
    the count when one of its trials ends
    (:class:`optuna.study.MaxTrialsCallback`); trials already running in
    other workers then still finish. With ``k`` workers the study may end
    with up to ``k - 1`` completed trials more than ``n_trials``: with two,
    an overshoot of one can happen; with one, none.

    Parameters
    ----------
    estimator : estimator
        Any multi-label classifier or pipeline with ``predict_proba`` (or what
        ``scoring`` needs). Cloned, never changed.
    X : array-like of shape (n_samples, ...)
        Features, images, or image paths.
    Y : array-like of shape (n_samples, n_labels)
        0/1 indicator matrix.
    groups : array-like of shape (n_samples,), default=None
        Patient id of each sample: the CV folds and every inner validation
        split take whole patients. ``None`` makes every image its own patient
        (optimistic when patients have several images).
    space : dict or callable
        ``{parameter name: optuna distribution}`` with names as in
        ``estimator.get_params()`` (``"clf__lr"``,
        ``"clf__estimator__C"``; skorch's ``clf__module__*`` and
        ``clf__optimizer__*`` too), e.g.
        ``{"clf__lr": FloatDistribution(1e-4, 1e-1, log=True)}``; or a callable
        ``space(trial) -> dict`` of parameters, free to use any
        ``trial.suggest_*`` and to return any values (estimators included).
    n_trials : int or None, default=20
        Completed trials the study should hold in the end, counting those
        already in the storage; pruned and failed trials do not count.
        ``None``: run until ``timeout``.
    cv : int, splitter or iterable of (train, test), default=None
        ``None``: :class:`~skcxr.model_selection.MultilabelStratifiedGroupKFold`
        with 3 folds; an int: that many folds. A splitter gets
        ``split(X, Y, groups)``. Workers sharing a study must draw the same
        folds: keep it deterministic (the default is).
    scoring : str or callable, default="macro_auc"
        A scorer name of :func:`skcxr.metrics.get_scorer` or a scorer
        ``scorer(estimator, X, Y)``; greater is better.
    storage : None, str or optuna storage, default=None
        ``None`` (in memory), a database URL, or an optuna storage object
        (used as given: no heartbeat is added to it).
    study_name : str, default=None
        ``None``: a fresh name in memory, ``"skcxr-tune"`` with a ``storage``.
    timeout : float, default=None
        Seconds after which this call starts no new trial.
    n_jobs : int, default=1
        Trials run at once in threads of this process (Optuna's ``n_jobs``).
    random_state : int or None, default=None
        Seeds the default sampler (``TPESampler(seed=random_state)``). Give
        parallel workers different seeds (or None): with one seed they
        propose the same parameters.
    refit : bool, default=True
        Fit a clone with the best trial's parameters on all of ``X``.
    sampler, pruner : optuna sampler / pruner, default=None
        ``None``: ``TPESampler(seed=random_state)`` and Optuna's
        ``MedianPruner()``; ``optuna.pruners.NopPruner()`` turns pruning off.
    monitor : str, default="valid_loss"
        The skorch history key the nets report per epoch.
    heartbeat_interval : int or None, default=60
        Seconds between heartbeats of a running trial, with a database URL;
        None: no heartbeat (a killed worker's trial stays ``RUNNING``).
    grace_period : int, default=None
        Seconds without heartbeat after which a trial counts as dead;
        ``None``: ``2 * heartbeat_interval``.
    max_retry : int or None, default=3
        How often a dead trial is queued again; None: without limit.
    catch : tuple of exception types, default=()
        Exceptions of a trial that mark it ``FAIL`` and go on (others stop
        the search, as in :meth:`optuna.Study.optimize`).
    verbose : int, default=0
        ``> 0``: Optuna logs each trial's result.

    Returns
    -------
    TuneResult
        ``(study, best_estimator)``, a named tuple that also gives
        ``best_params`` and ``best_score``.

    Examples
    --------
    >>> import numpy as np
    >>> from optuna.distributions import FloatDistribution
    >>> from sklearn.datasets import make_multilabel_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.multiclass import OneVsRestClassifier
    >>> from skcxr.model_selection import tune
    >>> X, Y = make_multilabel_classification(120, n_features=8, n_classes=3, random_state=0)
    >>> patients = np.arange(120) // 2
    >>> study, best = tune(OneVsRestClassifier(LogisticRegression()), X, Y, patients,
    ...                    space={"estimator__C": FloatDistribution(1e-3, 10, log=True)},
    ...                    n_trials=3, random_state=0)
    >>> len(study.trials), best.get_params()["estimator__C"] == study.best_params["estimator__C"]
    (3, True)
    """
    _check_space(space, estimator)
    _check_int(n_trials, "n_trials", 1, allow_none=True)
    if n_trials is None and timeout is None:
        raise ValueError("n_trials=None runs until the timeout: give n_trials or timeout.")
    _check_int(n_jobs, "n_jobs", -1)
    if n_jobs == 0:
        raise ValueError("n_jobs must be -1 (all cores) or >= 1, got 0.")
    if heartbeat_interval is not None:
        _check_int(heartbeat_interval, "heartbeat_interval", 1)
    check_consistent_length(X, Y, groups)
    Y_checked = check_multilabel_Y(Y)
    groups = None if groups is None else column_or_1d(groups)
    splits = _splits(cv, X, Y_checked, groups, len(Y_checked))
    scorer = get_scorer(scoring)

    interrupt = _Interrupt()

    def objective(trial):
        model = clone(estimator).set_params(**_params(space, trial))
        fit_params, routing = groups_fit_params(model, groups)
        pruning, scores = None, []
        with interrupt.trial(study, trial):
            for train, test in splits:
                fold = clone(model)
                pruning = _attach_pruning(fold, trial, monitor, pruning)
                params = {key: _safe_indexing(value, train) for key, value in fit_params.items()}
                with routing_context(routing):
                    fold.fit(_safe_indexing(X, train), _safe_indexing(Y, train), **params)
                scores.append(float(scorer(fold, _safe_indexing(X, test), _safe_indexing(Y, test))))
                if interrupt.requested:  # noted in Optuna's code or another thread: stop after this fold
                    raise KeyboardInterrupt
        trial.set_user_attr("fold_scores", scores)
        value = float(np.mean(scores))
        if not np.isfinite(value):  # Optuna would mark it FAIL and go on, possibly forever
            raise ValueError(f"scoring={scoring!r} gave {scores} on the {len(splits)} folds of trial "
                             f"{trial.number}; a score must be finite (undefined AUCs: too few positives?).")
        return value

    if study_name is None and storage is not None:
        study_name = DEFAULT_STUDY_NAME
    url = storage if isinstance(storage, str) else getattr(storage, "url", None)
    where = "memory" if storage is None else redact(str(url)) if url else type(storage).__name__
    with _optuna_logging(verbose):
        with _storage_errors(where):
            study = optuna.create_study(
                storage=open_storage(storage, heartbeat_interval, grace_period, max_retry), study_name=study_name,
                direction="maximize", load_if_exists=True,
                sampler=sampler if sampler is not None else optuna.samplers.TPESampler(seed=random_state),
                pruner=pruner if pruner is not None else optuna.pruners.MedianPruner())
        if len(study.directions) != 1 or study.direction != optuna.study.StudyDirection.MAXIMIZE:
            raise ValueError(f"study {study.study_name!r} in {where} is not a single-objective maximizing "
                             "study; tune maximizes a score: choose another study_name.")
        _check_identity(study, _identity(estimator, space, X, Y, groups, scoring), where)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)  # a rerun first fails (and requeues) its dead trials
        if n_trials is None or _n_complete(study) < n_trials:
            callbacks = [] if n_trials is None else [optuna.study.MaxTrialsCallback(n_trials, (TrialState.COMPLETE,))]
            with interrupt.installed():
                study.optimize(objective, timeout=timeout, n_jobs=n_jobs, catch=catch, callbacks=callbacks)
            if interrupt.requested:
                raise KeyboardInterrupt

    best = None
    if refit:
        if _n_complete(study) == 0:
            raise ValueError(f"study {study.study_name!r} has no completed trial to refit (all failed or were "
                             "pruned); see study.trials.")
        best_trial = study.best_trial
        best = clone(estimator).set_params(**_params(space, optuna.trial.FixedTrial(best_trial.params,
                                                                                    best_trial.number)))
        fit_params, routing = groups_fit_params(best, groups)
        with routing_context(routing):
            best.fit(X, Y, **fit_params)
    return TuneResult(study, best)
