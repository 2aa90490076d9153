"""Speed and memory of skcxr's Grad-CAM against a plain forward pass and pytorch-grad-cam.

One batch of 32 synthetic radiographs (``make_phantoms``, 224 px), 14 labels,
``--threads`` torch threads, all methods timed in the same run on the same
network: a ResNet18 from random initialisation fine-tuned for one epoch on 8
images (the weights are essentially random; speed does not depend on them).

- plain forward: the backbone with BatchNorm folded, channels_last, under
  ``torch.inference_mode``, on a tensor already built (the floor);
- ResNetEmbedder.transform: the same through the estimator (numpy in and out);
- GradCAM closed form: ``GradCAM(target="all").transform``, 14 maps per image
  at 224 px, normalised; and its layer4-grid core :func:`skcxr.attention.cnn_cams`;
- GradCAM autograd: the same maps from gradients at the ``layer4`` output;
- pytorch-grad-cam: its ``GradCAM`` on ``nn.Sequential(backbone, head)`` with
  ``target_layers=[layer4[-1]]``, one call per label with
  ``ClassifierOutputTarget(label)`` for the 32 images.

Methods take turns after a warm-up; the best round is reported (the steadier
number when other processes share the cores). Memory: each method's first
call in a fresh process, its peak resident memory above the idle level
(sampled every 5 ms). Writes studies/results/gradcam_speed.md.

    .venv/bin/python studies/gradcam_speed.py          # ~3-5 min on 2 cores
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from importlib import metadata

import numpy as np
import torch
from _common import machine, timed, write_markdown
from pytorch_grad_cam import GradCAM as ReferenceGradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from skcxr._torch import as_tensor, to_device
from skcxr.datasets.phantoms import make_phantoms
from skcxr.attention import GradCAM, cnn_cams
from skcxr.features.deep import ResNetEmbedder
from skcxr.neural import numpy_state
from skcxr.nn.resnet import fused_for_inference
from skcxr.preprocessing import CXRPreprocessor

N_LABELS = 14


REFERENCE = "pytorch-grad-cam GradCAM (14 labels x 32 images)"


def make_methods(cam, stack) -> dict:
    """The methods timed, by name, as callables (all on ``cam``'s fitted network and the batch ``stack``)."""
    autograd = copy.deepcopy(cam).set_params(method="autograd")
    backbone, head = cam.cnn_.model_, cam.cnn_.head_
    states = backbone, numpy_state(head.state_dict())
    fused = fused_for_inference(backbone).to(memory_format=torch.channels_last)
    x_last = to_device(as_tensor(stack, 224), torch.device("cpu"))
    x = as_tensor(stack, 224)
    model = torch.nn.Sequential(copy.deepcopy(backbone), copy.deepcopy(head)).eval()

    def plain():
        with torch.inference_mode():
            return fused(x_last)

    def reference(labels=range(N_LABELS)):
        with ReferenceGradCAM(model, target_layers=[model[0].layer4[-1]]) as ref:
            return np.stack([ref(x, [ClassifierOutputTarget(c)] * len(stack)) for c in labels], 1)

    return {
        "plain forward (BN folded, channels_last)": plain,
        "ResNetEmbedder.transform (512-d features)": lambda: cam.cnn_.transform(stack),
        "skcxr GradCAM closed form: cnn_cams (14 maps on the 7x7 grid)": lambda: cnn_cams(stack, *states),
        "skcxr GradCAM closed form: transform (14 maps, 224 px, normalised)": lambda: cam.transform(stack),
        "skcxr GradCAM autograd: transform (14 maps, 224 px, normalised)": lambda: autograd.transform(stack),
        REFERENCE: reference,
    }


def memory_child(setup: str, index: int, threads: int) -> None:
    """Run in a fresh process: print JSON with the peak RSS rise of one first call of method ``index``."""
    torch.set_num_threads(threads)
    with open(setup, "rb") as f:
        cam, stack = pickle.load(f)
    run = list(make_methods(cam, stack).values())[index]
    print(json.dumps({"rise": timed(run)[1]}))


def peak_memory(cam, stack, threads: int) -> list[float]:
    """Per method, the peak RSS rise (MiB) of its first call in a fresh process."""
    with tempfile.TemporaryDirectory() as folder:
        setup = os.path.join(folder, "setup.pkl")
        with open(setup, "wb") as f:
            pickle.dump((cam, stack), f)
        rises = []
        for index in range(len(make_methods(cam, stack))):
            cmd = [sys.executable, __file__, "--memory-child", setup, str(index), "--threads", str(threads)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            rises.append(json.loads(out.strip().splitlines()[-1])["rise"])
    return rises


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="rounds of skcxr's methods")
    parser.add_argument("--reference-repeats", type=int, default=2, help="rounds of pytorch-grad-cam")
    parser.add_argument("--memory-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child[0], int(args.memory_child[1]), args.threads)
        return
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    tic = time.perf_counter()

    images = CXRPreprocessor(size=224).fit_transform(make_phantoms(40, size=224, random_state=0).images)
    train, stack = images[:8], images[8:]
    Y = np.random.default_rng(0).integers(0, 2, (8, N_LABELS))
    cnn = ResNetEmbedder(fine_tune="all", epochs=1, batch_size=32, random_state=0)
    cam = GradCAM(cnn, target="all", batch_size=32).fit(train, Y)
    methods = make_methods(cam, stack)
    reference = methods.pop(REFERENCE)
    for run in methods.values():  # warm-up
        run()
    reference(labels=[0])
    results = {name: [] for name in [*methods, REFERENCE]}
    for _ in range(args.repeats):
        for name, run in methods.items():
            results[name].append(timed(run)[0])
    for _ in range(args.reference_repeats):
        seconds, _, theirs = timed(reference)
        results[REFERENCE].append(seconds)
        print(f"pytorch-grad-cam: {seconds:.1f} s", flush=True)
    rises = dict(zip(results, peak_memory(cam, stack, args.threads)))
    load_after = os.getloadavg()

    # Sanity: the same maps up to pytorch-grad-cam's per-map min-max scaling (Pearson r is blind to it).
    ours = copy.deepcopy(cam).set_params(normalize=None).transform(stack)
    ours, theirs = ours.reshape(-1, 224 * 224), theirs.reshape(-1, 224 * 224)
    flat = (ours.std(1) == 0) & (theirs.std(1) == 0)  # zero everywhere: the label's evidence is negative
    r = np.array([np.corrcoef(a, b)[0, 1] for a, b in zip(ours[~flat], theirs[~flat])])
    r_note = f"{r.min():.5f}, median {np.median(r):.6f} ({flat.sum()} of {len(flat)} maps are zero in both)"

    best = {name: min(seconds) for name, seconds in results.items()}
    floor = best["plain forward (BN folded, channels_last)"]
    closed = best["skcxr GradCAM closed form: transform (14 maps, 224 px, normalised)"]
    theirs_s = best[REFERENCE]
    rows = "\n".join(
        f"| {name} | {best[name]:.3f} | {len(stack) / best[name]:.1f} | {best[name] / floor:.2f} | {rises[name]:.0f} |"
        for name in results
    )
    quiet = max(load_before[0], load_after[0]) < 0.5
    note = (
        "The machine was quiet (load average below 0.5)."
        if quiet
        else f"Timed while other processes loaded the cores (1-min load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after, on {os.cpu_count()} cores): absolute speeds are noisy and pessimistic; "
        "the ratios, measured in the same run with the methods taking turns, are what count."
    )
    text = f"""# Grad-CAM: skcxr's closed form against a plain forward pass and pytorch-grad-cam

Command: `.venv/bin/python studies/gradcam_speed.py{"".join(" " + a for a in sys.argv[1:])}` \
({time.perf_counter() - tic:.0f} s in all)

Machine: {machine()}; grad-cam {metadata.version("grad-cam")}, numpy {np.__version__}.

{note}

## One batch: 32 images, 224 px, {N_LABELS} labels, {args.threads} threads

Best of {args.repeats} rounds ({args.reference_repeats} for pytorch-grad-cam) after a warm-up, the methods taking
turns. Peak RSS: how far a fresh process's resident memory rose above its idle level (network and batch loaded)
during the method's first call, sampled every 5 ms.

| method | seconds | images/s | x plain forward | peak RSS above idle (MiB) |
|---|---|---|---|---|
{rows}

- closed-form maps / plain forward: **{closed / floor:.2f}x** (goal: at most 1.5x)
- pytorch-grad-cam / closed-form maps: **{theirs_s / closed:.1f}x** faster (goal: at least 20x)
- Same maps: Pearson r between our raw maps and pytorch-grad-cam's (its maps are min-max scaled per map, an affine
  change r ignores), per image and label: lowest {r_note}.

The closed form reads Grad-CAM of all {N_LABELS} labels from one forward pass: the head is global average pooling
and a linear layer, so each label's gradient at `layer4` is its head weight divided by the 7x7 positions, and the
maps are `ReLU(W @ A) / 49`. pytorch-grad-cam runs a forward and a full backward pass (parameter gradients
included) per label, with no BatchNorm folding. The autograd path gets the same maps from gradients taken at the
`layer4` output only (the backbone runs once, without gradients).
"""
    path = write_markdown("gradcam_speed.md", text)
    print(text)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
