"""The search: :func:`tune` runs an Optuna study whose trials cross-validate clones by patient."""

from __future__ import annotations

import numbers
import warnings
from typing import NamedTuple

import numpy as np
import optuna
from optuna.trial import TrialState
from sklearn.base import clone
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import check_consistent_length, column_or_1d

from .._validation import check_multilabel_Y
from ..metrics import get_scorer
from ..model_selection import MultilabelStratifiedGroupKFold, groups_fit_params, routing_context
from ._interrupt import _Interrupt
from ._nets import _attach_pruning
from ._space import _check_space, _params
from ._storage import _storage_errors, open_storage, redact
from ._study import _check_identity, _identity, _n_complete, _optuna_logging

#: The study name used with a persistent ``storage`` when ``study_name`` is None.
DEFAULT_STUDY_NAME = "skcxr-tune"


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


def tune(estimator, X, Y, groups=None, *, space, n_trials=20, cv=None, scoring="macro_auc", storage=None,
         study_name=None, timeout=None, n_jobs=1, random_state=None, refit=True, sampler=None, pruner=None,
         monitor="valid_loss", heartbeat_interval=60, grace_period=None, max_retry=3, catch=(),
         verbose=0) -> TuneResult:
    """Tune an estimator's hyper-parameters with Optuna under patient-grouped, multi-label CV.

    Each trial sets the parameters the sampler proposes on a clone of
    ``estimator`` and scores it by cross-validation: fit on each training
    fold (with the patient ids routed to every nested step that takes them,
    :func:`skcxr.model_selection.groups_fit_params`, so the nets' inner validation
    splits are patient-disjoint too), ``scoring`` on the held-out fold; the
    trial's value is the mean over folds (the folds' scores are kept in the
    trial's ``user_attrs["fold_scores"]``). The study maximizes it.

    **Pruning.** Every skorch net inside the estimator (a pipeline step, a
    ``FeatureUnion`` member, ... ; prefit parts in a ``FrozenEstimator`` are
    left alone) gets an :class:`~skcxr.tuning.pruning.OptunaPruning`
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
    >>> from skcxr.tuning import tune
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
