"""The ready-made pipelines end to end: phantoms and real NIH paths, swapping, grids, pickling."""

import collections
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.multioutput import MultiOutputClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from skcxr.cache import ContentMemory
from skcxr.datasets import load_chestxray14, make_phantoms
from skcxr.features import ResNetEmbedder
from skcxr.metrics import SCORERS, multilabel_report
from skcxr.model_selection import MultilabelStratifiedGroupKFold
from skcxr.neural import MLP, DeeperMLP, MultilabelNeuralNetClassifier
from skcxr.pipelines import (BACKBONE, HYBRID_C, POOLING, MultilabelPipeline, make_attention_pipeline,
                             make_classical_pipeline, make_hybrid_pipeline, make_logistic_regression)
from skcxr.preprocessing import CXRPreprocessor


@pytest.fixture(scope="module")
def phantoms():
    train = make_phantoms(160, size=64, random_state=0)
    test = make_phantoms(80, size=64, random_state=1)
    return train, test


def test_classical_pipeline_learns_phantoms(phantoms):
    train, test = phantoms
    # 160 phantoms at 64 px (~1,700 features) want less regularisation than the default C tuned on real
    # radiographs at 224 px (DEFAULT_C = 1e-4 gives 0.645 here, C=0.01 0.703)
    pipe = make_classical_pipeline(make_logistic_regression(0.01), size=64).fit(train.images, train.Y)
    report = multilabel_report(test.Y, pipe.predict_proba(test.images), target_names=test.target_names)
    assert report.macro_auc > 0.65
    assert report.per_class.loc["Cardiomegaly", "AUC"] > 0.9


def test_classifier_swaps_in_one_line(phantoms):
    train, test = phantoms
    pipe = make_classical_pipeline(size=64)
    pipe.set_params(clf=MultiOutputClassifier(LogisticRegression(C=0.01, max_iter=500)))
    proba = pipe.fit(train.images, train.Y).predict_proba(test.images)
    assert SCORERS["macro_auc"](pipe, test.images, test.Y) == pytest.approx(
        multilabel_report(test.Y, proba).macro_auc)


def test_hybrid_pipeline_fits_and_round_trips(phantoms, tmp_path):
    train, test = phantoms
    pipe = make_hybrid_pipeline(size=64, random_state=0)
    params = pipe.get_params()  # the defaults chosen by nested CV (studies/pretrained_defaults.py)
    assert params["clf__estimator__C"] == HYBRID_C
    assert (params["features__cnn__backbone"], params["features__cnn__weights"]) == (BACKBONE, "imagenet")
    assert (params["features__cnn__pooling"], params["features__cnn__fine_tune"]) == (POOLING, None)
    pipe.fit(train.images, train.Y)
    proba = pipe.predict_proba(test.images)
    assert proba.shape == (len(test.images), train.Y.shape[1])
    assert multilabel_report(test.Y, proba).macro_auc > 0.6
    restored = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_allclose(restored.predict_proba(test.images), proba, atol=1e-6)
    n_cnn = dict(pipe.named_steps["features"].transformer_list)["cnn"].n_features_out_
    assert n_cnn == {"avg": 1, "avgmax": 2}[POOLING] * 1280
    assert pipe.named_steps["features"].get_feature_names_out()[-1] == f"cnn__cnn_{n_cnn - 1}"


FITS = collections.Counter()  # module level: survives joblib pickling the estimators


def _counting(cls, monkeypatch):
    """Count how often ``cls`` is fitted: calls of fit or fit_transform, not the one inside the other."""
    depth = [0]

    def wrap(method):
        def counted(self, *args, **kwargs):
            FITS[cls.__name__] += depth[0] == 0
            depth[0] += 1
            try:
                return method(self, *args, **kwargs)
            finally:
                depth[0] -= 1

        return counted

    for name in ("fit", "fit_transform"):
        monkeypatch.setattr(cls, name, wrap(getattr(cls, name)))


