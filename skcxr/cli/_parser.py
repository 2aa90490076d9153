"""The command line: the ``skcxr`` parser, its commands and their options (private)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .._env import versions
from ._demo import demo
from ._errors import _UsageError
from ._explain import explain
from ._inputs import MIN_IMAGES
from ._models import SAVEABLE
from ._predict import predict
from ._run import run
from ._tune import TUNE_SPACES, tune_command
from ._types import _device, _folder, _fraction, _int_at_least, _n_jobs, _number, _storage_url, _threshold_cv

#: The smallest ``--size`` (image side in pixels) the commands accept.
MIN_SIZE = 16


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse prints the usage and exits 2; we report one line
        raise _UsageError(f"{message} (see '{self.prog} --help')")


def _version_text() -> str:
    v = versions()
    return (f"skcxr {v['skcxr']} (scikit-learn {v['scikit-learn']}, torch {v['torch']}, skorch {v['skorch']}, "
            f"Python {v['python']})")


def _common() -> argparse.ArgumentParser:
    """Options every command takes: how much it says, and where the networks run."""
    common = argparse.ArgumentParser(add_help=False)
    talk = common.add_mutually_exclusive_group()
    talk.add_argument("--quiet", "-q", action="store_true",
                      help="no progress bars and no progress lines; results and errors only")
    talk.add_argument("--verbose", "-v", action="store_true",
                      help="more detail: each network's per-epoch table instead of its epoch bar")
    common.add_argument("--device", type=_device, default="auto",
                        help="where the networks run: auto (CUDA when present), cpu, cuda, cuda:1, ... (default auto)")
    return common


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="skcxr", description="Multi-label chest X-ray classification with scikit-learn estimators.")
    parser.add_argument("--version", action="version", version=_version_text())
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    common = _common()

    p = sub.add_parser("demo", parents=[common],
                       help="train on synthetic phantom radiographs and print the results table")
    p.add_argument("--n-images", type=_int_at_least(MIN_IMAGES), default=400,
                   help=f"number of phantoms, at least {MIN_IMAGES} (default 400)")
    p.add_argument("--size", type=_int_at_least(MIN_SIZE), default=128,
                   help=f"image side in pixels, at least {MIN_SIZE} (default 128)")
    p.add_argument("--test-size", type=_fraction, default=0.25,
                   help="fraction of patients held out, in (0, 1) (default 0.25)")
    p.set_defaults(func=demo)

    p = sub.add_parser("run", parents=[common],
                       help="train and evaluate on ChestX-ray14 folders with a patient-wise split")
    p.add_argument("--data", required=True, nargs="+", type=_folder, metavar="DIR",
                   help="folder(s) with Data_Entry_2017*.csv(.gz) and images/ (or NIH's images_0NN/images/); "
                        "with several, each is a source scored on its own as well")
    p.add_argument("--size", type=_int_at_least(MIN_SIZE), default=224,
                   help=f"image side in pixels, at least {MIN_SIZE} (default 224)")
    p.add_argument("--test-size", type=_fraction, default=0.2,
                   help="fraction of patients held out, in (0, 1) (default 0.2)")
    p.add_argument("--views", nargs="+", default=None, help="keep only these view positions, e.g. PA AP")
    p.add_argument("--report", type=Path, default=None, metavar="DIR",
                   help="also write DIR/report.html: one self-contained page with the results, per-finding AUCs, "
                        "ROC and calibration curves, subgroups, a gallery with lung masks and a model card")
    p.add_argument("--save-model", type=Path, default=None, metavar="PATH",
                   help="write the fitted model (--save-which) and its description to PATH (one file, "
                        "replaced atomically; e.g. model.skcxr), for 'skcxr predict' (a pickle: share it only "
                        "with people who trust you); checked before training")
    p.add_argument("--save-which", choices=sorted(SAVEABLE), default="hybrid",
                   help="which of the trained models --save-model writes (default hybrid)")
    p.set_defaults(func=run)

    p = sub.add_parser("tune", parents=[common],
                       help="tune a classifier on LBP+HOG features with Optuna, by patient-grouped CV")
    p.add_argument("--data", required=True, nargs="+", type=_folder, metavar="DIR",
                   help="folder(s) with Data_Entry_2017*.csv(.gz) and images/, as for 'skcxr run'")
    p.add_argument("--model", choices=sorted(TUNE_SPACES), default="lr",
                   help="lr: logistic regression (tunes C); mlp: the skorch MLP (lr, width, dropout, weight "
                        "decay; hopeless trials are pruned by their validation loss) (default lr)")
    p.add_argument("--n-trials", type=_int_at_least(1), default=20,
                   help="completed trials the study should hold, counting earlier runs (default 20)")
    p.add_argument("--storage", type=_storage_url, default=None, metavar="URL",
                   help="database of the study, e.g. sqlite:///study.db: reruns continue it and several "
                        "processes share it (default: in memory)")
    p.add_argument("--study-name", default=None, help="name of the study in the storage (default skcxr-MODEL)")
    p.add_argument("--timeout", type=_number(float, lambda v: v > 0, "a positive number of seconds"),
                   default=None, help="start no new trial after this many seconds")
    p.add_argument("--cv", type=_int_at_least(2), default=3, help="patient-grouped folds per trial (default 3)")
    p.add_argument("--size", type=_int_at_least(MIN_SIZE), default=224,
                   help=f"image side in pixels, at least {MIN_SIZE} (default 224)")
    p.add_argument("--test-size", type=_fraction, default=0.2,
                   help="fraction of patients held out as in 'skcxr run' and never used here (default 0.2)")
    p.add_argument("--views", nargs="+", default=None, help="keep only these view positions, e.g. PA AP")
    p.add_argument("--seed", type=int, default=0,
                   help="random seed of the split and the models, and of the sampler without --storage (with "
                        "one, each worker samples unseeded, so parallel workers try different values) (default 0)")
    p.add_argument("--n-jobs", type=_n_jobs, default=2,
                   help="parallel workers for the features, -1 for all cores (default 2)")
    p.set_defaults(func=tune_command)

    for p in (sub.choices["demo"], sub.choices["run"]):
        p.add_argument("--out", type=Path, default=None,
                       help="write results.csv, results.json, results.md and per_class_<model>.csv here")
        p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        p.add_argument("--n-jobs", type=_n_jobs, default=2, help="parallel workers, -1 for all cores (default 2)")
        p.add_argument("--n-boot", type=_int_at_least(1), default=1000,
                       help="patient-bootstrap resamples for the intervals (default 1000)")
        p.add_argument("--threshold-cv", type=_threshold_cv, default=3,
                       help="folds of the training-part CV that tunes the baseline's thresholds; "
                            "0 reports at 0.5 only (default 3)")
    p = sub.add_parser("explain", parents=[common],
                       help="draw the X-ray, Grad-CAM, U-Net lung mask and fused map of images")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files (PNG, JPEG, DICOM)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", type=Path, help="a fitted attention pipeline (make_attention_pipeline) saved "
                                                   "with skcxr.persistence.save_model or joblib.dump (only "
                                                   "load files you trust: they are pickles)")
    source.add_argument("--data", type=_folder, metavar="DIR",
                        help="train make_attention_pipeline on this ChestX-ray14 folder first (saved to "
                             "OUT/model.skcxr)")
    p.add_argument("--out", type=Path, required=True,
                   help="write <image>_attention.png here (<image>-2_attention.png, ... for inputs of one name)")
    p.add_argument("--finding", default=None, metavar="NAME",
                   help="draw the Grad-CAM and fused map of this finding (a label name of the model) for every "
                        "image (default: each image's most probable finding)")
    p.add_argument("--size", type=_int_at_least(MIN_SIZE), default=224,
                   help=f"image side for --data training, at least {MIN_SIZE} (default 224)")
    p.add_argument("--seed", type=int, default=0, help="random seed for --data training (default 0)")
    p.add_argument("--n-jobs", type=_n_jobs, default=2, help="parallel workers, -1 for all cores (default 2)")
    p.set_defaults(func=explain, views=None, split="random")

    p = sub.add_parser("predict", parents=[common],
                       help="apply a saved model to images: per-image probabilities and 0/1 predictions as CSV")
    p.add_argument("images", nargs="*", type=Path, metavar="IMAGE", help="image files (PNG, JPEG, DICOM)")
    p.add_argument("--model", type=Path, required=True,
                   help="a model written by 'skcxr run --save-model' (a pickle: only load files you trust)")
    p.add_argument("--data", type=Path, default=None, metavar="DIR",
                   help="a folder of images (searched recursively); with a ChestX-ray14 label file "
                        "(Data_Entry_2017*.csv) its labels are used to score the predictions too")
    p.add_argument("--out", type=Path, required=True,
                   help="write probabilities.csv, predictions.csv (and metrics.json with labels, "
                        "unreadable.csv for bad files) here, removing those of an earlier run first")
    p.add_argument("--skip-bad", action="store_true",
                   help="exit 0 when some images cannot be read (their rows are left out either way, each "
                        "named in one line and in unreadable.csv; without it the exit status is 1)")
    p.add_argument("--n-jobs", type=_n_jobs, default=2, help="parallel workers, -1 for all cores (default 2)")
    p.add_argument("--n-boot", type=_int_at_least(1), default=1000,
                   help="patient-bootstrap resamples for the interval when labels are found (default 1000)")
    p.set_defaults(func=predict)
    for name in ("run", "tune"):
        sub.choices[name].add_argument(
            "--split", choices=("random", "official"), default="random",
            help="random: a patient-wise, label-stratified split (--test-size, --seed); official: NIH's "
                 "train_val_list.txt / test_list.txt in each --data folder (default random)")
    return parser
