"""Inference in bf16 vs fp32: speed, agreement and the hybrid pipeline's macro-AUC (issue 8, ``precision``).

All in ONE process, so the two precisions meet the same machine state:

1. **Speed and agreement** on ``--n`` real NIH radiographs (a fixed random
   sample of the training part of ``load_real_nih(seed)``, both sources,
   preprocessed once by ``CXRPreprocessor(size=224)``, not timed):
   - ``ResNetEmbedder.transform`` at 224 px, batch ``--batch-size`` (random
     init, ``random_state=0``): img/s fp32 and bf16, the speed-up, the
     feature correlation (per-feature Pearson over images: median and min over
     the features that vary; and the global correlation of all values);
   - ``GradCAM.transform`` (``target="predicted"``, raw maps,
     ``normalize=None``) of a ResNet18 fine-tuned ``--cam-epochs`` epochs on
     ``--cam-n`` of the images (fine-tuning is fp32 either way, not timed):
     img/s both ways, max abs difference relative to the largest map value,
     correlation; and the same for every label's map on the 7x7 ``layer4``
     grid (:func:`skcxr.attention.cnn_cams`) and for the logits;
   - the shipped lung U-Net (``load_lung_unet()``, 128 px, maps returned at
     224 px): img/s both ways, max abs difference, correlation, and the Dice of
     the bf16 masks against the fp32 masks.
   The precisions take turns for ``--rounds`` rounds after a warm-up (best
   round reported, the steadier number on shared cores); every round also
   checks that each precision repeats its own output bit for bit. Peak RSS
   above the RSS before each call is sampled by ``_common.timed``.
2. **Classification**: ``make_hybrid_pipeline(random_state=0)`` with its
   ResNetEmbedder at fp32 and at bf16, fitted on the same patient-wise split
   of the 1,416 shared NIH images (``load_real_nih(seed)``), scored by
   ``holdout_report`` (baseline "hybrid fp32", ``n_boot`` patient-bootstrap
   resamples, no threshold tuning): macro-AUC with its interval and the paired
   ΔAUC with its interval, pooled and within each source; plus how far the two
   models' test probabilities are apart.

The issue's bar on an AVX-512/AMX machine: bf16 >= 1.6x the fp32 speed of
``ResNetEmbedder``, features correlated >= 0.99, and a ΔAUC whose interval
holds 0 ("no change beyond noise").

    .venv/bin/python studies/precision.py            # ~4-6 min on 2 quiet cores (AVX-512 bf16)
    .venv/bin/python studies/precision.py --smoke    # ~1 min: tiny sizes, checks the script, writes nothing

Writes studies/results/precision.md (and precision.json).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
import warnings

import numpy as np
import pandas as pd

PRECISIONS = ("fp32", "bf16")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256, help="images of the speed part")
    parser.add_argument("--batch-size", type=int, default=32, help="inference batch of the embedder and Grad-CAM")
    parser.add_argument("--rounds", type=int, default=5, help="alternating timing rounds per precision (best kept)")
    parser.add_argument("--cam-n", type=int, default=128, help="images the Grad-CAM network is fine-tuned on")
    parser.add_argument("--cam-epochs", type=int, default=2, help="fine-tuning epochs of the Grad-CAM network")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--seed", type=int, default=0, help="the patient-wise split of load_real_nih")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples of holdout_report")
    parser.add_argument("--skip-auc", action="store_true", help="only the speed part")
    parser.add_argument("--smoke", action="store_true",
                        help="a tiny run (16 images, 64-px pipeline on 80+40 images, 50 resamples) that checks "
                             "the script; writes no results")
    args = parser.parse_args(argv)
    if args.smoke:
        args.n, args.rounds, args.cam_n, args.cam_epochs, args.n_boot = 16, 1, 16, 1, 50
    return args


# --------------------------------------------------------------------------- measures
def pearson(a, b) -> float:
    return float(np.corrcoef(np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64))[0, 1])


def feature_correlation(a: np.ndarray, b: np.ndarray) -> dict:
    """Per-feature Pearson over images (median, min, over features that vary in ``a``) and the global one."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    varies = (a.std(0) > 0) & (b.std(0) > 0)
    ac, bc = a[:, varies] - a[:, varies].mean(0), b[:, varies] - b[:, varies].mean(0)
    r = (ac * bc).sum(0) / np.sqrt((ac**2).sum(0) * (bc**2).sum(0))
    return {
        "per-feature r median": float(np.median(r)) if r.size else float("nan"),
        "per-feature r min": float(r.min()) if r.size else float("nan"),
        "features that vary": f"{int(varies.sum())} of {a.shape[1]}",
        "global r": pearson(a, b),
        "max |diff| / max |fp32|": float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-12)),
    }


