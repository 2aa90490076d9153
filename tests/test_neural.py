"""MultilabelNeuralNetClassifier and MLP/DeeperMLP (the inner split: test_neural_split.py)."""

import copy
import os
import pickle
import signal
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_multilabel_classification
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.utils.estimator_checks import parametrize_with_checks
from skorch.callbacks import Callback
from skorch.dataset import Dataset
from skorch.helper import predefined_split

from skcxr._torch import resolve_device
from skcxr.metrics import get_scorer, tune_thresholds
from skcxr.nn import MAX_POS_WEIGHT
from skcxr.neural import MLP, DeeperMLP, MultilabelNeuralNetClassifier

N_LABELS = 4


# tiny images and nets gain nothing from a second thread, which only adds contention
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data():
    X, Y = make_multilabel_classification(
        300, n_features=20, n_classes=N_LABELS, n_labels=2, random_state=0
    )
    return X, Y  # X float64, Y int64


def small(**params):
    defaults = dict(max_epochs=8, random_state=0, module__hidden=(32,))
    defaults.update(params)
    return MultilabelNeuralNetClassifier(**defaults)


@pytest.fixture(scope="module")
def fitted(data):
    X, Y = data
    return small().fit(X[:200], Y[:200])


class RecordProcess(Callback):
    """Notes the process and torch's thread count the fit ran in."""

    def on_train_begin(self, net, **kwargs):
        self.pid_ = os.getpid()
        self.threads_ = torch.get_num_threads()


def test_learns_multilabel_problem(data):
    X, Y = data
    clf = MultilabelNeuralNetClassifier(max_epochs=25, lr=3e-3, random_state=0, module__hidden=(64,))
    clf.fit(X[:200], Y[:200])
    proba = clf.predict_proba(X[200:])
    assert proba.shape == (100, N_LABELS) and proba.dtype == np.float32
    assert ((proba >= 0) & (proba <= 1)).all()
    assert roc_auc_score(Y[200:], proba, average="macro") > 0.75
    # the training loss went down
    train_loss = clf.history[:, "train_loss"]
    assert train_loss[-1] < 0.8 * train_loss[0]


def test_modules_shapes_and_params():
    x = torch.zeros(6, 20)
    mlp = MLP(20, 3, hidden=(16, 8), dropout=0.1)
    assert mlp(x).shape == (6, 3)
    assert [m.out_features for m in mlp.modules() if isinstance(m, torch.nn.Linear)] == [16, 8, 3]
    deeper = DeeperMLP(20, 3)
    assert [m.out_features for m in deeper.modules() if isinstance(m, torch.nn.Linear)] == [1024, 512, 256, 3]
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in deeper.modules()) == 3
    assert MLP(20, 3, hidden=()).layers[0].in_features == 20  # linear model
    with pytest.raises(ValueError, match="dropout"):
        MLP(20, 3, dropout=1.0)
    with pytest.raises(ValueError, match="hidden"):
        MLP(20, 3, hidden=(0,))


def test_input_size_inferred_and_module_params(data, fitted):
    X, Y = data
    assert fitted.n_features_in_ == 20
    first = fitted.module_.layers[0]
    assert first.in_features == 20 and fitted.module_.layers[-1].out_features == N_LABELS
    # other widths: the same estimator refits on 7 features and 3 labels
    clf = small(max_epochs=2).fit(X[:100, :7], Y[:100, :3])
    assert clf.module_.layers[0].in_features == 7 and clf.module_.layers[-1].out_features == 3
    # set_params on a fitted net rebuilds the module with the new dropout
    clf.set_params(module__dropout=0.2)
    assert clf.get_params()["module__dropout"] == 0.2
    assert [m.p for m in clf.module_.modules() if isinstance(m, torch.nn.Dropout)] == [0.2]
    assert clf.module_.layers[0].in_features == 7


