"""Where the model looks, and whether looking at the lungs helps: localisation and classification for each λ.

1. **Localisation on phantoms** (exact lesion masks): a Grad-CAM network is
   fine-tuned on 500 phantoms; on 200 others, every positive (image, finding)
   gets its label's Grad-CAM map ``G``, the shipped U-Net's lung map ``U`` and
   their fusion ``F = λU + (1-λ)G`` (``AttentionFusion``, σ = 2 px). Pointing
   game (the map's peak inside the lesion, no tolerance) and IoU of the map
   ``>= 0.5`` with the lesion, for λ in LAMS, with image-bootstrap intervals.
2. **NIH boxes**: the shared NIH images that have an expert box
   (``BBox_List_2017.csv.gz``), case by case, with the Grad-CAM of the fold
   network that never trained on the image.
3. **Classification**: 5-fold patient-grouped CV over the 1,416 shared NIH
   images at 224 px; out-of-fold probabilities of the classical pipeline, the
   lung-guided texture, and the attention systems of
   ``make_attention_pipeline`` for each λ (the Grad-CAM maps of training
   images cross-fitted, ``cv=3``, as the pipeline does); macro-AUC and micro-F1 (at 0.5)
   pooled and within each source, with patient-bootstrap intervals, and the
   paired difference to the classical pipeline. Nothing is chosen here: every
   setting is the pipeline's default. The lung box margin and the logistic
   regression's C are the picks of ``studies/lung_variants.py``, made by
   inner CV inside these same outer folds' training parts; as they are the
   picks most folds made, the rows here are slightly optimistic, and
   ``lung_variants.md``'s nested rows are the unbiased estimate.

The U-Net maps, lung crops, texture features and Grad-CAM fine-tunings are
computed once per image or fold and combined per λ (the fusion and pooling are
the pipeline's own transformers); on fold 0 the study fits
``make_attention_pipeline()`` end to end and checks that it gives the same
probabilities as the row ``final λ=0.5``.

    .venv/bin/python studies/attention.py      # ~30 min on 2 cores (fine-tunings and features cached)
"""

from __future__ import annotations

import argparse
import inspect
import json
import time

import matplotlib
import numpy as np
import pandas as pd
import sklearn
from _common import RESULTS, ROOT, SHARED_DATA, machine, write_markdown
from choose_defaults import SOURCES, _fmt, bootstrap_weights, image_features, load_data, summarise
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

from skcxr._cache import check_memory
from skcxr.datasets import load_bboxes, make_phantoms
from skcxr.explain import GradCAM
from skcxr.features import HOGFeatures, LBPFeatures, ResNetEmbedder
from skcxr.fusion import AttentionFusion, MapPooler
from skcxr.lung_region import LungRegion
from skcxr.metrics import boxes_to_masks, map_iou, pointing_game
from skcxr.model_selection import MultilabelStratifiedGroupKFold
from skcxr.neural import MLP, MultilabelNeuralNetClassifier
from skcxr.pipelines import (ATTENTION_C, CAM_IMAGE_SIZE, DEFAULT_C, LUNG_MARGIN, make_attention_pipeline,
                             make_logistic_regression)
from skcxr.plotting import attention_panel
from skcxr.preprocessing import CXRPreprocessor
from skcxr.segmentation import load_lung_unet

matplotlib.use("Agg")

LAMS = (0.0, 0.25, 0.5, 0.6, 0.75, 1.0)
CAM_CV = inspect.signature(make_attention_pipeline).parameters["cv"].default  # the pipeline's cross-fitting
SIZE = 224
FOLDS = 5
N_BOOT = 1000
MEMORY = str(RESULTS / "cache" / "joblib")
FIGURES = ROOT / "studies" / "figures"
CLASSICAL = "classical (LBP+HOG, whole image)"


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def cam_network(seed, **params):
    """The Grad-CAM network of ``make_attention_pipeline`` (its default), seeded."""
    return ResNetEmbedder(fine_tune="all", image_size=CAM_IMAGE_SIZE, random_state=seed, **params)


def preprocess(paths):
    return CXRPreprocessor(size=SIZE, n_jobs=2).fit_transform(paths)


def texture(X):
    return np.hstack([LBPFeatures(n_jobs=2).fit_transform(X), HOGFeatures(n_jobs=2).fit_transform(X)])


def pooled(lungs, cams, lam):
    fused = AttentionFusion(lam=lam).transform(np.stack([lungs, cams], axis=1))
    return MapPooler(8).fit_transform(fused)


