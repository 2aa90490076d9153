"""The defaults rebuilt on pretrained backbones, chosen by nested patient-grouped CV on the 1,416 shared NIH images.

Candidates, fixed before the run (every one a frozen backbone: features are
computed once per backbone, region and resolution, then only the classifier
varies):

- backbone and resolution: ImageNet EfficientNet-Lite0 at 224 px, Lite2 at its
  native 260 px (both ``weights="imagenet"``, loaded offline), and the random
  ResNet18 at 224 px of the previous defaults;
- pooling of the last post-activation map: ``avg`` or ``avgmax`` (mean and
  maximum);
- region: the whole image (``make_hybrid_pipeline``), or the whole image and the
  shipped U-Net's lung box (``LungRegion(margin=LUNG_MARGIN)``), each with its
  own LBP+HOG and CNN features (``make_attention_pipeline``'s branches);
- whether LBP+HOG join the CNN features (``texture=True/False``);
- logistic regression (``make_logistic_regression``) with C in ``CS``.

For each of 5 outer folds (patient-grouped, label-stratified, the folds of
``studies/attention.py``), every candidate is scored by 3-fold patient-grouped
CV inside the outer training part only, with the mean within-source macro-AUC
as the criterion; the best is refitted on the outer training part and scored on
the outer fold. Two searches: the hybrid's (whole image only) and the attention
system's (whole image + lung box). Δ is each outer fold's own macro-AUC minus
the classical pipeline's, averaged over folds, with a paired patient-bootstrap
interval (``lung_variants.foldwise_delta``: a nested row mixes models whose
probabilities spread differently). Each candidate's own out-of-fold row is
shown for reference; choosing from those rows would be choosing on the test
folds. The defaults of ``skcxr.pipelines`` are the picks most outer folds made.

A partly fine-tuned candidate is scored in ``studies/attention.py``, on these
same outer folds: the attention pipeline's Grad-CAM network (Lite0 with its last
stage fine-tuned, ``fine_tune="last"``, at 128 px) by its own head. Its cost on
2 cores (four fine-tunings per fold with the cross-fitting) allows no inner
search here.

    .venv/bin/python studies/pretrained_defaults.py     # ~25 min on 2 cores with a cold cache
"""

from __future__ import annotations

import argparse
import collections
import json
import time

import numpy as np
from _common import RESULTS, GramSplit, machine, write_markdown
from attention import FOLDS, MEMORY, N_BOOT, SIZE, log, preprocess, texture
from choose_defaults import SOURCES, bootstrap_weights, image_features, load_data, summarise
from lung_variants import INNER, auc_table, fit_predict, foldwise_delta, within_source_auc
from sklearn.frozen import FrozenEstimator

from skcxr.cache import check_memory
from skcxr.features import CNNEmbedder
from skcxr.lung_region import LungRegion
from skcxr.model_selection import MultilabelStratifiedGroupKFold
from skcxr.pipelines import DEFAULT_C, LUNG_MARGIN
from skcxr.preprocessing import CXRPreprocessor
from skcxr.segmentation import load_lung_unet

BACKBONES = {"lite0": ("efficientnet_lite0", 224), "lite2": ("efficientnet_lite2", 260)}
POOLINGS = ("avg", "avgmax")
CS = (1e-5, 3e-5, 1e-4, 3e-4)
CLASSICAL = "classical: LBP+HOG whole image, C=1e-4"
TODAY = {"hybrid": "today's hybrid: LBP+HOG + random ResNet18, C=1e-4",
         "attention": "today's attention branches: LBP+HOG whole + lung box + random ResNet18, C=3e-5"}


def preprocess_at(paths, size):
    return CXRPreprocessor(size=size, n_jobs=2).fit_transform(paths)


def embed(X, backbone, size, tic):
    """avgmax embeddings of a stack (the avg embedding is their first half), cached by content."""
    emb = CNNEmbedder(backbone, weights="imagenet", pooling="avgmax", image_size=size, memory=MEMORY)
    out = emb.fit(X).transform(X)
    log(f"  {backbone} at {size} px: {out.shape[1]} features, {time.perf_counter() - tic:.0f} s")
    return out