def test_thresholds(data, fitted):
    X, Y = data
    fitted = copy.deepcopy(fitted)
    proba = fitted.predict_proba(X)
    assert np.array_equal(fitted.predict(X), (proba >= 0.5))
    fitted.set_params(threshold=0.3)
    assert np.array_equal(fitted.predict(X), proba >= 0.3)
    per_class = np.array([0.0, 0.5, 0.7, 1.01])
    fitted.set_params(threshold=per_class)
    pred = fitted.predict(X)
    assert pred.dtype == Y.dtype and pred.shape == (len(X), N_LABELS)  # predict keeps Y's dtype
    assert pred[:, 0].all() and not pred[:, 3].any()
    assert np.array_equal(pred, proba >= per_class)

    fitted.set_params(threshold="tuned")
    tuned = fitted.tuned_thresholds_
    assert tuned.shape == (N_LABELS,) and np.isfinite(tuned).all()
    assert np.array_equal(fitted.predict(X), proba >= tuned)

    for bad in ([0.5, 0.5], "best", np.nan):
        fitted.set_params(threshold=bad)
        with pytest.raises(ValueError, match="threshold"):
            fitted.predict(X)


def test_tuned_thresholds_come_from_the_validation_split(data):
    X, Y = data
    valid = Dataset(X[200:].astype(np.float32), Y[200:].astype(np.float32))
    clf = small(max_epochs=5, train_split=predefined_split(valid), threshold="tuned")
    clf.fit(X[:200], Y[:200])
    expected = tune_thresholds(Y[200:], clf.predict_proba(X[200:]))
    np.testing.assert_allclose(clf.tuned_thresholds_, expected)
    # without a validation split there is nothing to tune on
    with pytest.raises(ValueError, match="tuned"):
        small(train_split=None, threshold="tuned").fit(X[:50], Y[:50])
    no_split = small(max_epochs=2, train_split=None).fit(X[:50], Y[:50])
    assert no_split.tuned_thresholds_ is None
    assert len(no_split.history) == 2  # no early stopping without validation loss


def test_pos_weight(data):
    X, Y = data
    X, Y = X[:200], Y[:200].copy()
    Y[:, 2] = 0  # no positive
    Y[:, 3] = 0
    Y[0, 3] = 1  # 1 positive, 199 negatives: clipped
    with pytest.warns(UserWarning, match=r"\[2\].*pos_weight is 1"):
        clf = small(max_epochs=1).fit(X, Y)
    n_pos = Y[:, :2].sum(axis=0)
    expected = np.r_[(200 - n_pos) / n_pos, 1.0, MAX_POS_WEIGHT]
    np.testing.assert_allclose(clf.pos_weight_, expected, rtol=1e-6)
    np.testing.assert_allclose(clf.criterion_.pos_weight.cpu().numpy(), expected, rtol=1e-6)

    given = np.array([1.0, 2.0, 3.0, 4.0])
    clf = small(max_epochs=1, pos_weight=given).fit(X, Y)
    np.testing.assert_allclose(clf.criterion_.pos_weight.cpu().numpy(), given)
    clf = small(max_epochs=1, pos_weight=None).fit(X, Y)
    assert clf.pos_weight_ is None and clf.criterion_.pos_weight is None
    for bad in ([1.0, 2.0], [1.0, 1.0, 1.0, -1.0], "auto"):
        with pytest.raises(ValueError, match="pos_weight"):
            small(max_epochs=1, pos_weight=bad).fit(X, Y)


def test_early_stopping_restores_best_weights(data):
    X, Y = data
    rng = np.random.default_rng(0)
    X_train = rng.normal(size=(60, 20)).astype(np.float32)  # pure noise: the net can only overfit
    Y_train = (rng.random((60, N_LABELS)) < 0.4).astype(np.float32)
    X_valid, Y_valid = X[200:].astype(np.float32), Y[200:].astype(np.float32)
    patience = 3
    clf = MultilabelNeuralNetClassifier(
        train_split=predefined_split(Dataset(X_valid, Y_valid)),
        patience=patience,
        max_epochs=100,
        lr=1e-2,
        pos_weight=None,
        module__hidden=(256,),
        module__dropout=0.0,
        random_state=0,
    ).fit(X_train, Y_train)

    valid_loss = np.array(clf.history[:, "valid_loss"])
    best = int(np.argmin(valid_loss))
    assert len(valid_loss) < 100
    assert len(valid_loss) == best + 1 + patience
    assert valid_loss[-1] > valid_loss[best]
    # the weights in the net are those of the best epoch, not the last
    logits = clf.forward(X_valid)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.from_numpy(Y_valid))
    assert loss.item() == pytest.approx(valid_loss[best], rel=1e-4)


