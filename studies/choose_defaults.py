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

    .venv/bin/python studies/choose_defaults.py --threads 1   # ~30 min on 2 shared cores; cached reruns ~3 min

Model predictions are cached too, keyed on the candidate, the rows and the seed but not on the package's
code: after changing the classifier or the feature extractors, rerun with ``--no-cache`` (features: delete
``studies/results/cache/choose_defaults/features_*``).
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
# logistic regression on the hybrid features: a second nested pool (MLP settings + these) asks whether
# the hybrid's classifier should be an MLP at all
LR_C = (0.001, 0.0001, 1e-05)
HYBRID_LR = {f"hyb224 LR C={c:g}": ("hybrid", 224, ("lr", {"C": c})) for c in LR_C}
# the classical pipeline with its C chosen by nested CV: is the hybrid better than a *tuned* classical?
TEXTURE_LR = {CLASSICAL: ("texture", 224, ("lr", {"C": 0.01})),
              **{f"tex224 LR C={c:g}": ("texture", 224, ("lr", {"C": c})) for c in LR_C}}
OTHERS = {
    **TEXTURE_LR,
    "hyb224 LR C=0.01": ("hybrid", 224, ("lr", {"C": 0.01})),
    **HYBRID_LR,
    "cnn224 only, LR C=0.01": ("cnn", 224, ("lr", {"C": 0.01})),
}
SOURCE_ONLY = "source only (training prevalence per source)"
SOURCE_ONLY_ALL = "source only, prevalence per source over all images (uses test labels; reference)"
NESTED = "hybrid MLP, setting chosen by nested CV (pooled inner AUC)"
NESTED_W = "hybrid MLP, setting chosen by nested CV (within-source inner AUC)"
NESTED_ANY = "hybrid features, MLP setting or LR C chosen by nested CV"
NESTED_T = "texture-only MLP, setting chosen by nested CV"
NESTED_C = "classical pipeline (texture LR), C chosen by nested CV"
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
    searched = (*HYBRID, *TEXTURE_MLP, *HYBRID_LR, *TEXTURE_LR)

    def run(name, train, test, seed=SEED, X=None):
        kind, size, spec = candidates[name]
        X = matrices[(kind, size)] if X is None else X
        return fit_predict(X, Y, groups, train, test, spec, seed, f"{kind}-{size}-{fp}", use_cache)

    outer = list(MultilabelStratifiedGroupKFold(5, shuffle=True, random_state=SEED).split(paths, Y, groups))
    oof = {name: np.zeros(Y.shape) for name in [SOURCE_ONLY, *candidates]}
    # the source signal alone, without the fold artefact of the row above (its constant changes per fold)
    oof[SOURCE_ONLY_ALL] = source_only(Y, source, np.arange(len(Y)), np.arange(len(Y)))
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
        for name in searched:
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

    pools = {  # name of the nested row: (pool, selection criterion)
        NESTED: (HYBRID, "pooled"),
        NESTED_W: (HYBRID, "within"),
        NESTED_ANY: ({**HYBRID, **HYBRID_LR}, "pooled"),
        NESTED_T: (TEXTURE_MLP, "pooled"),
        NESTED_C: (TEXTURE_LR, "pooled"),
    }
    picks = {}
    for row, (pool, criterion) in pools.items():
        picks[row], oof[row] = nested(pool, criterion)
        log(f"nested picks, {row}: {picks[row]}")
    mean_inner = {n: float(np.mean([inner_scores[(k, n)]["pooled"] for k in range(5)])) for n in searched}

    def modal(row):  # the setting picked most often; ties go to the best mean inner-CV macro-AUC
        counts = pd.Series(picks[row]).value_counts()
        return max(counts.index, key=lambda n: (counts[n], mean_inner[n]))

    proposed_mlp, proposed_any = modal(NESTED), modal(NESTED_ANY)
    texture_proposed = f"tex224 MLP {proposed_mlp.split(' MLP ', 1)[1]}"
    classical_modal = modal(NESTED_C)
    log(f"proposed MLP setting: {proposed_mlp}; over MLP + LR: {proposed_any}")

    opt = " (chosen on these folds: optimistic)"
    W = bootstrap_weights(groups, args.n_boot, SEED)
    rows = [CLASSICAL, TODAY_HYBRID, NESTED, NESTED_W, proposed_mlp, NESTED_ANY, proposed_any, NESTED_T,
            texture_proposed, NESTED_C, classical_modal, SOURCE_ONLY, SOURCE_ONLY_ALL]
    labels = {TODAY_HYBRID: f"hybrid, today's defaults: {TODAY_HYBRID}",
              proposed_mlp: f"proposed MLP default: {proposed_mlp}{opt}",
              proposed_any: f"proposed hybrid default: {proposed_any}{opt}",
              texture_proposed: f"texture-only MLP with the proposed MLP setting: {texture_proposed}",
              classical_modal: f"classical with the C picked most often: {classical_modal}{opt}"}
    rows = list(dict.fromkeys(rows))
    tables = {
        "vs the classical default": summarise(Y, {r: oof[r] for r in rows}, source, W, CLASSICAL),
        "vs the classical pipeline with C chosen by nested CV": summarise(
            Y, {r: oof[r] for r in (NESTED_C, NESTED, NESTED_ANY, proposed_any, NESTED_T)}, source, W, NESTED_C),
        "does the CNN help? hybrid vs texture features, same classifier": summarise(
            Y, {r: oof[r] for r in (f"tex224 LR C={LR_C[1]:g}", f"hyb224 LR C={LR_C[1]:g}")}, source, W,
            f"tex224 LR C={LR_C[1]:g}"),
    }
    tables["does the CNN help? hybrid vs texture features, same classifier"].update(summarise(
        Y, {r: oof[r] for r in (texture_proposed, proposed_mlp)}, source, W, texture_proposed))
    cv_summary = summarise(Y, {k: oof[k] for k in (SOURCE_ONLY, SOURCE_ONLY_ALL, *candidates)}, source, W,
                           CLASSICAL)
    log("bootstrap done")

    # seed check: the main MLP rows refitted with other seeds (ResNet init and MLP)
    seed_rows = {}
    runner_up = "(256, .7, wd 1, lr 1e-4)"  # the previous study's choice (table1.md)
    seed_names = list(dict.fromkeys((TODAY_HYBRID, proposed_mlp, f"hyb224 MLP {runner_up}",
                                     f"hyb128 MLP {runner_up}", texture_proposed, f"tex224 MLP {runner_up}")))
    if candidates[proposed_any][2][0] == "mlp":
        seed_names.append(proposed_any)
    for name in seed_names:
        seed_rows[name] = {SEED: {sc: (r["auc"], r["delta"]) for sc, r in cv_summary[name].items()}}
    for seed in args.seeds:
        P = {CLASSICAL: oof[CLASSICAL]}  # logistic regression is deterministic
        for name in seed_names:
            kind, size, _ = candidates[name]
            X = feature_matrix(image_features(paths, size, log, seed=seed), kind)
            P[name] = np.zeros(Y.shape)
            for train, test in outer:
                P[name][test], _ = run(name, train, test, seed=seed, X=X)
        res = summarise(Y, P, source, W, CLASSICAL)
        for name in seed_names:
            seed_rows[name][seed] = {sc: (r["auc"], r["delta"]) for sc, r in res[name].items()}
    runtime = time.perf_counter() - t_start
    log(f"done in {runtime:.0f} s")
    write_report(args, Y, groups, source, feats, candidates, dict(
        cv=cv_summary, tables=tables, labels=labels, inner=inner_scores, mean_inner=mean_inner, picks=picks,
        proposed_mlp=proposed_mlp, proposed_any=proposed_any, seed_rows=seed_rows, seconds=seconds,
        runtime=runtime))