def blocks(paths):
    """Every feature block: texture and CNN features of the whole image and of the lung box."""
    memory = check_memory(MEMORY)
    seg = load_lung_unet(memory=MEMORY)
    feats = image_features(paths, SIZE, log)  # whole-image LBP, HOG, random ResNet18 at 224 px (cached)
    out = {"tex whole": np.hstack([feats["lbp"], feats["hog"]]), "resnet18 whole": feats["cnn"]}
    seconds = {}
    for name, (backbone, size) in BACKBONES.items():
        X = memory.cache(preprocess)(paths) if size == SIZE else memory.cache(preprocess_at)(paths, size)
        lungs = LungRegion(FrozenEstimator(seg), margin=LUNG_MARGIN).fit(X).transform(X)
        if size == SIZE:
            out["tex lung"] = memory.cache(texture)(lungs)
        tic = time.perf_counter()
        out[f"{name} whole"] = embed(X, backbone, size, tic)
        seconds[name] = time.perf_counter() - tic
        out[f"{name} lung"] = embed(lungs, backbone, size, time.perf_counter())
    return out, seconds


def candidates(B):
    """name -> (family, feature blocks, C); a block ``"lite0 whole avg"`` is the first half of the avgmax one."""
    cands = {TODAY["hybrid"]: ("reference", ["tex whole", "resnet18 whole"], DEFAULT_C),
             TODAY["attention"]: ("reference", ["tex whole", "tex lung", "resnet18 whole"], 3e-5)}
    for name in BACKBONES:
        for pool in POOLINGS:
            for C in CS:
                cnn = [f"{name} whole {pool}"]
                cands[f"hybrid: LBP+HOG + {name} {pool}, C={C:g}"] = ("hybrid", ["tex whole", *cnn], C)
                cands[f"hybrid: {name} {pool} only, C={C:g}"] = ("hybrid", cnn, C)
                lung = [f"{name} whole {pool}", f"{name} lung {pool}"]
                cands[f"attention: LBP+HOG + {name} {pool}, whole + lung box, C={C:g}"] = (
                    "attention", ["tex whole", "tex lung", *lung], C)
                cands[f"attention: {name} {pool} only, whole + lung box, C={C:g}"] = ("attention", lung, C)
    return cands


def split_blocks(B):
    """The feature blocks as the solver sees them: each avgmax embedding split into its mean and max halves."""
    out = {}
    for name, F in B.items():
        if name.startswith(tuple(BACKBONES)):
            half = F.shape[1] // 2
            out[f"{name} avg"], out[f"{name} max"] = F[:, :half], F[:, half:]
        else:
            out[name] = F
    return out


def expand(names):
    """Solver block names of a candidate: an ``avgmax`` block is its mean half and its max half."""
    return [part for n in names for part in ((n[: -len("max")], n[: -len("avgmax")] + "max")
                                               if n.endswith(" avgmax") else (n,))]


