"""The ``skcxr`` command: ``skcxr demo`` on the embedded phantoms, ``skcxr run`` on a ChestX-ray14 folder."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def _models(args) -> dict:
    from .pipelines import make_classical_pipeline, make_hybrid_pipeline

    return {
        "Logistic regression (LBP+HOG)": make_classical_pipeline(size=args.size, n_jobs=args.n_jobs),
        "Hybrid MLP (LBP+HOG+ResNet18)": make_hybrid_pipeline(
            size=args.size, n_jobs=args.n_jobs, random_state=args.seed),
    }


def _config(args) -> dict:
    return {key: value if isinstance(value, (int, float)) else str(value)
            for key, value in vars(args).items() if key != "func"}


def _print_and_save(table, reports, out: Path | None, config: dict) -> None:
    print(table.to_markdown(floatfmt=[""] + [".3f"] * 4 + [".1f"]))
    for name, report in reports.items():
        print(f"\nPer-class results, {name}:")
        print(report.per_class.to_markdown(floatfmt=[""] + [".3f"] * 4 + [".0f", ".3f"]))
        if report.undefined_auc:
            print("AUC undefined (one label value only in the test set): " + ", ".join(report.undefined_auc))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        table.to_csv(out / "results.csv")
        for i, (name, report) in enumerate(reports.items()):
            report.per_class.to_csv(out / f"per_class_{i}.csv")
        payload = {"config": config, "results": {
            name: {**report.summary(), "per_class_auc": report.per_class["AUC"].to_dict(),
                   "undefined_auc": list(report.undefined_auc), "seconds": table.loc[name, "Seconds"]}
            for name, report in reports.items()}}
        (out / "results.json").write_text(json.dumps(payload, indent=2, default=float))
        print(f"\nwrote {out / 'results.csv'} and {out / 'results.json'}")


def demo(args) -> None:
    from .datasets import make_phantoms
    from .model_selection import holdout_report, train_test_split_by_patient

    data = make_phantoms(args.n_images, size=args.size, random_state=args.seed)
    X_tr, X_te, Y_tr, Y_te = train_test_split_by_patient(
        data.images, data.Y, groups=data.patient_ids, stratify=data.Y, test_size=0.25,
        random_state=args.seed)
    print(f"Phantoms: {len(X_tr)} train / {len(X_te)} test images at {args.size} px, "
          f"findings: {', '.join(data.target_names)}\n")
    table, reports = holdout_report(_models(args), X_tr, Y_tr, X_te, Y_te, target_names=data.target_names)
    _print_and_save(table, reports, args.out, _config(args))


def run(args) -> None:
    from .datasets import load_chestxray14
    from .model_selection import holdout_report, train_test_split_by_patient

    if not Path(args.data).is_dir():
        raise FileNotFoundError(f"--data {args.data}: no such folder")
    data = load_chestxray14(args.data, views=args.views, missing="drop")
    paths_tr, paths_te, Y_tr, Y_te = train_test_split_by_patient(
        data.paths, data.Y, groups=data.patient_ids, stratify=data.Y, test_size=args.test_size,
        random_state=args.seed)
    n_patients = len(np.unique(data.patient_ids))
    print(f"ChestX-ray14 at {args.data}: {len(data.paths)} images of {n_patients} patients; "
          f"patient-wise split {len(paths_tr)} train / {len(paths_te)} test images\n")
    table, reports = holdout_report(_models(args), paths_tr, Y_tr, paths_te, Y_te, target_names=data.target_names)
    _print_and_save(table, reports, args.out, _config(args))


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
