"""Saved models: atomic writes, the JSON sidecar, refusal of other versions, replaced files."""

import json
import os

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier

from skcxr import persistence
from skcxr.persistence import FORMAT, data_fingerprint, load_model, save_model, versions


@pytest.fixture
def fitted():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))
    Y = (X[:, :2] > 0).astype(int)
    return OneVsRestClassifier(LogisticRegression()).fit(X, Y), X, Y


def test_round_trip_with_sidecar(fitted, tmp_path):
    model, X, Y = fitted
    path = tmp_path / "model.joblib"
    sidecar = save_model(model, path, target_names=["Effusion", "Mass"], thresholds=[0.3, 0.6],
                         metrics={"macro_auc": 0.7}, data={"fingerprint": data_fingerprint(X, Y)})
    assert sidecar == tmp_path / "model.joblib.json"
    info = json.loads(sidecar.read_text())
    assert info["format"] == FORMAT and info["versions"] == versions()
    assert info["target_names"] == ["Effusion", "Mass"] and info["thresholds"] == [0.3, 0.6]
    assert info["metrics"] == {"macro_auc": 0.7} and len(info["data"]["fingerprint"]) == 64
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.model.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.thresholds, [0.3, 0.6])
    assert loaded.sidecar["sha256"] == info["sha256"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.joblib", "model.joblib.json"]  # no temp files


def test_other_versions_are_refused_before_unpickling(fitted, tmp_path, monkeypatch):
    model, _, _ = fitted
    path = tmp_path / "model.joblib"
    save_model(model, path, target_names=["a", "b"])
    info = json.loads((tmp_path / "model.joblib.json").read_text())
    info["versions"]["scikit-learn"] = "0.24.2"
    (tmp_path / "model.joblib.json").write_text(json.dumps(info))
    monkeypatch.setattr(joblib, "load", lambda *a, **k: pytest.fail("unpickled a refused file"))
    with pytest.raises(ValueError, match=r"scikit-learn 0\.24\.2.*refit it here"):
        load_model(path)


def test_the_file_itself_records_its_versions(fitted, tmp_path, monkeypatch):
    model, _, _ = fitted
    path = tmp_path / "model.joblib"
    save_model(model, path, target_names=["a", "b"])
    os.remove(tmp_path / "model.joblib.json")  # a model copied without its sidecar
    here = versions()
    monkeypatch.setattr(persistence, "versions", lambda: {**here, "skcxr": "9.0.0"})
    with pytest.raises(ValueError, match="skcxr"):
        load_model(path)


def test_a_replaced_model_file_does_not_match_its_sidecar(fitted, tmp_path):
    model, _, _ = fitted
    path = tmp_path / "model.joblib"
    save_model(model, path, target_names=["a", "b"])
    joblib.dump({"format": FORMAT, "model": model, "target_names": ["x", "y"], "thresholds": None,
                 "versions": versions()}, path)
    with pytest.raises(ValueError, match="checksum"):
        load_model(path)


def test_a_failed_write_leaves_the_old_model_and_no_temporary_file(fitted, tmp_path, monkeypatch):
    model, _, _ = fitted
    path = tmp_path / "model.joblib"
    save_model(model, path, target_names=["a", "b"])
    before = path.read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(joblib, "dump", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_model(model, path, target_names=["a", "b"])
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.joblib", "model.joblib.json"]


def test_bare_estimators_and_errors(fitted, tmp_path):
    model, _, _ = fitted
    joblib.dump(model, tmp_path / "bare.joblib")
    loaded = load_model(tmp_path / "bare.joblib")
    assert loaded.target_names is None and loaded.sidecar is None
    joblib.dump([1, 2], tmp_path / "list.joblib")
    with pytest.raises(ValueError, match="not a fitted model"):
        load_model(tmp_path / "list.joblib")
    (tmp_path / "junk.joblib").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="Cannot load"):
        load_model(tmp_path / "junk.joblib")
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.joblib")
    with pytest.raises(FileNotFoundError, match="no folder"):
        save_model(model, tmp_path / "nowhere" / "m.joblib", target_names=["a", "b"])
    with pytest.raises(ValueError, match="thresholds"):
        save_model(model, tmp_path / "m.joblib", target_names=["a", "b"], thresholds=[0.5])


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
