"""Multi-label over-sampling (MLROS, MLSMOTE) and the pipeline whose patient ids follow the resampled rows."""

import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
import sklearn
from imblearn import FunctionSampler
from imblearn.over_sampling import RandomOverSampler
from imblearn.pipeline import Pipeline as ImbPipeline
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.model_selection import cross_validate
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from skcxr.metrics import SCORERS
from skcxr.model_selection import MultilabelStratifiedGroupKFold, groups_params
from skcxr.neural import MultilabelNeuralNetClassifier
from skcxr.sampling import MLROS, MLSMOTE, Pipeline, irlbl, make_pipeline, mean_ir
from conftest import SEEN, RecordingSplit  # the inner split that records patient ids

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SAMPLERS = [MLROS, MLSMOTE]


@pytest.fixture(scope="module")
def data():
    """200 samples, 4 labels at prevalence ~.6/.3/.08/.04, 2-4 images per patient."""
    rng = np.random.default_rng(0)
    n = 200
    Y = (rng.random((n, 4)) < [0.6, 0.3, 0.08, 0.04]).astype(np.int64)
    X = (rng.normal(size=(n, 6)) + Y @ rng.normal(size=(4, 6))).astype(np.float32)
    patients = np.repeat(np.arange(n), rng.integers(2, 5, n))[:n]
    return X, Y, patients


# -- imbalance measures ----------------------------------------------------------------------------


def test_irlbl_and_mean_ir():
    Y = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [1, 0, 0, 1], [1, 1, 0, 0]])
    np.testing.assert_array_equal(irlbl(Y), [1.0, 2.0, np.nan, 4.0])
    assert mean_ir(Y) == pytest.approx(7 / 3)  # the label without a positive is left out
    assert np.isnan(mean_ir(np.zeros((3, 2))))
    with pytest.raises(ValueError, match="2-D"):
        irlbl([1, 0, 1])


# -- MLROS -----------------------------------------------------------------------------------------


def test_mlros_clones_rows_of_minority_labels(data):
    X, Y, _ = data
    ros = MLROS(sampling_strategy=0.04, random_state=0)
    X_res, Y_res = ros.fit_resample(X, Y)
    idx = ros.sample_indices_
    assert len(X_res) == len(Y_res) == len(idx) == len(X) + 8  # round(0.04 * 200)
    np.testing.assert_array_equal(idx[: len(X)], np.arange(len(X)))
    np.testing.assert_array_equal(X_res, X[idx])
    np.testing.assert_array_equal(Y_res, Y[idx])
    assert set(ros.minority_labels_) == {2, 3}
    assert Y[idx[len(X):]][:, ros.minority_labels_].any(axis=1).all()  # each clone carries a minority label
    rates_before, rates_after = Y.mean(axis=0), Y_res.mean(axis=0)
    assert (rates_after[ros.minority_labels_] > rates_before[ros.minority_labels_]).all()
    assert mean_ir(Y_res) < mean_ir(Y)


def test_mlros_stops_when_minority_labels_reach_mean_ir(data):
    X, Y, _ = data
    ros = MLROS(sampling_strategy=10.0, random_state=0)  # a budget far beyond what is needed
    _, Y_res = ros.fit_resample(X, Y)
    assert len(Y_res) < len(Y) * 11
    assert (irlbl(Y_res)[ros.minority_labels_] <= ros.mean_ir_).all()
    assert mean_ir(Y_res) < ros.mean_ir_


def test_minority_strategy_adds_one_row_per_bag_member(data):
    X, Y, _ = data
    n_bag = Y[:, [2, 3]].sum()
    ros, smote = MLROS(sampling_strategy="minority"), MLSMOTE(random_state=0)
    _, Y_ros = ros.fit_resample(X, Y)
    _, Y_smote = smote.fit_resample(X, Y)
    assert len(Y_ros) == len(Y_smote) == len(Y) + n_bag
    np.testing.assert_array_equal(ros.sample_indices_, smote.sample_indices_)  # the same seeds, bag by bag
    for Y_res in (Y_ros, Y_smote):
        assert (Y_res[:, 2:].sum(axis=0) >= 2 * Y[:, 2:].sum(axis=0)).all()
        assert mean_ir(Y_res) < mean_ir(Y)


