"""A grouped, multi-label GridSearchCV on a dask cluster gives the sequential run's results.

``joblib.parallel_config("dask")`` sends the search's fits to the cluster's workers; nothing else in the
code changes. Skipped where dask's ``distributed`` is not installed (``pip install "skcxr[dask]"``).
"""

from __future__ import annotations

import logging

import joblib
import numpy as np
import pytest
from sklearn.datasets import make_multilabel_classification
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skcxr.cache import check_memory
from skcxr.metrics import SCORERS
from skcxr.model_selection import MultilabelStratifiedGroupKFold
from skcxr.pipelines import make_logistic_regression

distributed = pytest.importorskip(
    "distributed", reason='dask.distributed is not installed: pip install "dask[distributed]" (or skcxr[dask])')


def _search(memory=None):
    pipe = Pipeline([("scale", StandardScaler()), ("clf", make_logistic_regression())], memory=memory)
    return GridSearchCV(
        pipe, {"clf__estimator__C": [1e-3, 1e-2, 1e-1, 1.0], "scale__with_std": [True, False]},
        cv=MultilabelStratifiedGroupKFold(3, shuffle=True, random_state=0),
        scoring={name: SCORERS[name] for name in ("macro_auc", "macro_f1")}, refit="macro_auc", n_jobs=-1,
    )  # fmt: skip


@pytest.fixture(scope="module")
def data():
    X, Y = make_multilabel_classification(150, n_features=20, n_classes=4, random_state=0)
    patients = np.repeat(np.arange(50), 3)  # 3 images a patient: the folds must keep them together
    return X, Y, patients


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.ERROR) as cluster, distributed.Client(cluster) as client:
        yield client


def test_grouped_grid_search_on_a_dask_cluster_equals_the_sequential_run(data, client, tmp_path):
    X, Y, patients = data
    sequential = _search().set_params(n_jobs=1).fit(X, Y, groups=patients)
    memory = check_memory(tmp_path)  # skcxr's content-keyed cache, shared by the workers through the folder
    with distributed.get_task_stream(client) as tasks, joblib.parallel_config("dask"):
        on_dask = _search(memory).fit(X, Y, groups=patients)
    assert len(tasks.data) > 0  # the fits ran on the cluster
    workers = set(client.scheduler_info()["workers"])
    assert {task["worker"] for task in tasks.data} <= workers and len(workers) == 2
    for key, value in sequential.cv_results_.items():
        if "time" not in key:
            np.testing.assert_array_equal(on_dask.cv_results_[key], value, err_msg=key)
    assert on_dask.best_params_ == sequential.best_params_
    np.testing.assert_allclose(on_dask.predict_proba(X), sequential.predict_proba(X))
    # Each fold's scaler (one per with_std) was fitted once, by one worker, for the four C values; then the refit's.
    fits = {event: n for (name, event), n in memory.stats().items() if "_fit_transform_one" in name}
    assert fits.get("miss") == 3 * 2 + 1 and fits.get("hit", 0) + fits.get("waited", 0) == 3 * 2 * 3