def map_agreement(a: np.ndarray, b: np.ndarray, masks: bool = False) -> dict:
    out = {"global r": pearson(a, b), "max |diff|": float(np.abs(a - b).max()),
           "max |diff| / max fp32": float(np.abs(a - b).max() / max(float(np.abs(a).max()), 1e-12))}
    if masks:  # lung probability maps: the masks at 0.5
        ma, mb = a >= 0.5, b >= 0.5
        inter, total = (ma & mb).sum((1, 2)), ma.sum((1, 2)) + mb.sum((1, 2))
        out["Dice of the 0.5 masks (bf16 vs fp32), min"] = float(
            np.min(np.where(total > 0, 2 * inter / np.maximum(total, 1), 1.0)))
        out["pixels whose mask differs"] = float((ma != mb).mean())
    return out


def race(name: str, runs: dict, n_images: int, rounds: int, log) -> tuple[dict, dict]:
    """Time ``runs`` ({precision: callable}) in turns; best round, peak RSS, bit-for-bit repeatability.

    Returns ``(row, outputs)``: the table row and each precision's output.
    """
    from _common import timed

    outputs, best, peak, repeat = {}, {}, {}, {}
    for precision, run in runs.items():  # warm-up (also the output kept for the comparisons)
        outputs[precision] = run()
        best[precision], peak[precision], repeat[precision] = np.inf, 0.0, True
    for r in range(rounds):
        for precision, run in runs.items():
            seconds, rss, out = timed(run)
            best[precision] = min(best[precision], seconds)
            peak[precision] = max(peak[precision], rss)
            repeat[precision] &= bool(np.array_equal(out, outputs[precision]))
        log(f"  {name} round {r + 1}: " + ", ".join(f"{p} {n_images / best[p]:.1f} img/s" for p in runs))
    row = {"work": name}
    for p in runs:
        row[f"{p} img/s"] = n_images / best[p]
    row["speed-up bf16/fp32"] = best["fp32"] / best["bf16"]
    for p in runs:
        row[f"{p} peak RSS MiB"] = peak[p]
    for p in runs:
        row[f"{p} repeats bit for bit"] = repeat[p]
    return row, outputs


