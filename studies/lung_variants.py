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
pick most outer folds of partition 0 made. The whole nested procedure is
repeated on two other partitions (seeds 1 and 2 of the splitters).

    .venv/bin/python studies/lung_variants.py      # ~25 min on 2 cores
"""

from __future__ import annotations

import json
import time

import numpy as np
from _common import RESULTS, machine, write_markdown
import attention
from attention import CLASSICAL, FOLDS, MEMORY, N_BOOT, SIZE, log, preprocess, texture
from choose_defaults import (SOURCES, _fmt, bootstrap_weights, image_features, load_data, summarise,
                             weighted_macro_auc)
from sklearn.frozen import FrozenEstimator

from skcxr.cache import check_memory
from skcxr.lung_region import LungRegion
from skcxr.metrics import macro_auc_score
from skcxr.model_selection import MultilabelStratifiedGroupKFold
from skcxr.pipelines import ATTENTION_C, DEFAULT_C, LUNG_MARGIN, make_logistic_regression
from skcxr.segmentation import load_lung_unet

REGIONS = {  # name: LungRegion parameters
    "crop m=0": dict(margin=0.0),
    "crop m=0.05": dict(margin=0.05),
    "crop m=0.15": dict(margin=0.15),
    "crop m=0.05 128 px": dict(margin=0.05, size=128),
    "mask": dict(mode="mask"),
}
CONCAT_C = (3e-5, DEFAULT_C, 3e-4)
TODAY = f"concat C={DEFAULT_C:g}, crop m=0.05"  # the defaults before this study
PARTITIONS = (0, 1, 2)  # seeds of the outer splitter; 0: the folds of studies/attention.py
INNER = 3


def fit_predict(F, Y, train, test, C=DEFAULT_C):
    """``StandardScaler`` + ``make_logistic_regression(C)`` fitted on ``train``, probabilities of ``test``."""
    return attention.fit_predict(F, Y, None, train, test, make_logistic_regression(C).set_params(n_jobs=2))


def foldwise_delta(Y, P, base, folds, mask, W):
    """Mean over the outer folds of each fold's macro-AUC minus the baseline's, and its bootstrap interval.

    Each fold is ranked on its own: the nested choice takes differently regularised models in different folds,
    whose probabilities are spread differently, and ranking them together in one out-of-fold AUC penalises
    the mixture (up to -0.03 here) for a reason no single model has.
    """
    folds = [t[mask[t]] for t in folds]  # each fold's rows in the scope
    point = np.mean([macro_auc_score(Y[t], P[t]) - macro_auc_score(Y[t], base[t]) for t in folds])
    boot = np.mean([weighted_macro_auc(Y[t], P[t], W[:, t]) - weighted_macro_auc(Y[t], base[t], W[:, t])
                    for t in folds], axis=0)
    return {"delta": float(point), "delta_ci": np.nanpercentile(boot, [2.5, 97.5]).tolist()}


def auc_table(auc, inner_mean, baseline) -> list[str]:
    """Markdown rows: each model's mean inner-CV criterion, then its macro-AUC and Δ per scope (``summarise``)."""
    lines = ["| model | inner | pooled | " + " | ".join(f"within {s}" for s in SOURCES) + " |",
             "|---|---|---|" + "---|" * len(SOURCES)]
    for name, r in auc.items():
        inner = f"{inner_mean[name]:.4f}" if name in inner_mean else ""
        lines.append(f"| {name} | {inner} | "
                     + " | ".join(_fmt(r[s], delta=name != baseline) for s in ("pooled", *SOURCES)) + " |")
    return lines


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
        lungs[name] = texture(LungRegion(FrozenEstimator(seg), **params).fit(X).transform(X))
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
    default = f"concat C={ATTENTION_C:g}, crop m={LUNG_MARGIN:g}"

    def nested_cv(seed):
        """Out-of-fold probabilities of every candidate and of the nested choices, the picks, the inner scores."""
        outer = list(MultilabelStratifiedGroupKFold(FOLDS, shuffle=True, random_state=seed).split(X, Y, groups))
        oof = {name: np.zeros(Y.shape) for name in [CLASSICAL, *names]}
        inner_scores, picks = {}, {pool: [] for pool in pools}
        for k, (train, test) in enumerate(outer):
            assert not set(groups[train]) & set(groups[test])
            inner = MultilabelStratifiedGroupKFold(INNER, shuffle=True, random_state=seed).split(
                train, Y[train], groups[train])
            for a, b in ((train[a], train[b]) for a, b in inner):
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
            log(f"partition {seed}, outer fold {k + 1}/{FOLDS}: picked " + "; ".join(
                f"{p}: {v[-1]!r} (inner {np.mean(inner_scores[(k, v[-1])]):.4f})" for p, v in picks.items())
                + f"; today's inner {np.mean(inner_scores[(k, TODAY)]):.4f}")
        for pool, chosen in picks.items():
            oof[f"nested choice, {pool}"] = np.zeros(Y.shape)
            for (_, test), pick in zip(outer, chosen):
                oof[f"nested choice, {pool}"][test] = oof[pick][test]
        return oof, picks, inner_scores, [test for _, test in outer]

    W = bootstrap_weights(groups, N_BOOT, seed=0)
    nested = [f"nested choice, {pool}" for pool in pools]
    partitions = {}
    for seed in PARTITIONS:
        oof, picks, inner_scores, folds = nested_cv(seed)
        rows = [CLASSICAL, *nested, *(names if seed == PARTITIONS[0] else [default])]
        scopes = {"pooled": np.ones(len(Y), bool), **{s: source == s for s in SOURCES}}
        partitions[seed] = {"picks": picks, "auc": summarise(Y, {r: oof[r] for r in rows}, source, W, CLASSICAL),
                            "foldwise": {r: {sc: foldwise_delta(Y, oof[r], oof[CLASSICAL], folds, m, W)
                                             for sc, m in scopes.items()} for r in (*nested, default)},
                            "inner_mean": {n: float(np.mean([np.mean(inner_scores[(k, n)]) for k in range(FOLDS)]))
                                           for n in names}}
    write_report(partitions, nested, default, time.perf_counter() - t_start)


