"""A grid over lam x dropout computes U-Net maps, fine-tunings and Grad-CAMs once per training fold.

Counted with the cache's own call log (:meth:`skcxr.cache.ContentMemory.stats`), which every process
writes to: nothing is monkeypatched, so the cache keys are the real ones, in the joblib workers too.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest
import sklearn
from sklearn.model_selection import GridSearchCV

from skcxr.cache import check_memory, content_hash
from skcxr.datasets import make_phantoms
from skcxr.features import ResNetEmbedder
from skcxr.metrics import get_scorer
from skcxr.model_selection import MultilabelStratifiedGroupKFold
from skcxr.attention import cnn_cams
from skcxr.neural import MLP, MultilabelNeuralNetClassifier, fine_tune_cnn
from skcxr.pipelines import make_attention_pipeline
from skcxr.segmentation import segment

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIZE, FOLDS, CAM_FOLDS = 48, 3, 2
GRID = {"fusion__lam": [0.25, 0.5, 0.75], "clf__module__dropout": [0.2, 0.4, 0.6]}
#: The cached functions of the heavy steps, by the names the call log records (module and qualified name).
HEAVY = tuple(f"{f.__module__}.{f.__qualname__}" for f in (segment, fine_tune_cnn, cnn_cams))
SEGMENT, FINE_TUNE, _ = HEAVY


def _pipe(memory):
    cnn = ResNetEmbedder(fine_tune="all", epochs=1, image_size=32, batch_size=16, random_state=0)
    mlp = MultilabelNeuralNetClassifier(MLP, max_epochs=3, random_state=0)
    return make_attention_pipeline("maps", cnn=cnn, cv=CAM_FOLDS, classifier=mlp, size=SIZE, memory=memory,
                                   random_state=0)


def _search(memory, n_jobs):
    return GridSearchCV(_pipe(memory), GRID, cv=MultilabelStratifiedGroupKFold(FOLDS, shuffle=True, random_state=0),
                        scoring=get_scorer("macro_auc"), refit=False, n_jobs=n_jobs)


def _events(stats, name):
    return {event: n for (func, event), n in stats.items() if func == name}


def _stored(location):
    """Entries on disk per cached function (a key computed twice would still be one entry)."""
    counts = collections.Counter()
    for meta in location.rglob("metadata.json"):
        counts[json.loads(meta.read_text())["input_args"]["name"].strip("'")] += 1
    return counts


def test_grid_computes_maps_finetunings_and_cams_once_per_fold_in_workers_and_next_run(tmp_path):
    data = make_phantoms(36, size=SIZE, random_state=0)
    memory = check_memory(tmp_path)
    with sklearn.config_context(enable_metadata_routing=True):
        first = _search(memory, n_jobs=2).fit(data.images, data.Y, groups=data.patient_ids)
    stats = memory.stats()
    events = {name: _events(stats, name) for name in HEAVY}
    # Per training fold: the GradCAM network on the whole fold and one per cross-fitting fold.
    assert events[FINE_TUNE] == {"miss": FOLDS * (1 + CAM_FOLDS)}
    # Per fold: the training and the test images' lung maps; the 8 other candidates read the test maps back
    # (their training maps come with the Pipeline's cached step, which asks for nothing inside it).
    segments = events[SEGMENT]
    assert segments["miss"] == 2 * FOLDS
    assert segments.get("hit", 0) + segments.get("waited", 0) == (len(GRID["fusion__lam"]) ** 2 - 1) * FOLDS
    # Every computation stored a distinct entry: no key was computed twice, by one worker or two.
    stored = _stored(tmp_path)
    for name in HEAVY:
        assert events[name]["miss"] == stored[name], name
    assert not any(event == "uncached" for _, event in stats)

    # A second run (another process reads what the workers wrote) computes nothing, and scores the same.
    with sklearn.config_context(enable_metadata_routing=True):
        # The folder as a str (the first run had a Path): the same cache.
        second = _search(check_memory(str(tmp_path)), n_jobs=1).fit(data.images, data.Y, groups=data.patient_ids)
    new = check_memory(str(tmp_path)).stats() - stats
    assert not [key for key in new if key[1] != "hit"], new
    np.testing.assert_allclose(second.cv_results_["mean_test_score"], first.cv_results_["mean_test_score"])


def test_fitted_networks_key_the_same_in_every_process(tmp_path):
    # A fitted U-Net (torch tensors) inside a pipeline step's parameters: pickles of tensors differ between
    # processes, so joblib's own hash would miss the Pipeline cache in every worker and every run.
    code = ("from skcxr.cache import content_hash; from skcxr.pipelines import make_attention_pipeline; "
            "print(content_hash(make_attention_pipeline('maps', random_state=0).named_steps['maps']))")
    here = content_hash(make_attention_pipeline("maps", random_state=0).named_steps["maps"])
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert there == here


def _slow_square(x):
    time.sleep(0.5)
    return x * x


def test_concurrent_callers_of_one_key_compute_it_once(tmp_path):
    memory = check_memory(tmp_path)
    square = memory.cache(_slow_square)
    results = []
    threads = [threading.Thread(target=lambda: results.append(square(np.arange(4)))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 3 and all(np.array_equal(r, np.arange(4) ** 2) for r in results)
    events = _events(memory.stats(), f"{__name__}._slow_square")
    assert events.get("miss") == 1 and events.get("waited", 0) + events.get("hit", 0) == 2
    assert not list(tmp_path.rglob("*.lock"))  # holders remove their lock files
    memory.clear(warn=False)
    assert memory.stats() == collections.Counter()  # clear() resets the counts with the entries


def test_unseeded_network_with_memory_warns(tmp_path):
    with pytest.warns(UserWarning, match="random_state=<int>"):
        make_attention_pipeline("maps", memory=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _pipe(tmp_path)  # seeded: no warning
        make_attention_pipeline("maps")  # no memory: nothing to warn about