def test_nothing_to_do_without_minority_labels():
    X = np.arange(8.0).reshape(4, 2)
    Y = np.array([[1, 0], [0, 1], [1, 0], [0, 1]])  # balanced: IRLbl 1 = MeanIR
    for sampler in (MLROS(sampling_strategy=0.5), MLSMOTE(sampling_strategy=0.5)):
        X_res, Y_res = sampler.fit_resample(X, Y)
        np.testing.assert_array_equal(X_res, X)
        np.testing.assert_array_equal(Y_res, Y)
        assert sampler.minority_labels_.size == 0


def test_mlros_indexes_any_rows(data):
    _, Y, _ = data
    paths = np.array([f"img_{i}.png" for i in range(len(Y))])
    images = np.random.default_rng(0).random((len(Y), 4, 4)).astype(np.float32)
    for X in (paths, images, list(paths), scipy.sparse.csr_matrix(images.reshape(len(Y), -1))):
        ros = MLROS(random_state=0)
        X_res, _ = ros.fit_resample(X, Y)
        assert type(X_res) is type(X)
        expected = X[ros.sample_indices_] if not isinstance(X, list) else [X[i] for i in ros.sample_indices_]
        if scipy.sparse.issparse(X):
            assert (X_res != expected).nnz == 0
        else:
            np.testing.assert_array_equal(X_res, expected)
    assert not hasattr(MLROS().fit(paths, Y), "n_features_in_")
    assert MLROS().fit(images.reshape(len(Y), -1), Y).n_features_in_ == 16


# -- MLSMOTE ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("label_generation", ["ranking", "union", "intersection"])
@pytest.mark.parametrize("strategy", ["minority", 0.3])
def test_mlsmote_rows_lie_between_seed_and_a_neighbour(data, label_generation, strategy):
    X, Y, _ = data
    k = 3
    smote = MLSMOTE(sampling_strategy=strategy, k_neighbors=k, label_generation=label_generation, random_state=0)
    X_res, Y_res = smote.fit_resample(X, Y)
    n = len(X)
    np.testing.assert_array_equal(X_res[:n], X)
    np.testing.assert_array_equal(Y_res[:n], Y)
    assert len(X_res) > n
    bags = {j: np.flatnonzero(Y[:, j]) for j in smote.minority_labels_}
    knn = {j: bag[NearestNeighbors(n_neighbors=k).fit(X[bag]).kneighbors(return_distance=False)]
           for j, bag in bags.items()}
    for row, seed, ref in zip(range(n, len(X_res)), smote.sample_indices_[n:], smote.neighbor_indices_):
        # on the segment seed -> ref: x = seed + u (ref - seed), one u in [0, 1] for every feature
        step, offset = X[ref] - X[seed], X_res[row] - X[seed]
        u = float(step @ offset / (step @ step))
        assert -1e-6 <= u <= 1 + 1e-6
        np.testing.assert_allclose(offset, u * step, atol=1e-5)
        # ref is one of the seed's k neighbours within the bag of a minority label both carry, and the
        # labels follow the rule over the seed and those k neighbours
        matches = []
        for j, bag in bags.items():
            if Y[seed, j] and ref in knn[j][np.searchsorted(bag, seed)]:
                nbrs = knn[j][np.searchsorted(bag, seed)]
                votes = Y[seed] + Y[nbrs].sum(axis=0)
                rule = {"ranking": 2 * votes > k + 1, "union": votes > 0, "intersection": votes == k + 1}
                if np.array_equal(Y_res[row], rule[label_generation].astype(Y.dtype)):
                    matches.append(j)
                    assert Y_res[row][j] == 1  # the label being over-sampled is kept
                    assert set(np.flatnonzero(Y_res[row])) <= set(np.flatnonzero(Y[[seed, *nbrs]].any(axis=0)))
        assert matches, f"synthetic row {row} matches no minority bag of its seed {seed}"
    assert mean_ir(Y_res) < mean_ir(Y)
    assert (Y_res.mean(axis=0)[smote.minority_labels_] > Y.mean(axis=0)[smote.minority_labels_]).all()


def test_mlsmote_float_budget(data):
    X, Y, _ = data
    smote = MLSMOTE(sampling_strategy=0.05, random_state=0)
    X_res, Y_res = smote.fit_resample(X, Y)
    assert len(X_res) == len(Y) + 10
    assert len(smote.neighbor_indices_) == 10


# -- containers, dtypes, reproducibility -----------------------------------------------------------


