"""Speed and memory of ResNetEmbedder on real radiographs, and the cost of fine-tuning.

Three measurements, written to studies/results/embedder_speed.md:

1. Inference throughput at 224 px, batch 32, ``--threads`` torch threads, on
   real NIH radiographs preprocessed by CXRPreprocessor, in the same run:
   - plain: torchvision's ResNet18 (1-channel conv1) forward under
     ``torch.inference_mode``;
   - channels_last: the same with model and input in channels_last;
   - ResNetEmbedder.transform on the preprocessed stack (BatchNorm folded into
     the convolutions + channels_last, numpy in and out).
   The methods take turns for ``--repeats`` rounds after a warm-up; the median
   and the best round are reported (the best is the steadier number when other
   processes share the cores).
2. Peak resident memory of ``transform`` on ``--n-paths`` image paths
   (../shared/data nih + nih-64, 1,416 real files, repeated), measured in a
   fresh child process: peak RSS (sampled every 20 ms, and the kernel's
   ru_maxrss) minus the RSS of the idle process after imports and ``fit``.
3. Wall time of ``ResNetEmbedder(fine_tune="all")`` on ``--ft-n`` NIH images
   at ``--ft-size`` px for ``--ft-epochs`` epochs, from paths.

    .venv/bin/python studies/embedder_speed.py          # ~6 min on 2 quiet cores
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import psutil
import torch
import torchvision
from _common import SHARED_DATA, machine, timed, write_markdown

from skcxr.datasets import load_chestxray14
from skcxr.features.deep import ResNetEmbedder, resnet18_1ch
from skcxr.preprocessing import CXRPreprocessor


def real_paths(n: int) -> np.ndarray:
    """The first n of nih + nih-64's paths, repeated when n exceeds the 1,416 files."""
    paths = np.concatenate([load_chestxray14(SHARED_DATA / name).paths for name in ("nih", "nih-64")])
    return np.resize(paths, n).astype(object)


def throughput(args) -> dict[str, float]:
    stack = CXRPreprocessor(size=224).fit_transform(real_paths(32 * args.batches))
    batches = [torch.from_numpy(stack[i : i + 32]).unsqueeze(1) for i in range(0, len(stack), 32)]
    torch.manual_seed(0)
    plain = resnet18_1ch().eval()
    last = resnet18_1ch().eval()
    last.load_state_dict(plain.state_dict())
    last = last.to(memory_format=torch.channels_last)
    batches_last = [b.contiguous(memory_format=torch.channels_last) for b in batches]
    embedder = ResNetEmbedder(batch_size=32, random_state=0).fit(stack[:1])
    embedder.model_.load_state_dict(plain.state_dict())

    def run_plain():
        with torch.inference_mode():
            for b in batches:
                plain(b)

    def run_last():
        with torch.inference_mode():
            for b in batches_last:
                last(b)

    def run_ours():
        embedder.transform(stack)

    methods = {"plain torchvision": run_plain, "channels_last": run_last, "ResNetEmbedder.transform": run_ours}
    for run in methods.values():  # warm-up
        run()
    times = {name: [] for name in methods}
    for _ in range(args.repeats):
        for name, run in methods.items():
            tic = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - tic)
    with torch.inference_mode():  # the three compute the same features
        ref = plain(batches[0]).numpy()
        assert np.allclose(last(batches_last[0]).numpy(), ref, atol=1e-4)
        assert np.allclose(embedder.transform(stack[:32]), ref, atol=1e-4)
    return {name: (len(stack) / statistics.median(t), len(stack) / min(t)) for name, t in times.items()}


def rss_child(n_paths: int, threads: int) -> None:
    """Run in a fresh process: print JSON with idle and peak RSS of transform on n_paths paths."""
    torch.set_num_threads(threads)
    paths = real_paths(n_paths)
    embedder = ResNetEmbedder(batch_size=32, random_state=0).fit(paths)
    idle = psutil.Process().memory_info().rss
    seconds, rise, Z = timed(lambda: embedder.transform(paths))
    peak = idle + rise * 2**20
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    print(json.dumps({"idle": idle, "peak": peak, "maxrss": maxrss, "seconds": seconds, "shape": Z.shape}))


