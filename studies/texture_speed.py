"""Speed of LBP + HOG features at 224 px: a plain scikit-image loop vs LBPFeatures/HOGFeatures.

Real NIH radiographs (../shared/data/nih/images, first --n files, repeated if
fewer) are preprocessed to 224 px with CXRPreprocessor, then featurised by

- naive: a sequential loop per image, ``local_binary_pattern`` on the float
  image + ``np.histogram`` per cell of a 4x4 grid + ``hog`` (9, 16x16, 2x2);
- LBPFeatures + HOGFeatures with n_jobs=1 and n_jobs=2 (same parameters).

Throughput is the median of --repeats timed runs after one warm-up run (which
starts joblib's workers; its time is reported as "cold"), with the CPU time all
processes used, so contention from other work on the machine shows. Peak RSS
is sampled every 10 ms over this process and its worker processes together. The
table is printed and written to studies/results/texture_speed.md.

    .venv/bin/python studies/texture_speed.py            # ~1 min on 2 cores
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import warnings

import joblib
import numpy as np
import psutil
import skimage
import sklearn
from _common import SHARED_DATA, cpu_name, write_markdown
from skimage.feature import hog, local_binary_pattern

from skcxr.features import HOGFeatures, LBPFeatures
from skcxr.preprocessing import CXRPreprocessor


class PeakRSS:
    """Context manager: peak resident memory (MiB) of this process plus its children."""

    def __enter__(self):
        self.peak, self._stop = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self):
        # Listing children scans all of /proc (~2.5 ms), so it is refreshed only
        # every 0.5 s; reading the RSS of known processes is cheap (~0.03 ms each).
        me, procs, listed = psutil.Process(), [], 0.0
        while True:
            if time.monotonic() - listed > 0.5:
                procs, listed = [me, *me.children(recursive=True)], time.monotonic()
            total = 0
            for p in procs:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total / 2**20)
            if self._stop.wait(0.01):
                return

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def cpu_seconds() -> dict[int, float]:
    """CPU time (user + system) so far of this process and each of its children, by pid."""
    me = psutil.Process()
    out = {}
    for p in [me, *me.children(recursive=True)]:
        try:
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
        except psutil.Error:
            pass
    return out


def timed(run, X):
    """run(X) -> (t_lbp, t_hog); also returns the CPU seconds it used over all processes."""
    before = cpu_seconds()
    times = run(X)
    after = cpu_seconds()
    return times, sum(t - before.get(pid, 0.0) for pid, t in after.items())


def machine_lines() -> list[str]:
    cpu = cpu_name()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        f"CPU: {cpu}; {os.cpu_count()} logical cores ({usable} usable by this process)",
        f"Python {sys.version.split()[0]}, numpy {np.__version__}, scikit-image {skimage.__version__}, "
        f"scikit-learn {sklearn.__version__}, joblib {joblib.__version__}",
    ]


def naive(X):
    """The plain loop: float LBP, per-cell np.histogram, HOG. Returns (t_lbp, t_hog)."""
    t_lbp = t_hog = 0.0
    H, W = X.shape[1:]
    for x in X:
        t0 = time.perf_counter()
        codes = local_binary_pattern(x, 8, 1, "uniform")
        hists = [
            np.histogram(codes[r * H // 4 : (r + 1) * H // 4, c * W // 4 : (c + 1) * W // 4],
                         bins=10, range=(0, 10), density=True)[0]
            for r in range(4)
            for c in range(4)
        ]
        np.concatenate(hists)
        t1 = time.perf_counter()
        hog(x, 9, (16, 16), (2, 2))
        t_hog += time.perf_counter() - t1
        t_lbp += t1 - t0
    return t_lbp, t_hog


def ours(n_jobs):
    lbp, hog_ = LBPFeatures(n_jobs=n_jobs), HOGFeatures(n_jobs=n_jobs)

    def run(X):
        t0 = time.perf_counter()
        lbp.fit(X[:1]).transform(X)
        t1 = time.perf_counter()
        hog_.fit(X[:1]).transform(X)
        return t1 - t0, time.perf_counter() - t1

    return run


def measure(run, X, repeats):
    with PeakRSS() as rss:
        cold = sum(run(X))
        times, cpu = zip(*(timed(run, X) for _ in range(repeats)))
    n = len(X)
    cpu_ms = statistics.median(1000 * c / n for c in cpu)
    cores = statistics.median(c / (a + b) for c, (a, b) in zip(cpu, times))
    lbp = statistics.median(n / t for t, _ in times)
    hog_ = statistics.median(n / t for _, t in times)
    both = [n / (a + b) for a, b in times]
    return {"lbp": lbp, "hog": hog_, "both": statistics.median(both), "min": min(both),
            "max": max(both), "cold": n / cold, "rss": rss.peak, "cpu_ms": cpu_ms, "cores": cores}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256, help="images per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="Applying `local_binary_pattern`")

    files = sorted((SHARED_DATA / "nih" / "images").glob("*.png"))
    if not files:
        sys.exit(f"No NIH images under {SHARED_DATA / 'nih' / 'images'} (set SKCXR_SHARED_DATA).")
    paths = [str(files[i % len(files)]) for i in range(args.n)]
    load_before = os.getloadavg()

    # Order matters for RSS: rows without workers run before anything starts them.
    t0 = time.perf_counter()
    X = CXRPreprocessor(size=args.size).fit_transform(paths)
    prep_rows = [(1, len(paths) / (time.perf_counter() - t0))]
    rows = [("naive loop (float LBP + np.histogram per cell + hog), sequential", measure(naive, X, args.repeats))]
    for n_jobs in (1, 2):
        rows.append((f"LBPFeatures + HOGFeatures, n_jobs={n_jobs}", measure(ours(n_jobs), X, args.repeats)))
    same = np.array_equal(LBPFeatures(n_jobs=2).fit(X).transform(X), LBPFeatures().fit(X).transform(X))
    same &= np.array_equal(HOGFeatures(n_jobs=2).fit(X).transform(X), HOGFeatures().fit(X).transform(X))
    t0 = time.perf_counter()
    same &= np.array_equal(CXRPreprocessor(size=args.size, n_jobs=2).fit_transform(paths), X)
    prep_rows.append((2, len(paths) / (time.perf_counter() - t0)))
    load_after = os.getloadavg()

    base = rows[0][1]["both"]
    lines = [
        f"# LBP + HOG speed at {args.size} px",
        "",
        f"Command: `.venv/bin/python studies/texture_speed.py --n {args.n} --repeats {args.repeats}`",
        "",
        *[f"- {line}" for line in machine_lines()],
        f"- Load average (1, 5, 15 min) before: {', '.join(f'{v:.2f}' for v in load_before)}; "
        f"after: {', '.join(f'{v:.2f}' for v in load_after)} (other work on the machine makes timings noisy)",
        f"- Data: {args.n} real NIH images ({len(files)} distinct files, repeated as needed), "
        f"CXRPreprocessor(size={args.size}) (global equalisation, [-1, 1])",
        "- LBP(P=8, R=1, uniform) histograms on a 4x4 grid; HOG(9 orientations, 16x16 px cells, 2x2 blocks)",
        f"- images/s: median of {args.repeats} runs after a warm-up run (cold = the warm-up run, "
        "which starts joblib's workers); CPU ms/img: user+system CPU time of this process and its "
        "workers per image; cores busy: that CPU time / wall time (below 2 with n_jobs=2 means "
        "lost parallelism or other processes taking a core); peak RSS: this process + its "
        "workers, sampled every 10 ms",
        f"- n_jobs=2 output (features and preprocessing) identical to n_jobs=1: {bool(same)}",
        "",
        "| method | LBP img/s | HOG img/s | LBP+HOG img/s (min-max) | cold img/s | speed-up | "
        "CPU ms/img | cores busy | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows:
        lines.append(
            f"| {name} | {r['lbp']:.0f} | {r['hog']:.0f} | {r['both']:.0f} ({r['min']:.0f}-{r['max']:.0f}) "
            f"| {r['cold']:.0f} | {r['both'] / base:.2f}x | {r['cpu_ms']:.1f} | {r['cores']:.2f} "
            f"| {r['rss']:.0f} |"
        )
    lines += ["", f"Preprocessing the {args.n} paths (PNG decode, resize to {args.size}, equalisation), "
              "one run each (n_jobs=2 reuses the workers started above):", ""]
    lines += [f"- CXRPreprocessor(n_jobs={j}): {v:.0f} images/s" for j, v in prep_rows]
    text = "\n".join(lines) + "\n"
    print(text)
    print(f"written to {write_markdown('texture_speed.md', text)}")


if __name__ == "__main__":
    main()
