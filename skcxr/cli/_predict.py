"""``skcxr predict``: a saved model applied to images, per-image probabilities and 0/1 predictions (private)."""

from __future__ import annotations

import json
import os
import sys
import warnings

import numpy as np
from PIL import Image

from ._errors import _error_line, _UsageError
from ._inputs import _check_images, _load, _load_model
from ._models import _import_estimators
from ._options import _configure, _say
from ._outputs import _check_out


#: Image files ``skcxr predict --data`` picks up.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm", ".dicom")


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

    from ..datasets.io import read_image

    def problem(path):
        try:
            read_image(path)
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            return _error_line(exc)
        return None

    reasons = Parallel(n_jobs=n_jobs, prefer="threads")(delayed(problem)(p) for p in paths)
    return {p: r for p, r in zip(paths, reasons) if r is not None}


def _warn_if_seen(paths, description) -> None:
    """Warn when some images were in the model's training data (by file name and size): their scores flatter it."""
    from ..persistence import image_fingerprints

    seen = set(((description or {}).get("data") or {}).get("images_seen") or ())
    if seen:
        n = sum(key in seen for key in image_fingerprints(paths))
        if n:
            warnings.warn(f"{n} of {len(paths)} images were in the model's training data (same file name and size): "
                          "their scores are optimistic, not a test of the model", UserWarning, stacklevel=2)


def predict(args) -> None:
    import pandas as pd

    from ..evaluation import bootstrap_macro_auc

    _import_estimators()
    _check_out(args.out)
    for name in PREDICT_OUTPUTS:
        (args.out / name).unlink(missing_ok=True)
    paths, Y, groups = _images_to_predict(args)
    model, names, thresholds, description = _load_model(args.model)
    _configure(model, args)
    _warn_if_seen(paths, description)
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