@pytest.mark.parametrize("verbose, shown", [(0, False), (1, False), (2, True)])
def test_early_stopping_lines_only_at_verbose_2(data, capsys, verbose, shown):
    X, Y = data
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(80, X.shape[1])).astype(np.float32)  # the net can only overfit: it stops early
    MultilabelNeuralNetClassifier(patience=2, max_epochs=50, lr=1e-2, module__hidden=(64,), verbose=verbose,
                                  random_state=0).fit(noise, Y[:80])
    out = capsys.readouterr().out
    assert ("Stopping since valid_loss" in out) is shown and ("Restoring best model" in out) is shown


def test_lr_scheduler(data):
    X, Y = data
    clf = small(max_epochs=4, patience=None, lr_scheduler="cosine").fit(X[:100], Y[:100])
    lrs = clf.history[:, "event_lr"]
    assert lrs[0] == pytest.approx(1e-3) and all(a > b for a, b in zip(lrs, lrs[1:]))
    assert small(max_epochs=2, lr_scheduler="plateau").fit(X[:100], Y[:100]).history[-1, "event_lr"] > 0
    with pytest.raises(ValueError, match="lr_scheduler"):
        small(lr_scheduler="step").fit(X[:100], Y[:100])
    with pytest.raises(ValueError, match="train_split"):
        small(lr_scheduler="plateau", train_split=None).fit(X[:100], Y[:100])
    with pytest.raises(ValueError, match="patience"):
        small(patience=0).fit(X[:100], Y[:100])


def test_reproducible_and_leaves_torch_rng_alone(data, fitted):
    X, Y = data
    state = torch.get_rng_state()
    again = small().fit(X[:200], Y[:200])
    assert torch.equal(torch.get_rng_state(), state)
    np.testing.assert_array_equal(again.predict_proba(X), fitted.predict_proba(X))
    other = small(random_state=1).fit(X[:200], Y[:200])
    assert not np.allclose(other.predict_proba(X), fitted.predict_proba(X))


def test_classes_and_pandas(data, fitted):
    X, Y = data
    assert np.array_equal(fitted.classes_, np.arange(N_LABELS))
    names = ["Atelectasis", "Effusion", "Mass", "Nodule"]
    X_df = pd.DataFrame(X[:200], columns=[f"f{i}" for i in range(20)])
    Y_df = pd.DataFrame(Y[:200], columns=names)
    clf = small(max_epochs=2).fit(X_df, Y_df)
    assert list(clf.classes_) == names
    assert list(clf.feature_names_in_) == list(X_df.columns)
    pred = clf.predict(X_df)
    assert isinstance(pred, np.ndarray) and pred.shape == (200, N_LABELS)
    # float64, float32 and DataFrame inputs give the same probabilities
    with pytest.warns(UserWarning, match="feature names"):
        proba_array = clf.predict_proba(X[:200].astype(np.float32))
    np.testing.assert_array_equal(clf.predict_proba(X_df), proba_array)


def test_bad_inputs(data, fitted):
    X, Y = data
    with pytest.raises(ValueError, match="2-D"):
        small().fit(X[:50], Y[:50, 0])
    Y_bad = Y[:50].copy()
    Y_bad[3, 1] = 2
    with pytest.raises(ValueError, match="only 0 and 1"):
        small().fit(X[:50], Y_bad)
    with pytest.raises(ValueError, match="rows"):
        small().fit(X[:50], Y[:40])
    X_nan = X[:50].copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        small().fit(X_nan, Y[:50])
    with pytest.raises(ValueError, match="features"):
        fitted.predict_proba(X[:5, :10])
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        small().predict(X)


def test_clone_params_and_device(fitted):
    params = fitted.get_params()
    assert params["device"] == "auto" and fitted.device == resolve_device("auto")
    assert params["module__hidden"] == (32,) and params["random_state"] == 0
    twin = clone(fitted)
    assert not hasattr(twin, "module_") and not hasattr(twin, "classes_")
    for key in ("lr", "max_epochs", "patience", "pos_weight", "threshold", "module", "module__hidden"):
        assert twin.get_params()[key] == params[key]
    twin.set_params(threshold=0.2, lr=0.01, module__dropout=0.3)
    assert twin.threshold == 0.2 and twin.get_params()["module__dropout"] == 0.3
    assert fitted.get_params()["threshold"] == 0.5
    on_cpu = clone(fitted).set_params(device="cpu", max_epochs=1)
    assert on_cpu.get_params()["device"] == "cpu" and on_cpu.device == "cpu"
    X = np.random.default_rng(0).normal(size=(40, 20))
    assert on_cpu.fit(X, np.eye(N_LABELS)[np.arange(40) % N_LABELS]).predict(X).shape == (40, N_LABELS)


