"""How big the Pipeline cache grows, and what keying it on file content costs.

``make_hybrid_pipeline(size=64, memory=folder)`` fitted on the 1,416 shared NIH
images (nih + nih-64): bytes on disk per cached step, the second fit (served
from the cache: no growth), with ``random_state=None`` (the feature step is
never cached) and ``random_state=0``; and the time to fingerprint the 1,416
files (size, mtime_ns, BLAKE2b of the bytes), from disk, from the page cache
and from the in-process memo. Writes ``studies/results/cache_size.md``.

Run: ``.venv/bin/python studies/cache_size.py``
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import joblib
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, machine, write_markdown  # noqa: E402

from skcxr.cache import _fingerprint as _cache  # noqa: E402 - _HASH_MEMO, paths_fingerprint
from skcxr.datasets import load_chestxray14  # noqa: E402
from skcxr.pipelines import make_hybrid_pipeline  # noqa: E402


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def entries(folder: Path) -> list[tuple[str, int]]:
    """(what the entry holds, bytes) for every cached call."""
    out = []
    for pkl in sorted(folder.rglob("output.pkl")):
        result = joblib.load(pkl)
        what = type(result[1]).__name__ if isinstance(result, tuple) and len(result) == 2 else type(result).__name__
        if what == "FeatureUnion":
            what += "(" + ", ".join(name for name, _ in result[1].transformer_list) + ")"
        out.append((what, folder_bytes(pkl.parent)))
    return out


def drop_page_cache(paths) -> bool:
    """Ask the kernel to forget the files' cached pages (no root needed); False where unsupported."""
    if not hasattr(os, "posix_fadvise"):
        return False
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return True


def time_fingerprints(paths) -> list[tuple[str, float]]:
    rows = []
    repeats = 3
    cold = []
    for _ in range(repeats):
        if not drop_page_cache(paths):
            break
        _cache._HASH_MEMO.clear()
        tic = time.perf_counter()
        _cache.paths_fingerprint(paths)
        cold.append(time.perf_counter() - tic)
    if cold:
        rows.append(("read from disk (page cache dropped with posix_fadvise), memo empty", min(cold)))
    warm = []
    for _ in range(repeats):
        _cache._HASH_MEMO.clear()
        tic = time.perf_counter()
        _cache.paths_fingerprint(paths)
        warm.append(time.perf_counter() - tic)
    rows.append(("files in the page cache, memo empty (first fingerprint in a process)", min(warm)))
    # the memo holds only files older than the racy window: the shared images are
    memo = []
    for _ in range(repeats):
        tic = time.perf_counter()
        _cache.paths_fingerprint(paths)
        memo.append(time.perf_counter() - tic)
    rows.append(("in-process memo (unchanged files, every later fingerprint)", min(memo)))
    return rows


def fit_twice(paths, Y, random_state) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="skcxr-cache-"))
    try:
        times = []
        sizes = []
        for _ in range(2):
            # The classifier (the last step) is never cached, so any classifier stores the same bytes;
            # "passthrough" leaves it out and times the cached steps alone.
            pipe = make_hybrid_pipeline(classifier="passthrough", size=64, memory=str(folder),
                                        random_state=random_state)
            tic = time.perf_counter()
            pipe.fit(paths, Y)
            times.append(time.perf_counter() - tic)
            sizes.append(folder_bytes(folder))
        return {"times": times, "sizes": sizes, "entries": entries(folder)}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main():
    parts = [load_chestxray14(SHARED_DATA / name) for name in ("nih", "nih-64")]
    paths = np.concatenate([p.paths for p in parts])
    Y = np.concatenate([p.Y for p in parts])
    n_bytes = sum(os.path.getsize(p) for p in paths)
    print(f"{len(paths)} images, {n_bytes / 1e6:.1f} MB")

    fp_rows = time_fingerprints(paths)
    for what, sec in fp_rows:
        print(f"fingerprint: {what}: {sec:.3f} s")

    fits = {}
    for rs in (0, None):
        fits[rs] = res = fit_twice(paths, Y, rs)
        print(f"random_state={rs}: fits {res['times']}, sizes {res['sizes']}, entries {res['entries']}")

    lines = [
        "# Pipeline cache: size on disk and the cost of content keys",
        "",
        f"Machine: {machine()}.",
        f"Data: the {len(paths)} shared NIH images (nih 421 + nih-64 995), {n_bytes / 1e6:.1f} MB of PNG.",
        "Written by `studies/cache_size.py`.",
        "",
        "## Fingerprinting the image files (size, mtime_ns, BLAKE2b-128 of the bytes), best of 3",
        "",
        "| where the bytes come from | seconds for all files | images/s |",
        "|---|---|---|",
    ]
    lines += [f"| {what} | {sec:.3f} | {len(paths) / sec:,.0f} |" for what, sec in fp_rows]
    lines += [
        "",
        "## `make_hybrid_pipeline(size=64, memory=folder)` fitted on all images, then fitted again",
        "",
        "(`classifier=\"passthrough\"`: the last step is never cached, so any classifier stores the same",
        "bytes; the times are those of the preprocessing, feature and scaling steps alone.)",
        "",
        "| random_state | 1st fit (s) | cache after 1st fit | 2nd fit (s) | cache after 2nd fit |",
        "|---|---|---|---|---|",
    ]
    for rs, res in fits.items():
        lines.append(
            f"| {rs} | {res['times'][0]:.1f} | {res['sizes'][0] / 1e6:.1f} MB | {res['times'][1]:.1f} | "
            f"{res['sizes'][1] / 1e6:.1f} MB |"
        )
    lines += ["", "Cached entries (each holds the step's output and the fitted step):", ""]
    lines += ["| random_state | step | MB |", "|---|---|---|"]
    for rs, res in fits.items():
        lines += [f"| {rs} | {what} | {size / 1e6:.1f} |" for what, size in res["entries"]]
    lines += [
        "",
        "With `random_state=None` the feature step holds an unseeded ResNet and is never cached",
        "(it is recomputed on every fit), nor is the scaler fitted on its random output; the",
        "preprocessing is. Of the feature step's entry, about 45 MB are the fitted ResNet18's",
        "weights (11.2 M float32), stored with every cached fit of the step.",
        "The cache grows by about this much per distinct training set: a k-fold grid search",
        "stores k + 1 sets (the folds and the refit), whatever the number of candidates.",
        "Clear it with `joblib.Memory(folder).clear()` or by deleting the folder.",
        "",
    ]
    path = write_markdown("cache_size.md", "\n".join(lines))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