def _fmt(r, delta=True):
    text = f"{r['auc']:.3f} [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}]"
    if delta:
        text += f" | {r['delta']:+.3f} [{r['delta_ci'][0]:+.3f}, {r['delta_ci'][1]:+.3f}]"
    return text


def _code(spec_entry) -> str:
    """The ``make_hybrid_pipeline`` call that gives a candidate."""
    kind, size, (clf, params) = spec_entry
    args = [f"size={size}"] if size != 224 else []
    if clf == "lr":
        args.append(f"classifier=make_logistic_regression(C={params['C']:g})")
    else:
        args.append("classifier=MultilabelNeuralNetClassifier(MLP, "
                    + ", ".join(f"{k}={v!r}" for k, v in params.items()) + ")")
    return f"make_hybrid_pipeline({', '.join(args)})"


def write_report(args, Y, groups, source, feats, candidates, r):
    scopes = ("pooled", *SOURCES)
    counts = {s: {"images": int((source == s).sum()), "patients": int(len(np.unique(groups[source == s]))),
                  "no_finding": int((Y[source == s].sum(axis=1) == 0).sum())} for s in SOURCES}
    shared = sorted(set(groups[source == SOURCES[0]]) & set(groups[source == SOURCES[1]]))
    labels = r["labels"]

    def table(res, rows, baseline, extra=None):
        head = "| row | " + " | ".join(f"{s} AUC [95% CI] | {s} Δ [95% CI]" for s in scopes)
        head += " | Δ > 0 in all three |" if extra is None else f" | {extra[0]} |"
        n_extra = 1 if extra is None else extra[0].count("|") + 1
        lines = [head, "|:--|" + "--:|:--|" * len(scopes) + "--:|" * n_extra]
        for name in rows:
            x = res[name]
            if name == baseline:
                cells = " | ".join(_fmt(x[s], delta=False) + " | (baseline)" for s in scopes)
                tail = ""
            else:
                cells = " | ".join(_fmt(x[s]) for s in scopes)
                tail = "yes" if all(x[s]["delta_ci"][0] > 0 for s in scopes) else "no"
            lines.append(f"| {labels.get(name, name)} | {cells} | " + (tail if extra is None else extra[1](name))
                         + " |")
        return lines

    picks = r["picks"]
    n_pick = pd.Series(picks["hybrid MLP, setting chosen by nested CV (pooled inner AUC)"]).value_counts()
    n_pick_any = pd.Series(picks["hybrid features, MLP setting or LR C chosen by nested CV"]).value_counts()

    def extra(name):
        picked = (f"{n_pick.get(name, 0)} / {n_pick_any.get(name, 0)}"
                  if name in HYBRID or name in HYBRID_LR else "")
        inner = f"{r['mean_inner'][name]:.3f}" if name in r["mean_inner"] else ""
        fit_s = f"{np.mean(r['seconds'][name]):.1f}" if name in r["seconds"] else ""
        return f"{picked} | {inner} | {fit_s}"

    cv_lines = table(r["cv"], [SOURCE_ONLY, SOURCE_ONLY_ALL, *candidates], CLASSICAL, extra=(
        "picked of 5 (MLP pool / MLP+LR pool) | mean inner-CV AUC | s per fit (1 thread)", extra))
    seed_lines = ["| row | seed | " + " | ".join(f"{s} AUC | {s} Δ vs classical" for s in scopes) + " |",
                  "|:--|--:|" + "--:|--:|" * len(scopes)]
    for name, by_seed in r["seed_rows"].items():
        for seed in sorted(by_seed):
            seed_lines.append(f"| {name} | {seed} | " + " | ".join(
                f"{by_seed[seed][s][0]:.3f} | {by_seed[seed][s][1]:+.3f}" for s in scopes) + " |")
    dims = {s: {k: int(v.shape[1]) for k, v in f.items() if k != "seconds"} for s, f in feats.items()}
    main_table, tuned_table, cnn_table = r["tables"].values()
    baselines = [CLASSICAL, "classical pipeline (texture LR), C chosen by nested CV", f"tex224 LR C={LR_C[1]:g}"]
    pm, pa = r["proposed_mlp"], r["proposed_any"]
    cnn_rows = list(cnn_table)
    text = "\n".join([
        "# Choosing the defaults of make_hybrid_pipeline() by nested patient-grouped CV", "",
        "Command: `.venv/bin/python studies/choose_defaults.py "
        f"--n-boot {args.n_boot} --seeds {' '.join(map(str, args.seeds))}"
        + (f" --threads {args.threads}" if args.threads else "") + "` (run against a snapshot of `skcxr/` "
        "taken at the start, `PYTHONPATH=/tmp/skcxr_base`, while the package was being edited)  ",
        f"Machine: {machine()}  ",
        f"Runtime of this run: {r['runtime'] / 60:.1f} min, most of the model fits coming from the on-disk cache "
        "(`studies/results/cache/choose_defaults/`); from scratch about 30 min on the 2 cores shared with other "
        "jobs (one MLP fit 1-12 s, one logistic regression 1-15 s).", "",
        f"Data: {len(Y)} real NIH ChestX-ray14 images, {len(np.unique(groups))} patients: " + "; ".join(
            f"{s} {c['images']} images / {c['patients']} patients / {c['no_finding']} 'No Finding'"
            for s, c in counts.items()) + f". {len(shared)} patients appear in both sources (one group each).", "",
        "Features (computed once for all images, no labels involved): CXRPreprocessor(size) -> LBPFeatures, "
        f"HOGFeatures and a random-init ResNetEmbedder(image_size=size, random_state=0); dims {dims}. "
        "Every candidate fits StandardScaler + classifier inside each fold, which is what the pipeline computes. "
        "The MLP gets the training patients' ids through `groups_params` for its internal validation split "
        "(`{}` where the classifier does not take groups yet). "
        "Outer CV: MultilabelStratifiedGroupKFold(5, shuffle=True, random_state=0) over patients. Nested CV: the "
        "same splitter with 3 folds inside each outer training part picks the pool's setting with the best mean "
        "inner pooled macro-AUC, which is then scored on the outer fold. Intervals: 1000 patient bootstrap "
        "resamples of the out-of-fold predictions (the within-source scores use the same resamples' images of "
        "that source); Δ is the paired difference to the table's baseline on the same resamples. Rows marked "
        "\"optimistic\" were chosen on the folds that score them; the nested rows are the honest estimates.", "",
        "## 1. Against the classical default (`make_classical_pipeline()`, LR C=0.01)", "",
        *table(main_table, list(main_table), CLASSICAL), "",
        "Nested picks per outer fold:", "",
        *[f"- {row}: {p}" for row, p in picks.items()], "",
        f"Proposed MLP default (most often picked in the MLP pool): `{_code(candidates[pm])}`.  ",
        f"Proposed hybrid default when the classifier may also be logistic regression: `{_code(candidates[pa])}`.",
        "",
        "## 2. Against the classical pipeline with its C chosen by the same nested CV", "",
        *table(tuned_table, list(tuned_table), baselines[1]), "",
        "## 3. Does the random-init ResNet add anything? Same classifier, with and without the CNN features", "",
        *table(cnn_table, cnn_rows[:2], baselines[2]), "",
        *(table(cnn_table, cnn_rows[2:], cnn_rows[2]) if len(cnn_rows) > 2 else []), "",
        "## 4. Seed check (ResNet init and MLP seed together; out-of-fold on the same outer folds)", "",
        *seed_lines, "",
        "## 5. Full CV table (every candidate, out-of-fold over the 5 outer folds, Δ vs the classical default)", "",
        "Picking the best row of this table on these folds biases its score upward; the nested rows above are "
        "the honest estimates.", "", *cv_lines, "",
        READING, "",
        "## Log", "", "```", *LOG, "```", "",
    ])
    write_markdown("choose_defaults.md", text)
    (RESULTS / "choose_defaults.json").write_text(json.dumps({
        "command": f"studies/choose_defaults.py --n-boot {args.n_boot} --seeds {args.seeds} --threads {args.threads}",
        "machine": machine(), "runtime_s": r["runtime"], "n_boot": args.n_boot, "counts": counts,
        "patients_in_both_sources": len(shared), "feature_dims": dims,
        "proposed_mlp": {"name": pm, "code": _code(candidates[pm]), "image_size": candidates[pm][1],
                         "classifier": candidates[pm][2][0], "params": candidates[pm][2][1]},
        "proposed_any": {"name": pa, "code": _code(candidates[pa]), "image_size": candidates[pa][1],
                         "classifier": candidates[pa][2][0], "params": candidates[pa][2][1]},
        "nested_picks": picks,
        "tables": {title: t for title, t in r["tables"].items()}, "cv": r["cv"],
        "inner_scores": {f"fold{k}|{n}": v for (k, n), v in r["inner"].items()},
        "mean_inner_scores": r["mean_inner"],
        "seed_check": {n: {str(s): v for s, v in d.items()} for n, d in r["seed_rows"].items()},
        "seconds_per_fit": {n: float(np.mean(v)) for n, v in r["seconds"].items()},
    }, indent=1, default=lambda o: list(o) if isinstance(o, tuple) else float(o)))
    print(text)


