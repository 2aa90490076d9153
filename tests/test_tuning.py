"""skcxr.tuning.tune: Optuna search under patient-grouped CV, pruning of skorch nets,
persistent studies that survive a killed worker and are shared by several processes, ``skcxr tune``."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState
from sklearn.base import clone
from sklearn.datasets import make_multilabel_classification
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from skcxr.cli import main
from skcxr.model_selection import MultilabelStratifiedGroupKFold
from skcxr.neural import MultilabelNeuralNetClassifier, MultilabelValidSplit
from skcxr.tuning import TuneResult, tune
from skcxr.tuning.pruning import OptunaPruning
from conftest import phantom_folder  # a ChestX-ray14-like folder of phantoms

REPO = Path(__file__).resolve().parents[1]
optuna.logging.set_verbosity(optuna.logging.WARNING)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _data(n=120, n_labels=3, seed=0):
    X, Y = make_multilabel_classification(n, n_features=8, n_classes=n_labels, random_state=seed)
    return X.astype(np.float32), Y, np.arange(n) // 2  # two images per patient


def _lr_pipeline():
    return Pipeline([("scale", StandardScaler()), ("clf", OneVsRestClassifier(LogisticRegression(max_iter=300)))])


def _net(**params):
    params = {"max_epochs": 4, "batch_size": 32, "patience": None, "module__hidden": 16, "random_state": 0,
              **params}
    return MultilabelNeuralNetClassifier(**params)


def _states(study) -> dict:
    return {state: sum(t.state == state for t in study.trials) for state in TrialState}


# --- searching ------------------------------------------------------------------------------


def test_dict_space_returns_the_refit_best_estimator():
    X, Y, patients = _data()
    pipe = _lr_pipeline()
    space = {"clf__estimator__C": FloatDistribution(1e-3, 10.0, log=True),
             "clf__estimator__fit_intercept": CategoricalDistribution([True, False])}
    result = tune(pipe, X, Y, patients, space=space, n_trials=4, random_state=0)
    assert isinstance(result, TuneResult)
    study, best = result  # unpacks as (study, best_estimator)
    assert _states(study)[TrialState.COMPLETE] == 4 and len(study.trials) == 4
    assert best.get_params()["clf__estimator__C"] == study.best_params["clf__estimator__C"]
    assert best.get_params()["clf__estimator__fit_intercept"] == study.best_params["clf__estimator__fit_intercept"]
    assert result.best_params == study.best_params and result.best_score == study.best_value
    assert best.predict_proba(X[:5]).shape == (5, 3)  # fitted on all data
    assert not hasattr(pipe[-1], "estimators_")  # the caller's estimator is never fitted
    fold_scores = study.best_trial.user_attrs["fold_scores"]
    assert len(fold_scores) == 3 and np.isclose(np.mean(fold_scores), study.best_value)
    assert 0.5 < study.best_value <= 1


def test_callable_space_may_return_estimators_and_is_rebuilt_for_the_refit():
    X, Y, patients = _data()

    def space(trial):
        C = trial.suggest_float("C", 1e-3, 10.0, log=True)
        solver = trial.suggest_categorical("solver", ["lbfgs", "liblinear"])
        return {"clf": OneVsRestClassifier(LogisticRegression(C=C, solver=solver, max_iter=300))}

    study, best = tune(_lr_pipeline(), X, Y, patients, space=space, n_trials=3, cv=2, random_state=1)
    assert _states(study)[TrialState.COMPLETE] == 3
    assert best[-1].estimator.C == study.best_params["C"]
    assert best[-1].estimator.solver == study.best_params["solver"]
    assert len(study.best_trial.user_attrs["fold_scores"]) == 2
    # refit=False: the study only
    study, best = tune(_lr_pipeline(), X, Y, patients, space=space, n_trials=1, refit=False)
    assert best is None and len(study.trials) == 1


def test_bad_spaces_and_arguments_are_refused_before_any_trial():
    X, Y, patients = _data(40)
    with pytest.raises(ValueError, match="space: .*nope"):
        tune(_lr_pipeline(), X, Y, patients, space={"clf__nope": FloatDistribution(0, 1)}, n_trials=1)
    with pytest.raises(ValueError, match="optuna.distributions"):
        tune(_lr_pipeline(), X, Y, patients, space={"clf__estimator__C": [0.1, 1.0]}, n_trials=1)
    with pytest.raises(ValueError, match="n_trials or timeout"):
        tune(_lr_pipeline(), X, Y, patients, space={"clf__estimator__C": FloatDistribution(0.1, 1)},
             n_trials=None)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        tune(_lr_pipeline(), X, Y, patients[:-1], space={"clf__estimator__C": FloatDistribution(0.1, 1)})


class _RecordingSplit(MultilabelValidSplit):
    """The nets' inner validation split, recording the patient ids it receives (module-level: clones share it)."""

    calls = []

    def __call__(self, dataset, y=None, groups=None):
        train, valid = super().__call__(dataset, y, groups)
        type(self).calls.append((None if groups is None else np.asarray(groups), train.indices, valid.indices))
        return train, valid


