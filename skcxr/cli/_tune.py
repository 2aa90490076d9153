"""``skcxr tune``: an Optuna search of a classifier on LBP+HOG features, by patient-grouped CV (private)."""

from __future__ import annotations

import numpy as np

from ._inputs import _train_test
from ._models import _import_estimators, _small_image_hog
from ._options import _configure, _say

#: The classifiers ``skcxr tune --model`` knows -> their search space, made from ``optuna.distributions``
#: (imported only when a space is built, so ``skcxr --help`` does not import optuna).
TUNE_SPACES = {
    "lr": lambda d: {"clf__estimator__C": d.FloatDistribution(1e-6, 1.0, log=True)},
    "mlp": lambda d: {"clf__lr": d.FloatDistribution(1e-4, 1e-2, log=True),
                      "clf__module__hidden": d.CategoricalDistribution([64, 128, 256, 512]),
                      "clf__module__dropout": d.FloatDistribution(0.0, 0.6),
                      "clf__optimizer__weight_decay": d.FloatDistribution(1e-6, 1e-1, log=True)},
}


def _tune_space(model: str) -> dict:
    """The search space of ``skcxr tune --model model``."""
    from optuna import distributions

    return TUNE_SPACES[model](distributions)


def _tune_estimator(args):
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from ..neural import MLP, MultilabelNeuralNetClassifier
    from ..pipelines import make_logistic_regression

    clf = (make_logistic_regression() if args.model == "lr"
           else MultilabelNeuralNetClassifier(MLP, random_state=args.seed))
    return Pipeline([("scale", StandardScaler()), ("clf", clf)]), _tune_space(args.model)


def tune_command(args) -> None:
    from optuna.trial import TrialState

    from ..pipelines import make_classical_pipeline
    from ..tuning import open_storage, tune

    _import_estimators()
    storage = open_storage(args.storage)  # a bad database is found before any feature is computed
    (p_tr, Y_tr, g_tr, _, _), _, _ = _train_test(args)
    study_name = args.study_name or f"skcxr-{args.model}"
    rest = ("NIH's official test list" if args.split == "official"
            else f"'skcxr run --seed {args.seed} --test-size {args.test_size:g}' tests on the rest")
    _say(args, f"Tuning {args.model} ({args.n_trials} trials, {args.cv}-fold patient-grouped CV, study "
               f"{study_name!r}) on the training part: {len(p_tr)} images of {len(np.unique(g_tr))} patients; "
               f"{rest}\n")
    features = make_classical_pipeline(size=args.size, n_jobs=args.n_jobs)[:2]  # prep + LBP/HOG: no labels
    F = _configure(_small_image_hog(features, args.size), args).fit_transform(p_tr)
    estimator, space = _tune_estimator(args)
    study, _ = tune(_configure(estimator, args), F, Y_tr, g_tr, space=space, n_trials=args.n_trials, cv=args.cv,
                    storage=storage, study_name=study_name, timeout=args.timeout,
                    random_state=None if args.storage else args.seed, refit=False, verbose=int(not args.quiet))
    counts = {state: len(study.get_trials(deepcopy=False, states=(state,)))
              for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    print(f"\nStudy {study.study_name!r}: {counts[TrialState.COMPLETE]} completed, "
          f"{counts[TrialState.PRUNED]} pruned, {counts[TrialState.FAIL]} failed trials")
    if not counts[TrialState.COMPLETE]:
        raise ValueError(f"study {study.study_name!r} has no completed trial")
    best = study.best_trial
    folds = ", ".join(f"{v:.3f}" for v in best.user_attrs.get("fold_scores", []))
    print(f"Best mean macro-AUC over {args.cv} patient-grouped folds: {best.value:.4f} (trial {best.number}; "
          f"folds {folds})\nBest parameters:")
    for name, value in best.params.items():
        print(f"  {name} = {value:.4g}" if isinstance(value, float) else f"  {name} = {value}")