READING = """## Reading (written after looking at the run recorded here)

- **No MLP setting meets the bar.** Honest (nested) estimate of the hybrid MLP with its setting chosen by CV,
  against the classical default: pooled +0.024 [+0.003, +0.042], but nih -0.011 [-0.037, +0.013] and nih-64
  +0.026 [-0.001, +0.066]. No MLP row of the full table has a nih interval above zero; today's defaults are
  +0.028 pooled, -0.010 nih, +0.051 nih-64. Seeds move the nih difference of one setting by +-0.02, as much as
  the settings differ from each other.
- **The nested choice among MLP settings is unstable**: the 5 outer folds pick 4 different settings (mean
  inner-CV AUCs 0.64-0.66, within noise). The modal pick (2 of 5) is today's MLP on 128-px features. Today's MLP
  (lr 1e-3) reaches its best validation loss after one epoch and then overfits; the lr 1e-4 settings stop later.
- **Logistic regression with C=1e-4 on the hybrid features is the only candidate above the classical default
  everywhere**: +0.049 [+0.036, +0.059] pooled, +0.017 [+0.003, +0.030] nih, +0.054 [+0.037, +0.075] nih-64, and
  the nested CV over MLP settings + LR C picks it in 5 of 5 folds.
- **But the gain is regularisation, not the CNN.** The classical default's C=0.01 is too weak for 6,244 texture
  features: the same nested CV on the classical pipeline picks C=1e-4 in 5 of 5 folds (0.673 pooled, 0.597 nih,
  0.632 nih-64). Against that tuned classical pipeline the random-init ResNet adds +0.005 [+0.001, +0.008] pooled,
  +0.006 [+0.000, +0.012] nih, +0.004 [-0.004, +0.011] nih-64, and the nested hybrid MLP is worse
  (-0.020 [-0.034, -0.006] pooled).
- **Source alone**: per-source prevalences computed on all images (using test labels) give 0.599 pooled
  macro-AUC and exactly 0.5 within each source: knowing the source is worth about 0.1 of pooled AUC above
  chance, which is why every model's pooled AUC sits 0.04-0.08 above both of its within-source AUCs. The
  row required by the issue (each fold's *training* prevalence per source) scores below 0.5 within each
  source (0.39, 0.36): its score is constant within a source and fold, and with label-stratified folds a fold
  whose training part has fewer positives has more in its test part, so the out-of-fold scores rank against
  the labels. Its pooled 0.518 therefore understates the source signal.
"""

LOG: list = []

if __name__ == "__main__":
    main()
