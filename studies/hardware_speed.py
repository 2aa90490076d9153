"""Speed of every heavy stage on this machine's hardware, and the full 112,120-image run projected from it (issue 8).

One command, under 5 minutes on 2 cores or on one GPU with 16 cores. On the
device found (CUDA when present, else the CPU) it times, after one warm-up call
each:

- ``CNNEmbedder.transform`` of each backbone (random ResNet18 at 224 px, ImageNet
  EfficientNet-Lite0 at 224 px, EfficientNet-Lite2 at 260 px) from an in-memory
  stack, in fp32 and (where the hardware computes it natively) bf16, with the
  device's batch (``batch_size=None``); on CUDA also ResNet18 at the old fixed batch of 32;
- the Lite0 embedding from paths of 1024-px PNGs, decoded in the calling process
  (``n_jobs=1``, the path before this change) and by one DataLoader worker per
  core (``n_jobs=-1``), overlapping with the network;
- ``CXRPreprocessor`` alone on those paths (the decoding ceiling), 1 and all cores;
- one epoch of fine-tuning (``fine_tune_cnn``, batch 32, 224 px) in fp32
  and with bf16 autocast (AMP);
- LBP + HOG (``LBPFeatures`` + ``HOGFeatures``) at 224 px, 1 and all cores;
- ``GradCAM.transform`` of each backbone (all 14 labels' maps, target="all") and the
  shipped lung U-Net (``load_lung_unet().transform``, 128 px inside, maps at
  224 px), per precision.

The PNGs are phantoms (``make_phantoms`` at 256 px) enlarged to 1024 px with
Gaussian pixel noise so that they weigh and decode like real ChestX-ray14 files
(~390 KB); the script prints both against the 1024-px NIH images in
../shared/data when they are there. Each row gives img/s, the peak RSS above the
start (host MiB; DataLoader/joblib workers included) and, on CUDA, the peak GPU
memory (``torch.cuda.max_memory_allocated``).

From the per-image costs it then projects the wall time to extract every
feature of the attention pipeline (decode + EfficientNet-Lite0 and LBP/HOG on
whole and lung-cropped images + U-Net + Grad-CAM) for the 112,120 images of ChestX-ray14, on
this machine, and on N such machines through joblib's Dask backend.

    .venv/bin/python studies/hardware_speed.py           # ~2 min on 2 cores
    .venv/bin/python studies/hardware_speed.py --smoke   # seconds: tiny sizes, checks the script, writes nothing

Writes studies/results/hardware_speed_<cpu|cuda>.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings

import numpy as np
import pandas as pd
import torch
from _common import SHARED_DATA, machine, timed, write_markdown
from PIL import Image

from skcxr._torch import loader_workers, resolve_device, resolve_precision
from skcxr.datasets import FINDINGS, make_phantoms, read_image
from skcxr.attention import GradCAM
from skcxr.features import CNNEmbedder, HOGFeatures, LBPFeatures
from skcxr.neural import fine_tune_cnn
from skcxr.preprocessing import CXRPreprocessor
from skcxr.segmentation import load_lung_unet

#: The backbones timed: name -> (backbone, weights, side).
BACKBONES = {"ResNet18": ("resnet18", None, 224), "EfficientNet-Lite0": ("efficientnet_lite0", "imagenet", 224),
             "EfficientNet-Lite2": ("efficientnet_lite2", "imagenet", 260)}
#: The backbone of the pipelines' defaults (projection).
DEFAULT_BACKBONE = "EfficientNet-Lite0"
#: Images in ChestX-ray14.
FULL_SET = 112_120
#: Standard deviation (8-bit levels) of the pixel noise that gives the test PNGs the size of real NIH files.
NOISE = 1.0
#: Images per run: (CPU, CUDA).
SIZES = {
    "arrays": (256, 8192),
    "paths": (96, 2048),
    "tune": (128, 1200),
    "texture": (256, 1024),
    "cam": (64, 2048),
    "unet": (256, 4096),
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; check the script, write nothing")
    parser.add_argument("--pngs", type=int, default=64, help="distinct 1024-px PNG files (the paths repeat them)")
    return parser.parse_args(argv)


def write_pngs(folder, n: int, seed: int = 0) -> np.ndarray:
    """n 1024-px 8-bit PNGs of phantoms with pixel noise (file size and decode cost like real NIH files)."""
    rng = np.random.default_rng(seed)
    paths = []
    for i, image in enumerate(make_phantoms(n, size=256, random_state=seed).images):
        small = Image.fromarray(np.asarray(image, np.float32))  # 8-bit values as floats
        big = np.asarray(small.resize((1024, 1024), Image.Resampling.BILINEAR))
        big = np.clip(big + rng.normal(0, NOISE, big.shape), 0, 255).astype(np.uint8)
        path = os.path.join(folder, f"{i:05d}.png")
        Image.fromarray(big).save(path)
        paths.append(path)
    return np.asarray(paths, dtype=object)


def decode_ms(paths) -> float:
    """Median milliseconds to read one file with ``read_image`` (one core)."""
    times = []
    for path in paths:
        tic = time.perf_counter()
        read_image(path)
        times.append((time.perf_counter() - tic) * 1e3)
    return float(np.median(times))


def tiled(items, n):
    return np.resize(items, (n, *np.shape(items)[1:])) if len(items) != n else items


class Bench:
    """Runs and records the timed rows on one device."""

    def __init__(self, device: torch.device):
        self.device = device
        self.rows = []

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def __call__(self, task, source, run, n, *, precision="-", batch="-", n_jobs="-", warm=None):
        (warm or run)()  # warm-up: cuDNN/oneDNN kernels, worker start-up, caches of the OS
        self.sync()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()

        def timed_run():
            out = run()
            self.sync()
            return out

        seconds, rss, out = timed(timed_run)
        gpu = torch.cuda.max_memory_allocated() / 2**20 if self.device.type == "cuda" else np.nan
        row = {"task": task, "input": source, "precision": precision, "batch": batch, "n_jobs": n_jobs,
               "images": n, "seconds": round(seconds, 3), "img/s": round(n / seconds, 1),
               "peak host MiB": round(rss), "peak GPU MiB": round(gpu) if np.isfinite(gpu) else "-"}
        self.rows.append(row)
        print(" | ".join(f"{k}={v}" for k, v in row.items()), flush=True)
        return out


def main(argv=None) -> None:
    args = parse_args(argv)
    device = resolve_device("auto")
    gpu = device.type == "cuda"
    cores = loader_workers(-1, "cpu")
    size = {k: (8 if args.smoke else v[gpu]) for k, v in SIZES.items()}
    precisions = ["fp32", "bf16"] if resolve_precision("auto", device) == "bf16" else ["fp32"]
    started = time.perf_counter()
    print(machine(), f"| device {device}" + (f" ({torch.cuda.get_device_name()})" if gpu else ""), flush=True)
    bench = Bench(device)

    with tempfile.TemporaryDirectory() as folder:
        files = write_pngs(folder, 4 if args.smoke else args.pngs)
        real = sorted(str(p) for p in (SHARED_DATA / "nih" / "images").glob("*.png")
                      if Image.open(p).size == (1024, 1024))
        test_ms = decode_ms(files)
        real_ms = decode_ms(real) if real else test_ms
        sizes = f"{np.mean([os.path.getsize(p) for p in files]) / 1024:.0f} KB, {test_ms:.1f} ms"
        if real:
            sizes += (f" (the {len(real)} real 1024-px NIH files: "
                      f"{np.mean([os.path.getsize(p) for p in real]) / 1024:.0f} KB, {real_ms:.1f} ms)")
        print("1024-px PNG test files: mean size, median decode on one core:", sizes, flush=True)
        stack = CXRPreprocessor(size=224).fit_transform(make_phantoms(64, size=224, random_state=1).images)
        Y = make_phantoms(64, size=224, random_state=1).Y

        # -- embeddings of each backbone: arrays, then (the default backbone) paths
        arrays = tiled(stack, size["arrays"])
        for name, (backbone, weights, side) in BACKBONES.items():
            emb = CNNEmbedder(backbone, weights=weights, image_size=side, random_state=0, device=device).fit(arrays[:2])
            for p in precisions:
                emb.set_params(precision=p, batch_size=None)
                bench(f"{name} embedding", f"stack {side} px", lambda: emb.transform(arrays), len(arrays),
                      precision=p, batch="auto", warm=lambda: emb.transform(arrays[:64]))
            if gpu and name == "ResNet18":
                emb.set_params(precision="fp32", batch_size=32)
                bench(f"{name} embedding", f"stack {side} px", lambda: emb.transform(arrays), len(arrays),
                      precision="fp32", batch=32, warm=lambda: emb.transform(arrays[:64]))
        backbone, weights, side = BACKBONES[DEFAULT_BACKBONE]
        emb = CNNEmbedder(backbone, weights=weights, image_size=side, device=device).fit(arrays[:2])
        paths = tiled(files, size["paths"])
        for jobs in (1, -1):
            emb.set_params(precision="auto", batch_size=None, n_jobs=jobs)
            bench(f"{DEFAULT_BACKBONE} embedding", "1024-px PNG paths", lambda: emb.transform(paths), len(paths),
                  precision=resolve_precision("auto", device), batch="auto", n_jobs=jobs if jobs > 0 else cores,
                  warm=lambda: emb.transform(paths[:8]))
        for jobs in (1, -1):
            pre = CXRPreprocessor(size=224, n_jobs=jobs)
            bench("CXRPreprocessor (decode + resize + equalise)", "1024-px PNG paths",
                  lambda: pre.fit_transform(paths), len(paths), n_jobs=jobs if jobs > 0 else cores)  # warm: joblib's workers

        # -- fine-tuning: one epoch
        images = tiled(stack, size["tune"])
        labels = tiled(Y, size["tune"])
        for label, backbone, weights, layers in (("ResNet18, all layers", "resnet18", None, "all"),
                                                 ("EfficientNet-Lite0, last stage", "efficientnet_lite0", "imagenet",
                                                  "last")):
            net = dict(backbone=backbone, weights=weights, fine_tune=layers, epochs=1, batch_size=32, patience=None,
                       random_state=0, device=device)
            for p in precisions:
                def tune(p=p, net=net):
                    return fine_tune_cnn(images, labels, precision=p, **net)[1][0]["seconds"]

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # bf16 where it is emulated: the table says
                    bench(f"fine-tuning {label}, 1 epoch (85 % train + 15 % valid)", "stack 224 px", tune,
                          len(images), precision=p if p == "fp32" else "bf16 AMP", batch=32,
                          warm=lambda p=p, net=net: fine_tune_cnn(images[:64], labels[:64], precision=p, **net))

        # -- LBP + HOG (CPU work)
        tex_images = tiled(stack, size["texture"])
        for jobs in (1, -1):
            lbp, hog = LBPFeatures(n_jobs=jobs), HOGFeatures(n_jobs=jobs)
            bench("LBP + HOG", "stack 224 px", lambda: (lbp.fit_transform(tex_images), hog.fit_transform(tex_images)),
                  len(tex_images), n_jobs=jobs if jobs > 0 else cores,
                  warm=lambda: (lbp.fit_transform(tex_images[:32]), hog.fit_transform(tex_images[:32])))
        n_texture = lbp.transform(stack[:1]).shape[1] + hog.transform(stack[:1]).shape[1]

        # -- Grad-CAM (all labels) and the lung U-Net
        cam_images = tiled(stack, size["cam"])
        labels14 = np.zeros((len(stack), len(FINDINGS)), dtype=int)
        labels14[:, : Y.shape[1]] = Y
        labels14[::2, -1] = 1
        for name, (backbone, weights, side) in BACKBONES.items():
            cnn = CNNEmbedder(backbone, weights=weights, fine_tune="last", epochs=1, image_size=side, random_state=0,
                              device=device)
            cam = GradCAM(cnn, target="all", device=device).fit(stack[:32], labels14[:32])
            for p in precisions:
                cam.set_params(precision=p)
                bench(f"Grad-CAM {name}, all {len(FINDINGS)} labels' maps", f"stack {side} px",
                      lambda: cam.transform(cam_images), len(cam_images), precision=p, batch="auto",
                      warm=lambda: cam.transform(cam_images[:32]))
        seg_images = tiled(stack, size["unet"])
        seg = load_lung_unet(device=device)
        for p in precisions:
            seg.set_params(precision=p)
            bench("U-Net lung maps (128 px inside)", "stack 224 px", lambda: seg.transform(seg_images),
                  len(seg_images), precision=p, batch="auto", warm=lambda: seg.transform(seg_images[:32]))

    table = pd.DataFrame(bench.rows)
    minutes = (time.perf_counter() - started) / 60
    head = (f"Machine: {machine()}; device {device}"
            + (f" ({torch.cuda.get_device_name()})" if gpu else "") + f"; {minutes:.1f} min.\n\n"
            f"1024-px PNG test files: {sizes}.\n\n")
    text = ("# Hardware speed (`studies/hardware_speed.py`)\n\n" + head + table.to_markdown(index=False) + "\n\n"
            + projection(bench.rows, device, cores, n_texture, max(real_ms - test_ms, 0.0)) + "\n")
    print(text)
    if not args.smoke:
        name = f"hardware_speed_{device.type}"
        write_markdown(f"{name}.md", text)
        write_markdown(f"{name}.json", json.dumps({"machine": machine(), "device": str(device), "rows": bench.rows},
                                                  indent=1))
    print(f"{minutes:.1f} min")


def _best(rows, task, source="stack", **match) -> dict:
    """The fastest row of a task (over precisions and n_jobs unless given)."""
    found = [r for r in rows if r["task"].startswith(task) and r["input"].startswith(source)
             and all(r[k] == v for k, v in match.items())]
    return max(found, key=lambda r: r["img/s"])


def projection(rows, device, cores, n_texture, extra_ms) -> str:
    """The full-set wall time from this run's per-image costs, with the arithmetic.

    ``extra_ms``: how much longer one core takes to decode a real NIH file than a test file; added to the
    decoding stage (spread over the cores).
    """
    decode = dict(_best(rows, "CXRPreprocessor", "1024-px PNG paths"))
    decode["img/s"] = 1 / (1 / decode["img/s"] + extra_ms / 1e3 / cores)
    stages = [
        (f"decode + preprocess 1024-px PNG -> 224 px (+{extra_ms:.1f} ms/core for real files)", decode),
        (f"{DEFAULT_BACKBONE} embedding, whole image", _best(rows, f"{DEFAULT_BACKBONE} embedding")),
        (f"{DEFAULT_BACKBONE} embedding, lung crop", _best(rows, f"{DEFAULT_BACKBONE} embedding")),
        ("U-Net lung maps", _best(rows, "U-Net")),
        (f"Grad-CAM {DEFAULT_BACKBONE}, all labels", _best(rows, f"Grad-CAM {DEFAULT_BACKBONE}")),
        ("LBP + HOG, whole image", _best(rows, "LBP + HOG")),
        ("LBP + HOG, lung crop", _best(rows, "LBP + HOG")),
    ]
    lines = ["## The full ChestX-ray14 set (112,120 images), projected from the rows above", "",
             f"Each stage's best rate here (all {cores} cores / the device), stages run one after the other "
             "(as `make_attention_pipeline` runs them): wall time = 112,120 / rate.", "",
             "| stage | img/s (row above) | hours for 112,120 |", "|---|---|---|"]
    total = 0.0
    for name, row in stages:
        hours = FULL_SET / row["img/s"] / 3600
        total += hours
        lines.append(f"| {name} | {row['img/s']:,.0f} ({row['precision']}, n_jobs={row['n_jobs']}) | {hours:.2f} |")
    lines.append(f"| **all stages** | | **{total:.2f}** |")
    tune = {f"{r['task'].split(',')[0][len('fine-tuning '):]}, {r['precision']}": r["img/s"]
            for r in rows if r["task"].startswith("fine-tuning")}
    lines += ["", "Training comes on top: one epoch of fine-tuning on all 112,120 images at 224 px takes "
              + ", ".join(f"{FULL_SET / rate / 3600:.1f} h ({p})" for p, rate in tune.items())
              + " here, times the epochs (5 by default) and the cross-fitting folds plus one (4 with cv=3)."]
    features = 2 * 2560 + 2 * n_texture + 64  # Lite0 avgmax and LBP + HOG of whole image and lung crop, 8x8 map
    stack_gb = FULL_SET * 224 * 224 * 4 / 1e9
    lines += [
        "",
        f"Memory: the features of every image, {features:,} float32 each, take "
        f"{FULL_SET * features * 4 / 1e9:.1f} GB; a whole preprocessed 224-px stack would take {stack_gb:.1f} GB, "
        "so a full run streams paths (the torch estimators read paths batch by batch) or processes chunks of "
        "about 10,000 images (2 GB of stack each). Peak memory is then the feature matrix plus one chunk, plus "
        "the per-call peaks in the table.",
        "",
        f"N machines like this one (joblib's Dask backend: `joblib.parallel_config('dask')` with a "
        "`distributed.Client`, chunks of images as tasks): the stages are per image and independent, so the time "
        f"divides by N: {total:.2f} h / N (N=10: {total / 10:.2f} h), as long as shared storage delivers "
        f"112,120 x ~0.4 MB = 45 GB at N x {FULL_SET * 0.4 / 1e3 / (total * 3600):.3f} GB/s "
        "and the chunks are large enough to hide the scheduler's per-task overhead (milliseconds).",
    ]
    if device.type == "cpu":
        per_core_ms = 1e3 / _best(rows, "CXRPreprocessor", "1024-px PNG paths", n_jobs=1)["img/s"] + extra_ms
        texture_ms = 1e3 / _best(rows, "LBP + HOG", n_jobs=1)["img/s"]
        cpu_ms = per_core_ms + 2 * texture_ms
        lines += [
            "",
            f"One GPU with 16 CPU cores: not measured in this run. The CPU work bounds it: per image, "
            f"{per_core_ms:.1f} ms of one core to decode a real 1024-px PNG (the CXRPreprocessor row with n_jobs=1, "
            f"plus the extra decoding time of real files) and 2 x {texture_ms:.1f} ms of LBP + HOG (whole image and "
            f"lung crop), {cpu_ms:.1f} ms in all. 16 such cores, scaling linearly, get through "
            f"{16e3 / cpu_ms:,.0f} img/s (decoding alone {16e3 / per_core_ms:,.0f}), so 112,120 images take "
            f"{FULL_SET / (16e3 / cpu_ms) / 60:.0f} min, if the GPU keeps up with the networks (the issue measured "
            "a plain bf16 ResNet18 at 36,900 img/s on an H200). Run this script there for the measured figure.",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
