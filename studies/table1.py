"""The report's Table 1 on real NIH ChestX-ray14 radiographs, patient-wise.

Rows: logistic regression on LBP+HOG (the classical baseline); Base MLP (LBP +
HOG + ResNet18 features, CNN not fine-tuned); Fine-Tuned MLP (features of the
fine-tuned CNN only); DeeperMLP and Final Hybrid MLP (LBP + HOG + fine-tuned CNN
features); and the fine-tuned ResNet18 with its own head, end to end.

No pretrained weights can be downloaded on this machine: every ResNet18 starts
from random weights (``weights=None``) and is trained from scratch
(``fine_tune="all"``). Data and split as in ``classical_baseline.py``: nih + nih-64,
all images brought to a common 64 px (nih-64's native size), one patient-wise
75/25 split. The CNN is fine-tuned once (joblib cache) and shared by the rows
that need it.

    .venv/bin/python studies/table1.py       # ~15 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import time

import joblib
import matplotlib
import numpy as np
import pandas as pd
from _common import RESULTS, load_real_nih, machine, write_markdown
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import FeatureUnion, make_pipeline
from sklearn.preprocessing import StandardScaler

from skcxr.features import HOGFeatures, LBPFeatures, ResNetEmbedder
from skcxr.metrics import SCORERS, macro_auc_score
from skcxr.model_selection import MultilabelStratifiedGroupKFold, holdout_report
from skcxr.neural import MLP, DeeperMLP, MultilabelNeuralNetClassifier
from skcxr.pipelines import make_logistic_regression
from skcxr.preprocessing import CXRPreprocessor

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# chosen by studies/classical_baseline.py (grid search on the training part)
LR_C, HOG_CELL = 0.0001, (16, 16)
# MLP settings searched by patient-grouped CV on the training part (the first is the classifier's default)
MLP_GRID = [
    {"module__hidden": [(512,)], "module__dropout": [0.4], "optimizer__weight_decay": [0.01], "lr": [1e-3]},
    {"module__hidden": [(128,)], "module__dropout": [0.5], "optimizer__weight_decay": [0.1], "lr": [1e-4]},
    {"module__hidden": [(256,)], "module__dropout": [0.7], "optimizer__weight_decay": [1.0], "lr": [1e-4]},
]


def paired_bootstrap(Y, P_a, P_b, groups, n_boot=1000, seed=0):
    """Macro-AUC(a) - macro-AUC(b) on the test set and its 95 % interval, resampling test *patients*."""
    rng = np.random.default_rng(seed)
    patients = np.unique(groups)
    rows_of = {p: np.flatnonzero(groups == p) for p in patients}
    deltas = []
    for _ in range(n_boot):
        idx = np.concatenate([rows_of[p] for p in rng.choice(patients, len(patients))])
        deltas.append(macro_auc_score(Y[idx], P_a[idx]) - macro_auc_score(Y[idx], P_b[idx]))
    low, high = np.percentile(deltas, [2.5, 97.5])
    return macro_auc_score(Y, P_a) - macro_auc_score(Y, P_b), low, high


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="common image size (default 64)")
    parser.add_argument("--cnn-size", type=int, default=64, help="side the ResNet sees (default 64)")
    parser.add_argument("--epochs", type=int, default=25, help="max fine-tuning epochs (early stopping)")
    parser.add_argument("--lr", type=float, default=3e-4, help="fine-tuning learning rate")
    parser.add_argument("--patience", type=int, default=6, help="fine-tuning early-stopping patience")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    memory = joblib.Memory(RESULTS / "cache", verbose=0)

    p_tr, p_te, Y_tr, Y_te, g_tr, g_te, names = load_real_nih(seed=args.seed)
    prep = CXRPreprocessor(size=args.size, n_jobs=2)
    X_tr, X_te = prep.fit_transform(p_tr), prep.transform(p_te)

    def texture():
        return [("lbp", LBPFeatures(n_jobs=2)), ("hog", HOGFeatures(pixels_per_cell=HOG_CELL, n_jobs=2))]

    def cnn(fine_tune):
        return ("cnn", ResNetEmbedder(fine_tune=fine_tune, epochs=args.epochs, lr=args.lr, batch_size=64,
                                      patience=args.patience, image_size=args.cnn_size, memory=memory,
                                      random_state=args.seed))

    # Choose the MLP's settings once, by CV over training patients, on the hybrid features
    # (LBP + HOG + fine-tuned CNN, fitted on the training part; the CNN is cached and reused below).
    tic = time.perf_counter()
    F_tr = FeatureUnion(texture() + [cnn("all")]).fit_transform(X_tr, Y_tr)
    search = GridSearchCV(
        make_pipeline(StandardScaler(), MultilabelNeuralNetClassifier(MLP, random_state=args.seed)),
        [{f"multilabelneuralnetclassifier__{k}": v for k, v in grid.items()} for grid in MLP_GRID],
        scoring=SCORERS["macro_auc"], cv=MultilabelStratifiedGroupKFold(3, shuffle=True, random_state=args.seed),
    ).fit(F_tr, Y_tr, groups=g_tr)
    mlp_params = {k.split("__", 1)[1]: v for k, v in search.best_params_.items()}
    cv_lines = [f"| {({k.split('__', 1)[1]: v for k, v in p.items()})} | {m:.3f} |"
                for p, m in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"])]
    t_search = time.perf_counter() - tic
    print(f"MLP settings by CV: {mlp_params} ({t_search:.0f} s, includes fine-tuning)", flush=True)

    def mlp(module=MLP):
        params = {k: v for k, v in mlp_params.items() if module is MLP or k != "module__hidden"}
        return MultilabelNeuralNetClassifier(module, random_state=args.seed, **params)

    rows = {
        "Logistic regression (LBP+HOG)": make_pipeline(
            FeatureUnion(texture()), StandardScaler(), make_logistic_regression(LR_C)),
        "Base MLP (LBP+HOG+CNN, not fine-tuned)": make_pipeline(
            FeatureUnion(texture() + [cnn(None)]), StandardScaler(), mlp()),
        "Fine-Tuned MLP (fine-tuned CNN features)": make_pipeline(
            FeatureUnion([cnn("all")]), StandardScaler(), mlp()),
        "DeeperMLP (LBP+HOG+fine-tuned CNN)": make_pipeline(
            FeatureUnion(texture() + [cnn("all")]), StandardScaler(), mlp(DeeperMLP)),
        "Final Hybrid MLP (LBP+HOG+fine-tuned CNN)": make_pipeline(
            FeatureUnion(texture() + [cnn("all")]), StandardScaler(), mlp()),
        "ResNet18 end-to-end (own head)": ResNetEmbedder(**cnn("all")[1].get_params()),
    }
    table, reports = holdout_report(rows, X_tr, Y_tr, X_te, Y_te, target_names=names)

    baseline = "Logistic regression (LBP+HOG)"
    proba = {name: model.predict_proba(X_te) for name, model in rows.items()}
    table["ΔAUC vs LR [95% CI]"] = [
        "" if name == baseline else "{:+.3f} [{:+.3f}, {:+.3f}]".format(
            *paired_bootstrap(Y_te, proba[name], proba[baseline], g_te, seed=args.seed))
        for name in table.index]
    tuned = rows["ResNet18 end-to-end (own head)"]
    history = pd.DataFrame(tuned.history_)
    per_class = pd.DataFrame({n: r.per_class["AUC"] for n, r in reports.items()})

    fig, ax = plt.subplots(figsize=(10, 4.5))
    table[["Micro-F1", "Macro-F1", "Hamming loss", "Macro-AUC"]].T.plot.bar(ax=ax, rot=0, width=0.85)
    ax.set_ylim(0, 1)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_title(f"Patient-wise test set, {len(p_te)} real NIH radiographs ({args.size} px, no pretrained weights)")
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(RESULTS / "table1.png", dpi=110)

    text = "\n".join([
        "# Table 1 on real NIH ChestX-ray14 images (patient-wise)", "",
        f"Command: `.venv/bin/python studies/table1.py --size {args.size} --cnn-size {args.cnn_size} "
        f"--epochs {args.epochs} --lr {args.lr} --patience {args.patience} --seed {args.seed}`  ",
        f"Machine: {machine()}  ",
        f"Data: {len(p_tr)} train / {len(p_te)} test images (nih + nih-64), no patient on both sides; "
        f"images at {args.size} px, ResNet18 input {args.cnn_size} px. **No pretrained weights** "
        "(offline machine): ResNet18 trained from random initialisation (`weights=None, fine_tune=\"all\"`, "
        f"AdamW lr {args.lr}, batch 64, at most {args.epochs} epochs, early stopping with patience {args.patience} "
        "on a 15 % validation split). "
        "Seconds: wall time of a row's fit + predict, features included unless they came from the cache "
        "(the fine-tuning runs once, before the rows, for the MLP settings search).", "",
        table.to_markdown(floatfmt=[""] + [".3f"] * 4 + [".0f", ""]), "",
        "ΔAUC: macro-AUC difference to logistic regression on the same test images; the interval is a paired "
        "bootstrap over test patients (1000 resamples).", "",
        "CV macro-AUCs below are optimistic (the fine-tuned CNN saw every training image, so its features are "
        "fitted to the CV folds' validation images too); they only rank the MLP settings. The test set is "
        "untouched by any choice.", "",
        "![Table 1 chart](table1.png)", "",
        f"MLP settings (all MLP rows; DeeperMLP keeps its own layer sizes) chosen by 3-fold patient-grouped CV "
        f"on the training part, on the hybrid features ({t_search:.0f} s including the fine-tuning): "
        f"`{mlp_params}`.", "",
        "| MLP settings | CV macro-AUC |", "|---|---|", *cv_lines, "",
        f"Fine-tuning: {len(history)} epochs, best epoch {int(history.loc[history.best, 'epoch'].iloc[0])}, "
        f"{history.seconds.sum():.0f} s.", "",
        history.to_markdown(index=False, floatfmt=".3f"), "",
        "Per-class test AUC:", "",
        per_class.to_markdown(floatfmt=".3f"), "",
    ])
    print(text)
    write_markdown("table1.md", text)
    (RESULTS / "table1.json").write_text(json.dumps(
        {n: {**r.summary(), "seconds": table.loc[n, "Seconds"]} for n, r in reports.items()}, indent=2))


if __name__ == "__main__":
    main()
