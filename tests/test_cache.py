"""skcxr.cache: content-keyed, versioned, seed-aware caching (Pipeline memory and cached functions).

Every test counts calls (module-level counters, so they survive joblib's pickling of the
estimators) or asks ``check_call_in_cache``: a test that only compared outputs could not
tell a cache hit from a recomputation.
"""

import collections
import os
import pickle
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
from PIL import Image
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.utils import check_random_state

import skcxr
from skcxr.cache import ContentMemory, _fingerprint, _keys, _version, check_memory, code_version, file_fingerprint
from skcxr.cache import paths_fingerprint
from skcxr.features import CNNEmbedder
from skcxr.pipelines import make_classical_pipeline, make_hybrid_pipeline
from skcxr.preprocessing import CXRPreprocessor

CALLS = collections.Counter()


@pytest.fixture(autouse=True)
def _reset_calls():
    CALLS.clear()
    yield


# --------------------------------------------------------------------------- helpers (module level: picklable)
class Counting(TransformerMixin, BaseEstimator):
    """Flattens images; counts its fits."""

    def fit(self, X, y=None):
        CALLS["fit"] += 1
        return self

    def transform(self, X):
        CALLS["transform"] += 1
        return np.asarray(X, dtype=np.float32).reshape(len(X), -1)


class Recorder(BaseEstimator):
    """Final step that keeps the features it was trained on."""

    def fit(self, X, y=None):
        self.X_ = np.array(X, copy=True)
        return self

    def predict(self, X):
        return np.zeros(len(X))


class Noisy(TransformerMixin, BaseEstimator):
    """A cheap stochastic transformer: adds noise drawn from random_state at fit."""

    def __init__(self, random_state=None):
        self.random_state = random_state

    def fit(self, X, y=None):
        CALLS["noisy_fit"] += 1
        self.noise_ = check_random_state(self.random_state).normal(size=np.shape(X)[1:])
        return self

    def transform(self, X):
        return np.asarray(X, dtype=float) + self.noise_


class Failing(TransformerMixin, BaseEstimator):
    def fit(self, X, y=None):
        CALLS["failing_fit"] += 1
        raise ValueError("bad input")

    def transform(self, X):
        return X


class ReadsTable(TransformerMixin, BaseEstimator):
    """Has a parameter naming a file it reads."""

    def __init__(self, table=None):
        self.table = table

    def fit(self, X, y=None):
        CALLS["table_fit"] += 1
        self.offset_ = float(Path(self.table).read_bytes()[0])
        return self

    def transform(self, X):
        return np.asarray(X, dtype=float) + self.offset_


def add(x, y, verbose=0):
    CALLS["add"] += 1
    return np.asarray(x) + y


def fail_on_negative(x):
    CALLS["fail_on_negative"] += 1
    if np.min(x) < 0:
        raise ValueError("negative input")
    return np.sqrt(x)


def draw(n, random_state=None):
    CALLS["draw"] += 1
    return check_random_state(random_state).normal(size=n)


def total_bytes(paths):
    CALLS["total_bytes"] += 1
    return sum(len(Path(p).read_bytes()) for p in paths)


def _write_png(path, pixels):
    # compress_level=0 stores the rows uncompressed: the file size depends only on the shape.
    Image.fromarray(pixels).save(path, compress_level=0)


def _images(folder, n=6, size=32, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        path = folder / f"img_{i:02d}.png"
        _write_png(path, rng.integers(0, 256, (size, size), dtype=np.uint8))
        paths.append(str(path))
    return np.asarray(paths, dtype=object)


def _replace_keeping_name_size_and_mtime(paths, seed):
    """Overwrite every image with other pixels; keep its name, its size and its old mtime."""
    rng = np.random.default_rng(seed)
    for path in paths:
        before = os.stat(path)
        shape = np.asarray(Image.open(path)).shape
        _write_png(path, rng.integers(0, 256, shape, dtype=np.uint8))
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        after = os.stat(path)
        assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def _stored(location) -> int:
    return len(list(Path(location).rglob("output.pkl")))


def _counting_pipeline(memory, size=32):
    return Pipeline(
        [("prep", CXRPreprocessor(size=size)), ("count", Counting()), ("rec", Recorder())],
        memory=memory,
    )


# --------------------------------------------------------------------------- (a) reuse
def test_pipeline_fitted_twice_on_same_paths_does_not_recompute(tmp_path):
    paths = _images(tmp_path / "img")
    memory = check_memory(tmp_path / "cache")
    first = _counting_pipeline(memory).fit(paths)
    assert CALLS["fit"] == 1 and _stored(tmp_path / "cache") == 2  # prep and count
    second = clone(first).fit(paths)  # a new pipeline, same parameters and files
    assert CALLS["fit"] == 1, "the cached step was recomputed"
    assert _stored(tmp_path / "cache") == 2
    np.testing.assert_array_equal(second.named_steps["rec"].X_, first.named_steps["rec"].X_)


def test_cached_function_is_served_and_ignores_ignored_arguments(tmp_path):
    cached = check_memory(str(tmp_path)).cache(add, ignore=["verbose"])
    assert not cached.check_call_in_cache(np.arange(3), 1)
    np.testing.assert_array_equal(cached(np.arange(3), 1), [1, 2, 3])
    assert cached.check_call_in_cache(np.arange(3), 1)
    assert cached.check_call_in_cache(np.arange(3), y=1, verbose=5)
    np.testing.assert_array_equal(cached(np.arange(3), 1, verbose=5), [1, 2, 3])
    assert CALLS["add"] == 1
    assert not cached.check_call_in_cache(np.arange(3), 2)
    cached(np.arange(3), 2)
    assert CALLS["add"] == 2


def test_unknown_ignore_name_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="not arguments"):
        check_memory(tmp_path).cache(add, ignore=["device"])


