"""Metadata routing of patient ids: the fit parameters that bring ``groups`` to every inner split."""

from __future__ import annotations

import contextlib
import inspect

from sklearn import config_context, get_config
from sklearn.utils.metadata_routing import get_routing_for_object


def _fit_accepts_groups(estimator) -> bool:
    fit = getattr(estimator, "fit", None)
    return fit is not None and "groups" in inspect.signature(fit).parameters


def groups_params(estimator, groups) -> dict:
    """The fit parameters that bring patient ids to every inner split of ``estimator``.

    With scikit-learn's metadata routing enabled this is ``{"groups": groups}``
    when some step consumes them (skcxr's estimators request ``groups`` in
    ``fit`` by default, so routing delivers them), else ``{}``. With routing
    off (scikit-learn's default) it names every nested step whose ``fit``
    takes ``groups``, in the ``step__param`` form of
    ``Pipeline`` (a ``FeatureUnion`` passes its parameters to all its members,
    each of which must then accept ``groups``).

    Parameters
    ----------
    estimator : estimator, Pipeline, FeatureUnion or search (GridSearchCV, ...)
    groups : array-like of shape (n_samples,)
        Patient id per sample.

    Returns
    -------
    dict
        Keyword arguments for ``estimator.fit(X, Y, **params)`` (or for
        ``cross_validate(..., params=...)``, which slices them per fold).

    Examples
    --------
    >>> from sklearn.pipeline import Pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skcxr.model_selection import groups_params
    >>> from skcxr.neural import MultilabelNeuralNetClassifier
    >>> pipe = Pipeline([("scale", StandardScaler()), ("clf", MultilabelNeuralNetClassifier())])
    >>> sorted(groups_params(pipe, [1, 1, 2]))
    ['clf__groups']
    """
    if get_config()["enable_metadata_routing"]:
        routing = get_routing_for_object(estimator)
        return {"groups": groups} if routing.consumes("fit", ["groups"]) else {}
    return _groups_params(estimator, groups)


def _groups_params(estimator, groups) -> dict:
    steps = getattr(estimator, "steps", None)
    members = getattr(estimator, "transformer_list", None)
    inner = getattr(estimator, "estimator", None)
    if steps is not None:  # Pipeline (scikit-learn or imbalanced-learn)
        params = {}
        for name, step in steps:
            if step is None or isinstance(step, str):
                continue
            params.update({f"{name}__{k}": v for k, v in _groups_params(step, groups).items()})
        return params
    if members is not None:  # FeatureUnion: every member receives every parameter
        active = [t for _, t in members if t is not None and not isinstance(t, str)]
        if not any(_groups_params(t, groups) for t in active):
            return {}
        # a nested Pipeline takes only step__groups, never a bare groups=; other members must accept groups
        refusing = [type(t).__name__ for t in active
                    if hasattr(t, "steps") or not (_fit_accepts_groups(t) or hasattr(t, "transformer_list"))]
        if refusing:
            raise ValueError(
                f"A FeatureUnion passes groups to all its members, and {', '.join(refusing)} "
                "do not accept them; enable metadata routing "
                "(sklearn.set_config(enable_metadata_routing=True)) to route groups by request."
            )
        return {"groups": groups}
    if inner is not None and hasattr(estimator, "cv"):  # GridSearchCV and friends: groups go to the cv
        return {"groups": groups, **_groups_params(inner, groups)}
    return {"groups": groups} if _fit_accepts_groups(estimator) else {}


def groups_fit_params(model, groups):
    """(params, routing): the fit parameters that bring patient ids to the model's inner splits.

    ``routing`` is True where only scikit-learn's metadata routing can deliver
    them (a FeatureUnion whose members differ in taking ``groups``): the model
    is then fitted with routing enabled, and ``groups`` go to the steps that
    request them.
    """
    if groups is None:
        return {}, False
    try:
        return groups_params(model, groups), False
    except ValueError:
        return {"groups": groups}, True


def routing_context(enabled: bool):
    """scikit-learn's metadata routing on inside the block when ``enabled`` (see :func:`groups_fit_params`)."""
    return config_context(enable_metadata_routing=True) if enabled else contextlib.nullcontext()