@pytest.mark.parametrize("Sampler", SAMPLERS)
@pytest.mark.parametrize("y_dtype", [np.int64, np.uint8, bool, np.float32])
def test_output_dtypes_and_shapes(data, Sampler, y_dtype):
    X, Y, _ = data
    X_res, Y_res = Sampler(random_state=0).fit_resample(X, Y.astype(y_dtype))
    assert isinstance(X_res, np.ndarray) and isinstance(Y_res, np.ndarray)
    assert X_res.dtype == np.float32 and Y_res.dtype == np.dtype(y_dtype)
    assert X_res.shape[1:] == X.shape[1:] and Y_res.shape[1:] == Y.shape[1:] and len(X_res) == len(Y_res)
    assert set(np.unique(Y_res)) <= {0, 1}


def test_mlsmote_integer_X_becomes_float(data):
    X, Y, _ = data
    X_res, _ = MLSMOTE(random_state=0).fit_resample(np.round(X * 10).astype(np.int32), Y)
    assert X_res.dtype == np.float64


@pytest.mark.parametrize("Sampler", SAMPLERS)
def test_dataframes_keep_their_columns(data, Sampler):
    X, Y, _ = data
    Xf = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    Yf = pd.DataFrame(Y, columns=["Effusion", "Infiltration", "Edema", "Hernia"])
    sampler = Sampler(random_state=0)
    X_res, Y_res = sampler.fit_resample(Xf, Yf)
    assert list(X_res.columns) == list(Xf.columns) and list(Y_res.columns) == list(Yf.columns)
    assert (X_res.index == Y_res.index).all() and X_res.index.is_unique
    assert (Y_res.dtypes == Yf.dtypes).all()
    assert sampler.label_names_.tolist() == list(Yf.columns)
    assert sampler.feature_names_in_.tolist() == list(Xf.columns)


@pytest.mark.parametrize("Sampler", SAMPLERS)
def test_sparse_targets_and_list_features(data, Sampler):
    X, Y, _ = data
    X_res, Y_res = Sampler(random_state=0).fit_resample(X.tolist(), scipy.sparse.csr_matrix(Y))
    assert scipy.sparse.issparse(Y_res) and Y_res.shape[0] == len(X_res) > len(X)
    assert Y_res.dtype == Y.dtype


@pytest.mark.parametrize("Sampler", SAMPLERS)
def test_reproducible_with_random_state(data, Sampler):
    X, Y, _ = data
    a = Sampler(sampling_strategy=0.2, random_state=3).fit_resample(X, Y)
    b = Sampler(sampling_strategy=0.2, random_state=3).fit_resample(X, Y)
    c = Sampler(sampling_strategy=0.2, random_state=4).fit_resample(X, Y)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("Sampler", SAMPLERS)
def test_clone_get_params_pickle(data, Sampler):
    X, Y, _ = data
    sampler = Sampler(sampling_strategy=0.2, random_state=0)
    params = sampler.get_params()
    assert params["sampling_strategy"] == 0.2 and params["random_state"] == 0
    twin = clone(sampler).set_params(sampling_strategy="minority")
    assert twin.get_params()["sampling_strategy"] == "minority" and sampler.sampling_strategy == 0.2
    if Sampler is MLSMOTE:
        assert set(params) == {"sampling_strategy", "k_neighbors", "label_generation", "random_state"}
    X_res, _ = sampler.fit_resample(X, Y)
    again, _ = pickle.loads(pickle.dumps(sampler)).fit_resample(X, Y)
    np.testing.assert_array_equal(X_res, again)
    assert repr(Sampler()) == f"{Sampler.__name__}()"


# -- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("Sampler", SAMPLERS)
def test_clear_errors_on_bad_targets(data, Sampler):
    X, Y, _ = data
    with pytest.raises(ValueError, match="2-D 0/1 indicator matrix.*got shape"):
        Sampler().fit_resample(X, Y[:, 2])
    bad = Y.copy()
    bad[0, 0] = 2
    with pytest.raises(ValueError, match="only 0 and 1"):
        Sampler().fit_resample(X, bad)
    with pytest.raises(ValueError, match="rows but X has"):
        Sampler().fit_resample(X, Y[:-1])
    with pytest.raises(ValueError, match="label strings|label names"):
        Sampler().fit(X, np.array([["Edema"]] * len(X)))


@pytest.mark.parametrize(("Sampler", "params"), [
    (MLROS, {"sampling_strategy": 0}), (MLROS, {"sampling_strategy": "auto"}),
    (MLROS, {"random_state": "x"}), (MLSMOTE, {"k_neighbors": 0}), (MLSMOTE, {"k_neighbors": 2.5}),
    (MLSMOTE, {"label_generation": "majority"}), (MLSMOTE, {"sampling_strategy": -0.1}),
])
def test_invalid_parameters(data, Sampler, params):
    X, Y, _ = data
    name = next(iter(params))
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter of {Sampler.__name__}"):
        Sampler(**params).fit_resample(X, Y)
    with pytest.raises(InvalidParameterError):
        Sampler(**params).fit(X, Y)


