"""Pruning of the skorch nets inside an estimator: find them and give each the trial's callback."""

from __future__ import annotations

import sys

from sklearn.frozen import FrozenEstimator

#: The name of the pruning callback added to every skorch net during a trial.
PRUNING_CALLBACK = "optuna_pruning"


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
        from .pruning import OptunaPruning  # imports skorch and torch: only when there is a net

        pruning = OptunaPruning(trial, monitor=monitor)
    for net in nets:
        net.set_params(callbacks=[*(net.callbacks or []), (PRUNING_CALLBACK, pruning)])
    return pruning