def test_key_is_the_same_in_another_process(tmp_path):
    paths = [str(p) for p in _images(tmp_path / "img", n=2)]
    key = check_memory(tmp_path / "cache").cache(paths_fingerprint).cache_key(paths)
    code = (
        "import sys; from skcxr.cache import check_memory, paths_fingerprint; "
        "print(check_memory(sys.argv[1]).cache(paths_fingerprint).cache_key(sys.argv[2:]))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "cache"), *paths],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == key


# --------------------------------------------------------------------------- (b) content, not names
def test_images_replaced_under_same_names_are_read_again(tmp_path):
    paths = _images(tmp_path / "img", seed=0)
    memory = check_memory(tmp_path / "cache")
    old = _counting_pipeline(memory).fit(paths).named_steps["rec"].X_
    _replace_keeping_name_size_and_mtime(paths, seed=1)
    cached = _counting_pipeline(memory).fit(paths).named_steps["rec"].X_
    fresh = _counting_pipeline(None).fit(paths).named_steps["rec"].X_
    assert CALLS["fit"] == 3, "the replaced images were served from the cache"
    assert not np.allclose(fresh, old)
    np.testing.assert_array_equal(cached, fresh)


def test_classical_pipeline_predicts_from_new_pixels_after_replacement(tmp_path):
    paths = _images(tmp_path / "img", n=12, size=48, seed=0)
    Y = np.tile([[1, 0], [0, 1], [1, 1], [0, 0]], (3, 1))
    cache = tmp_path / "cache"
    old = make_classical_pipeline(size=32, memory=cache).fit(paths, Y).predict_proba(paths)
    _replace_keeping_name_size_and_mtime(paths, seed=1)
    cached = make_classical_pipeline(size=32, memory=cache).fit(paths, Y).predict_proba(paths)
    fresh = make_classical_pipeline(size=32).fit(paths, Y).predict_proba(paths)
    assert np.abs(fresh - old).max() > 1e-3
    np.testing.assert_allclose(cached, fresh, rtol=0, atol=1e-12)


def test_fingerprint_memo_reads_unchanged_files_once(tmp_path, monkeypatch):
    reads = collections.Counter()
    hash_file = _fingerprint._hash_file

    def counting_hash(path):
        reads[path] += 1
        return hash_file(path)

    monkeypatch.setattr(_fingerprint, "_hash_file", counting_hash)
    path = str(_images(tmp_path / "img", n=1)[0])
    # Written just now: "racily clean" (its timestamps may not have moved yet), so it is not memoised.
    first = file_fingerprint(path)
    assert file_fingerprint(path) == first and reads[path] == 2
    # Once the file is older than the racy window, its hash is memoised ...
    monkeypatch.setattr(_fingerprint, "_RACY_NS", 0)
    file_fingerprint(path)
    file_fingerprint(path)
    assert reads[path] == 3
    # ... until anything about it changes, even with the same size and the old mtime restored.
    _replace_keeping_name_size_and_mtime([path], seed=1)
    second = file_fingerprint(path)
    assert reads[path] == 4
    assert second[:2] == first[:2] and second[2] != first[2]


def test_estimator_parameter_naming_a_file_is_keyed_on_content(tmp_path):
    table = tmp_path / "table.bin"
    table.write_bytes(b"\x01")
    memory = check_memory(tmp_path / "cache")
    X = np.zeros((3, 2))

    def fit():
        return Pipeline([("t", ReadsTable(str(table))), ("rec", Recorder())], memory=memory).fit(X)

    fit()
    fit()
    assert CALLS["table_fit"] == 1
    table.write_bytes(b"\x02")  # same name, same size
    assert fit().named_steps["rec"].X_[0, 0] == 2.0
    assert CALLS["table_fit"] == 2


def test_path_lists_and_series_are_keyed_on_content(tmp_path):
    pd = pytest.importorskip("pandas")
    paths = [str(p) for p in _images(tmp_path / "img", n=3)]
    cached = check_memory(tmp_path / "cache").cache(total_bytes)
    for form in (list, tuple, np.asarray, pd.Series):
        cached(form(paths))
        cached(form(paths))
    assert CALLS["total_bytes"] == 4  # one per container type
    Path(paths[0]).write_bytes(b"different")
    assert not cached.check_call_in_cache(list(paths))
    assert cached(list(paths)) == total_bytes(paths)


def test_names_that_are_not_files_are_keyed_by_name(tmp_path):
    cached = check_memory(tmp_path / "cache").cache(add)
    # a dict of strings is not a list of paths; a list of non-existent names is keyed by name
    for _ in range(2):
        cached(np.arange(2), 1, verbose={"a": 1})
    assert CALLS["add"] == 1
    names = cached.cache_key(np.arange(2), 1, verbose=["no/such/file.png"])
    assert names is not None and names != cached.cache_key(np.arange(2), 1, verbose=["no/such/other.png"])


# --------------------------------------------------------------------------- (c) unseeded randomness
def test_unseeded_step_is_never_served_from_cache(tmp_path):
    location = tmp_path / "cache"
    memory = check_memory(location)
    X = np.zeros((4, 3))

    def fit(step):
        return Pipeline([("noise", step), ("rec", Recorder())], memory=memory).fit(X).named_steps["rec"].X_

    a, b = fit(Noisy()), fit(Noisy())
    assert CALLS["noisy_fit"] == 2 and not np.allclose(a, b)
    assert _stored(location) == 0
    # nor is a later step fitted on its random output (an entry no later fit could hit)
    Pipeline([("noise", Noisy()), ("count", Counting()), ("rec", Recorder())], memory=memory).fit(X)
    assert CALLS["fit"] == 1 and _stored(location) == 0
    # nested: random_state=None deep inside a FeatureUnion
    fit(FeatureUnion([("n", Noisy())]))
    fit(FeatureUnion([("n", Noisy())]))
    assert CALLS["noisy_fit"] == 5 and _stored(location) == 0
    # seeded: cached
    c, d = fit(Noisy(random_state=0)), fit(Noisy(random_state=0))
    assert CALLS["noisy_fit"] == 6 and _stored(location) == 1
    np.testing.assert_array_equal(c, d)


def test_random_state_none_argument_is_never_cached(tmp_path):
    cached = check_memory(tmp_path / "cache").cache(draw)
    assert not np.allclose(cached(5), cached(5))
    assert not cached.check_call_in_cache(5) and cached.cache_key(5) is None
    assert CALLS["draw"] == 2 and _stored(tmp_path / "cache") == 0
    np.testing.assert_array_equal(cached(5, random_state=0), cached(5, random_state=0))
    assert CALLS["draw"] == 3


def test_hybrid_pipeline_with_random_resnet_is_not_cached(tmp_path, one_torch_thread):
    X = np.random.default_rng(0).uniform(0, 255, (4, 32, 32)).astype(np.float32)
    location = tmp_path / "cache"

    def fit(random_state):
        cnn = CNNEmbedder(image_size=32, random_state=random_state)  # a ResNet18 from random weights
        pipe = make_hybrid_pipeline(cnn, size=32, texture=False, memory=location, classifier=Recorder())
        assert pipe.named_steps["features"].transformer_list[0][1].memory is None  # one cache layer
        return pipe.fit(X).named_steps["features"].transform(pipe.named_steps["prep"].transform(X))

    a, b = fit(None), fit(None)
    assert not np.allclose(a, b), "random_state=None gave the same ResNet twice"
    # the preprocessing (no randomness) once; the features never, nor the scaler fitted on them
    assert _stored(location) == 1
    c, d = fit(0), fit(0)
    np.testing.assert_array_equal(c, d)
    assert _stored(location) == 3  # + seeded features and their scaler, stored once


# --------------------------------------------------------------------------- (d) code version
def test_code_version_change_invalidates(tmp_path, monkeypatch):
    cached = check_memory(tmp_path / "cache").cache(add)
    cached(1, 2)
    assert cached.check_call_in_cache(1, 2)
    monkeypatch.setattr(skcxr, "__version__", skcxr.__version__ + ".post1")
    assert not cached.check_call_in_cache(1, 2)
    cached(1, 2)
    assert CALLS["add"] == 2
    monkeypatch.setattr(_version, "_source_digest", lambda: "edited source")
    assert not cached.check_call_in_cache(1, 2)
    monkeypatch.undo()
    assert cached.check_call_in_cache(1, 2)


def test_source_digest_covers_package_files():
    root = Path(skcxr.__file__).parent
    hashed = {path.relative_to(root).as_posix() for path in _version._source_files()}
    on_disk = {path.relative_to(root).as_posix() for path in root.rglob("*.py") if "__pycache__" not in path.parts}
    assert hashed == on_disk and {"pipelines.py", "cache/_memory.py", "datasets/__init__.py"} <= hashed
    assert len(_version._source_digest()) == 32
    version, digest, libraries = code_version()
    assert version == skcxr.__version__ and digest == _version._source_digest()
    assert dict(libraries)["scikit-learn"] is not None


# --------------------------------------------------------------------------- (e) errors store nothing
def test_exception_stores_nothing(tmp_path):
    location = tmp_path / "cache"
    cached = check_memory(location).cache(fail_on_negative)
    for _ in range(2):
        with pytest.raises(ValueError, match="negative"):
            cached(np.array([-1.0]))
    assert CALLS["fail_on_negative"] == 2
    assert not cached.check_call_in_cache(np.array([-1.0])) and _stored(location) == 0
    cached(np.array([4.0]))
    assert cached.check_call_in_cache(np.array([4.0])) and _stored(location) == 1


def test_failing_pipeline_step_stores_nothing(tmp_path):
    location = tmp_path / "cache"
    pipe = Pipeline([("fail", Failing()), ("rec", Recorder())], memory=check_memory(location))
    for _ in range(2):
        with pytest.raises(ValueError, match="bad input"):
            clone(pipe).fit(np.zeros((2, 2)))
    assert CALLS["failing_fit"] == 2 and _stored(location) == 0


def test_missing_image_stores_nothing_and_is_read_once_it_exists(tmp_path):
    paths = _images(tmp_path / "img", n=3)
    location = tmp_path / "cache"
    missing = paths[0]
    pixels = np.asarray(Image.open(missing))
    os.remove(missing)
    with pytest.raises((FileNotFoundError, ValueError, OSError)):
        _counting_pipeline(check_memory(location)).fit(paths)
    assert _stored(location) == 0
    _write_png(missing, pixels)
    got = _counting_pipeline(check_memory(location)).fit(paths).named_steps["rec"].X_
    np.testing.assert_array_equal(got, _counting_pipeline(None).fit(paths).named_steps["rec"].X_)


# --------------------------------------------------------------------------- the memory object
def test_check_memory_forms(tmp_path):
    for memory in (None, str(tmp_path), tmp_path, joblib.Memory(tmp_path, verbose=0)):
        content = check_memory(memory)
        assert isinstance(content, ContentMemory)
        assert check_memory(content) is content
    assert check_memory(None).location is None
    assert Path(check_memory(str(tmp_path)).location) == tmp_path
    with pytest.raises(ValueError, match="memory must be"):
        check_memory(3)


def test_no_location_calls_directly_without_fingerprinting(tmp_path, monkeypatch):
    monkeypatch.setattr(_keys, "paths_fingerprint", lambda paths: pytest.fail("fingerprinted without a cache"))
    cached = check_memory(None).cache(total_bytes)
    paths = [str(p) for p in _images(tmp_path / "img", n=2)]
    cached(paths)
    cached(paths)
    assert CALLS["total_bytes"] == 2 and not cached.check_call_in_cache(paths)


def test_pipeline_accepts_content_memory_and_pickles(tmp_path):
    memory = check_memory(tmp_path / "cache")
    pipe = Pipeline([("count", Counting()), ("rec", Recorder())])
    pipe.set_params(memory=memory)  # scikit-learn's parameter validation accepts it
    pipe.fit(np.zeros((2, 2)))
    restored = pickle.loads(pickle.dumps(clone(pipe)))
    assert isinstance(restored.memory, ContentMemory) and restored.memory.location == memory.location
    restored.fit(np.zeros((2, 2)))
    assert CALLS["fit"] == 1
    memory.clear(warn=False)
    assert _stored(tmp_path / "cache") == 0
