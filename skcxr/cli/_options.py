"""What every command's options set: how much it says, the estimators' settings, the recorded config (private)."""

from __future__ import annotations


def _level(args) -> int:
    """The estimators' ``verbose``: 0 with --quiet, 2 with --verbose, else 1 (progress bars)."""
    return 0 if args.quiet else 2 if args.verbose else 1


def _say(args, *text) -> None:
    """A progress line on stdout, unless --quiet."""
    if not args.quiet:
        print(*text, flush=True)


def _configure(model, args):
    """Set ``verbose``, ``device`` and ``n_jobs`` on every skcxr estimator inside ``model`` (others keep theirs;
    a pipeline's own ``verbose`` is scikit-learn's step timing, left alone)."""
    from sklearn.base import BaseEstimator
    from sklearn.pipeline import Pipeline

    settings = {"verbose": _level(args), "device": args.device, "n_jobs": args.n_jobs}
    for est in [model, *model.get_params(deep=True).values()]:
        if (isinstance(est, BaseEstimator) and not isinstance(est, Pipeline)
                and type(est).__module__.startswith("skcxr.")):
            own = est.get_params(deep=False)
            est.set_params(**{k: v for k, v in settings.items() if k in own})
    return model


def _config(args) -> dict:
    def plain(value):
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value if value is None or isinstance(value, (bool, int, float)) else str(value)

    return {key: plain(value) for key, value in vars(args).items() if key != "func"}
