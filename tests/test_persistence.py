"""Saved models: one atomic file, the description inside it, refusal of other versions, damaged files, kills."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import zipfile

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier

from skcxr import persistence
from skcxr.persistence import DESCRIPTION, FORMAT, MODEL, data_fingerprint, load_model, read_description, save_model
from skcxr.persistence import versions


@pytest.fixture
def fitted():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))
    Y = (X[:, :2] > 0).astype(int)
    return OneVsRestClassifier(LogisticRegression()).fit(X, Y), X, Y


def _rewrite(path, description=None, model=None, drop=None):
    """Rewrite a model file with another description (dict or raw text) or without one member."""
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist() if name != drop}
    if description is not None:
        members[DESCRIPTION] = description if isinstance(description, str) else json.dumps(description)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def test_round_trip_in_one_file(fitted, tmp_path):
    model, X, Y = fitted
    path = tmp_path / "model.skcxr"
    assert save_model(model, path, target_names=["Effusion", "Mass"], thresholds=[0.3, 0.6],
                      metrics={"macro_auc": 0.7}, data={"fingerprint": data_fingerprint(X, Y)}) == path
    info = read_description(path)
    assert info["format"] == FORMAT and info["versions"] == versions() and info["estimator"] == "OneVsRestClassifier"
    assert info["target_names"] == ["Effusion", "Mass"] and info["thresholds"] == [0.3, 0.6]
    assert info["metrics"] == {"macro_auc": 0.7} and len(info["data"]["fingerprint"]) == 64
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.model.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.thresholds, [0.3, 0.6])
    assert loaded.description == info
    assert [p.name for p in tmp_path.iterdir()] == ["model.skcxr"]  # one file, no temporary file
    assert sorted(zipfile.ZipFile(path).namelist()) == [MODEL, DESCRIPTION]


def test_versions_imports_no_heavy_package():
    code = "import sys; from skcxr.persistence import versions; versions(); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_other_versions_are_refused_before_unpickling(fitted, tmp_path, monkeypatch):
    model, _, _ = fitted
    path = tmp_path / "model.skcxr"
    save_model(model, path, target_names=["a", "b"])
    info = read_description(path)
    info["versions"]["scikit-learn"] = "0.24.2"
    _rewrite(path, info)
    monkeypatch.setattr(joblib, "load", lambda *a, **k: pytest.fail("unpickled a refused file"))
    with pytest.raises(ValueError, match=r"scikit-learn 0\.24\.2.*refit it here"):
        load_model(path)


@pytest.mark.parametrize("damage, message", [
    (lambda p: _rewrite(p, "{not json"), "skcxr.json: Expecting property name"),
    (lambda p: _rewrite(p, "[1, 2]"), "not a model description"),
    (lambda p: _rewrite(p, {"format": FORMAT, "versions": None}), "not a model description"),
    (lambda p: _rewrite(p, drop=DESCRIPTION), "no skcxr.json"),
    (lambda p: _rewrite(p, drop=MODEL), "no model.joblib"),
    (lambda p: p.write_bytes(p.read_bytes()[:-200]), "damaged"),  # truncated: the zip directory is gone
    (lambda p: p.write_bytes(p.read_bytes()[:300] + b"\0" * (p.stat().st_size - 300)), "damaged"),
])
def test_a_damaged_file_is_one_line_naming_it(fitted, tmp_path, damage, message):
    model, _, _ = fitted
    path = tmp_path / "model.skcxr"
    save_model(model, path, target_names=["a", "b"])
    damage(path)
    with pytest.raises(ValueError, match=message) as info:
        load_model(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_an_invalid_description_is_refused_before_anything_is_written(fitted, tmp_path):
    model, X, _ = fitted
    path = tmp_path / "model.skcxr"
    save_model(model, path, target_names=["a", "b"], metrics={"auc": 0.7})
    with pytest.raises(ValueError, match="NaN and infinity"):
        save_model(OneVsRestClassifier(LogisticRegression()), path, target_names=["a", "b"],
                   metrics={"auc": float("nan")})
    assert read_description(path)["metrics"] == {"auc": 0.7} and load_model(path).model.predict_proba(X).shape == (40, 2)
    assert [p.name for p in tmp_path.iterdir()] == ["model.skcxr"]


def test_a_failed_write_leaves_the_old_model_and_no_temporary_file(fitted, tmp_path, monkeypatch):
    model, _, _ = fitted
    path = tmp_path / "model.skcxr"
    save_model(model, path, target_names=["a", "b"])
    before = path.read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(joblib, "dump", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_model(model, path, target_names=["a", "b"])
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.skcxr"]


# A save in a subprocess (no torch imported) that SIGKILLs itself at a fixed point: inside the model's
# pickling, just before the rename, just after it.
_KILLED_SAVE = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    from sklearn.dummy import DummyClassifier
    from skcxr import persistence
    point, path = sys.argv[1], sys.argv[2]
    die = lambda: os.kill(os.getpid(), signal.SIGKILL)
    if point == "pickling":
        real_dump = persistence.joblib.dump
        def dump(value, f):
            f.write(b"x" * 100_000)
            die()
        persistence.joblib.dump = dump
    real_replace = os.replace
    def replace(src, dst):
        if point == "before rename":
            die()
        real_replace(src, dst)
        if point == "after rename":
            die()
    os.replace = replace
    clf = DummyClassifier(strategy="constant", constant=[1, 1]).fit([[0], [1]], [[0, 1], [1, 1]])
    persistence.save_model(clf, path, target_names=["new", "model"])
""")


