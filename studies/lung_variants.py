"""Which lung region the attention pipeline describes, and how it joins the whole image: nested, patient-grouped CV.

The lung branch of ``make_attention_pipeline()`` computes LBP + HOG on a
:class:`~skcxr.lung_region.LungRegion`. This study chooses its settings the
honest way, from a candidate list fixed before the run:

- region: the lung box grown by a margin of 0, 0.05 or 0.15 of the side
  (at 224 px), the box at 128 px (margin 0.05), or the lung mask (224 px);
- combination: ``concat``, one logistic regression on whole-image LBP+HOG +
  lung LBP+HOG + ResNet18 (the final system without its attention maps,
  which changed no AUC by more than 0.001 in ``studies/attention.py``), with
  C in CONCAT_C (twice the features of the hybrid for which ``DEFAULT_C`` was
  chosen), or ``average``, the mean of the probabilities of a logistic
  regression (``DEFAULT_C``) on whole-image LBP+HOG + ResNet18 and one on the
  lung LBP+HOG.

For each of the 5 outer folds of ``studies/attention.py`` (patient-grouped,
label-stratified), every candidate is scored by 3-fold patient-grouped CV
inside the outer training part only; the criterion is the mean over the two
sources of the within-source macro-AUC. The best candidate is refitted on the
outer training part and scored on the outer test fold. The nested rows are the
out-of-fold results of this selection procedure, over all candidates and over
the ``concat`` ones only (the structure of ``make_attention_pipeline``: one
FeatureUnion, one classifier); each candidate's own
out-of-fold row is shown for reference (choosing from those rows would be
choosing on the test folds). Intervals: 95 % patient bootstrap, paired for
differences to the classical pipeline.

The candidate list grew once: a first run had C=1e-4 only; its nested choice
(``average`` in 5 of 5 folds) gave pooled +0.016 [+0.007, +0.028], nih +0.020
[+0.005, +0.036], nih-64 +0.001 [-0.015, +0.024] against the classical
pipeline. C was added because the concatenation has twice the texture
features of the hybrid for which C=1e-4 was chosen. The defaults
``ATTENTION_C`` and ``LUNG_MARGIN`` of ``skcxr.pipelines`` are the ``concat``
pick most outer folds made.

    .venv/bin/python studies/lung_variants.py      # ~8 min on 2 cores
"""

from __future__ import annotations

import json
import time

import numpy as np
from _common import RESULTS, machine, write_markdown
from attention import CLASSICAL, FOLDS, MEMORY, N_BOOT, SIZE, log, preprocess
from choose_defaults import SOURCES, _fmt, bootstrap_weights, image_features, load_data, summarise
from sklearn.frozen import FrozenEstimator
from sklearn.preprocessing import StandardScaler

from skcxr._cache import check_memory
from skcxr.features import HOGFeatures, LBPFeatures
from skcxr.lung_region import LungRegion
from skcxr.metrics import macro_auc_score
from skcxr.model_selection import MultilabelStratifiedGroupKFold
from skcxr.pipelines import DEFAULT_C, make_logistic_regression
from skcxr.segmentation import load_lung_unet

REGIONS = {  # name: LungRegion parameters
    "crop m=0": dict(margin=0.0),
    "crop m=0.05": dict(margin=0.05),
    "crop m=0.15": dict(margin=0.15),
    "crop m=0.05 128 px": dict(margin=0.05, size=128),
    "mask": dict(mode="mask"),
}
CONCAT_C = (3e-5, DEFAULT_C, 3e-4)
TODAY = f"concat C={DEFAULT_C:g}, crop m=0.05"
INNER = 3


def lung_texture(X, seg, params):
    regions = LungRegion(FrozenEstimator(seg), **params).fit(X).transform(X)
    return np.hstack([LBPFeatures(n_jobs=2).fit_transform(regions), HOGFeatures(n_jobs=2).fit_transform(regions)])


def fit_predict(F, Y, train, test, C=DEFAULT_C):
    scale = StandardScaler().fit(F[train])
    lr = make_logistic_regression(C).set_params(n_jobs=2).fit(scale.transform(F[train]), Y[train])
    return lr.predict_proba(scale.transform(F[test]))


def within_source_auc(Y, P, source):
    return float(np.mean([macro_auc_score(Y[source == s], P[source == s]) for s in SOURCES]))