def test_grid_over_dropout_and_classifier_reuses_cached_features(phantoms, tmp_path, monkeypatch):
    train, _ = phantoms
    FITS.clear()
    for cls in (CXRPreprocessor, ResNetEmbedder):
        _counting(cls, monkeypatch)
    mlp = MultilabelNeuralNetClassifier(MLP, max_epochs=5, random_state=0)
    pipe = make_hybrid_pipeline(size=64, random_state=0, memory=str(tmp_path), classifier=mlp)
    grid = [{"clf__module": [MLP, DeeperMLP], "clf__module__dropout": [0.1, 0.5]},
            {"clf": [make_logistic_regression()]}]
    search = GridSearchCV(pipe, grid, scoring=SCORERS["macro_auc"],
                          cv=MultilabelStratifiedGroupKFold(2, shuffle=True, random_state=0))
    search.fit(train.images, train.Y, groups=train.patient_ids)
    scores = search.cv_results_["mean_test_score"]
    assert len(scores) == 5 and np.isfinite(scores).all()
    # 5 candidates x 2 folds + the refit = 11 pipeline fits, but only 3 training sets (2 folds + all):
    # each step is fitted once per training set, the other 8 fits are served from the cache.
    assert FITS == {"CXRPreprocessor": 3, "CNNEmbedder": 3}, FITS


def test_memory_is_content_keyed_and_one_layer(tmp_path):
    hybrid = make_hybrid_pipeline(size=64, memory=str(tmp_path), random_state=0)
    assert isinstance(hybrid.memory, ContentMemory) and hybrid.memory.location == str(tmp_path)
    assert hybrid.named_steps["features"].transformer_list[-1][1].memory is None  # embeddings stored once
    classical = make_classical_pipeline(size=64, memory=str(tmp_path))
    assert isinstance(classical.memory, ContentMemory)
    assert make_classical_pipeline(size=64).memory is None and make_hybrid_pipeline(size=64).memory is None


def test_hybrid_pipeline_on_real_paths(nih_root):
    data = load_chestxray14(nih_root)
    paths, Y = data.paths[:24], data.Y[:24]
    cnn = ResNetEmbedder(image_size=32, random_state=0)
    pipe = make_hybrid_pipeline(cnn=cnn, classifier=make_logistic_regression(), size=32)
    proba = pipe.fit(paths, Y).predict_proba(paths)
    assert proba.shape == (24, 14) and np.isfinite(proba).all()


def test_clone_keeps_structure():
    pipe = make_hybrid_pipeline(size=64, texture=False)
    cloned = clone(pipe)
    assert [name for name, _ in cloned.named_steps["features"].transformer_list] == ["cnn"]
    assert cloned.get_params()["features__cnn__image_size"] == 64


# --- the target contract: every ready-made pipeline checks Y itself, whatever it ends in --------------

NIH_STRINGS = np.array(["Cardiomegaly|Effusion", "No Finding", "Effusion", "No Finding"])
BUILDERS = {
    "classical": lambda: make_classical_pipeline(size=32),
    "hybrid": lambda: make_hybrid_pipeline(size=32),
    "attention-final": lambda: make_attention_pipeline(size=32),
    "attention-maps": lambda: make_attention_pipeline("maps", size=32),
}


@pytest.mark.parametrize("clf", [None, KNeighborsClassifier(1)], ids=["default", "accepts-strings"])
@pytest.mark.parametrize("build", BUILDERS.values(), ids=BUILDERS.keys())
def test_every_pipeline_refuses_label_strings_before_reading_an_image(build, clf):
    pipe = build() if clf is None else build().set_params(clf=clf)
    assert isinstance(pipe, MultilabelPipeline)
    absent = [f"/no/such/folder/{i}.png" for i in range(4)]  # read first, these would raise FileNotFoundError
    for fitted in (pipe, clone(pipe)):
        with pytest.raises(ValueError, match=r"^Y must be a 2-D 0/1 indicator matrix \(n_samples, n_labels\), "
                                             r"got label strings such as 'Cardiomegaly\|Effusion'.*findings_to_Y"):
            fitted.fit(absent, NIH_STRINGS)
    with pytest.raises(ValueError, match="Y has 3 rows but X has 4 samples"):
        pipe.fit(absent, np.eye(3, dtype=np.uint8))


def test_label_strings_no_longer_fit_a_multiclass_model():
    images = make_phantoms(4, size=32, random_state=0).images
    pipe = make_classical_pipeline(size=32)
    with pytest.raises(ValueError, match="label strings"):  # before: a 3-class model over the strings
        pipe.fit(images, NIH_STRINGS)
    with pytest.raises(ValueError, match=r"shape \(4,\).*1-D target"):
        pipe.fit(images, np.array([0, 1, 1, 0]))
    assert pipe[:2].fit_transform(images).shape[0] == 4  # no target: the label-free prefix fits as before
    assert type(pipe[:2]) is MultilabelPipeline
