"""The models ``skcxr demo`` and ``skcxr run`` compare: built, evaluated on the holdout, saved (private)."""

from __future__ import annotations

from ._options import _config, _configure, _level, _say

BASELINE = "Logistic regression (LBP+HOG)"
HYBRID = "Hybrid (LBP+HOG+EfficientNet-Lite0)"
HYBRID_MLP = "Hybrid MLP (LBP+HOG+EfficientNet-Lite0)"


def _small_image_hog(model, size: int):
    """``model`` (a pipeline with a ``features__hog`` step) with 8 px HOG cells for images under 32 px.

    HOG's default 2x2 blocks of 16 px cells need 32 px.
    """
    if size < 32:
        model.set_params(features__hog__pixels_per_cell=(8, 8))
    return model


def _models(args) -> dict:
    from ..neural import MLP, MultilabelNeuralNetClassifier
    from ..pipelines import make_classical_pipeline, make_hybrid_pipeline

    mlp = MultilabelNeuralNetClassifier(MLP, random_state=args.seed)
    models = {
        BASELINE: make_classical_pipeline(size=args.size, n_jobs=args.n_jobs),
        HYBRID: make_hybrid_pipeline(size=args.size, n_jobs=args.n_jobs, random_state=args.seed),
        HYBRID_MLP: make_hybrid_pipeline(classifier=mlp, size=args.size, n_jobs=args.n_jobs,
                                         random_state=args.seed),
    }
    return {name: _configure(_small_image_hog(model, args.size), args) for name, model in models.items()}


#: What ``skcxr run --save-which`` names: the models of ``_models``.
SAVEABLE = {"classical": BASELINE, "hybrid": HYBRID, "hybrid-mlp": HYBRID_MLP}


def _evaluate(args, X_train, Y_train, X_test, Y_test, g_train, g_test, target_names, sources_test=None,
              sources_train=None):
    from ..evaluation import holdout_report

    return holdout_report(
        _models(args), X_train, Y_train, X_test, Y_test, groups_train=g_train, groups_test=g_test,
        sources_train=sources_train, sources_test=sources_test, target_names=target_names, baseline=BASELINE,
        threshold_cv=args.threshold_cv or None, n_boot=args.n_boot, random_state=args.seed,
        verbose=_level(args))


def _save(args, result, X_train, Y_train, data, target_names) -> None:
    from ..persistence import data_fingerprint, image_fingerprints, save_model

    name = SAVEABLE[args.save_which]
    metrics = result.to_dict()
    save_model(
        result.models[name], args.save_model, target_names=target_names, thresholds=result.thresholds[name],
        metrics={"model": name, "test": metrics["summary"][name], "by_source": {
            source: table.get(name) for source, table in metrics["by_source"].items()}},
        data={**data, "fingerprint": data_fingerprint(X_train, Y_train), "images_seen": image_fingerprints(X_train)},
        settings=_config(args))
    _say(args, f"wrote {args.save_model} ({name})")


def _import_estimators() -> None:
    """Import the estimators, and torch with them, before the first line is printed.

    A Ctrl-C that lands inside torch's import (C code run through ``PyRun_*``)
    makes CPython exit by SIGINT (status -2) even though ``main`` catches the
    KeyboardInterrupt and returns 130; once the imports are done, Ctrl-C exits 130.
    """
    from .. import evaluation, pipelines  # noqa: F401