def main():
    t_start = time.perf_counter()
    paths, Y, groups, source, _ = load_data()
    feats = image_features(paths, SIZE, log)
    whole = np.hstack([feats["lbp"], feats["hog"]])
    whole_cnn = np.hstack([whole, feats["cnn"]])
    X = check_memory(MEMORY).cache(preprocess)(paths)
    seg = load_lung_unet(memory=MEMORY)
    lungs = {}
    for name, params in REGIONS.items():
        lungs[name] = lung_texture(X, seg, params)
        log(f"lung texture, {name}: {lungs[name].shape[1]} features")

    def candidate(name, train, test, whole_cnn_proba):
        combination, region = name.split(", ")
        if combination == "average":
            return (whole_cnn_proba + fit_predict(lungs[region], Y, train, test)) / 2
        C = float(combination.split("=")[1])
        return fit_predict(np.hstack([whole, lungs[region], feats["cnn"]]), Y, train, test, C)

    concat = [f"concat C={C:g}, {r}" for C in CONCAT_C for r in REGIONS]
    names = concat + [f"average, {r}" for r in REGIONS]
    pools = {"all candidates": names, "concat only": concat}
    outer = list(MultilabelStratifiedGroupKFold(FOLDS, shuffle=True, random_state=0).split(X, Y, groups))
    oof = {name: np.zeros(Y.shape) for name in [CLASSICAL, *names]}
    inner_scores, picks = {}, {pool: [] for pool in pools}
    for k, (train, test) in enumerate(outer):
        assert not set(groups[train]) & set(groups[test])
        inner = MultilabelStratifiedGroupKFold(INNER, shuffle=True, random_state=0).split(
            train, Y[train], groups[train])
        inner = [(train[a], train[b]) for a, b in inner]
        for a, b in inner:
            base = fit_predict(whole_cnn, Y, a, b)
            for name in names:
                P = candidate(name, a, b, base)
                inner_scores.setdefault((k, name), []).append(within_source_auc(Y[b], P, source[b]))
        for pool, members in pools.items():
            picks[pool].append(max(members, key=lambda n: np.mean(inner_scores[(k, n)])))
        oof[CLASSICAL][test] = fit_predict(whole, Y, train, test)
        base = fit_predict(whole_cnn, Y, train, test)
        for name in names:
            oof[name][test] = candidate(name, train, test, base)
        log(f"outer fold {k + 1}/{FOLDS}: picked " + "; ".join(f"{p}: {v[-1]!r} (inner "
            f"{np.mean(inner_scores[(k, v[-1])]):.4f})" for p, v in picks.items())
            + f"; today's inner {np.mean(inner_scores[(k, TODAY)]):.4f}")
    nested = [f"nested choice, {pool}" for pool in pools]
    for row, chosen in zip(nested, picks.values()):
        oof[row] = np.zeros(Y.shape)
        for (_, test), pick in zip(outer, chosen):
            oof[row][test] = oof[pick][test]
    W = bootstrap_weights(groups, N_BOOT, seed=0)
    rows = [CLASSICAL, *nested, *names]
    result = summarise(Y, {r: oof[r] for r in rows}, source, W, CLASSICAL)
    inner_mean = {n: float(np.mean([np.mean(inner_scores[(k, n)]) for k in range(FOLDS)])) for n in names}
    write_report(result, picks, inner_mean, nested, time.perf_counter() - t_start)


def write_report(result, picks, inner_mean, nested, seconds):
    lines = ["# Lung-branch variants chosen by nested CV (`studies/lung_variants.py`)", "",
             f"Machine: {machine()}; {seconds / 60:.0f} min. 1,416 shared NIH images, {FOLDS} outer folds "
             f"(those of `studies/attention.py`), {INNER} inner folds on each outer training part; criterion: "
             "the mean over sources of the within-source macro-AUC.", "",
             *(f"Picks per outer fold, {pool}: " + "; ".join(chosen) for pool, chosen in picks.items()), "",
             "Macro-AUC [95 % patient-bootstrap CI] | Δ vs the classical pipeline [paired CI]; "
             "'inner' is the mean inner-CV criterion over the outer folds:", "",
             "| model | inner | pooled | " + " | ".join(f"within {s}" for s in SOURCES) + " |",
             "|---|---|---|" + "---|" * len(SOURCES)]
    for name, r in result.items():
        inner = f"{inner_mean[name]:.4f}" if name in inner_mean else ""
        lines.append(f"| {name} | {inner} | "
                     + " | ".join(_fmt(r[s], delta=name != CLASSICAL) for s in ("pooled", *SOURCES)) + " |")
    print(write_markdown("lung_variants.md", "\n".join(lines) + "\n"))
    (RESULTS / "lung_variants.json").write_text(json.dumps(
        {"picks": picks, "inner_mean": inner_mean, "auc": result, "nested_rows": nested}, indent=1, default=float))


if __name__ == "__main__":
    main()
