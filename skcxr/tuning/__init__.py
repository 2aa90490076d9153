"""Optuna tuning of any skcxr estimator under patient-grouped, multi-label cross-validation.

:func:`tune` drives an Optuna study directly rather than ``OptunaSearchCV``, whose pruning needs
``partial_fit``, which pipelines lack: every trial cross-validates a clone of the estimator with the trial's
parameters, and the skorch nets inside report their validation loss per epoch
(:class:`skcxr.tuning.pruning.OptunaPruning`), so a hopeless trial stops early.

Several processes may work on one study (an RDB storage such as ``sqlite:///study.db``, opened up front by
:func:`open_storage`); a process that dies mid-trial leaves a trial whose heartbeat stops, which the next
worker marks ``FAIL`` and queues again with the same parameters. Ctrl-C ends the running trial ``PRUNED``
(never ``RUNNING``) and the study with it; a study records what it tunes (estimator, space, data, scoring)
and refuses a rerun of something else under its name.

``OptunaPruning`` lives in the public module :mod:`skcxr.tuning.pruning`, not here: it imports skorch and
torch, which ``import skcxr.tuning`` does not.
"""

from ._storage import open_storage
from ._tune import TuneResult, tune

__all__ = ["TuneResult", "open_storage", "tune"]