def test_pickle_and_joblib_round_trip(data, fitted, tmp_path):
    X, _ = data
    proba = fitted.predict_proba(X)
    loaded = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(loaded.predict_proba(X), proba)
    assert loaded.get_params()["device"] == "auto"
    np.testing.assert_array_equal(loaded.tuned_thresholds_, fitted.tuned_thresholds_)
    joblib.dump(fitted, tmp_path / "clf.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "clf.joblib").predict_proba(X), proba)


def test_cross_validate_runs_in_two_processes(data):
    X, Y = data
    clf = small(max_epochs=4, callbacks=[("process", RecordProcess())])
    result = cross_validate(
        clf, X[:200], Y[:200], cv=KFold(4), scoring=get_scorer("macro_auc"), n_jobs=2, return_estimator=True
    )
    assert np.isfinite(result["test_score"]).all() and (result["test_score"] > 0.5).mean() >= 0.5
    records = {(dict(est.callbacks_)["process"].pid_, dict(est.callbacks_)["process"].threads_)
               for est in result["estimator"]}
    pids = {pid for pid, _ in records}
    # fits ran in worker processes (loky may replace an idle worker, so 2 or more of them)
    assert len(pids) >= 2 and os.getpid() not in pids
    # joblib's workers limit torch's threads, so 2 workers do not oversubscribe the cores
    assert all(threads <= max(1, joblib.cpu_count() // 2) for _, threads in records)


def test_grid_search_over_dropout_and_module(data):
    X, Y = data
    grid = GridSearchCV(
        small(max_epochs=3),
        {"module": [MLP, DeeperMLP], "module__dropout": [0.0, 0.5]},
        cv=KFold(2),
        scoring=get_scorer("macro_auc"),
        n_jobs=2,
    ).fit(X[:200], Y[:200])
    scores = grid.cv_results_["mean_test_score"]
    assert scores.shape == (4,) and np.isfinite(scores).all()
    assert grid.best_estimator_.predict_proba(X[200:]).shape == (100, N_LABELS)
    assert isinstance(grid.best_estimator_.module_, grid.best_params_["module"])


def test_sklearn_scorer_with_predict_proba(data, fitted):
    # sklearn's own make_scorer path needs classes_ and passes the (n, L) matrix through
    from sklearn.metrics import make_scorer

    X, Y = data
    scorer = make_scorer(roc_auc_score, average="macro", response_method="predict_proba")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        score = scorer(fitted, X[200:], Y[200:])
    assert score == pytest.approx(roc_auc_score(Y[200:], fitted.predict_proba(X[200:]), average="macro"))


def test_partial_fit_continues_training(data):
    X, Y = data
    clf = small(max_epochs=2, patience=None).partial_fit(X[:100], Y[:100])  # fresh net: initialises
    assert len(clf.history) == 2 and clf.n_features_in_ == 20
    weights = clf.module_.layers[0].weight.detach().clone()
    clf.partial_fit(X[:100], Y[:100])
    assert len(clf.history) == 4 and not torch.equal(weights, clf.module_.layers[0].weight)
    with pytest.raises(ValueError, match="labels"):
        clf.partial_fit(X[:100], Y[:100, :2])


class CtrlC(Callback):
    """Sends this process a SIGINT (what Ctrl-C does) at the end of epoch ``at``."""

    def __init__(self, at=2):
        self.at = at

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.at:
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_during_fit_raises_while_early_stopping_does_not(data, ctrl_c_works):
    X, Y = data
    with pytest.raises(KeyboardInterrupt):
        small(max_epochs=50, callbacks=[("ctrl_c", CtrlC(2))]).fit(X[:100], Y[:100])
    with pytest.raises(KeyboardInterrupt):
        small(max_epochs=50, callbacks=[("ctrl_c", CtrlC(2))]).partial_fit(X[:100], Y[:100])
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    # EarlyStopping stops skorch with a KeyboardInterrupt of its own: that is no Ctrl-C
    stopped = small(max_epochs=200, patience=1, lr=0.1).fit(X[:100], Y[:100])
    assert len(stopped.history) < 200


class TupleMLP(MLP):
    """An MLP that returns (logits, features), as attention models do."""

    def forward(self, X):
        return self.layers(X), X


def test_tuple_outputs_and_predict_nonlinearity(data):
    X, Y = data
    clf = small(module=TupleMLP, threshold="tuned").fit(X[:200], Y[:200])
    proba = clf.predict_proba(X[200:])
    assert proba.shape == (100, N_LABELS) and proba.dtype == np.float32
    assert ((proba >= 0) & (proba <= 1)).all() and clf.tuned_thresholds_.shape == (N_LABELS,)
    logits = clf.set_params(predict_nonlinearity=None).predict_proba(X[200:])
    np.testing.assert_allclose(torch.sigmoid(torch.from_numpy(logits)).numpy(), proba, rtol=1e-5)
    with pytest.raises(ValueError, match="predict_nonlinearity"):
        small(predict_nonlinearity="softmax").fit(X[:50], Y[:50])


# scikit-learn's generic checks, with the failures that come from design declared and explained.
_ONLY_2D_Y = ("feeds a 1-D, multiclass (0/1/2), string or continuous target; a multi-label-only classifier "
              "refuses anything but a 2-D 0/1 Y by design (the same property is tested with a 2-D Y in "
              "test_generic_properties_with_a_multilabel_target)")
_EXPECTED_FAILURES = {
    "check_no_attributes_set_in_init": "skorch's NeuralNet.__init__ sets history_, initialized_ and "
                                       "virtual_params_ and stores module__* as attributes",
    "check_do_not_raise_errors_in_init_or_set_params": "skorch's set_params interprets callbacks and "
                                                       "prefixed parameters on assignment",
    "check_set_params": "skorch's set_params re-initialises the components it changes",
    **{name: _ONLY_2D_Y for name in (
        "check_fit_score_takes_y", "check_estimators_overwrite_params", "check_dont_overwrite_parameters",
        "check_estimators_fit_returns_self", "check_readonly_memmap_input", "check_n_features_in_after_fitting",
        "check_positive_only_tag_during_fit", "check_estimators_dtypes", "check_dtype_object",
        "check_f_contiguous_array_estimator", "check_classifier_data_not_an_array", "check_classifiers_one_label",
        "check_classifiers_one_label_sample_weights", "check_classifiers_classes",
        "check_estimators_partial_fit_n_features", "check_classifiers_train", "check_classifiers_regression_target",
        "check_methods_sample_order_invariance", "check_methods_subset_invariance", "check_fit2d_1feature",
        "check_dict_unchanged", "check_fit2d_predict1d")},
}


@parametrize_with_checks(
    [MultilabelNeuralNetClassifier(max_epochs=3, module__hidden=(8,), random_state=0)],
    expected_failed_checks=lambda est: _EXPECTED_FAILURES,
)
def test_sklearn_checks(estimator, check):
    check(estimator)


def test_generic_properties_with_a_multilabel_target(data, tmp_path):
    X, Y = data
    X, Y = X[:120].astype(np.float64), Y[:120]
    clf = small(max_epochs=3)
    assert clf.fit(X, Y) is clf and clf.n_features_in_ == X.shape[1]
    before = copy.deepcopy(clf.__dict__["module__hidden"]), clf.get_params()["lr"]
    proba = clf.predict_proba(X)
    assert (copy.deepcopy(clf.__dict__["module__hidden"]), clf.get_params()["lr"]) == before
    # order and subsets of the samples do not change a sample's prediction
    order = np.random.default_rng(0).permutation(len(X))
    np.testing.assert_allclose(clf.predict_proba(X[order]), proba[order], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(clf.predict_proba(X[:7]), proba[:7], rtol=1e-5, atol=1e-6)
    # read-only memmapped and Fortran-ordered inputs, other float dtypes
    path = tmp_path / "X.npy"
    np.save(path, X)
    memmapped = np.load(path, mmap_mode="r")
    np.testing.assert_array_equal(small(max_epochs=3).fit(memmapped, Y).predict_proba(memmapped), proba)
    np.testing.assert_array_equal(clf.predict_proba(np.asfortranarray(X)), proba)
    assert clf.predict_proba(X.astype(np.float32)).dtype == np.float32
    with pytest.raises(ValueError, match="features"):
        clf.predict_proba(X[:, :5])
    with pytest.raises(ValueError, match="requires y"):
        small().fit(X, None)