# --------------------------------------------------------------------------- parts
def speed_part(args, stack, Y, groups, log) -> tuple[pd.DataFrame, dict]:
    from skcxr.attention import GradCAM, cnn_cams
    from skcxr.features import ResNetEmbedder
    from skcxr.neural import numpy_state
    from skcxr.segmentation import load_lung_unet

    n = len(stack)
    rows, agreement = [], {}

    emb = ResNetEmbedder(batch_size=args.batch_size, random_state=0).fit(stack[:1])
    runs = {p: (lambda p=p: emb.set_params(precision=p).transform(stack)) for p in PRECISIONS}
    row, out = race("ResNetEmbedder.transform (224 px, 512 features)", runs, n, args.rounds, log)
    rows.append(row)
    agreement["ResNetEmbedder features"] = feature_correlation(out["fp32"], out["bf16"])

    tic = time.perf_counter()
    cnn = ResNetEmbedder(fine_tune="all", epochs=args.cam_epochs, batch_size=args.batch_size, random_state=0)
    m = min(args.cam_n, n)
    cam = GradCAM(cnn, normalize=None, batch_size=args.batch_size, precision="fp32")
    cam.fit(stack[:m], Y[:m], groups=groups[:m])
    log(f"  Grad-CAM network fine-tuned on {m} images in {time.perf_counter() - tic:.0f} s (fp32, not timed)")
    cams = {p: copy.deepcopy(cam).set_params(precision=p) for p in PRECISIONS}
    runs = {p: (lambda p=p: cams[p].transform(stack)) for p in PRECISIONS}
    row, out = race("GradCAM.transform (raw maps of the predicted labels, 224 px)", runs, n, args.rounds, log)
    rows.append(row)
    agreement["GradCAM maps (predicted labels, 224 px)"] = map_agreement(out["fp32"], out["bf16"])
    agreement["GradCAM maps (predicted labels, 224 px)"]["per-map r min (maps that vary)"] = _per_map_min_r(
        out["fp32"], out["bf16"])
    # Every label's map on the layer4 grid, and the logits: what the maps above are made of.
    states = cam.cnn_.model_, numpy_state(cam.cnn_.head_.state_dict())
    grids = {p: cnn_cams(stack, *states, image_size=224, batch_size=args.batch_size, precision=p)
             for p in PRECISIONS}
    agreement["GradCAM grids (all labels, 7x7)"] = map_agreement(grids["fp32"][0], grids["bf16"][0])
    agreement["GradCAM grids (all labels, 7x7)"]["per-map r min (maps that vary)"] = _per_map_min_r(
        grids["fp32"][0], grids["bf16"][0])
    agreement["GradCAM logits"] = {"global r": pearson(grids["fp32"][1], grids["bf16"][1]),
                                   "max |diff|": float(np.abs(grids["fp32"][1] - grids["bf16"][1]).max()),
                                   "labels predicted (logit >= 0) that differ":
                                       float(((grids["fp32"][1] >= 0) != (grids["bf16"][1] >= 0)).mean())}

    seg = load_lung_unet()
    segs = {p: copy.deepcopy(seg).set_params(precision=p) for p in PRECISIONS}
    runs = {p: (lambda p=p: segs[p].transform(stack)) for p in PRECISIONS}
    row, out = race(f"UNetSegmenter.transform (shipped lung U-Net, {seg.image_size} px)", runs, n, args.rounds, log)
    rows.append(row)
    agreement["U-Net lung maps"] = map_agreement(out["fp32"], out["bf16"], masks=True)
    return pd.DataFrame(rows), agreement


def _per_map_min_r(a, b) -> float:
    flat_a, flat_b = a.reshape(-1, a.shape[-2] * a.shape[-1]), b.reshape(-1, b.shape[-2] * b.shape[-1])
    rs = [pearson(x, y) for x, y in zip(flat_a, flat_b) if x.std() > 0 and y.std() > 0]
    return float(min(rs)) if rs else float("nan")