def main():
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    t_start = time.perf_counter()
    paths, Y, groups, source, _ = load_data()
    B, embed_seconds = blocks(paths)
    cands = candidates(B)
    solver_blocks = split_blocks(B)
    outer = list(MultilabelStratifiedGroupKFold(FOLDS, shuffle=True, random_state=0).split(paths, Y, groups))
    oof = {name: np.zeros(Y.shape) for name in [CLASSICAL, *cands]}
    inner_scores = collections.defaultdict(list)
    families = {f: [n for n, c in cands.items() if c[0] == f] for f in ("hybrid", "attention")}
    picks = {f: [] for f in families}
    check = None
    for k, (train, test) in enumerate(outer):
        assert not set(groups[train]) & set(groups[test])
        inner = MultilabelStratifiedGroupKFold(INNER, shuffle=True, random_state=0).split(train, Y[train], groups[train])
        for a, b in ((train[a], train[b]) for a, b in inner):
            split = GramSplit(solver_blocks, a, b)
            for name, (_, names, C) in cands.items():
                P = split.predict(Y, expand(names), C)
                inner_scores[(k, name)].append(within_source_auc(Y[b], P, source[b]))
        for family, members in families.items():
            picks[family].append(max(members, key=lambda n: np.mean(inner_scores[(k, n)])))
        split = GramSplit(solver_blocks, train, test)
        oof[CLASSICAL][test] = split.predict(Y, ["tex whole"], DEFAULT_C)
        for name, (_, names, C) in cands.items():
            oof[name][test] = split.predict(Y, expand(names), C)
        if k == 0:  # the span solver against the direct fit of the pipelines' classifier
            name = picks["attention"][0]
            _, names, C = cands[name]
            direct = fit_predict(np.hstack([solver_blocks[n] for n in expand(names)]), Y, train, test, C)
            check = (name, float(np.abs(direct - oof[name][test]).max()))
            log(f"direct fit vs span solver, {name}: max |dp| = {check[1]:.2e}")
        log(f"outer fold {k + 1}/{FOLDS}: picked " + "; ".join(f"{f}: {p[-1]!r}" for f, p in picks.items()))

    nested = {}
    for family, chosen in picks.items():
        row = f"nested choice, {family} search"
        oof[row] = np.zeros(Y.shape)
        for (_, test), pick in zip(outer, chosen):
            oof[row][test] = oof[pick][test]
        nested[family] = row
    W = bootstrap_weights(groups, N_BOOT, seed=0)
    folds = [test for _, test in outer]
    scopes = {"pooled": np.ones(len(Y), bool), **{s: source == s for s in SOURCES}}
    shown = [CLASSICAL, *nested.values(), *TODAY.values(), *(n for n in oof if n not in cands and n != CLASSICAL
                                                              and n not in nested.values())]
    result = {
        "picks": picks,
        "auc": summarise(Y, {r: oof[r] for r in dict.fromkeys([*shown, *cands])}, source, W, CLASSICAL),
        "foldwise": {r: {sc: foldwise_delta(Y, oof[r], oof[CLASSICAL], folds, m, W) for sc, m in scopes.items()}
                     for r in dict.fromkeys([*nested.values(), *TODAY.values(), *oof]) if r != CLASSICAL
                     and (r in nested.values() or r in TODAY.values() or r not in cands
                          or r in {p for ps in picks.values() for p in ps})},
        "inner_mean": {n: float(np.mean([np.mean(inner_scores[(k, n)]) for k in range(FOLDS)])) for n in cands},
        "embed_seconds": embed_seconds, "solver_check": check,
    }
    write_report(result, shown, time.perf_counter() - t_start)


def write_report(r, shown, seconds):
    lines = ["# Defaults on pretrained backbones, chosen by nested CV (`studies/pretrained_defaults.py`)", "",
             f"Machine: {machine()}; {seconds / 60:.0f} min. 1,416 shared NIH images, {FOLDS} outer folds "
             f"(those of `studies/attention.py`), {INNER} patient-grouped inner folds on each outer training part; "
             "criterion: the mean over sources of the within-source macro-AUC. Embedding time of the 1,416 whole "
             "images (s; about 1 s where the run read them from its cache, see `hardware_speed.py` for speeds): "
             + ", ".join(f"{k} {v:.0f}" for k, v in r["embed_seconds"].items()) + ".", "",
             *(f"Picks per outer fold, {f} search: " + "; ".join(p) for f, p in r["picks"].items()), "",
             "Each logistic regression is solved in the span of its training rows (`GramSplit`, exact for L2); "
             f"against the direct fit of StandardScaler + `make_logistic_regression` ({r['solver_check'][0]}, outer "
             f"fold 0): max |Δp| = {r['solver_check'][1]:.1e}.", "",
             "## Δ macro-AUC vs the classical pipeline, mean of each outer fold's own Δ [paired patient-bootstrap CI]",
             "", "| model | pooled | " + " | ".join(f"within {s}" for s in SOURCES) + " |",
             "|---|---|" + "---|" * len(SOURCES)]
    for name, row in r["foldwise"].items():
        lines.append(f"| {name} | " + " | ".join(
            f"{row[s]['delta']:+.3f} [{row[s]['delta_ci'][0]:+.3f}, {row[s]['delta_ci'][1]:+.3f}]"
            for s in ("pooled", *SOURCES)) + " |")
    lines += ["", "## Macro-AUC [95 % patient-bootstrap CI] | Δ vs classical [paired CI], one out-of-fold AUC; "
              "'inner' is the mean inner-CV criterion over the outer folds", "",
              *auc_table(r["auc"], r["inner_mean"], CLASSICAL)]
    print(write_markdown("pretrained_defaults.md", "\n".join(lines) + "\n"))
    (RESULTS / "pretrained_defaults.json").write_text(json.dumps(r, indent=1, default=float))


if __name__ == "__main__":
    main()
