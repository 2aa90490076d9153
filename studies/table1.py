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
from sklearn.pipeline import FeatureUnion, make_pipeline
from sklearn.preprocessing import StandardScaler

from skcxr.features import HOGFeatures, LBPFeatures, ResNetEmbedder
from skcxr.metrics import multilabel_report
from skcxr.neural import MLP, DeeperMLP, MultilabelNeuralNetClassifier
from skcxr.pipelines import make_logistic_regression
from skcxr.preprocessing import CXRPreprocessor

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# chosen by studies/classical_baseline.py (grid search on the training part)
LR_C, HOG_CELL = 0.01, (8, 8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="common image size (default 64)")
    parser.add_argument("--cnn-size", type=int, default=64, help="side the ResNet sees (default 64)")
    parser.add_argument("--epochs", type=int, default=20, help="max fine-tuning epochs (early stopping)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    memory = joblib.Memory(RESULTS / "cache", verbose=0)

    p_tr, p_te, Y_tr, Y_te, _, names = load_real_nih(seed=args.seed)
    prep = CXRPreprocessor(size=args.size, n_jobs=2)
    X_tr, X_te = prep.fit_transform(p_tr), prep.transform(p_te)

    def texture():
        return [("lbp", LBPFeatures(n_jobs=2)), ("hog", HOGFeatures(pixels_per_cell=HOG_CELL, n_jobs=2))]

    def cnn(fine_tune):
        return ("cnn", ResNetEmbedder(fine_tune=fine_tune, epochs=args.epochs, lr=1e-3, batch_size=64,
                                      image_size=args.cnn_size, memory=memory, random_state=args.seed))

    def mlp(module=MLP):
        return MultilabelNeuralNetClassifier(module, random_state=args.seed)

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
    reports, seconds = {}, {}
    for name, model in rows.items():
        tic = time.perf_counter()
        model.fit(X_tr, Y_tr)
        reports[name] = multilabel_report(Y_te, model.predict_proba(X_te), target_names=names)
        seconds[name] = time.perf_counter() - tic
        print(f"{name}: macro-AUC {reports[name].macro_auc:.3f} ({seconds[name]:.0f} s)", flush=True)

    tuned = rows["ResNet18 end-to-end (own head)"]
    history = pd.DataFrame(tuned.history_)
    table = pd.concat([r.to_frame(n) for n, r in reports.items()])
    table["Wall time (s)"] = [round(seconds[n]) for n in table.index]
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
        f"--epochs {args.epochs} --seed {args.seed}`  ",
        f"Machine: {machine()}  ",
        f"Data: {len(p_tr)} train / {len(p_te)} test images (nih + nih-64), no patient on both sides; "
        f"images at {args.size} px, ResNet18 input {args.cnn_size} px. **No pretrained weights** "
        "(offline machine): ResNet18 trained from random initialisation (`weights=None, fine_tune=\"all\"`, "
        f"AdamW lr 1e-3, batch 64, at most {args.epochs} epochs, early stopping on a 15 % validation split). "
        "Wall time of a row includes fitting its features unless they came from the cache "
        "(the fine-tuning runs once, in the first row that needs it).", "",
        table.to_markdown(floatfmt=".3f"), "",
        "![Table 1 chart](table1.png)", "",
        f"Fine-tuning: {len(history)} epochs, best epoch {int(history.loc[history.best, 'epoch'].iloc[0])}, "
        f"{history.seconds.sum():.0f} s.", "",
        history.to_markdown(index=False, floatfmt=".3f"), "",
        "Per-class test AUC:", "",
        per_class.to_markdown(floatfmt=".3f"), "",
    ])
    print(text)
    write_markdown("table1.md", text)
    (RESULTS / "table1.json").write_text(json.dumps(
        {n: {**r.summary(), "seconds": seconds[n]} for n, r in reports.items()}, indent=2))


if __name__ == "__main__":
    main()
