"""The ``skcxr`` command: ``skcxr demo`` on the embedded phantoms, ``skcxr run`` on ChestX-ray14 folders,
``skcxr tune`` for an Optuna search of a classifier's hyper-parameters, ``skcxr explain`` for pictures of
where an attention model looks.

Both train the classical baseline (logistic regression on LBP + HOG) and the
hybrid MLP on one patient-wise split and report them with
:func:`skcxr.evaluation.holdout_report`: F1 and Hamming loss at 0.5 and at
thresholds tuned on the training part, macro-AUC with a patient-bootstrap
interval, the hybrid's difference to the baseline with a paired interval, and,
for several ``--data`` folders, every metric within each folder as well.

``skcxr tune`` searches on the training part of the same patient-wise split as
``skcxr run`` (same ``--seed`` and ``--test-size``), so run's test part stays
unseen; the texture features learn nothing from the labels, so they are
computed once, and each trial cross-validates scaler + classifier
(:func:`skcxr.model_selection.tune`). With ``--storage`` the study persists:
rerunning continues it, and several processes on one storage share it.

Every error is one line on stderr, ``skcxr: error: ...``, naming the argument
or file, with exit status 1; Ctrl-C prints ``skcxr: interrupted`` and exits
with 130. Arguments and the output folder are checked before any image is read.

Layout (private modules, one concept each): ``_parser`` (the parser and its options), ``_types`` (argument
types), ``_main`` (the entry point), ``_errors`` (one-line errors and warnings), ``_options`` (verbosity,
device, the recorded config), ``_inputs`` (data folders, images, saved models), ``_outputs`` (output paths
checked first), ``_models`` (the compared models: built, evaluated, saved), ``_writers`` (results printed
and written), and one module per command: ``_demo``, ``_run``, ``_tune``, ``_explain``, ``_predict``. Heavy
modules (torch, skorch, optuna, scikit-learn, pandas) are imported inside the commands, so ``skcxr --help``
stays light; a test that replaces a helper patches the module that calls it (``skcxr.cli._run._evaluate``).
"""

# Besides the public names, _evaluate, _train_test and _slugs stay importable from here (as from the old
# skcxr/cli.py); to replace one in a test, patch the module that calls it.
from ._demo import DEMO_READING, demo
from ._explain import explain
from ._inputs import MIN_IMAGES, _train_test
from ._main import main
from ._models import BASELINE, HYBRID, HYBRID_MLP, SAVEABLE, _evaluate
from ._parser import MIN_SIZE
from ._predict import IMAGE_SUFFIXES, PREDICT_OUTPUTS, predict
from ._run import run
from ._tune import TUNE_SPACES, tune_command
from ._writers import _slugs

__all__ = ["BASELINE", "DEMO_READING", "HYBRID", "HYBRID_MLP", "IMAGE_SUFFIXES", "MIN_IMAGES", "MIN_SIZE",
           "PREDICT_OUTPUTS", "SAVEABLE", "TUNE_SPACES", "demo", "explain", "main", "predict", "run", "tune_command"]