def test_patient_ids_reach_the_nets_inner_splits():
    X, Y, patients = _data(90)
    _RecordingSplit.calls.clear()
    pipe = Pipeline([("scale", StandardScaler()), ("clf", _net(max_epochs=2, train_split=_RecordingSplit(0.25)))])
    study, best = tune(pipe, X, Y, patients, space={"clf__lr": FloatDistribution(1e-3, 1e-2, log=True)},
                       n_trials=2, random_state=0)
    folds = list(MultilabelStratifiedGroupKFold(3).split(X, Y, patients))
    calls = _RecordingSplit.calls
    assert len(calls) == 2 * 3 + 1  # every fold of every trial, and the refit
    expected = [patients[train] for _ in range(2) for train, _ in folds] + [patients]
    for (groups, train, valid), want in zip(calls, expected):
        assert groups is not None and np.array_equal(groups, want)  # the training fold's patients, in order
        assert not set(groups[train]) & set(groups[valid])  # patient-disjoint inner validation part
    assert best[-1].callbacks is None  # no pruning callback left on the refit estimator
    assert pipe[-1].callbacks is None


def test_a_hopeless_trial_is_pruned_by_its_validation_loss():
    X, Y, patients = _data()
    pipe = Pipeline([("scale", StandardScaler()), ("clf", _net())])
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, study_name="prune", direction="maximize")
    for lr in [1e-2, 1e-2, 1e-2, 50.0, 1e-2]:  # trial 3: a learning rate that blows the loss up
        study.enqueue_trial({"clf__lr": lr})
    result = tune(pipe, X, Y, patients, space={"clf__lr": CategoricalDistribution([1e-2, 50.0])}, n_trials=4,
                  storage=storage, study_name="prune", pruner=optuna.pruners.MedianPruner(n_startup_trials=2))
    trials = result.study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3 + [TrialState.PRUNED, TrialState.COMPLETE]
    assert trials[3].params == {"clf__lr": 50.0}
    assert list(trials[3].intermediate_values) == [0]  # stopped after its first epoch
    # a complete trial reports every epoch of every fold at step fold * max_epochs + epoch, as -valid_loss
    assert sorted(trials[0].intermediate_values) == list(range(3 * 4))
    assert all(v < 0 for v in trials[0].intermediate_values.values())
    assert result.best_estimator.get_params()["clf__lr"] == 1e-2


def test_pruning_callback_gives_each_fit_its_own_block_of_steps():
    X, Y, _ = _data(60)
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    pruning = OptunaPruning(trial)
    nets = [_net(max_epochs=3, callbacks=[("prune", pruning)]), _net(max_epochs=2, callbacks=[("prune", pruning)])]
    for net in nets:
        clone(net).fit(X, Y)  # a clone shares the callback (no deep copy of the trial)
    assert sorted(study.trials[0].intermediate_values) == [0, 1, 2, 3, 4]
    assert pruning.n_reported_ == 5
    minimize = optuna.create_study(direction="minimize")
    trial = minimize.ask()
    _net(max_epochs=1, callbacks=[("prune", OptunaPruning(trial))]).fit(X, Y)
    assert minimize.trials[0].intermediate_values[0] > 0  # a loss is reported as is in a minimizing study