def auc_part(args, log):
    from _common import load_real_nih, source_of

    from skcxr.evaluation import holdout_report
    from skcxr.pipelines import make_hybrid_pipeline

    p_tr, p_te, Y_tr, Y_te, g_tr, g_te, names = load_real_nih(seed=args.seed)
    size = 224
    if args.smoke:
        rng = np.random.default_rng(0)
        keep_tr, keep_te = np.sort(rng.choice(len(p_tr), 80, False)), np.sort(rng.choice(len(p_te), 40, False))
        p_tr, Y_tr, g_tr = p_tr[keep_tr], Y_tr[keep_tr], g_tr[keep_tr]
        p_te, Y_te, g_te = p_te[keep_te], Y_te[keep_te], g_te[keep_te]
        size = 64
    models = {f"hybrid {p}": make_hybrid_pipeline(size=size, random_state=0).set_params(features__cnn__precision=p)
              for p in PRECISIONS}
    log(f"hybrid pipeline, {len(p_tr)} training and {len(p_te)} test images, {size} px, fp32 and bf16 ...")
    result = holdout_report(models, p_tr, Y_tr, p_te, Y_te, groups_train=g_tr, groups_test=g_te,
                            sources_test=source_of(p_te), target_names=names, baseline="hybrid fp32",
                            threshold_cv=None, n_boot=args.n_boot, random_state=args.seed)
    a, b = result.proba["hybrid fp32"], result.proba["hybrid bf16"]
    proba = {"max |Δ probability|": float(np.abs(a - b).max()), "mean |Δ probability|": float(np.abs(a - b).mean()),
             "predictions at 0.5 that differ": float(((a >= 0.5) != (b >= 0.5)).mean()),
             "r of the probabilities": pearson(a, b)}
    return result, proba


def side_by_side(result) -> pd.DataFrame:
    """Models x (pooled, each source): macro-AUC [CI] and the paired ΔAUC vs fp32 [CI]."""
    parts = {"pooled": result.summary, **result.by_source}
    out = pd.DataFrame(index=result.summary.index)
    for part, t in parts.items():
        out[f"AUC {part}"] = [f"{a:.3f} [{lo:.3f}, {hi:.3f}]"
                              for a, lo, hi in t[["Macro-AUC", "AUC low", "AUC high"]].to_numpy()]
    for part, t in parts.items():
        out[f"ΔAUC vs fp32 {part}"] = ["" if not np.isfinite(d) else f"{d:+.4f} [{lo:+.4f}, {hi:+.4f}]"
                                       for d, lo, hi in t[["ΔAUC", "ΔAUC low", "ΔAUC high"]].to_numpy()]
    return out


def _table(d: dict) -> str:
    """{work: {measure: value}} as a markdown table, one column per work (blank where not measured)."""
    measures = list(dict.fromkeys(m for values in d.values() for m in values))
    fmt = lambda v: f"{v:.6g}" if isinstance(v, float) else str(v)  # noqa: E731
    table = pd.DataFrame({work: [fmt(values[m]) if m in values else "" for m in measures] for work, values in d.items()},
                         index=measures)
    return table.to_markdown()


