"""Patient ids reach every inner validation split, with scikit-learn's metadata routing off and on."""

import numpy as np
import pytest
import sklearn
from imblearn.pipeline import Pipeline as ImbPipeline
from optuna.distributions import FloatDistribution
from optuna_integration import OptunaSearchCV
from sklearn.datasets import make_multilabel_classification
from sklearn.exceptions import FitFailedWarning
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import StandardScaler

from skcxr.datasets import make_phantoms
from skcxr.features import LBPFeatures, ResNetEmbedder
from skcxr.metrics import SCORERS
from skcxr.model_selection import MultilabelStratifiedGroupKFold, groups_params
from skcxr.neural import MultilabelNeuralNetClassifier
from skcxr.pipelines import make_hybrid_pipeline, make_logistic_regression
from conftest import SEEN, RecordingSplit  # the inner split that records patient ids

pytestmark = pytest.mark.usefixtures("one_torch_thread")



@pytest.fixture(scope="module")
def data():
    X, Y = make_multilabel_classification(160, n_features=10, n_classes=3, n_labels=2, random_state=0)
    patients = np.arange(160) // 4  # four images per patient
    return X.astype(np.float32), Y, patients


def _clf():
    return MultilabelNeuralNetClassifier(max_epochs=2, module__hidden=(8,), random_state=0,
                                         train_split=RecordingSplit(0.25))


def _assert_patients_kept_apart(n_fits, all_patients):
    assert len(SEEN) == n_fits
    for groups, train, valid in SEEN:
        assert groups is not None, "an inner split ran without patient ids"
        assert set(groups) <= set(all_patients)
        assert not set(groups[train]) & set(groups[valid])


@pytest.fixture(params=[False, True], ids=["routing-off", "routing-on"])
def routing(request):
    SEEN.clear()
    with sklearn.config_context(enable_metadata_routing=request.param):
        yield request.param


def test_bare_classifier_and_pipelines(data, routing):
    X, Y, patients = data
    for est in (_clf(), Pipeline([("scale", StandardScaler()), ("clf", _clf())]),
                ImbPipeline([("scale", StandardScaler()), ("clf", _clf())])):
        est.fit(X, Y, **groups_params(est, patients))
    _assert_patients_kept_apart(3, patients)
    if not routing:
        assert groups_params(Pipeline([("scale", StandardScaler()), ("clf", _clf())]), patients).keys() == {
            "clf__groups"}


def test_grid_search(data, routing):
    X, Y, patients = data
    pipe = Pipeline([("scale", StandardScaler()), ("clf", _clf())])
    search = GridSearchCV(pipe, {"clf__lr": [1e-3, 1e-2]}, scoring=SCORERS["macro_auc"],
                          cv=MultilabelStratifiedGroupKFold(2, shuffle=True, random_state=0))
    search.fit(X, Y, **groups_params(search, patients))
    _assert_patients_kept_apart(2 * 2 + 1, patients)  # 2 candidates x 2 folds + refit
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_cross_validate(data, routing):
    X, Y, patients = data
    pipe = Pipeline([("scale", StandardScaler()), ("clf", _clf())])
    groups = None if routing else patients  # with routing on, groups travel in params only
    result = cross_validate(pipe, X, Y, groups=groups, params=groups_params(pipe, patients),
                            cv=MultilabelStratifiedGroupKFold(3), scoring=SCORERS["macro_auc"])
    _assert_patients_kept_apart(3, patients)
    assert np.isfinite(result["test_score"]).all()


def test_optuna_search(data, routing):
    X, Y, patients = data
    if routing:
        pytest.skip("optuna-integration 5.0's OptunaSearchCV passes groups= to cross_validate, which refuses "
                    "it when routing is on (scikit-learn wants params={'groups': ...}); OptunaSearchCV turns "
                    "that ValueError into error_score for every trial")
    pipe = Pipeline([("scale", StandardScaler()), ("clf", _clf())])
    search = OptunaSearchCV(pipe, {"clf__lr": FloatDistribution(1e-3, 1e-2, log=True)}, n_trials=1,
                            cv=MultilabelStratifiedGroupKFold(2), scoring=SCORERS["macro_auc"],
                            random_state=0, verbose=0)
    search.fit(X, Y, **groups_params(search, patients))
    _assert_patients_kept_apart(2 + 1, patients)


def test_classifier_requests_groups_by_default():
    with sklearn.config_context(enable_metadata_routing=True):
        routing = _clf().get_metadata_routing()
        assert routing.consumes("fit", ["groups"]) == {"groups"}


def test_without_groups_each_image_is_its_own_group(data):
    X, Y, patients = data
    SEEN.clear()
    _clf().fit(X, Y)
    (groups, train, valid), = SEEN
    assert groups is None and len(valid) == 40 and not set(train) & set(valid)


def test_groups_of_the_wrong_length_are_refused(data):
    X, Y, patients = data
    with pytest.raises(ValueError, match="one patient id per sample"):
        _clf().fit(X, Y, groups=patients[:-1])


def test_grid_that_swaps_in_a_classifier_without_groups_needs_routing():
    data = make_phantoms(48, size=32, random_state=0)
    patients = np.arange(48) // 3
    pipe = make_hybrid_pipeline(classifier=_clf(), size=32, random_state=0)
    pipe.set_params(features__hog__pixels_per_cell=(8, 8))
    grid = [{"clf__lr": [1e-3]}, {"clf": [make_logistic_regression()]}]
    search = GridSearchCV(pipe, grid, scoring=SCORERS["macro_auc"], cv=MultilabelStratifiedGroupKFold(2),
                          refit=False)
    SEEN.clear()
    with sklearn.config_context(enable_metadata_routing=True):
        # groups reach the folds, the MLP's split and the ResNet (which requests them), never the LR
        search.fit(data.images, data.Y, groups=patients)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    _assert_patients_kept_apart(2, patients)
    # by name (routing off), the logistic regression's fit is handed groups it does not take
    with pytest.warns(FitFailedWarning, match="fits failed out of"):
        GridSearchCV(pipe, grid, scoring=SCORERS["macro_auc"], cv=MultilabelStratifiedGroupKFold(2),
                     refit=False).fit(data.images, data.Y, **groups_params(search, patients))


def test_a_union_holding_a_pipeline_needs_routing():
    # FeatureUnion hands a bare groups= to every member; a nested Pipeline only takes step__groups
    union = FeatureUnion([("lbp", LBPFeatures()), ("deep", Pipeline([("emb", ResNetEmbedder())]))])
    with pytest.raises(ValueError, match="metadata routing"):
        groups_params(Pipeline([("features", union)]), np.arange(4))