def fit_predict(F, Y, groups, train, test, classifier):
    scale = StandardScaler().fit(F[train])
    if isinstance(classifier, MultilabelNeuralNetClassifier):
        classifier.fit(scale.transform(F[train]), Y[train], groups=groups[train])
    else:
        classifier.fit(scale.transform(F[train]), Y[train])
    return classifier.predict_proba(scale.transform(F[test]))


def weighted_micro_f1(Y, P, W):
    """Micro-F1 at 0.5 of every bootstrap resample (``W``: image multiplicities)."""
    pred = P >= 0.5
    tp, fp, fn = ((pred & (Y == 1)).sum(1), (pred & (Y == 0)).sum(1), (~pred & (Y == 1)).sum(1))
    TP, FP, FN = W @ tp, W @ fp, W @ fn
    return 2 * TP / np.maximum(2 * TP + FP + FN, 1)


# -- 1. phantoms ------------------------------------------------------------------------------------


def phantom_localisation(seg, n_train=500, n_test=200, epochs=10):
    data = make_phantoms(n_train + n_test, size=SIZE, random_state=1)
    X = CXRPreprocessor(size=SIZE).fit_transform(data.images)
    tr, te = np.arange(n_train), np.arange(n_train, n_train + n_test)
    log(f"phantoms: fine-tuning the Grad-CAM network on {n_train} phantoms")
    cam = GradCAM(cam_network(0, epochs=epochs, lr=1e-3), target="all", memory=MEMORY).fit(X[tr], data.Y[tr])
    G = cam.transform(X[te])
    U = seg.transform(X[te])
    dice = seg.score(X[te], data.lung_masks[te])
    head_auc = roc_auc_score(data.Y[te], cam.cnn_.predict_proba(X[te]), average=None)
    items = [(i, k) for i, k in zip(*np.nonzero(data.Y[te]))]
    lesions = np.stack([data.lesion_masks[te][i, k] for i, k in items])
    rng = np.random.default_rng(0)
    rows = []
    for lam in LAMS:
        maps = AttentionFusion(lam=lam).transform(np.stack([U[[i for i, _ in items]],
                                                            G[[i for i, _ in items], [k for _, k in items]]], 1))
        _, hits = pointing_game(maps, lesions, return_hits=True)
        iou = map_iou(maps, lesions)
        boot = [hits[rng.integers(0, len(hits), len(hits))].mean() for _ in range(N_BOOT)]
        rows.append({"λ": lam, "pointing game": hits.mean(), "PG low": np.percentile(boot, 2.5),
                     "PG high": np.percentile(boot, 97.5), "mean IoU": np.nanmean(iou),
                     **{f"PG {data.target_names[k]}": hits[[kk == k for _, kk in items]].mean()
                        for k in range(len(data.target_names))}})
    chance = lesions.mean()
    # a panel: the first test phantom with two findings
    i = next(i for i in range(len(te)) if data.Y[te][i].sum() >= 2)
    k = int(np.flatnonzero(data.Y[te][i])[0])
    fused = AttentionFusion(lam=0.5).transform(np.stack([U[i : i + 1], G[i : i + 1, k]], 1))[0]
    box = data.boxes[(data.boxes.image == te[i]) & (data.boxes.finding == data.target_names[k])]
    boxes = [(*r, data.target_names[k]) for r in box[["x", "y", "w", "h"]].to_numpy()]
    attention_panel(X[te][i], G[i, k], U[i], fused, boxes=boxes,
                    title=f"Phantom {te[i]}: {data.target_names[k]} (Grad-CAM of that label), λ=0.5").savefig(
        FIGURES / "attention_panel_phantom.png", dpi=90)
    return pd.DataFrame(rows), {"unet_dice_phantom_lungs": dice, "lesion_share": chance, "items": len(items),
                                "cnn_head_auc": {n: round(float(a), 3) for n, a in zip(data.target_names, head_auc)}}


# -- 3. classification --------------------------------------------------------------------------------


