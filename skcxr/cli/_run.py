"""``skcxr run``: both models on ChestX-ray14 folders, with the report and the saved model (private)."""

from __future__ import annotations

import numpy as np

from ._inputs import _train_test
from ._models import _evaluate, _import_estimators, _save
from ._options import _config, _say
from ._outputs import _check_model_path, _check_out
from ._writers import _report


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
        from ..report import write_report

        page = write_report(result, args.report, X_test=p_te, metadata=rows_te, config=_config(args))
        _say(args, f"wrote {page}")
    if args.save_model is not None:
        _save(args, result, p_tr, Y_tr, data, target_names)
