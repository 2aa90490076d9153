"""Rare findings on real NIH images: MLROS, MLSMOTE, pos_weight or nothing, with LBP+HOG -> MLP.

Data: ../shared/data/nih (421 images) + nih-64 (995 images), the patient-wise, label-stratified 75/25
split of the other studies (``load_real_nih``, seed 0). Every image is brought to ``--size`` px (64 by
default, the classical baseline's size, so resolution does not tell the sources apart) and described by
LBP + HOG, computed once and cached in studies/results/cache/oversampling/ (keyed on the files' names,
sizes and modification times).

Four models, one MLP (``MultilabelNeuralNetClassifier`` with its defaults, the same seed); only the
treatment of imbalance differs:

- ``none``: ``pos_weight=None``, no sampling;
- ``pos_weight``: ``pos_weight="balanced"`` (the classifier's default: negatives / positives per label);
- ``MLROS``: ``skcxr.sampling.MLROS(sampling_strategy="minority")`` then the MLP with ``pos_weight=None``;
- ``MLSMOTE``: ``skcxr.sampling.MLSMOTE(sampling_strategy="minority")`` (the paper's rule, ranking label
  sets) then the MLP with ``pos_weight=None``.

Both samplers add one row per (minority label, training image carrying it), so they add the same
number of rows. They run inside ``skcxr.sampling.Pipeline`` after the ``StandardScaler``, so patient
ids follow the resampled rows into the MLP's patient-disjoint early-stopping split.

**Rare findings** are the minority labels of the training part, ``IRLbl > MeanIR`` (the samplers' own
definition, fixed before any model is fitted). Reported, pooled and within each source: macro-AUC over
the rare findings and over all 14 findings, with 95 % intervals from a bootstrap over test patients
(``skcxr.evaluation``; every model on the same resamples) and the paired difference to ``none``; macro-F1
over the rare findings at 0.5 and at the MLP's own tuned thresholds (chosen on its inner validation
split, never on the test part), with the same patient bootstrap. ``--seeds`` repeats the fits with
other MLP seeds (same split) to show how much of a difference is seed noise.

Read the tuned F1 of the samplers with care: the MLP's inner validation part is taken from the
resampled rows, so it holds clones (MLROS) or synthetic rows (MLSMOTE, interpolated towards neighbours
that may be training patients) of its rare findings; the thresholds tuned there can sit higher than
the test images warrant.

    nice -n 10 .venv/bin/python studies/oversampling.py            # a few minutes on 2 cores (features cached)
    nice -n 10 .venv/bin/python studies/oversampling.py --quick    # ~40 % of the patients, 1 seed; writes nothing
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from _common import RESULTS, load_real_nih, machine, source_of, timed, write_markdown
from sklearn.preprocessing import StandardScaler

from skcxr.evaluation import bootstrap_macro_auc, holdout_report, jsonable, paired_bootstrap_macro_auc
from skcxr.features import HOGFeatures, LBPFeatures
from skcxr.neural import MultilabelNeuralNetClassifier
from skcxr.preprocessing import CXRPreprocessor
from skcxr.sampling import MLROS, MLSMOTE, Pipeline, irlbl, mean_ir

CACHE = RESULTS / "cache" / "oversampling"
SCOPES = ("pooled", "nih", "nih-64")
BASELINE = "none"
K_NEIGHBORS = 5


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- features ----------------------------------------------------------------------------------------


def _fingerprint(paths, size) -> str:
    """Hash of the file names, sizes and modification times (an image replaced under its name changes it)."""
    h = hashlib.sha1(f"size={size}\n".encode())
    for p in paths:
        st = Path(p).stat()
        h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def texture_features(paths, size: int) -> np.ndarray:
    """LBP + HOG of every image at ``size`` px (float32), cached on disk; no labels are used."""
    CACHE.mkdir(parents=True, exist_ok=True)
    file = CACHE / f"lbp_hog_{size}_{_fingerprint(paths, size)}.npy"
    if file.exists():
        return np.load(file)
    seconds, _, F = timed(lambda: np.hstack([
        step.fit_transform(X) for X in [CXRPreprocessor(size=size, n_jobs=2).fit_transform(paths)]
        for step in (LBPFeatures(n_jobs=2), HOGFeatures(n_jobs=2))]).astype(np.float32))
    log(f"LBP+HOG of {len(paths)} images at {size} px: {seconds:.0f} s, {F.shape[1]} features")
    np.save(file, F)
    return F


# -- models ------------------------------------------------------------------------------------------


def make_models(seed: int, k_neighbors: int, max_epochs: int) -> dict:
    def mlp(pos_weight):
        return MultilabelNeuralNetClassifier(pos_weight=pos_weight, max_epochs=max_epochs, random_state=seed)

    return {
        "none": Pipeline([("scale", StandardScaler()), ("mlp", mlp(None))]),
        "pos_weight": Pipeline([("scale", StandardScaler()), ("mlp", mlp("balanced"))]),
        "MLROS": Pipeline([("scale", StandardScaler()),
                           ("sample", MLROS(sampling_strategy="minority", random_state=seed)),
                           ("mlp", mlp(None))]),
        "MLSMOTE": Pipeline([("scale", StandardScaler()),
                             ("sample", MLSMOTE(sampling_strategy="minority", k_neighbors=k_neighbors,
                                                random_state=seed)),
                             ("mlp", mlp(None))]),
    }


# -- rare-finding metrics ----------------------------------------------------------------------------


def patient_weights(groups, n_boot: int, seed: int) -> np.ndarray:
    """``(n_boot, n)`` multiplicities of each image when patients are drawn with replacement."""
    rng = np.random.default_rng(seed)
    patients, index = np.unique(groups, return_inverse=True)
    draws = rng.integers(0, len(patients), size=(n_boot, len(patients)))
    counts = np.zeros((n_boot, len(patients)))
    np.add.at(counts, (np.arange(n_boot)[:, None], draws), 1.0)
    return counts[:, index]


def macro_f1(Y, pred, W) -> np.ndarray:
    """Macro-F1 of every weighted resample (``W``: image multiplicities), over labels with a positive in it."""
    Y, pred = Y.astype(bool), pred.astype(bool)
    tp, fp, fn = W @ (pred & Y), W @ (pred & ~Y), W @ (~pred & Y)
    f1 = np.where(tp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1e-12), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample without any rare positive: NaN
        return np.nanmean(f1, axis=1)


def _interval(point, replicates):
    low, high = np.nanpercentile(replicates, [2.5, 97.5])
    return float(point), float(low), float(high)


def rare_metrics(result, Y_te, g_te, s_te, rare, n_boot, seed) -> pd.DataFrame:
    """One row per (scope, model): rare-finding macro-AUC, ΔAUC to the baseline, macro-F1 at 0.5 and tuned."""
    rows = []
    for scope in SCOPES:
        mask = np.ones(len(Y_te), bool) if scope == "pooled" else s_te == scope
        Y, g = Y_te[mask][:, rare], g_te[mask]
        W = patient_weights(g, n_boot, seed)
        base = result.proba[BASELINE][mask][:, rare]
        for name, P in result.proba.items():
            P = P[mask][:, rare]
            row = {"scope": scope, "model": name, "images": int(mask.sum()), "patients": len(np.unique(g))}
            row["rare AUC"] = tuple(bootstrap_macro_auc(Y, P, g, n_boot=n_boot, random_state=seed))
            row["rare ΔAUC"] = (tuple(paired_bootstrap_macro_auc(Y, P, base, g, n_boot=n_boot, random_state=seed))
                                if name != BASELINE else (np.nan,) * 3)
            at_05 = P >= 0.5
            row["rare F1 @0.5"] = _interval(macro_f1(Y, at_05, np.ones((1, len(Y))))[0], macro_f1(Y, at_05, W))
            t = result.thresholds.get(name)
            if t is None:
                row["rare F1 tuned"] = (np.nan,) * 3
            else:
                tuned = P >= np.asarray(t)[rare]
                row["rare F1 tuned"] = _interval(macro_f1(Y, tuned, np.ones((1, len(Y))))[0], macro_f1(Y, tuned, W))
            rows.append(row)
    return pd.DataFrame(rows)


def _fmt(triple) -> str:
    point, low, high = triple
    return "n/a" if not np.isfinite(point) else f"{point:.3f} [{low:.3f}, {high:.3f}]"


def _fmt_delta(triple) -> str:
    point, low, high = triple
    return "—" if not np.isfinite(point) else f"{point:+.3f} [{low:+.3f}, {high:+.3f}]"


def rare_table(table: pd.DataFrame, scope: str) -> str:
    part = table[table.scope == scope]
    out = pd.DataFrame({
        "Model": part.model,
        "rare macro-AUC [95 %]": part["rare AUC"].map(_fmt),
        f"Δ vs {BASELINE} [95 %]": part["rare ΔAUC"].map(_fmt_delta),
        "rare macro-F1 @0.5": part["rare F1 @0.5"].map(_fmt),
        "rare macro-F1 (tuned)": part["rare F1 tuned"].map(_fmt),
    })
    return out.to_markdown(index=False)


# -- the study ---------------------------------------------------------------------------------------


def quick_subset(paths, Y, groups, fraction, seed):
    """The rows of a random ``fraction`` of the patients (whole patients, so the split stays patient-wise)."""
    patients = np.unique(groups)
    keep = np.random.default_rng(seed).choice(patients, max(2, int(len(patients) * fraction)), replace=False)
    mask = np.isin(groups, keep)
    return paths[mask], Y[mask], groups[mask]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0, help="the split's seed (and the first MLP seed)")
    parser.add_argument("--seeds", type=int, default=3, help="MLP seeds (the first one gets the full tables)")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--quick", action="store_true",
                        help="~40 %% of the patients, 1 seed, 200 resamples, 20 epochs; prints, writes no results")
    args = parser.parse_args()
    seeds, n_boot, max_epochs = (1, 200, 20) if args.quick else (args.seeds, args.n_boot, 100)
    t_start = time.perf_counter()

    p_tr, p_te, Y_tr, Y_te, g_tr, g_te, names = load_real_nih(seed=args.seed)
    if args.quick:
        p_tr, Y_tr, g_tr = quick_subset(p_tr, Y_tr, g_tr, 0.4, args.seed)
        p_te, Y_te, g_te = quick_subset(p_te, Y_te, g_te, 0.4, args.seed)
    s_te = source_of(p_te)
    F = texture_features(np.concatenate([p_tr, p_te]), args.size)
    X_tr, X_te = F[: len(p_tr)], F[len(p_tr):]

    ratios = irlbl(Y_tr)
    rare = np.flatnonzero(ratios > mean_ir(Y_tr))
    bags = Y_tr[:, rare].sum(axis=0)
    k = int(min(K_NEIGHBORS, bags.min() - 1))
    if k < 1:
        raise SystemExit(f"a rare finding has {bags.min()} training image(s): MLSMOTE needs at least 2")
    log(f"{len(p_tr)} train / {len(p_te)} test images; {X_tr.shape[1]} features; MeanIR {mean_ir(Y_tr):.2f}; "
        f"rare: {', '.join(f'{names[j]} ({b})' for j, b in zip(rare, bags))}; MLSMOTE k={k}")

    results, tables, per_seed = {}, {}, []
    for i in range(seeds):
        seed = args.seed + i
        models = make_models(seed, k, max_epochs)
        result = holdout_report(models, X_tr, Y_tr, X_te, Y_te, groups_train=g_tr, groups_test=g_te,
                                sources_test=s_te, target_names=names, baseline=BASELINE, threshold_cv=None,
                                n_boot=n_boot, random_state=args.seed)
        table = rare_metrics(result, Y_te, g_te, s_te, rare, n_boot, args.seed)
        results[seed], tables[seed] = result, table
        for _, r in table.iterrows():
            per_seed.append({"seed": seed, "scope": r.scope, "model": r.model, "rare AUC": r["rare AUC"][0],
                             "rare F1 tuned": r["rare F1 tuned"][0], "rare F1 @0.5": r["rare F1 @0.5"][0]})
        added = {n: len(m["sample"].sample_indices_) - len(X_tr) for n, m in result.models.items()
                 if "sample" in m.named_steps}
        log(f"seed {seed}: rows added {added}; pooled rare macro-AUC "
            + ", ".join(f"{r.model} {r['rare AUC'][0]:.3f}" for _, r in table[table.scope == "pooled"].iterrows()))

    seed0 = args.seed
    result, table = results[seed0], tables[seed0]
    spread = (pd.DataFrame(per_seed).groupby(["scope", "model"], sort=False)
              .agg(**{f"rare AUC mean ({seeds} seeds)": ("rare AUC", "mean"), "rare AUC sd": ("rare AUC", "std"),
                      "rare F1 tuned mean": ("rare F1 tuned", "mean"), "rare F1 tuned sd": ("rare F1 tuned", "std")}))
    per_class = pd.DataFrame({n: r.per_class["AUC"] for n, r in result.reports.items()}).iloc[rare]
    per_class.insert(0, "train positives", bags)
    per_class.insert(1, "IRLbl", ratios[rare])
    minutes = (time.perf_counter() - t_start) / 60
    cmd = "studies/oversampling.py" + (" --quick" if args.quick else "") + \
        f" --size {args.size} --seed {args.seed} --seeds {seeds}"

    text = "\n".join([
        "# Over-sampling rare findings: MLROS, MLSMOTE, pos_weight, none (LBP+HOG -> MLP)", "",
        f"Command: `nice -n 10 .venv/bin/python {cmd}` ({minutes:.1f} min)  ",
        f"Machine: {machine()}  ",
        f"Data: {len(p_tr)} train / {len(p_te)} test images ({len(np.unique(g_tr))} / {len(np.unique(g_te))} "
        f"patients), patient-wise split (seed {args.seed}); LBP+HOG at {args.size} px ({X_tr.shape[1]} features), "
        "standardised on the training part.  ",
        f"Rare findings (training IRLbl > MeanIR = {mean_ir(Y_tr):.2f}): "
        + ", ".join(f"{names[j]} ({b} training images, IRLbl {ratios[j]:.1f})" for j, b in zip(rare, bags)) + ".  ",
        f"Samplers: `sampling_strategy=\"minority\"` adds {int(bags.sum())} rows (one per rare finding of a training "
        f"image) to the {len(X_tr)}; MLSMOTE with k={k}, ranking label sets. The MLP's inner validation split "
        "(early stopping, tuned thresholds) takes whole patients of the resampled rows.", "",
        f"## Rare findings (MLP seed {seed0})", "",
        "Macro-AUC and macro-F1 over the rare findings; 95 % intervals from a bootstrap over test patients "
        f"({n_boot} resamples, the same for every model; Δ paired). (tuned): at the MLP's thresholds tuned on its "
        "inner validation split.", "",
        *[line for scope in SCOPES for line in (f"### {scope}", "", rare_table(table, scope), "")],
        "Per rare finding, test AUC (pooled):", "",
        per_class.to_markdown(floatfmt=".3f"), "",
        f"## All 14 findings (MLP seed {seed0})", "",
        result.to_markdown(), "",
        f"## Over {seeds} MLP seeds (same split; point estimates)", "",
        spread.reset_index().to_markdown(index=False, floatfmt=".3f"), "",
    ])
    print(text)
    if args.quick:
        return log("quick run: nothing written")
    write_markdown("oversampling.md", text)
    (RESULTS / "oversampling.json").write_text(json.dumps(jsonable({
        "rare": [names[j] for j in rare], "k_neighbors": k,
        "rare_metrics": {str(s): t.to_dict(orient="records") for s, t in tables.items()},
        "holdout": {str(s): r.to_dict() for s, r in results.items()},
    }), indent=2, allow_nan=False))




if __name__ == "__main__":
    main()