def classification(paths, Y, groups, source, names, seg, folds):
    """Out-of-fold probabilities of every row, the NIH box cases, and the pipeline check (fold 0)."""
    feats = image_features(paths, SIZE, log)  # whole-image LBP, HOG, random ResNet18 (choose_defaults' cache)
    memory = check_memory(MEMORY)  # keyed on content (image bytes, arrays) and skcxr's code version
    X = memory.cache(preprocess)(paths)
    log("U-Net maps and lung-guided texture")
    lungs = seg.transform(X)  # cached by the segmenter's memory
    region = LungRegion(FrozenEstimator(seg), margin=LUNG_MARGIN).fit(X)  # the pipeline's lung box
    lung_tex = memory.cache(texture)(region.transform(X))
    whole = np.hstack([feats["lbp"], feats["hog"]])

    bbox = load_bboxes(SHARED_DATA / "BBox_List_2017.csv.gz")
    names_of = pd.Series(np.arange(len(paths)), index=[p.rsplit("/", 1)[-1] for p in paths])
    bbox = bbox[bbox.image.isin(names_of.index)].reset_index(drop=True)
    bbox["row"] = names_of[bbox.image].to_numpy()

    splitter = MultilabelStratifiedGroupKFold(folds, shuffle=True, random_state=0)
    proba, cases, check = {}, [], None
    for k, (train, test) in enumerate(splitter.split(X, Y, groups)):
        log(f"fold {k}: Grad-CAM network on {len(train)} images")
        cam = GradCAM(cam_network(k), cv=CAM_CV, memory=MEMORY)
        G = np.empty(X.shape, np.float32)  # training rows: cross-fitted maps (the pipeline's default cv)
        G[train] = cam.fit_transform(X[train], Y[train], groups=groups[train])
        G[test] = cam.transform(X[test])
        blocks = {  # name: (features, C): the classical C for one image's texture, the attention C for two
            CLASSICAL: (whole, DEFAULT_C),
            "lung-guided LBP+HOG only": (lung_tex, DEFAULT_C),
            "whole + lung-guided LBP+HOG": (np.hstack([whole, lung_tex]), ATTENTION_C),
            "final system without attention maps": (np.hstack([whole, lung_tex, feats["cnn"]]), ATTENTION_C),
        }
        for lam in LAMS:
            blocks[f"final system, λ={lam:g}"] = (np.hstack([whole, lung_tex, feats["cnn"], pooled(lungs, G, lam)]),
                                                  ATTENTION_C)
        for name, (F, C) in blocks.items():
            lr = make_logistic_regression(C).set_params(n_jobs=2)
            proba.setdefault(name, np.zeros(Y.shape))[test] = fit_predict(F, Y, groups, train, test, lr)
        for lam in LAMS:
            mlp = MultilabelNeuralNetClassifier(MLP, random_state=k)
            proba.setdefault(f"maps only → MLP, λ={lam:g}", np.zeros(Y.shape))[test] = fit_predict(
                pooled(lungs, G, lam), Y, groups, train, test, mlp)
        # NIH boxes of this fold's test images
        for _, b in bbox[bbox.row.isin(test)].iterrows():
            i, label = int(b.row), names.index(b.finding)
            g = cam.set_params(target=label).transform(X[i : i + 1])
            box = np.array([[b.x, b.y, b.w, b.h]]) * SIZE / 1024
            row = {"image": b.image, "source": source[i], "finding": b.finding,
                   "label in Y": int(Y[i, label]), "CNN prob": float(cam.cnn_.predict_proba(X[i : i + 1])[0, label])}
            for lam in (0.0, 0.5, 1.0):
                m = AttentionFusion(lam=lam).transform(np.stack([lungs[i : i + 1], g], 1))
                row[f"hit λ={lam:g}"] = bool(pointing_game(m, box, return_hits=True)[1][0])
                row[f"IoU λ={lam:g}"] = float(map_iou(m, boxes_to_masks(box, m.shape[1:]))[0])
            cases.append(row)
            if len(cases) == 1:
                fused = AttentionFusion(lam=0.5).transform(np.stack([lungs[i : i + 1], g], 1))[0]
                attention_panel(X[i], g[0], lungs[i], fused, boxes=[(*box[0], b.finding)],
                                title=f"{b.image} ({source[i]}): {b.finding}, Grad-CAM of the fold network that "
                                      f"never saw it, λ=0.5").savefig(FIGURES / "attention_panel_nih.png", dpi=90)
        if k == 0:
            log("fold 0: make_attention_pipeline() end to end")
            pipe = make_attention_pipeline(cnn=cam_network(0), memory=MEMORY, random_state=0)
            with sklearn.config_context(enable_metadata_routing=True):
                pipe.fit(paths[train], Y[train], groups=groups[train])
            check = float(np.abs(pipe.predict_proba(paths[test]) - proba["final system, λ=0.5"][test]).max())
            log(f"pipeline vs study row: max |Δp| = {check:.2e}")

    return proba, cases, check


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="a tiny run that checks the script; writes no results")
    args = parser.parse_args()
    t_start = time.perf_counter()
    FIGURES.mkdir(parents=True, exist_ok=True)
    seg = load_lung_unet(memory=MEMORY)
    loc, loc_info = phantom_localisation(seg, *((40, 20, 1) if args.smoke else ()))
    log(f"phantoms done: U-Net Dice on phantom lungs {loc_info['unet_dice_phantom_lungs']:.3f}")
    paths, Y, groups, source, names = load_data()
    folds = FOLDS
    if args.smoke:  # 300 images (the nih ones first: most of the boxes), 2 folds
        keep = np.r_[0:150, 421:571]
        paths, Y, groups, source, folds = paths[keep], Y[keep], groups[keep], source[keep], 2
    proba, cases, check = classification(paths, Y, groups, source, names, seg, folds)
    if args.smoke:
        return log(f"smoke run done: {len(proba)} rows, {len(cases)} box cases, pipeline check {check:.2e}")
    W = bootstrap_weights(groups, N_BOOT, seed=0)
    result = summarise(Y, proba, source, W, CLASSICAL)
    scopes = {"pooled": np.ones(len(Y), bool), **{s: source == s for s in SOURCES}}
    f1 = {}
    for name, P in proba.items():
        for scope, mask in scopes.items():
            b = weighted_micro_f1(Y, P, W * mask)
            point = weighted_micro_f1(Y, P, mask[None].astype(float))[0]
            f1.setdefault(name, {})[scope] = (point, *np.percentile(b, [2.5, 97.5]))
    write_report(loc, loc_info, pd.DataFrame(cases), result, f1, check, time.perf_counter() - t_start)


