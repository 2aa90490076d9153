"""The row-following Pipeline: imbalanced-learn's, with per-sample fit parameters following resampled rows."""

from __future__ import annotations

from collections.abc import Mapping

import imblearn.pipeline
import numpy as np
from sklearn.utils import Bunch, _safe_indexing

from ..model_selection._checks import _n_rows


def _is_per_sample(value, n_rows: int) -> bool:
    """An array-like with one entry per row of X (the rule by which cross_validate slices params)."""
    if value is None or isinstance(value, (str, bytes, Mapping)):
        return False
    shape = getattr(value, "shape", None)
    if shape is not None:
        return len(shape) >= 1 and shape[0] == n_rows
    return hasattr(value, "__len__") and hasattr(value, "__getitem__") and len(value) == n_rows


class _RowFollowingParams(Bunch):
    """Routed fit parameters whose per-sample entries follow the rows through the samplers fitted so far.

    imbalanced-learn's ``Pipeline._fit`` reads ``routed_params[name]`` when it
    reaches step ``name``, after fitting every step before it; the samplers
    among those steps hold ``sample_indices_`` of this fit by then.
    """

    def __init__(self, routed_params, pipeline, n_rows):
        super().__init__(**routed_params)
        self.__dict__["_pipeline"] = pipeline
        self.__dict__["_n_rows"] = n_rows

    def __getitem__(self, name):
        params = super().__getitem__(name)
        n_rows = self.__dict__["_n_rows"]
        per_sample = {(method, key) for method, values in params.items() for key, value in values.items()
                      if _is_per_sample(value, n_rows)}
        samplers = []
        for step_name, step in self.__dict__["_pipeline"].steps:
            if step_name == name:
                break
            if step is not None and not isinstance(step, str) and hasattr(step, "fit_resample"):
                samplers.append((step_name, step))
        if not per_sample or not samplers:
            return params
        index = np.arange(n_rows)
        for step_name, sampler in samplers:
            indices = getattr(sampler, "sample_indices_", None)
            if indices is None:
                names = sorted({key for _, key in per_sample})
                raise ValueError(
                    f"Step {name!r} receives per-sample fit parameters {names}, but the sampler "
                    f"{step_name!r} ({type(sampler).__name__}) records no sample_indices_, so they cannot "
                    "follow its resampled rows. Use a sampler that records them (skcxr.sampling's, "
                    "RandomOverSampler, RandomUnderSampler, ...) or do not pass them to later steps."
                )
            indices = np.asarray(indices)
            if indices.ndim != 1 or (indices.size and (indices.min() < 0 or indices.max() >= len(index))):
                raise ValueError(f"The sample_indices_ of step {step_name!r} do not index its {len(index)} "
                                 "input rows.")
            index = index[indices]
        return Bunch(**{
            method: Bunch(**{key: _safe_indexing(value, index) if (method, key) in per_sample else value
                             for key, value in values.items()})
            for method, values in params.items()
        })


class Pipeline(imblearn.pipeline.Pipeline):
    """imbalanced-learn's Pipeline in which per-sample fit parameters (patient ids) follow the resampled rows.

    The same class as :class:`imblearn.pipeline.Pipeline` (samplers act in
    ``fit`` only; ``predict``, ``predict_proba`` and ``transform`` skip them),
    with one change: a fit parameter that holds one entry per row of ``X``
    (``groups``, ``sample_weight``, ...) is re-indexed through the
    ``sample_indices_`` of every sampler before the step that receives it, so
    it describes the rows that reach that step. Copies of a patient's image,
    and synthetic :class:`MLSMOTE` rows seeded by it, keep that patient's id,
    and a patient-disjoint inner validation split stays patient-disjoint.
    With imbalanced-learn's Pipeline the ids would arrive unresampled (skcxr's
    nets refuse them: one id per row is required). A per-sample parameter
    meant for a step after a sampler without ``sample_indices_`` (e.g.
    imbalanced-learn's SMOTE) raises ``ValueError``.

    Parameters are passed as in any Pipeline: ``fit(X, Y, clf__groups=ids)``
    with scikit-learn's metadata routing off
    (:func:`skcxr.model_selection.groups_params` builds the names), or
    ``fit(X, Y, groups=ids)`` with routing on (skcxr's nets request
    ``groups``).

    Parameters
    ----------
    steps, transform_input, memory, verbose
        As in :class:`imblearn.pipeline.Pipeline`.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_multilabel_classification
    >>> from skcxr.neural import MultilabelNeuralNetClassifier
    >>> from skcxr.sampling import MLROS, Pipeline
    >>> X, Y = make_multilabel_classification(120, n_features=8, n_classes=4, random_state=0)
    >>> patients = np.arange(120) // 3
    >>> pipe = Pipeline([("ros", MLROS(random_state=0)),
    ...                  ("clf", MultilabelNeuralNetClassifier(max_epochs=2, random_state=0))])
    >>> pipe = pipe.fit(X.astype(np.float32), Y, clf__groups=patients)
    >>> len(pipe["ros"].sample_indices_), pipe.predict_proba(X[:5].astype(np.float32)).shape
    (136, (5, 4))
    """

    def _fit(self, X, y=None, routed_params=None, raw_params=None):
        if routed_params is None:
            return super()._fit(X, y, routed_params, raw_params=raw_params)
        following = _RowFollowingParams(routed_params, self, _n_rows(X))
        Xt, yt = super()._fit(X, y, following, raw_params=raw_params)
        last = self.steps[-1][0] if self.steps else None
        if last is not None and last in routed_params:  # read by fit/fit_transform/... after _fit
            routed_params[last] = following[last]
        return Xt, yt


def make_pipeline(*steps, memory=None, transform_input=None, verbose=False) -> Pipeline:
    """:class:`Pipeline` from estimators, named as :func:`imblearn.pipeline.make_pipeline` names them.

    Examples
    --------
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skcxr.sampling import MLROS, make_pipeline
    >>> [name for name, _ in make_pipeline(StandardScaler(), MLROS()).steps]
    ['standardscaler', 'mlros']
    """
    named = imblearn.pipeline.make_pipeline(*steps, memory=memory, transform_input=transform_input,
                                            verbose=verbose)
    return Pipeline(named.steps, memory=memory, transform_input=transform_input, verbose=verbose)