def test_mlsmote_k_neighbors_larger_than_a_bag(data):
    X, Y, _ = data
    Yf = pd.DataFrame(Y, columns=["Effusion", "Infiltration", "Edema", "Hernia"])
    n_hernia = int(Y[:, 3].sum())
    with pytest.raises(ValueError, match=rf"'Hernia' \(column 3\) has {n_hernia} sample\(s\).*k_neighbors={n_hernia}"
                                         rf".*at least k_neighbors \+ 1 = {n_hernia + 1}"):
        MLSMOTE(k_neighbors=n_hernia).fit_resample(X, Yf)
    MLSMOTE(k_neighbors=n_hernia - 1).fit_resample(X, Yf)  # the largest k that works


def test_mlsmote_needs_dense_finite_features(data):
    X, Y, _ = data
    with pytest.raises(TypeError, match="dense data is required"):
        MLSMOTE().fit_resample(scipy.sparse.csr_matrix(X), Y)
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        MLSMOTE().fit_resample(X_nan, Y)


# -- pipelines -------------------------------------------------------------------------------------


class RowCounter(TransformerMixin, BaseEstimator):
    """Identity transformer that records how many rows each fit and transform saw."""

    def fit(self, X, y=None):
        self.fit_rows_ = len(X)
        self.transform_rows_ = []
        return self

    def transform(self, X):
        self.transform_rows_.append(len(X))
        return X


class Recorder(ClassifierMixin, BaseEstimator):
    """A final step that keeps the fit parameters it received and predicts the prior."""

    def fit(self, X, y, groups=None, sample_weight=None, note=None):
        self.seen_ = {"n": len(X), "groups": groups, "sample_weight": sample_weight, "note": note}
        self.prior_ = np.asarray(y).mean(axis=0)
        return self

    def predict_proba(self, X):
        return np.tile(self.prior_, (len(X), 1))


@pytest.mark.parametrize("Sampler", SAMPLERS)
@pytest.mark.parametrize("PipelineClass", [ImbPipeline, Pipeline])
def test_nothing_is_resampled_at_predict_or_transform(data, Sampler, PipelineClass):
    X, Y, _ = data
    pipe = PipelineClass([("scale", StandardScaler()), ("sample", Sampler(random_state=0)),
                          ("count", RowCounter()), ("clf", Recorder())]).fit(X, Y)
    n_res = len(pipe["sample"].sample_indices_)
    assert n_res > len(X) and pipe["count"].fit_rows_ == pipe["clf"].seen_["n"] == n_res
    assert pipe.predict_proba(X[:7]).shape == (7, Y.shape[1])
    assert pipe[:-1].transform(X[:5]).shape == (5, X.shape[1])
    assert pipe["count"].transform_rows_[-2:] == [7, 5]


def test_per_sample_parameters_follow_the_rows(data):
    X, Y, patients = data
    weights = np.linspace(0.5, 1.5, len(X))
    pipe = Pipeline([("ros", MLROS(random_state=0)), ("smote", MLSMOTE(random_state=0)), ("clf", Recorder())])
    pipe.fit(X, Y, clf__groups=patients, clf__sample_weight=weights, clf__note="kept")
    index = pipe["ros"].sample_indices_[pipe["smote"].sample_indices_]  # two samplers compose
    seen = pipe["clf"].seen_
    assert seen["n"] == len(index)
    np.testing.assert_array_equal(seen["groups"], patients[index])
    np.testing.assert_array_equal(seen["sample_weight"], weights[index])
    assert seen["note"] == "kept"
    # lists and Series are indexed too; groups before any sampler are untouched
    pipe = Pipeline([("scale", StandardScaler()), ("ros", MLROS(random_state=0)), ("clf", Recorder())])
    pipe.fit(X, Y, clf__groups=list(patients))
    assert pipe["clf"].seen_["groups"] == list(patients[pipe["ros"].sample_indices_])
    pipe.fit(X, Y, clf__groups=pd.Series(patients))
    np.testing.assert_array_equal(pipe["clf"].seen_["groups"], patients[pipe["ros"].sample_indices_])