def write_report(loc, loc_info, cases, result, f1, check, seconds):
    lines = ["# Attention: localisation and classification by λ (`studies/attention.py`)", "",
             f"Machine: {machine()}; {seconds / 60:.0f} min.", "",
             "## 1. Localisation on phantoms (exact lesion masks)", "",
             f"{loc_info['items']} positive (image, finding) pairs in 200 test phantoms; Grad-CAM of the label's "
             f"own map; pointing game without tolerance (a uniformly random point hits {loc_info['lesion_share']:.3f} "
             f"of the time); IoU of the map >= 0.5. U-Net Dice on the phantoms' lungs: "
             f"{loc_info['unet_dice_phantom_lungs']:.3f}. The Grad-CAM network's own AUC per finding: "
             f"{loc_info['cnn_head_auc']}.", "",
             loc.round(3).to_markdown(index=False), "",
             "## 2. NIH images with expert boxes (case by case)", "",
             cases.round(3).to_markdown(index=False) if len(cases) else "(none)", "",
             "## 3. Classification, 5-fold patient-grouped CV, out-of-fold (1,416 images)", "",
             "Macro-AUC [95 % patient-bootstrap CI] | Δ vs the classical pipeline [paired CI]:", "",
             "| model | pooled | " + " | ".join(f"within {s}" for s in SOURCES) + " |",
             "|---|---|" + "---|" * len(SOURCES)]
    for name, r in result.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(r[s], delta=name != CLASSICAL) for s in ("pooled", *SOURCES))
                     + " |")
    lines += ["", "Micro-F1 at 0.5 [95 % patient-bootstrap CI]:", "",
              "| model | pooled | " + " | ".join(f"within {s}" for s in SOURCES) + " |",
              "|---|---|" + "---|" * len(SOURCES)]
    for name, r in f1.items():
        lines.append(f"| {name} | " + " | ".join(f"{v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]"
                                                 for v in (r[s] for s in ("pooled", *SOURCES))) + " |")
    lines += ["", f"`make_attention_pipeline()` fitted end to end on fold 0 vs the row 'final system, λ=0.5': "
                  f"max |Δ probability| = {check:.2e}."]
    text = "\n".join(lines) + "\n"
    print(write_markdown("attention.md", text))
    (RESULTS / "attention.json").write_text(json.dumps(
        {"localisation": loc.to_dict(orient="records"), "info": {k: str(v) for k, v in loc_info.items()},
         "cases": cases.to_dict(orient="records"), "auc": result, "micro_f1": f1, "pipeline_check": check},
        indent=1, default=float))


if __name__ == "__main__":
    main()