# --- persistent studies: reruns, a killed worker, two workers ----------------------------------------

WORKER = r'''
import json, os, sys, time
import numpy as np
from sklearn.datasets import make_multilabel_classification
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from skcxr.tuning import tune

X, Y = make_multilabel_classification(90, n_features=6, n_classes=3, random_state=0)
PATIENTS = np.arange(90) // 3


def run(storage, n_trials, hang_at=None, flag=None, barrier=None, pause=0.0):
    waited = []

    def space(trial):
        trial.set_user_attr("pid", os.getpid())
        if barrier is not None and not waited:  # start together with the other worker
            open(os.path.join(barrier, str(os.getpid())), "w").close()
            deadline = time.time() + 60
            while len(os.listdir(barrier)) < 2 and time.time() < deadline:
                time.sleep(0.05)
            waited.append(True)
        C = trial.suggest_float("C", 1e-3, 10.0, log=True)
        if hang_at is not None and trial.number == hang_at:
            # past the trial's first heartbeat (one a second): a process killed before Optuna's heartbeat thread
            # has written one leaves no heartbeat to go stale, and the trial stays RUNNING (the fault of issue 18)
            time.sleep(1.5)
            open(flag, "w").close()
            time.sleep(600)  # killed here
        time.sleep(pause)
        return {"estimator__C": C}

    return tune(OneVsRestClassifier(LogisticRegression(max_iter=300)), X, Y, PATIENTS, space=space,
                n_trials=n_trials, storage=storage, study_name="study", heartbeat_interval=1, grace_period=2,
                refit=False)


if __name__ == "__main__":
    run(**json.loads(sys.argv[1]))
'''