@pytest.mark.parametrize("point, survivor", [("pickling", "old"), ("before rename", "old"), ("after rename", "new")])
def test_a_killed_save_leaves_one_whole_model_and_the_next_save_cleans_up(fitted, tmp_path, point, survivor):
    model, X, _ = fitted
    path = tmp_path / "model.skcxr"
    save_model(model, path, target_names=["old", "model"])
    done = subprocess.run([sys.executable, "-c", _KILLED_SAVE, point, str(path)], capture_output=True, text=True)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert load_model(path).target_names == [survivor, "model"]
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "model.skcxr"]
    assert len(leftovers) == (0 if point == "after rename" else 1)  # the killed save's temporary file
    save_model(model, path, target_names=["third", "model"])
    assert [p.name for p in tmp_path.iterdir()] == ["model.skcxr"]
    assert load_model(path).target_names == ["third", "model"]


def test_a_live_saves_temporary_file_is_left_alone(fitted, tmp_path):
    model, _, _ = fitted
    path = tmp_path / "model.skcxr"
    ours = tmp_path / f".model.skcxr.{os.getppid()}.abc.tmp"  # the parent process: alive
    ours.write_bytes(b"in progress")
    save_model(model, path, target_names=["a", "b"])
    assert ours.exists()


def test_bare_estimators_and_errors(fitted, tmp_path):
    model, _, _ = fitted
    joblib.dump(model, tmp_path / "bare.joblib")
    loaded = load_model(tmp_path / "bare.joblib")
    assert loaded.target_names is None and loaded.description is None
    joblib.dump({"format": "skcxr.model/1", "model": model}, tmp_path / "old.joblib")
    with pytest.raises(ValueError, match=r"holds a dict, not a fitted model \(a model saved by skcxr 0\.2"):
        load_model(tmp_path / "old.joblib")
    (tmp_path / "junk.joblib").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="Cannot load"):
        load_model(tmp_path / "junk.joblib")
    with pytest.raises(ValueError, match="not a model file"):
        read_description(tmp_path / "bare.joblib")
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.skcxr")
    with pytest.raises(FileNotFoundError, match="no folder"):
        save_model(model, tmp_path / "nowhere" / "m.skcxr", target_names=["a", "b"])
    with pytest.raises(IsADirectoryError, match="it is a folder"):
        save_model(model, tmp_path, target_names=["a", "b"])
    with pytest.raises(ValueError, match="thresholds"):
        save_model(model, tmp_path / "m.skcxr", target_names=["a", "b"], thresholds=[0.5])


def test_another_format_is_named(fitted, tmp_path, monkeypatch):
    model, _, _ = fitted
    path = tmp_path / "model.skcxr"
    save_model(model, path, target_names=["a", "b"])
    monkeypatch.setattr(persistence, "FORMAT", "skcxr.model/3")
    with pytest.raises(ValueError, match="format 'skcxr.model/2'; this skcxr reads 'skcxr.model/3'"):
        load_model(path)


def test_fingerprint_follows_names_sizes_and_labels(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    a.write_bytes(b"12345")
    b.write_bytes(b"123")
    Y = np.array([[1, 0], [0, 1]])
    paths = np.array([str(a), str(b)], dtype=object)
    first = data_fingerprint(paths, Y)
    assert data_fingerprint(paths, Y[::-1]) != first
    b.write_bytes(b"1234")  # another image under the same name
    assert data_fingerprint(paths, Y) != first
