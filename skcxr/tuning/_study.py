"""The study's bookkeeping: what it tunes (refusing a rerun of something else), completed trials, logging."""

from __future__ import annotations

import contextlib

import joblib
import optuna
from optuna.trial import TrialState
from sklearn.base import clone

#: The study user attribute that records what a study tunes.
IDENTITY_ATTR = "skcxr_identity"


def _identity(estimator, space, X, Y, groups, scoring) -> dict:
    """What a study tunes, to refuse a rerun of something else under its name: readable names and hashes."""
    def digest(obj):
        try:
            return joblib.hash(obj)
        except Exception:  # noqa: BLE001 - an object that does not pickle (a lambda inside): not compared
            return None

    steps = getattr(estimator, "steps", None)
    name = " -> ".join(type(step).__name__ for _, step in steps) if steps else type(estimator).__name__
    space_text = (getattr(space, "__qualname__", repr(space)) if callable(space)
                  else {key: repr(dist) for key, dist in sorted(space.items())})
    return {"estimator": name, "estimator_hash": digest(clone(estimator)), "space": space_text,
            "data": f"{len(Y)} samples, hash {digest((X, Y, groups))}", "scoring": str(scoring)}


def _check_identity(study, identity, where) -> None:
    saved = study.user_attrs.get(IDENTITY_ATTR)
    if saved is None:
        study.set_user_attr(IDENTITY_ATTR, identity)
        return
    for key, what in [("estimator", "estimator"), ("estimator_hash", "estimator's settings"),
                      ("space", "search space"), ("data", "data (other images, labels, size or split)"),
                      ("scoring", "scoring")]:
        then, now = saved.get(key), identity[key]
        if then != now and None not in (then, now):
            shown = "" if key == "estimator_hash" else f": it has {then}, this run {now}"
            raise ValueError(f"study {study.study_name!r} in {where} tunes another {what}{shown}. Use another "
                             "study name, or delete that study (optuna.delete_study).")


def _n_complete(study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


@contextlib.contextmanager
def _optuna_logging(verbose: int):
    """Optuna's per-trial INFO lines only with ``verbose > 0`` (library code prints nothing otherwise)."""
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.INFO if verbose > 0 else optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)