@pytest.fixture
def worker(tmp_path):
    """(start(**kwargs) -> Popen of the worker script, run(**kwargs) in this process)."""
    script = tmp_path / "tune_worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}

    def start(**kwargs):
        return subprocess.Popen([sys.executable, str(script), json.dumps(kwargs)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    namespace = {"__name__": "tune_worker"}
    exec(compile(WORKER, str(script), "exec"), namespace)
    return start, namespace["run"]


def _wait_for(condition, seconds, what):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_study_killed_mid_trial_continues_on_rerun_and_loses_no_trial(tmp_path, worker):
    start, run = worker
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    flag = tmp_path / "hanging"
    proc = start(storage=storage, n_trials=5, hang_at=2, flag=str(flag))
    try:
        _wait_for(lambda: flag.exists() or proc.poll() is not None, 60, "the worker to reach trial 2")
        assert proc.poll() is None, proc.communicate()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    killed_at = time.monotonic()
    study = optuna.load_study(study_name="study", storage=storage)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2 + [TrialState.RUNNING]

    # the killed trial's heartbeat (every 1 s) is stale after the 2 s grace period
    time.sleep(max(0.0, 2.5 - (time.monotonic() - killed_at)))
    study, _ = run(storage=storage, n_trials=5)
    trials = study.trials
    states = _states(study)
    assert states[TrialState.COMPLETE] == 5 and states[TrialState.FAIL] == 1
    assert states[TrialState.RUNNING] == states[TrialState.WAITING] == 0
    assert trials[2].state == TrialState.FAIL  # the killed one
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == 2]
    assert len(retried) == 1 and retried[0].state == TrialState.COMPLETE
    assert retried[0].params == trials[2].params  # the lost trial ran again with its parameters
    assert [t.value for t in trials[:2]] == [t.value for t in optuna.load_study(
        study_name="study", storage=storage).trials[:2]]
    # a further rerun finds 5 completed trials and runs none
    study, _ = run(storage=storage, n_trials=5)
    assert len(study.trials) == len(trials)


def test_two_worker_processes_finish_n_trials_together(tmp_path, worker):
    start, _ = worker
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    n_trials = 6
    procs = [start(storage=storage, n_trials=n_trials, barrier=str(barrier), pause=0.2) for _ in range(2)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    study = optuna.load_study(study_name="study", storage=storage)
    states = _states(study)
    # each worker checks the count when its own trial ends: the other's running trial may add one
    assert n_trials <= states[TrialState.COMPLETE] <= n_trials + 1
    assert states[TrialState.COMPLETE] == len(study.trials)  # none failed, none left running
    pids = {t.user_attrs["pid"] for t in study.trials}
    assert pids == {p.pid for p in procs}  # both worked on it


INTERRUPTED = r"""
import os, signal, sys
from sklearn.datasets import make_multilabel_classification
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from optuna.distributions import FloatDistribution
from skcxr.tuning import tune

FITS, AT = [0], int(sys.argv[2])


class Interrupted(LogisticRegression):
    def fit(self, X, y):
        FITS[0] += 1
        if FITS[0] == AT:  # Ctrl-C inside a fold's fit
            os.kill(os.getpid(), signal.SIGINT)
        return super().fit(X, y)


def space(trial):  # AT = 0: Ctrl-C while Optuna sets up trial 1, outside the folds
    if AT == 0 and trial.number == 1:
        os.kill(os.getpid(), signal.SIGINT)
    return {"estimator__C": trial.suggest_float("C", 1e-2, 10, log=True)}


X, Y = make_multilabel_classification(60, n_features=5, n_classes=3, random_state=0)
try:
    tune(OneVsRestClassifier(Interrupted()), X, Y, space=space, n_trials=3, storage=sys.argv[1],
         study_name="s", refit=False, random_state=0)
except KeyboardInterrupt:
    print("interrupted", file=sys.stderr)
    sys.exit(130)
print("not interrupted", file=sys.stderr)
"""


@pytest.mark.parametrize("at", [0, 14], ids=["between trials", "inside a fit"])
def test_ctrl_c_prunes_the_running_trial_exits_130_and_a_rerun_resumes(tmp_path, at):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    script = tmp_path / "interrupted.py"
    script.write_text(INTERRUPTED)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    # fit 14: trial 1 (3 folds of 3 labels = 9 fits a trial), fold 2
    done = subprocess.run([sys.executable, str(script), storage, str(at)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 130 and done.stderr == "interrupted\n", done.stderr  # no traceback, no log lines
    study = optuna.load_study(study_name="s", storage=storage)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.PRUNED]
    assert study.trials[1].user_attrs["interrupted"] is True
    again = subprocess.run([sys.executable, str(script), storage, "-1"], env=env, capture_output=True, text=True,
                           timeout=120)
    assert again.returncode == 0, again.stderr
    assert _states(optuna.load_study(study_name="s", storage=storage))[TrialState.COMPLETE] == 3


def test_a_study_refuses_another_estimator_space_or_data(tmp_path):
    X, Y, groups = _data(60)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    space = {"clf__estimator__C": FloatDistribution(1e-2, 10, log=True)}
    tune(_lr_pipeline(), X, Y, groups, space=space, n_trials=1, storage=storage, study_name="s", refit=False)
    other_space = {"clf__estimator__C": FloatDistribution(1e-4, 1, log=True)}
    other_estimator = _lr_pipeline().set_params(clf__estimator__max_iter=50)
    for args, what in [((_lr_pipeline(), X, Y, groups, other_space), "search space: it has"),
                       ((other_estimator, X, Y, groups, space), "estimator's settings"),
                       ((Pipeline([("scale", MinMaxScaler()), ("clf", OneVsRestClassifier(LogisticRegression()))]),
                         X, Y, groups, space), "another estimator: it has StandardScaler -> OneVsRestClassifier, "
                                               "this run MinMaxScaler -> OneVsRestClassifier"),
                       ((_lr_pipeline(), X[:, :4], Y, groups, space), "another data")]:
        estimator, X_, Y_, g_, space_ = args
        with pytest.raises(ValueError, match=what) as info:
            tune(estimator, X_, Y_, g_, space=space_, n_trials=2, storage=storage, study_name="s", refit=False)
        assert "study 's' in sqlite:///" in str(info.value) and "another study name" in str(info.value)
    study, _ = tune(_lr_pipeline(), X, Y, groups, space=space, n_trials=2, storage=storage, study_name="s",
                    refit=False)  # the same again: continues
    assert _states(study)[TrialState.COMPLETE] == 2


@pytest.mark.parametrize("make, named", [
    (lambda d: (d / "bad.db").write_bytes(b"not a database at all" * 100), "file is not a database"),
    (lambda d: (d / "bad.db").write_bytes(b"\0" * 4096), "file is not a database"),
    (lambda d: (d / "bad.db").mkdir(), "is a folder"),
    (lambda d: (d / "bad.db").touch(mode=0o444), "read-only file"),
])
def test_a_bad_sqlite_storage_is_one_line_naming_it(tmp_path, make, named):
    from skcxr.tuning import open_storage

    if os.geteuid() == 0 and "read-only" in named:
        pytest.skip("root writes read-only files")
    make(tmp_path)
    url = f"sqlite:///{tmp_path / 'bad.db'}"
    with pytest.raises(ValueError, match=named) as info:
        open_storage(url)
    assert str(info.value).startswith(f"storage {url}: ") and "\n" not in str(info.value)


@pytest.mark.parametrize("url, named", [
    ("postgresql://me:secret@localhost:1/optuna", "install the database driver"),
    ("nosuchdb://me:secret@host/optuna", "Can't load plugin"),
])
def test_storage_problems_hide_the_password(url, named):
    from skcxr.tuning import open_storage

    with pytest.raises(ValueError, match=named) as info:
        open_storage(url)
    assert "secret" not in str(info.value) and "me:***@" in str(info.value)


def test_tuning_an_estimator_without_nets_loads_no_torch():
    code = """
import sys
from optuna.distributions import FloatDistribution
from sklearn.datasets import make_multilabel_classification
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from skcxr.tuning import tune
X, Y = make_multilabel_classification(60, n_features=5, n_classes=3, random_state=0)
tune(OneVsRestClassifier(LogisticRegression()), X, Y, space={"estimator__C": FloatDistribution(0.1, 10)}, n_trials=1)
print(" ".join(m for m in ("torch", "skorch") if m in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


# --- the command -----------------------------------------------------------------------------


def test_tune_command_prints_the_best_parameters_and_continues_a_stored_study(tmp_path, capsys):
    folder = phantom_folder(tmp_path / "nih")
    db = tmp_path / "study.db"
    argv = ["tune", "--data", str(folder), "--size", "32", "--n-trials", "2", "--n-jobs", "1",
            "--storage", f"sqlite:///{db}", "--study-name", "smoke"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Study 'smoke': 2 completed, 0 pruned, 0 failed trials" in out
    assert "Best mean macro-AUC over 3 patient-grouped folds" in out and "clf__estimator__C = " in out
    assert main(argv[:6] + ["3"] + argv[7:]) == 0  # rerun asking for 3: one more trial
    assert "Study 'smoke': 3 completed" in capsys.readouterr().out
    assert len(optuna.load_study(study_name="smoke", storage=f"sqlite:///{db}").trials) == 3


def test_tune_command_refuses_a_bad_storage_before_any_work(tmp_path, capsys, monkeypatch):
    import skcxr.pipelines

    folder = phantom_folder(tmp_path / "nih", n=4)
    (tmp_path / "corrupt.db").write_bytes(b"\0" * 4096)
    monkeypatch.setattr(skcxr.pipelines, "make_classical_pipeline", lambda *a, **k: pytest.fail("features first"))
    for url, named in [("not a url", "not a database URL"), (f"sqlite:///{tmp_path}/missing/s.db", "no such folder"),
                       (f"sqlite:///{tmp_path}/corrupt.db", "file is not a database"),
                       (f"sqlite:///{tmp_path}", "is a folder")]:
        assert main(["tune", "--data", str(folder), "--storage", url]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("skcxr: error: ") and named in err and len(err.splitlines()) == 1


def test_tune_command_refuses_a_study_of_another_size(tmp_path, capsys):
    folder = phantom_folder(tmp_path / "nih")
    argv = ["tune", "--data", str(folder), "--size", "32", "--n-trials", "1", "--n-jobs", "1", "-q",
            "--storage", f"sqlite:///{tmp_path / 'study.db'}", "--study-name", "s"]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(argv[:4] + ["48"] + argv[5:]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("skcxr: error: study 's' in sqlite:///")
    assert "another data (other images, labels, size or split)" in err