def test_imblearn_samplers_with_sample_indices_work_too(data):
    X, Y, patients = data
    y = Y[:, 2]  # a 1-D target for imbalanced-learn's own sampler
    pipe = Pipeline([("ros", RandomOverSampler(random_state=0)), ("clf", Recorder())])
    pipe.fit(X, y, clf__groups=patients)
    np.testing.assert_array_equal(pipe["clf"].seen_["groups"], patients[pipe["ros"].sample_indices_])


def test_sampler_without_sample_indices_refuses_per_sample_parameters(data):
    X, Y, patients = data
    doubled = FunctionSampler(func=lambda X, y: (np.vstack([X, X]), np.vstack([y, y])), validate=False)
    pipe = Pipeline([("double", doubled), ("clf", Recorder())])
    with pytest.raises(ValueError, match=r"'clf' receives per-sample fit parameters \['groups'\].*'double' "
                                         r"\(FunctionSampler\) records no sample_indices_"):
        pipe.fit(X, Y, clf__groups=patients)
    pipe.fit(X, Y, clf__note="not per sample")  # other parameters pass as they are
    assert pipe["clf"].seen_["n"] == 2 * len(X)


def test_cached_pipeline(data, tmp_path):
    X, Y, patients = data
    pipe = Pipeline([("scale", StandardScaler()), ("ros", MLROS(random_state=0)), ("clf", Recorder())],
                    memory=str(tmp_path))
    for _ in range(2):  # the second fit loads the scaler and the sampler from the cache
        pipe.fit(X, Y, clf__groups=patients)
        np.testing.assert_array_equal(pipe["clf"].seen_["groups"], patients[pipe["ros"].sample_indices_])


def test_make_pipeline():
    pipe = make_pipeline(StandardScaler(), MLSMOTE(), Recorder())
    assert isinstance(pipe, Pipeline)
    assert [name for name, _ in pipe.steps] == ["standardscaler", "mlsmote", "recorder"]
    assert isinstance(clone(pipe), Pipeline)


# -- patient ids reach the MLP's inner validation split, resampled -----------------------------------



def _mlp():
    return MultilabelNeuralNetClassifier(max_epochs=2, module__hidden=(8,), random_state=0,
                                         train_split=RecordingSplit(0.25))


@pytest.fixture(params=[False, True], ids=["routing-off", "routing-on"])
def routing(request):
    SEEN.clear()
    with sklearn.config_context(enable_metadata_routing=request.param):
        yield request.param


@pytest.mark.parametrize("sampler", [MLROS(sampling_strategy=0.3, random_state=0), MLSMOTE(random_state=0)],
                         ids=["MLROS", "MLSMOTE"])
def test_mlp_validation_split_keeps_patients_apart(data, routing, sampler):
    X, Y, patients = data
    pipe = Pipeline([("scale", StandardScaler()), ("sample", sampler), ("mlp", _mlp())])
    params = groups_params(pipe, patients)
    assert params.keys() == ({"groups"} if routing else {"mlp__groups"})
    pipe.fit(X, Y, **params)
    (groups, train, valid), = SEEN
    index = pipe["sample"].sample_indices_
    assert len(groups) == len(index) > len(X)
    np.testing.assert_array_equal(groups, patients[index])  # clones and synthetic rows: their seed's patient
    assert not set(groups[train]) & set(groups[valid])
    assert not set(index[train]) & set(index[valid])  # no copy of a training image is validated on
    assert pipe.predict_proba(X[:4]).shape == (4, Y.shape[1])


def test_imblearn_pipeline_cannot_pass_patient_ids_past_a_sampler(data, routing):
    X, Y, patients = data
    pipe = ImbPipeline([("sample", MLROS(random_state=0)), ("mlp", _mlp())])
    with pytest.raises(ValueError, match="one patient id per sample"):
        pipe.fit(X, Y, **groups_params(pipe, patients))


def test_cross_validate_resampled_pipeline(data):
    X, Y, patients = data
    SEEN.clear()
    pipe = Pipeline([("scale", StandardScaler()), ("sample", MLROS(random_state=0)), ("mlp", _mlp())])
    result = cross_validate(pipe, X, Y, groups=patients, params=groups_params(pipe, patients),
                            cv=MultilabelStratifiedGroupKFold(2), scoring=SCORERS["macro_auc"])
    assert len(SEEN) == 2 and np.isfinite(result["test_score"]).all()
    for groups, train, valid in SEEN:
        assert not set(groups[train]) & set(groups[valid])
