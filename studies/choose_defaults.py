"""Choose the defaults of ``make_hybrid_pipeline()`` by nested, patient-grouped CV on the real NIH images.

Question: does ``make_hybrid_pipeline()`` (CXRPreprocessor 224 px -> LBP + HOG +
ResNetEmbedder with random, not fine-tuned weights -> StandardScaler -> skorch
MLP) beat ``make_classical_pipeline()`` (same preprocessing, LBP + HOG ->
StandardScaler -> one-vs-rest logistic regression C=0.01, balanced) on images
it has not seen, pooled and within each source (nih, nih-64), and with which
MLP settings?

How. The preprocessor, LBP, HOG and an unfitted random-init ResNetEmbedder are
per-image transforms that learn nothing from the labels, so their features are
computed once for all 1,416 images (per image size) and cached under
``studies/results/cache/choose_defaults/``. Every candidate is then
``StandardScaler + classifier`` fitted inside each fold: exactly what the
pipeline computes, much cheaper.

* Outer evaluation: ``MultilabelStratifiedGroupKFold(5, shuffle=True,
  random_state=0)`` over all images, groups = patient ids; out-of-fold
  probabilities for every candidate (the CV table).
* Nested CV: inside each outer training part, a patient-grouped 3-fold CV picks
  the hybrid MLP setting with the best mean macro-AUC; that choice is scored on
  the outer fold. This is the honest estimate of "hybrid with settings chosen
  by CV"; the setting chosen most often is the proposed default.
* Macro-AUC pooled and within each source, with patient-bootstrap 95 %
  intervals (1000 resamples of patients with replacement) and the paired
  interval of the difference to the classical default on the same resamples.

    .venv/bin/python studies/choose_defaults.py            # ~35 min on 2 cores, cached reruns < 1 min
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import RESULTS, SHARED_DATA, machine, write_markdown
from sklearn.preprocessing import StandardScaler

import skcxr
from skcxr.datasets import load_chestxray14
from skcxr.features import HOGFeatures, LBPFeatures, ResNetEmbedder
from skcxr.metrics import macro_auc_score
from skcxr.model_selection import MultilabelStratifiedGroupKFold, groups_params
from skcxr.neural import MLP, MultilabelNeuralNetClassifier
from skcxr.pipelines import make_logistic_regression
from skcxr.preprocessing import CXRPreprocessor

SOURCES = ("nih", "nih-64")
CACHE = RESULTS / "cache" / "choose_defaults"
SEED = 0

# -- candidates ---------------------------------------------------------------------------------------
# A candidate: which cached features (texture only or texture + CNN, at an image size) and which
# classifier. MLP settings are MultilabelNeuralNetClassifier parameters; everything else is its default.
TODAY = {"module__hidden": (512,), "module__dropout": 0.4, "optimizer__weight_decay": 0.01, "lr": 1e-3}


def mlp(hidden, dropout, wd, lr, batchnorm=False):
    params = {"module__hidden": hidden, "module__dropout": dropout, "optimizer__weight_decay": wd, "lr": lr}
    if batchnorm:
        params["module__batchnorm"] = True
    return ("mlp", params)


# The MLP settings searched (hidden, dropout, weight decay, lr[, batchnorm]); the first is today's default.
MLP_SETTINGS = {
    "today (512, .4, wd .01, lr 1e-3)": ("mlp", TODAY),
    "(256, .7, wd 1, lr 1e-4)": mlp((256,), 0.7, 1.0, 1e-4),
    "(512, .7, wd 1, lr 1e-4)": mlp((512,), 0.7, 1.0, 1e-4),
    "(256, .5, wd .1, lr 1e-4)": mlp((256,), 0.5, 0.1, 1e-4),
    "(512, .5, wd .1, lr 1e-4)": mlp((512,), 0.5, 0.1, 1e-4),
    "(256, .4, wd 1, lr 1e-4)": mlp((256,), 0.4, 1.0, 1e-4),
    "(256, .7, wd 1, lr 1e-3)": mlp((256,), 0.7, 1.0, 1e-3),
    "(512, .7, wd .1, lr 1e-3)": mlp((512,), 0.7, 0.1, 1e-3),
    "(256, .7, wd 1, lr 1e-4, BN)": mlp((256,), 0.7, 1.0, 1e-4, batchnorm=True),
}
SETTINGS_128 = ("today (512, .4, wd .01, lr 1e-3)", "(256, .7, wd 1, lr 1e-4)", "(256, .5, wd .1, lr 1e-4)")
# the hybrid pool of the nested CV: every setting on the 224-px hybrid features, three at 128 px
HYBRID = {f"hyb224 MLP {k}": ("hybrid", 224, v) for k, v in MLP_SETTINGS.items()}
HYBRID.update({f"hyb128 MLP {k}": ("hybrid", 128, MLP_SETTINGS[k]) for k in SETTINGS_128})
# texture-only MLPs (LBP + HOG at 224 px, no CNN): the same settings, a nested CV of their own
TEXTURE_MLP = {f"tex224 MLP {k}": ("texture", 224, v) for k, v in MLP_SETTINGS.items()}
CLASSICAL = "classical default: tex224 LR C=0.01"
OTHERS = {
    CLASSICAL: ("texture", 224, ("lr", {"C": 0.01})),
    "hyb224 LR C=0.01": ("hybrid", 224, ("lr", {"C": 0.01})),
    "hyb224 LR C=0.001": ("hybrid", 224, ("lr", {"C": 0.001})),
    "cnn224 only, LR C=0.01": ("cnn", 224, ("lr", {"C": 0.01})),
}
SOURCE_ONLY = "source only (training prevalence per source)"
TODAY_HYBRID = "hyb224 MLP today (512, .4, wd .01, lr 1e-3)"
assert TODAY_HYBRID in HYBRID


# -- data and features --------------------------------------------------------------------------------

def load_data():
    parts = [load_chestxray14(SHARED_DATA / name) for name in SOURCES]
    paths = np.concatenate([p.paths for p in parts]).astype(str)
    Y = np.concatenate([p.Y for p in parts]).astype(np.uint8)
    groups = np.concatenate([p.patient_ids for p in parts])
    source = np.concatenate([np.full(len(p.paths), name) for name, p in zip(SOURCES, parts)])
    return paths, Y, groups, source, parts[0].target_names


def _fingerprint(paths) -> str:
    """Hash of the file names, sizes and modification times (an image replaced under its name changes it)."""
    h = hashlib.sha1()
    for p in paths:
        st = Path(p).stat()
        h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def image_features(paths, size: int, log, seed: int = SEED) -> dict:
    """LBP, HOG and random-init ResNet18 features of every image at ``size`` px, cached on disk.

    The transforms are those of ``make_hybrid_pipeline(size=size, random_state=seed)``: they use no labels
    (the texture features do not depend on ``seed``; only the ResNet initialisation does).
    """
    CACHE.mkdir(parents=True, exist_ok=True)
    file = CACHE / f"features_{size}_seed{seed}_{_fingerprint(paths)}.npz"
    if file.exists():
        with np.load(file) as f:
            return {k: f[k] for k in ("lbp", "hog", "cnn", "seconds")}
    tic = time.perf_counter()
    X = CXRPreprocessor(size=size, n_jobs=2).fit_transform(paths)
    t_prep = time.perf_counter() - tic
    lbp = LBPFeatures(n_jobs=2).fit_transform(X)
    hog = HOGFeatures(n_jobs=2).fit_transform(X)
    t_tex = time.perf_counter() - tic - t_prep
    cnn = ResNetEmbedder(image_size=size, random_state=seed).fit(X).transform(X)
    t_cnn = time.perf_counter() - tic - t_prep - t_tex
    seconds = np.array([t_prep, t_tex, t_cnn])
    log(f"features at {size} px, seed {seed}: preprocess {t_prep:.0f} s, LBP+HOG {t_tex:.0f} s, ResNet {t_cnn:.0f} s; "
        f"dims lbp {lbp.shape[1]}, hog {hog.shape[1]}, cnn {cnn.shape[1]}")
    np.savez(file, lbp=lbp, hog=hog, cnn=cnn, seconds=seconds)
    return {"lbp": lbp, "hog": hog, "cnn": cnn, "seconds": seconds}


def feature_matrix(feats: dict, kind: str) -> np.ndarray:
    blocks = {"texture": ("lbp", "hog"), "hybrid": ("lbp", "hog", "cnn"), "cnn": ("cnn",)}[kind]
    return np.hstack([feats[b] for b in blocks]).astype(np.float32)


# -- fitting one candidate on one split (cached) ------------------------------------------------------

def make_classifier(clf_spec, seed: int):
    kind, params = clf_spec
    if kind == "lr":
        return make_logistic_regression(**params)
    return MultilabelNeuralNetClassifier(MLP, random_state=seed, **params)


def fit_predict(X, Y, groups, train, test, clf_spec, seed: int, cache_key: str, use_cache: bool):
    """``StandardScaler + classifier`` fitted on ``train``, probabilities of ``test``; cached on disk.

    The cache is keyed on the candidate, the features, the rows and the seed (not on the package's code).
    Returns ``(proba, seconds)``; seconds is the fit + predict time (as measured when it was computed).
    """
    key = hashlib.sha1(json.dumps([cache_key, repr(clf_spec), seed, hashlib.sha1(train.tobytes()).hexdigest(),
                                   hashlib.sha1(test.tobytes()).hexdigest()]).encode()).hexdigest()[:20]
    file = CACHE / "pred" / f"{key}.npz"
    if use_cache and file.exists():
        with np.load(file) as f:
            return f["proba"], float(f["seconds"])
    tic = time.perf_counter()
    scale = StandardScaler().fit(X[train])
    clf = make_classifier(clf_spec, seed)
    clf.fit(scale.transform(X[train]), Y[train], **groups_params(clf, groups[train]))
    proba = np.asarray(clf.predict_proba(scale.transform(X[test])), dtype=np.float64)
    seconds = time.perf_counter() - tic
    file.parent.mkdir(parents=True, exist_ok=True)
    np.savez(file, proba=proba, seconds=seconds)
    return proba, seconds


def source_only(Y, source, train, test):
    """Each label's training prevalence within the image's source."""
    proba = np.zeros((len(test), Y.shape[1]))
    for s in np.unique(source):
        rows = source[train] == s
        prevalence = Y[train][rows].mean(axis=0) if rows.any() else Y[train].mean(axis=0)
        proba[source[test] == s] = prevalence
    return proba


# -- patient bootstrap --------------------------------------------------------------------------------

def bootstrap_weights(groups, n_boot: int, seed: int) -> np.ndarray:
    """``(n_boot, n)`` multiplicities of each image when patients are drawn with replacement."""
    rng = np.random.default_rng(seed)
    patients, index = np.unique(groups, return_inverse=True)
    draws = rng.integers(0, len(patients), size=(n_boot, len(patients)))
    counts = np.zeros((n_boot, len(patients)), dtype=np.float64)
    np.add.at(counts, (np.arange(n_boot)[:, None], draws), 1.0)
    return counts[:, index]


def weighted_macro_auc(Y, P, W) -> np.ndarray:
    """Macro-AUC of every bootstrap resample at once (``W``: multiplicities, 0 drops an image).

    Equal to ``macro_auc_score`` on the resampled rows: ties count one half, labels with one value only
    in a resample are left out of its mean.
    """
    n_boot = W.shape[0]
    aucs = np.full((n_boot, Y.shape[1]), np.nan)
    for k in range(Y.shape[1]):
        order = np.argsort(P[:, k], kind="mergesort")
        s, y, w = P[order, k], Y[order, k] > 0, W[:, order]
        _, start, counts = np.unique(s, return_index=True, return_counts=True)
        group = np.repeat(np.arange(len(start)), counts)
        wneg = np.where(y, 0.0, w)
        cum = np.concatenate([np.zeros((n_boot, 1)), np.cumsum(wneg, axis=1)], axis=1)
        below = cum[:, start[group]]                       # negative weight with a lower score
        tied = cum[:, (start + counts)[group]] - below      # negative weight with the same score
        wpos = np.where(y, w, 0.0)
        n_pos, n_neg = wpos.sum(axis=1), wneg.sum(axis=1)
        num = (wpos * (below + 0.5 * tied)).sum(axis=1)
        ok = (n_pos > 0) & (n_neg > 0)
        aucs[ok, k] = num[ok] / (n_pos[ok] * n_neg[ok])
    with np.errstate(all="ignore"):
        return np.nanmean(aucs, axis=1)


def summarise(Y, proba: dict, source, W, baseline: str) -> dict:
    """Macro-AUC with its interval, and the paired interval of the difference to ``baseline``, per scope."""
    scopes = {"pooled": np.ones(len(Y), bool), **{s: source == s for s in SOURCES}}
    out = {}
    for scope, mask in scopes.items():
        Wm = W * mask
        base_b = weighted_macro_auc(Y, proba[baseline], Wm)
        base = macro_auc_score(Y[mask], proba[baseline][mask])
        for name, P in proba.items():
            auc = macro_auc_score(Y[mask], P[mask])
            auc_b = base_b if name == baseline else weighted_macro_auc(Y, P, Wm)
            lo, hi = np.nanpercentile(auc_b, [2.5, 97.5])
            dlo, dhi = np.nanpercentile(auc_b - base_b, [2.5, 97.5])
            out.setdefault(name, {})[scope] = {
                "auc": auc, "ci": [lo, hi], "delta": auc - base, "delta_ci": [dlo, dhi],
                "p_delta_le_0": float(np.mean(auc_b - base_b <= 0)),
            }
    return out


# -- the study ----------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="*", default=[1, 2],
                        help="extra seeds (ResNet init + MLP) for the seed check of the main rows")
    parser.add_argument("--no-cache", action="store_true", help="refit every model (features stay cached)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (1 is faster when other processes share the cores)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    use_cache = not args.no_cache
    t_start = time.perf_counter()

    def log(msg):
        msg = f"[{time.perf_counter() - t_start:6.0f} s] {msg}"
        print(msg, flush=True)
        LOG.append(msg)

    log(f"skcxr from {skcxr.__file__}")
    paths, Y, groups, source, names = load_data()
    fp = _fingerprint(paths)
    feats = {size: image_features(paths, size, log) for size in (224, 128)}
    matrices = {(kind, size): feature_matrix(feats[size], kind)
                for kind, size in {(k, s) for k, s, _ in (*HYBRID.values(), *TEXTURE_MLP.values(), *OTHERS.values())}}
    candidates = {**OTHERS, **HYBRID, **TEXTURE_MLP}

    def run(name, train, test, seed=SEED, X=None):
        kind, size, spec = candidates[name]
        X = matrices[(kind, size)] if X is None else X
        return fit_predict(X, Y, groups, train, test, spec, seed, f"{kind}-{size}-{fp}", use_cache)

    outer = list(MultilabelStratifiedGroupKFold(5, shuffle=True, random_state=SEED).split(paths, Y, groups))
    oof = {name: np.zeros(Y.shape) for name in [SOURCE_ONLY, *candidates]}
    seconds = {name: [] for name in candidates}
    inner_scores = {}  # (outer fold, candidate) -> {"pooled": mean over inner folds, "within": ...}
    for k, (train, test) in enumerate(outer):
        assert not set(groups[train]) & set(groups[test])
        oof[SOURCE_ONLY][test] = source_only(Y, source, train, test)
        for name in candidates:
            oof[name][test], sec = run(name, train, test)
            seconds[name].append(sec)
        inner = MultilabelStratifiedGroupKFold(3, shuffle=True, random_state=SEED).split(
            train, Y[train], groups[train])
        inner = [(train[a], train[b]) for a, b in inner]
        for name in (*HYBRID, *TEXTURE_MLP):
            pooled, within = [], []
            for a, b in inner:
                P, _ = run(name, a, b)
                pooled.append(macro_auc_score(Y[b], P))
                within.append(np.mean([macro_auc_score(Y[b][source[b] == s], P[source[b] == s]) for s in SOURCES]))
            inner_scores[(k, name)] = {"pooled": float(np.mean(pooled)), "within": float(np.mean(within))}
        log(f"outer fold {k + 1}/5 done ({len(train)} train / {len(test)} test images)")

    # nested CV: per outer fold, the pool's best setting by inner CV, scored on the outer fold
    def nested(pool, criterion):
        picks, P = [], np.zeros(Y.shape)
        for k, (_, test) in enumerate(outer):
            best = max(pool, key=lambda n: inner_scores[(k, n)][criterion])
            picks.append(best)
            P[test] = oof[best][test]
        return picks, P

    picks, nested_hybrid = nested(HYBRID, "pooled")
    picks_within, nested_hybrid_within = nested(HYBRID, "within")
    picks_tex, nested_texture = nested(TEXTURE_MLP, "pooled")
    counts = pd.Series(picks).value_counts()
    # the proposed default: most often picked; ties go to the best mean inner-CV pooled macro-AUC
    mean_inner = {n: np.mean([inner_scores[(k, n)]["pooled"] for k in range(5)]) for n in HYBRID}
    proposed = max(counts.index, key=lambda n: (counts[n], mean_inner[n]))
    setting = proposed.split(" MLP ", 1)[1]
    texture_proposed = f"tex224 MLP {setting}"
    log(f"nested picks (pooled criterion): {picks}; proposed: {proposed}")

    NESTED = "hybrid MLP, setting chosen by nested CV (pooled inner AUC)"
    NESTED_W = "hybrid MLP, setting chosen by nested CV (within-source inner AUC)"
    NESTED_T = "texture-only MLP, setting chosen by nested CV"
    main_rows = {
        CLASSICAL: oof[CLASSICAL],
        f"hybrid, today's defaults: {TODAY_HYBRID}": oof[TODAY_HYBRID],
        NESTED: nested_hybrid,
        NESTED_W: nested_hybrid_within,
        f"hybrid, proposed defaults: {proposed} (optimistic: chosen on these folds)": oof[proposed],
        NESTED_T: nested_texture,
        f"texture-only MLP with the proposed settings: {texture_proposed}": oof.get(texture_proposed),
        "hyb224 LR C=0.01": oof["hyb224 LR C=0.01"],
        SOURCE_ONLY: oof[SOURCE_ONLY],
    }
    main_rows = {k: v for k, v in main_rows.items() if v is not None}
    W = bootstrap_weights(groups, args.n_boot, SEED)
    summary = summarise(Y, main_rows, source, W, CLASSICAL)
    cv_summary = summarise(Y, {SOURCE_ONLY: oof[SOURCE_ONLY], **{n: oof[n] for n in candidates}}, source, W,
                           CLASSICAL)
    log("bootstrap done")

    # seed check: the main fixed rows refitted with other seeds (ResNet init and MLP)
    seed_rows = {}
    for seed in args.seeds:
        P = {CLASSICAL: oof[CLASSICAL]}  # logistic regression is deterministic
        for name in dict.fromkeys((TODAY_HYBRID, proposed, texture_proposed)):
            kind, size, _ = candidates[name]
            X = feature_matrix(image_features(paths, size, log, seed=seed), kind)
            P[name] = np.zeros(Y.shape)
            for train, test in outer:
                P[name][test], _ = run(name, train, test, seed=seed, X=X)
        res = summarise(Y, P, source, W, CLASSICAL)
        for name in P:
            if name != CLASSICAL:
                seed_rows.setdefault(name, {})[seed] = {sc: (r["auc"], r["delta"]) for sc, r in res[name].items()}
    for name in dict.fromkeys((TODAY_HYBRID, proposed, texture_proposed)):
        if name in cv_summary:
            seed_rows.setdefault(name, {})[SEED] = {sc: (r["auc"], r["delta"]) for sc, r in cv_summary[name].items()}
    runtime = time.perf_counter() - t_start
    log(f"done in {runtime:.0f} s")
    write_report(args, Y, groups, source, names, feats, candidates, cv_summary, summary, inner_scores, picks,
                 picks_within, picks_tex, proposed, seed_rows, seconds, runtime)


def _fmt(r, delta=True):
    text = f"{r['auc']:.3f} [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}]"
    if delta:
        text += f" | {r['delta']:+.3f} [{r['delta_ci'][0]:+.3f}, {r['delta_ci'][1]:+.3f}]"
    return text


def write_report(args, Y, groups, source, names, feats, candidates, cv_summary, summary, inner_scores, picks,
                 picks_within, picks_tex, proposed, seed_rows, seconds, runtime):
    scopes = ("pooled", *SOURCES)
    counts = {s: {"images": int((source == s).sum()), "patients": int(len(np.unique(groups[source == s]))),
                  "no_finding": int((Y[source == s].sum(axis=1) == 0).sum())} for s in SOURCES}
    shared = sorted(set(groups[source == SOURCES[0]]) & set(groups[source == SOURCES[1]]))
    spec = candidates[proposed][2][1]
    size = candidates[proposed][1]
    head = "| row | " + " | ".join(f"{s} AUC [95% CI] | {s} Δ vs classical [95% CI]" for s in scopes) + " |"
    sep = "|:--|" + "--:|:--|" * len(scopes)

    def table(res, rows, extra=None):
        lines = [head if extra is None else head[:-1] + f"| {extra[0]} |", sep if extra is None else sep + "--:|" * (extra[0].count("|") + 1)]
        for name in rows:
            cells = " | ".join(_fmt(res[name][s]) for s in scopes)
            if name == CLASSICAL:
                cells = " | ".join(_fmt(res[name][s], delta=False) + " | " for s in scopes)
            lines.append(f"| {name} | {cells} |" + ("" if extra is None else f" {extra[1](name)} |"))
        return lines

    n_pick = pd.Series(picks).value_counts()
    mean_inner = {n: np.mean([inner_scores[(k, n)]["pooled"] for k in range(5)]) for n in candidates
                  if (0, n) in inner_scores}
    cv_rows = [SOURCE_ONLY, *candidates]

    def extra(name):
        picked = str(n_pick.get(name, 0)) if name in HYBRID else ""
        inner = f"{mean_inner[name]:.3f}" if name in mean_inner else ""
        fit_s = f"{np.mean(seconds[name]):.1f}" if name in seconds else ""
        return f"{picked} | {inner} | {fit_s}"

    cv_lines = table(cv_summary, cv_rows, extra=("picked (of 5) | mean inner-CV AUC | s per fit", extra))
    seed_lines = ["| row | seed | " + " | ".join(f"{s} AUC | {s} Δ" for s in scopes) + " |",
                  "|:--|--:|" + "--:|--:|" * len(scopes)]
    for name, by_seed in seed_rows.items():
        for seed in sorted(by_seed):
            seed_lines.append(f"| {name} | {seed} | " + " | ".join(
                f"{by_seed[seed][s][0]:.3f} | {by_seed[seed][s][1]:+.3f}" for s in scopes) + " |")
    proposed_code = ("make_hybrid_pipeline(" + (f"size={size}, " if size != 224 else "") +
                     "classifier=MultilabelNeuralNetClassifier(MLP, " +
                     ", ".join(f"{k}={v!r}" for k, v in spec.items()) + "))")
    dims = {s: {k: int(v.shape[1]) for k, v in f.items() if k != "seconds"} for s, f in feats.items()}
    text = "\n".join([
        "# Choosing the defaults of make_hybrid_pipeline() by nested patient-grouped CV", "",
        "Command: `PYTHONPATH=<snapshot of skcxr> .venv/bin/python studies/choose_defaults.py "
        f"--n-boot {args.n_boot} --seeds {' '.join(map(str, args.seeds))}"
        + (f" --threads {args.threads}" if args.threads else "") + "`  ",
        f"Machine: {machine()}  ",
        f"Runtime: {runtime / 60:.1f} min (features cached on disk after the first run).", "",
        f"Data: {len(Y)} real NIH ChestX-ray14 images, {len(np.unique(groups))} patients: " + "; ".join(
            f"{s} {c['images']} images / {c['patients']} patients / {c['no_finding']} 'No Finding'"
            for s, c in counts.items()) + f". {len(shared)} patients appear in both sources (grouped as one).", "",
        "Features (computed once, no labels involved): CXRPreprocessor(size) -> LBP, HOG and a random-init "
        f"ResNetEmbedder(image_size=size, random_state=0), dims {dims}. Every candidate fits "
        "StandardScaler + classifier inside each fold, as the pipeline does. The MLP receives the "
        "training patients' ids through `groups_params` for its internal validation split. "
        "Outer CV: MultilabelStratifiedGroupKFold(5, shuffle=True, random_state=0) over patients; nested CV: "
        "the same splitter with 3 folds inside each outer training part picks the setting with the best mean "
        "inner macro-AUC. Intervals: 1000 patient bootstrap resamples (pooled over both sources; the "
        "within-source scores use the same resamples' images of that source); Δ is the paired difference to "
        "the classical default on the same resamples.", "",
        "## Nested-CV result (the honest comparison)", "",
        *table(summary, list(summary)), "",
        f"Nested picks per outer fold (hybrid pool, pooled inner AUC): {picks}.  ",
        f"With mean within-source inner AUC as criterion: {picks_within}.  ",
        f"Texture-only pool: {picks_tex}.", "",
        f"**Proposed default**: `{proposed}`, i.e. `{proposed_code}`. Its row above is scored on the same "
        "folds that chose it and is therefore slightly optimistic; the nested row is the honest estimate.", "",
        "## Seed check (ResNet init + MLP seed; out-of-fold, same outer folds)", "",
        *seed_lines, "",
        "## Full CV table (every candidate, out-of-fold over the 5 outer folds)", "",
        "Choosing the best row of this table on these folds biases its score upward; see the nested rows above.",
        "", *cv_lines, "",
        "## Log", "", "```", *LOG, "```", "",
    ])
    write_markdown("choose_defaults.md", text)
    (RESULTS / "choose_defaults.json").write_text(json.dumps({
        "machine": machine(), "runtime_s": runtime, "n_boot": args.n_boot, "counts": counts,
        "patients_in_both_sources": len(shared), "feature_dims": dims,
        "proposed": {"name": proposed, "image_size": size, "classifier_params": {
            k: list(v) if isinstance(v, tuple) else v for k, v in spec.items()}},
        "nested_picks": {"hybrid_pooled": picks, "hybrid_within": picks_within, "texture": picks_tex},
        "nested": summary, "cv": cv_summary,
        "inner_scores": {f"{k}|{n}": v for (k, n), v in inner_scores.items()},
        "seed_check": {n: {str(s): v for s, v in d.items()} for n, d in seed_rows.items()},
        "seconds_per_fit": {n: float(np.mean(v)) for n, v in seconds.items()},
    }, indent=1, default=float))
    print(text)


LOG: list = []

if __name__ == "__main__":
    main()