def write_report(partitions, nested, default, seconds):
    first = partitions[PARTITIONS[0]]
    lines = ["# Lung-branch variants chosen by nested CV (`studies/lung_variants.py`)", "",
             f"Machine: {machine()}; {seconds / 60:.0f} min. 1,416 shared NIH images, {FOLDS} outer folds, "
             f"{INNER} inner folds on each outer training part; criterion: the mean over sources of the "
             "within-source macro-AUC.", "",
             f"## Partition {PARTITIONS[0]} (the folds of `studies/attention.py`): every candidate", "",
             *(f"Picks per outer fold, {pool}: " + "; ".join(chosen) for pool, chosen in first["picks"].items()), "",
             "Macro-AUC [95 % patient-bootstrap CI] | Δ vs the classical pipeline [paired CI]; "
             "'inner' is the mean inner-CV criterion over the outer folds:", "",
             *auc_table(first["auc"], first["inner_mean"], CLASSICAL)]
    lines += ["", "## Every partition: the nested choices and the pipeline's defaults", "",
              f"The defaults ({default}) are the `concat` pick most folds of partition {PARTITIONS[0]} made; on "
              "the other partitions their row saw the same images as that choice, while the nested rows are the "
              "unbiased estimate of choosing by inner CV. Δ macro-AUC vs the classical pipeline, the mean over "
              "the 5 outer folds of each fold's own Δ [paired patient-bootstrap CI] (`foldwise_delta`: a nested "
              "row mixes models whose probabilities are spread differently, and one out-of-fold AUC over all "
              "folds would rank them together):", "",
              "| partition | model | pooled | " + " | ".join(f"within {s}" for s in SOURCES) + " |",
              "|---|---|---|" + "---|" * len(SOURCES)]
    for seed, part in partitions.items():
        for name in (*nested, default):
            r = part["foldwise"][name]
            lines.append(f"| {seed} | {name} | " + " | ".join(
                f"{r[s]['delta']:+.3f} [{r[s]['delta_ci'][0]:+.3f}, {r[s]['delta_ci'][1]:+.3f}]"
                for s in ("pooled", *SOURCES)) + " |")
        lines.append(f"| {seed} | concat picks | " + "; ".join(part["picks"]["concat only"]) + " | | |")
    print(write_markdown("lung_variants.md", "\n".join(lines) + "\n"))
    (RESULTS / "lung_variants.json").write_text(json.dumps(partitions, indent=1, default=float))


if __name__ == "__main__":
    main()
