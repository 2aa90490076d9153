"""Search spaces: a dict of Optuna distributions or a callable, checked and turned into a trial's parameters."""

from __future__ import annotations

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from sklearn.base import clone


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