# --------------------------------------------------------------------------- main
def main(argv=None) -> None:
    args = parse_args(argv)
    import torch
    from _common import SHARED_DATA, load_real_nih, machine, source_of, write_markdown

    from skcxr._torch import cpu_has_bf16, resolve_precision
    from skcxr.preprocessing import CXRPreprocessor

    if args.threads:
        torch.set_num_threads(args.threads)
    t_start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t_start:6.0f} s] {msg}", flush=True)

    line = machine()
    auto = resolve_precision("auto", "auto")
    log(line)
    log(f"bf16 units (avx512_bf16/amx_bf16): {cpu_has_bf16()}; precision='auto' resolves to {auto}; "
        f"data {SHARED_DATA}")
    if auto != "bf16":
        warnings.warn("precision='auto' is fp32 here: bf16 runs emulated and is expected to be slower.", stacklevel=1)

    p_tr, _, Y_tr, _, g_tr, _, _ = load_real_nih(seed=args.seed)
    pick = np.sort(np.random.default_rng(0).choice(len(p_tr), min(args.n, len(p_tr)), replace=False))
    paths, Y, groups = p_tr[pick], Y_tr[pick], g_tr[pick]
    sources = pd.Series(source_of(paths)).value_counts().to_dict()
    stack = CXRPreprocessor(size=224).fit_transform(paths)
    log(f"speed part: {len(stack)} images {sources}, preprocessed to 224 px")
    speed, agreement = speed_part(args, stack, Y, groups, log)
    print(speed.round(3).to_markdown(index=False), flush=True)
    print(_table(agreement), flush=True)

    result = proba = None
    if not args.skip_auc:
        result, proba = auc_part(args, log)
        print(side_by_side(result).to_markdown(), flush=True)
        print(json.dumps(proba, indent=1), flush=True)
    runtime = time.perf_counter() - t_start
    log(f"done in {runtime / 60:.1f} min")
    if args.smoke:
        return

    emb = speed.iloc[0]
    feat = agreement["ResNetEmbedder features"]
    verdict = [
        f"- ResNetEmbedder bf16 / fp32 speed: **{emb['speed-up bf16/fp32']:.2f}x** "
        f"({emb['fp32 img/s']:.0f} -> {emb['bf16 img/s']:.0f} img/s; the bar: >= 1.6x) -- "
        f"{'met' if emb['speed-up bf16/fp32'] >= 1.6 else 'NOT met'}.",
        f"- Feature correlation: global **{feat['global r']:.5f}** (the bar: >= 0.99) -- "
        f"{'met' if feat['global r'] >= 0.99 else 'NOT met'}; per feature (over images) median "
        f"{feat['per-feature r median']:.5f}, min {feat['per-feature r min']:.5f}"
        f"{'' if feat['per-feature r min'] >= 0.99 else ' (below 0.99 for some feature)'}.",
        "- Each precision repeats its own outputs bit for bit: "
        + ("yes, for every estimator and round." if all(speed[f"{p} repeats bit for bit"].all() for p in PRECISIONS)
           else "**NO** (see the table)."),
    ]
    if result is not None:
        d = result.summary.loc["hybrid bf16", ["ΔAUC", "ΔAUC low", "ΔAUC high"]].to_numpy(float)
        verdict.append(f"- Hybrid pipeline, pooled macro-AUC change bf16 - fp32: **{d[0]:+.4f}** "
                       f"[{d[1]:+.4f}, {d[2]:+.4f}] -- "
                       f"{'within noise (the interval holds 0)' if d[1] <= 0 <= d[2] else 'the interval excludes 0'}.")
    text = [
        "# Inference precision: bf16 vs fp32 (issue 8)", "",
        f"Machine: {line}.  ", f"bf16 units: {cpu_has_bf16()}; `precision=\"auto\"` resolves to `{auto}` here.  ",
        f"Command: `.venv/bin/python studies/precision.py` ({runtime / 60:.1f} min, one process). "
        f"Speed part: {len(stack)} real NIH images {sources} (a fixed sample of the training part of "
        f"`load_real_nih(seed={args.seed})`), 224 px, batch {args.batch_size}; precisions alternate for "
        f"{args.rounds} rounds after a warm-up, best round shown; peak RSS above the RSS before the call.", "",
        "## Verdict", "", *verdict, "",
        "## Speed", "", speed.round(3).to_markdown(index=False), "",
        "## Agreement of bf16 with fp32", "", _table(agreement), "",
    ]
    if result is not None:
        text += [
            "## Hybrid pipeline, fp32 vs bf16 embedder, same patient-wise split", "",
            "`make_hybrid_pipeline(random_state=0)` with `features__cnn__precision` set to fp32 / bf16, "
            f"`holdout_report(..., baseline=\"hybrid fp32\", threshold_cv=None, n_boot={args.n_boot})`; "
            "intervals are patient-bootstrap 95 % (the ΔAUC paired on the same resamples).", "",
            side_by_side(result).to_markdown(), "",
            "Test probabilities of the two models: " + ", ".join(f"{k} {v:.4g}" for k, v in proba.items()) + ".", "",
            "Full tables:", "", result.to_markdown(), "",
        ]
    path = write_markdown("precision.md", "\n".join(text))
    payload = {"machine": line, "auto": auto, "speed": speed.to_dict(orient="records"), "agreement": agreement,
               "args": vars(args), "seconds": runtime}
    if result is not None:
        payload["holdout"], payload["probabilities"] = result.to_dict(), proba
    write_markdown("precision.json", json.dumps(payload, indent=1, default=float))
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
