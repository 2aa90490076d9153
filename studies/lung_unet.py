"""Train the lung U-Net that ships with skcxr, and measure it: Dice on unseen lungs, time, speed, NIH overlays.

Data: the 604 Montgomery/Shenzhen radiographs with manual lung masks in
``../shared/data/lungs`` (256 px). One seventh of them (stratified by source
and tuberculosis label; one image per patient) is held out and never seen in
training; ``UNetSegmenter()`` with its defaults trains on the rest (its own
15 % validation part stops training early). The held-out Dice is that of the
shipped weights. The weights are written to ``skcxr/weights/lung_unet.pt``
(fp16) with their record in ``skcxr/weights/lung_unet.json``.

    .venv/bin/python studies/lung_unet.py                  # ~15-25 min on 2 cores
    .venv/bin/python studies/lung_unet.py --skip-training  # measure the shipped weights again
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import matplotlib
import numpy as np
from _common import ROOT, SHARED_DATA, machine, write_markdown
from sklearn.model_selection import train_test_split

from skcxr.datasets import load_chestxray14, load_lung_masks
from skcxr.preprocessing import CXRPreprocessor
from skcxr.segmentation import LUNG_UNET, UNetSegmenter, load_lung_unet

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

FIGURE = ROOT / "studies" / "figures" / "lung_unet_nih.png"


def dice_per_image(pred, true):
    inter = (pred & true).sum((1, 2))
    total = pred.sum((1, 2)) + true.sum((1, 2))
    return np.where(total > 0, 2 * inter / np.maximum(total, 1), 1.0)


def interval(values, n_boot=2000, seed=0):
    rng = np.random.default_rng(seed)
    means = [values[rng.integers(0, len(values), len(values))].mean() for _ in range(n_boot)]
    return values.mean(), *np.percentile(means, [2.5, 97.5])


def overlay_figure(seg, paths, titles, path):
    X = CXRPreprocessor(size=256).fit_transform(paths)
    maps = seg.transform(X)
    fig, axes = plt.subplots(2, len(paths) // 2, figsize=(2.6 * len(paths) // 2, 5.6))
    for ax, x, m, t in zip(axes.ravel(), X, maps, titles):
        ax.imshow(x, cmap="gray", vmin=-1, vmax=1)
        ax.imshow(np.ma.masked_less(m, 0.5), cmap="autumn", alpha=0.35, vmin=0, vmax=1)
        ax.contour(m, levels=[0.5], colors="yellow", linewidths=0.8)
        ax.set_title(t, fontsize=7)
        ax.axis("off")
    fig.suptitle("Shipped lung U-Net on NIH ChestX-ray14 images it never trained on (mask >= 0.5)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-training", action="store_true", help="measure the shipped weights")
    parser.add_argument("--smoke", action="store_true", help="1 epoch, nothing saved (checks the script)")
    args = parser.parse_args()

    data = load_lung_masks(SHARED_DATA / "lungs")
    strata = data.source.astype(str) + data.tuberculosis.astype(str)
    idx_tr, idx_te = train_test_split(np.arange(len(data.paths)), test_size=1 / 7, stratify=strata, random_state=0)
    pre = CXRPreprocessor(size=256)
    X = pre.fit_transform(data.paths)
    masks = load_lung_masks(SHARED_DATA / "lungs", load=True).masks

    seconds = None
    if args.skip_training:
        seg = load_lung_unet()
    else:
        seg = UNetSegmenter(random_state=0, verbose=1, epochs=1 if args.smoke else 50)
        t0 = time.perf_counter()
        seg.fit(X[idx_tr], masks[idx_tr])
        seconds = time.perf_counter() - t0

    # Dice on the held-out lungs, at the masks' own 256 px and at the network's 128 px
    maps = seg.transform(X[idx_te])
    d256 = dice_per_image(maps >= 0.5, masks[idx_te])
    d128 = seg.score(pre.set_params(size=128).fit_transform(data.paths[idx_te]), masks[idx_te])
    per_source = {s: interval(d256[data.source[idx_te] == s]) for s in ("Montgomery", "Shenzhen")}

    # speed at 224 px (preprocessed stacks in memory), two repeats, the faster counts
    X224 = CXRPreprocessor(size=224).fit_transform(np.resize(data.paths[idx_te], 128))
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        seg.transform(X224)
        times.append(time.perf_counter() - t0)
    speed = len(X224) / min(times)

    # NIH images: empty or tiny masks, and overlays
    nih = {name: load_chestxray14(SHARED_DATA / name) for name in ("nih", "nih-64")}
    nih_stats = {}
    for name, part in nih.items():
        m = seg.predict(CXRPreprocessor(size=224).fit_transform(part.paths))
        share = m.mean((1, 2))
        nih_stats[name] = {"images": len(m), "empty (<1 % lung)": int((share < 0.01).sum()),
                           "lung share median": float(np.median(share))}
    rng = np.random.default_rng(1)
    picks = [(n, p) for n in nih for p in rng.choice(nih[n].paths, 4, replace=False)]
    overlay_figure(seg, [p for _, p in picks], [f"{n}: {p.rsplit('/', 1)[-1]}" for n, p in picks], FIGURE)

    history = seg.history_
    best = next((h for h in history if h["best"]), history[-1])
    record = {
        "dice_heldout_256px": round(float(d256.mean()), 4),
        "dice_heldout_256px_ci95": [round(float(v), 4) for v in interval(d256)[1:]],
        "dice_heldout_128px": round(float(d128), 4),
        "heldout_images": int(len(idx_te)),
        "training_images": int(len(idx_tr)),
        "data": "../shared/data/lungs: Montgomery County + Shenzhen chest X-rays with manual lung masks (256 px)",
        "split": "1/7 held out, stratified by source and tuberculosis label, random_state=0",
        "params": {k: seg.get_params()[k] for k in ("depth", "base_width", "image_size", "epochs", "lr",
                                                    "batch_size", "patience")},
        "epochs_run": len(history),
        "best_epoch": int(best["epoch"]),
        "training_seconds": None if seconds is None else round(seconds, 1),
        "machine": machine(),
        "command": ".venv/bin/python studies/lung_unet.py",
    }
    if not (args.skip_training or args.smoke):
        seg.save(LUNG_UNET, half=True, record=record)
        LUNG_UNET.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
        reloaded = load_lung_unet()
        record["fp16_max_abs_diff"] = float(np.abs(reloaded.transform(X[idx_te[:16]]) - maps[:16]).max())

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines = [
        "# The shipped lung U-Net (`studies/lung_unet.py`)", "",
        f"Machine: {machine()}", "",
        f"Training: {record['training_images']} image/mask pairs, U-Net depth {seg.depth}, base width "
        f"{seg.base_width}, {seg.image_size} px, {record['epochs_run']} epochs run (best {record['best_epoch']}), "
        f"{'not rerun' if seconds is None else f'{seconds / 60:.1f} min'}.", "",
        "| held-out lungs (never trained on) | images | Dice [95 % bootstrap CI] |", "|---|---|---|",
        f"| all, at 256 px | {len(idx_te)} | {d256.mean():.4f} [{record['dice_heldout_256px_ci95'][0]:.4f}, "
        f"{record['dice_heldout_256px_ci95'][1]:.4f}] |",
        *[f"| {s}, at 256 px | {int((data.source[idx_te] == s).sum())} | {v[0]:.4f} [{v[1]:.4f}, {v[2]:.4f}] |"
          for s, v in per_source.items()],
        f"| all, at 128 px | {len(idx_te)} | {d128:.4f} |", "",
        f"Inference at 224 px (stack in memory, {len(X224)} images, batch {seg.batch_size}): **{speed:.1f} img/s**; "
        f"peak RSS of the study {peak:.0f} MiB.", "",
        "NIH ChestX-ray14 images (never seen by the U-Net), masks at 224 px:", "",
        "| source | images | empty masks (< 1 % of the image) | median lung share |", "|---|---|---|---|",
        *[f"| {n} | {s['images']} | {s['empty (<1 % lung)']} | {s['lung share median']:.3f} |"
          for n, s in nih_stats.items()],
        "", f"Overlays: `{FIGURE.relative_to(ROOT)}`.",
    ]
    if "fp16_max_abs_diff" in record:
        lines.append(f"\nfp16 weights vs fp32: max |Δ probability| {record['fp16_max_abs_diff']:.2e} on 16 images.")
    if args.smoke:
        return print("\n".join(lines))
    print(write_markdown("lung_unet.md", "\n".join(lines) + "\n").read_text())


if __name__ == "__main__":
    main()