def peak_memory(args) -> dict:
    cmd = [sys.executable, __file__, "--rss-child", str(args.n_paths), "--threads", str(args.threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def fine_tune_time(args) -> dict:
    data = load_chestxray14(SHARED_DATA / "nih")
    paths, Y = data.paths[: args.ft_n], data.Y[: args.ft_n]
    embedder = ResNetEmbedder(fine_tune="all", epochs=args.ft_epochs, image_size=args.ft_size, batch_size=32,
                              random_state=0)  # fmt: skip
    tic = time.perf_counter()
    embedder.fit(paths, Y)
    return {"seconds": time.perf_counter() - tic, "history": embedder.history_, "n": len(paths)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", type=int, default=2, help="batches of 32 timed per round")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n-paths", type=int, default=2000)
    parser.add_argument("--ft-n", type=int, default=200)
    parser.add_argument("--ft-size", type=int, default=128)
    parser.add_argument("--ft-epochs", type=int, default=2)
    parser.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_child, args.threads)
        return
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    tic = time.perf_counter()

    speed = throughput(args)
    print("img/s (median, best):", {k: (round(a, 1), round(b, 1)) for k, (a, b) in speed.items()}, flush=True)
    mem = peak_memory(args)
    above = (mem["peak"] - mem["idle"]) / 2**20
    above_maxrss = (mem["maxrss"] - mem["idle"]) / 2**20
    print(f"peak RSS above idle: {above:.0f} MiB (ru_maxrss: {above_maxrss:.0f} MiB), "
          f"{args.n_paths / mem['seconds']:.1f} img/s from paths", flush=True)  # fmt: skip
    ft = fine_tune_time(args)
    print(f"fine-tuning: {ft['seconds']:.1f} s", flush=True)
    load_after = os.getloadavg()

    quiet = max(load_before[0], load_after[0]) < 0.5
    note = (
        "The machine was quiet (load average below 0.5)."
        if quiet
        else f"Timed while other processes loaded the cores (1-min load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after, on {os.cpu_count()} cores): the speeds are pessimistic; rerun at a quiet time."
    )
    rows = "\n".join(f"| {name} | {med:.1f} | {best:.1f} |" for name, (med, best) in speed.items())
    epochs = "\n".join(
        f"| {h['epoch']} | {h['train_loss']:.4f} | {h['valid_loss']:.4f} | {h['seconds']:.1f} | {'yes' if h['best'] else ''} |"
        for h in ft["history"]
    )
    text = f"""# ResNetEmbedder: speed, memory, fine-tuning cost

Command: `.venv/bin/python studies/embedder_speed.py{"".join(" " + a for a in sys.argv[1:])}` ({time.perf_counter() - tic:.0f} s in all)

Machine: {machine()}; torchvision {torchvision.__version__}, numpy {np.__version__}.

{note}

## Inference, 224 px, batch 32, {args.threads} threads

{32 * args.batches} real NIH radiographs (CXRPreprocessor, 224 px), {args.repeats} rounds after a warm-up, the three
methods taking turns. Random weights (speed does not depend on them).

| method | images/s, median round | images/s, best round |
|---|---|---|
{rows}

ResNetEmbedder folds BatchNorm into the convolutions (exact up to float rounding) and runs channels_last
under `torch.inference_mode`; the three give the same features (checked, atol 1e-4).

## Memory, {args.n_paths} paths

`ResNetEmbedder(image_size=224).transform(paths)` on {args.n_paths} paths (nih + nih-64: 1,416 real files,
repeated), in a fresh process; idle = RSS after imports and `fit`.

| idle RSS | peak RSS (20 ms sampling) | above idle | ru_maxrss above idle | images/s from paths (read + preprocess + embed) |
|---|---|---|---|---|
| {mem['idle'] / 2**20:.0f} MiB | {mem['peak'] / 2**20:.0f} MiB | {above:.0f} MiB | {above_maxrss:.0f} MiB | {args.n_paths / mem['seconds']:.1f} |

Budget: at most 1.5 GB above idle.

## Fine-tuning

`ResNetEmbedder(fine_tune="all", epochs={args.ft_epochs}, image_size={args.ft_size}, batch_size=32).fit(paths, Y)`
on the first {ft['n']} images of ../shared/data/nih (15 % internal validation split), from paths (reading and
preprocessing included): **{ft['seconds']:.1f} s** wall time.

| epoch | train loss | valid loss | seconds | restored (best) |
|---|---|---|---|---|
{epochs}
"""
    print(f"wrote {write_markdown('embedder_speed.md', text)}")


if __name__ == "__main__":
    main()
