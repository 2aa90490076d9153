"""The ``skcxr`` command: ``skcxr demo`` on the embedded phantoms, ``skcxr run`` on a ChestX-ray14 folder."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _fit_and_report(models: dict, X_train, Y_train, X_test, Y_test, target_names):
    """Fit each model on the training part; return {name: report} on the test part and the wall times."""
    from .metrics import multilabel_report

    reports, seconds = {}, {}
    for name, model in models.items():
        start = time.perf_counter()
        model.fit(X_train, Y_train)
        reports[name] = multilabel_report(Y_test, model.predict_proba(X_test), target_names=target_names)
        seconds[name] = time.perf_counter() - start
    return reports, seconds


def _models(args) -> dict:
    from .pipelines import make_classical_pipeline

    return {"Logistic regression (LBP+HOG)": make_classical_pipeline(size=args.size, n_jobs=args.n_jobs)}


def _print_and_save(reports, seconds, out: Path | None, config: dict) -> None:
    table = pd.concat([report.to_frame(name) for name, report in reports.items()])
    table["Fit+predict (s)"] = [round(seconds[name], 1) for name in table.index]
    print(table.to_markdown(floatfmt=".3f"))
    for name, report in reports.items():
        print(f"\nPer-class results, {name}:")
        print(report.per_class.to_markdown(floatfmt=".3f"))
        if report.undefined_auc:
            print("AUC undefined (one label value only in the test set): " + ", ".join(report.undefined_auc))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        table.to_csv(out / "results.csv")
        for i, (name, report) in enumerate(reports.items()):
            report.per_class.to_csv(out / f"per_class_{i}.csv")
        payload = {"config": config, "results": {
            name: {**report.summary(), "per_class_auc": report.per_class["AUC"].to_dict(),
                   "undefined_auc": list(report.undefined_auc), "seconds": seconds[name]}
            for name, report in reports.items()}}
        (out / "results.json").write_text(json.dumps(payload, indent=2, default=float))
        print(f"\nwrote {out / 'results.csv'} and {out / 'results.json'}")


def demo(args) -> None:
    from .datasets import make_phantoms
    from .model_selection import train_test_split_by_patient

    data = make_phantoms(args.n_images, size=args.size, random_state=args.seed)
    X_tr, X_te, Y_tr, Y_te = train_test_split_by_patient(
        data.images, data.Y, groups=data.patient_ids, stratify=data.Y, test_size=0.25,
        random_state=args.seed)
    print(f"Phantoms: {len(X_tr)} train / {len(X_te)} test images at {args.size} px, "
          f"findings: {', '.join(data.target_names)}\n")
    reports, seconds = _fit_and_report(_models(args), X_tr, Y_tr, X_te, Y_te, data.target_names)
    _print_and_save(reports, seconds, args.out, vars(args))


def run(args) -> None:
    from .datasets import load_chestxray14
    from .model_selection import train_test_split_by_patient

    if not Path(args.data).is_dir():
        raise FileNotFoundError(f"--data {args.data}: no such folder")
    data = load_chestxray14(args.data, views=args.views, missing="drop")
    paths_tr, paths_te, Y_tr, Y_te = train_test_split_by_patient(
        data.paths, data.Y, groups=data.patient_ids, stratify=data.Y, test_size=args.test_size,
        random_state=args.seed)
    n_patients = len(np.unique(data.patient_ids))
    print(f"ChestX-ray14 at {args.data}: {len(data.paths)} images of {n_patients} patients; "
          f"patient-wise split {len(paths_tr)} train / {len(paths_te)} test images\n")
    reports, seconds = _fit_and_report(_models(args), paths_tr, Y_tr, paths_te, Y_te, data.target_names)
    _print_and_save(reports, seconds, args.out, {k: str(v) for k, v in vars(args).items() if k != "func"})


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skcxr", description="Multi-label chest X-ray classification with scikit-learn estimators.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="train on synthetic phantom radiographs and print the results table")
    p.add_argument("--n-images", type=int, default=400, help="number of phantoms (default 400)")
    p.add_argument("--size", type=int, default=128, help="image side in pixels (default 128)")
    p.set_defaults(func=demo)

    p = sub.add_parser("run", help="train and evaluate on a ChestX-ray14 folder with a patient-wise split")
    p.add_argument("--data", required=True,
                   help="folder with Data_Entry_2017*.csv(.gz) and images/ (or NIH's images_0NN/images/)")
    p.add_argument("--size", type=int, default=224, help="image side in pixels (default 224)")
    p.add_argument("--test-size", type=float, default=0.2, help="fraction of patients held out (default 0.2)")
    p.add_argument("--views", nargs="+", default=None, help="keep only these view positions, e.g. PA AP")
    p.set_defaults(func=run)

    for p in sub.choices.values():
        p.add_argument("--out", type=Path, default=None, help="write results.csv/results.json here")
        p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        p.add_argument("--n-jobs", type=int, default=2, help="parallel workers (default 2)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``skcxr`` console script."""
    args = _parser().parse_args(argv)
    try:
        args.func(args)
    except (FileNotFoundError, ValueError) as exc:
        print(f"skcxr: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
