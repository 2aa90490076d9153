"""OptunaPruning: a skorch callback that reports each epoch's validation score to an Optuna trial and prunes it.

A public module of its own because it imports skorch (and torch): :func:`skcxr.tuning.tune` imports it only
when the estimator holds a skorch net (and skorch is then loaded anyway), so ``import skcxr.tuning`` and
tuning estimators without nets never import torch.
"""

from __future__ import annotations

import math

import optuna
from skorch.callbacks import Callback

__all__ = ["OptunaPruning"]


class OptunaPruning(Callback):
    """skorch callback: report a validation score per epoch to an Optuna trial; prune hopeless trials.

    At the end of every epoch the net's ``history[-1, monitor]`` is reported
    with :meth:`optuna.trial.Trial.report`, and when the study's pruner says
    so (:meth:`optuna.trial.Trial.should_prune`) :class:`optuna.TrialPruned`
    is raised. skorch lets that exception through ``fit`` (it swallows only
    ``KeyboardInterrupt``), and Optuna marks the trial ``PRUNED``.

    **Direction.** Pruners compare intermediate values in the study's
    direction. A score that is better when lower (``valid_loss``) is reported
    negated in a ``"maximize"`` study (and a higher-is-better score negated in
    a ``"minimize"`` one), so "larger reported value" always means "better",
    as for the objective. (optuna-integration's ``SkorchPruningCallback``
    reports the raw value, which in a study maximizing AUC would prune the
    trials with the *lowest* loss.)

    **Steps.** One instance serves a whole trial: every net fit it sees
    (several folds, several nets in one pipeline, fitted one after the
    other) gets its own block of ``max_epochs`` steps, in the order the fits
    begin. Epoch ``e`` (0-based) of the ``k``-th fit is reported at step
    ``offset_k + e`` with ``offset_k = max_epochs_0 + ... + max_epochs_{k-1}``;
    for one net per fold that is ``fold * max_epochs + epoch``. Steps therefore
    only grow within a trial (as Optuna's pruners require; early stopping just
    leaves the rest of a block empty), and, as long as ``max_epochs`` is not
    itself tuned, step ``s`` means the same fold and epoch in every trial, so
    pruners compare like with like.

    Parameters
    ----------
    trial : optuna.trial.Trial
        The running trial.
    monitor : str, default="valid_loss"
        The history key to report. A fit whose history lacks it (a net with
        ``train_split=None`` has no ``valid_loss``) reports nothing and is never
        pruned.
    lower_is_better : bool or None, default=None
        ``None``: from the net's callback of that name (skorch scorings carry
        ``lower_is_better``), else ``True`` when ``monitor`` ends in ``"loss"``.

    Attributes
    ----------
    n_reported_ : int
        Number of values reported so far.

    Notes
    -----
    A net may be cloned or deep-copied inside a pipeline (``clone`` of a
    callback deep-copies what it holds): this callback is then shared, not
    copied, so the copies keep counting steps on the same trial. A pickled
    copy (a joblib worker) carries no trial and reports nothing.

    Examples
    --------
    >>> import numpy as np, optuna
    >>> from skcxr.tuning.pruning import OptunaPruning
    >>> from skcxr.neural import MultilabelNeuralNetClassifier
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.normal(size=(60, 5)).astype("float32"), rng.integers(0, 2, (60, 3))
    >>> study = optuna.create_study(direction="maximize")
    >>> trial = study.ask()
    >>> net = MultilabelNeuralNetClassifier(max_epochs=3, random_state=0,
    ...                                     callbacks=[("prune", OptunaPruning(trial))]).fit(X, Y)
    >>> sorted(study.trials[0].intermediate_values)
    [0, 1, 2]
    """

    def __init__(self, trial, monitor="valid_loss", lower_is_better=None):
        self.trial = trial
        self.monitor = monitor
        self.lower_is_better = lower_is_better
        self._next_offset = 0
        self._offset = 0
        self._start = 0
        self._sign = 1.0
        self.n_reported_ = 0

    # shared, never copied: a copy would deep-copy the trial (and its storage) and restart the steps
    def __sklearn_clone__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __getstate__(self):
        state = self.__dict__.copy()
        state["trial"] = None  # a trial (storage, engine) does not pickle; the copy reports nothing
        return state

    def initialize(self):
        return self  # counters are per trial, not per net: initialize (called by every net) keeps them

    def on_train_begin(self, net, **kwargs):
        self._offset = self._next_offset
        self._next_offset += int(net.max_epochs)
        self._start = len(net.history)  # warm starts keep earlier epochs in the history
        lower = self.lower_is_better
        if lower is None:
            own = dict(getattr(net, "callbacks_", ())).get(self.monitor)
            lower = getattr(own, "lower_is_better", None)
            if lower is None:
                lower = self.monitor.endswith("loss")
        maximize = self.trial is None or self.trial.study.direction == optuna.study.StudyDirection.MAXIMIZE
        self._sign = -1.0 if bool(lower) == maximize else 1.0

    def on_epoch_end(self, net, **kwargs):
        if self.trial is None or not net.history or self.monitor not in net.history[-1]:
            return
        epoch = len(net.history) - self._start - 1
        value = float(net.history[-1, self.monitor])
        step = self._offset + epoch
        self.trial.report(self._sign * value if not math.isnan(value) else value, step)
        self.n_reported_ += 1
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step} ({self.monitor}={value:.4g}, epoch {epoch})")
