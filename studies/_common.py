"""What the studies share: where the real data lives, loading it, the patient-wise split, writing results."""

from __future__ import annotations

import os
import platform
import sys
import threading
import time
from pathlib import Path

import numpy as np

from skcxr._env import cpu_name  # noqa: F401 - also imported from here by texture_speed.py

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SKCXR_SHARED_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "studies" / "results"


def machine() -> str:
    """One line naming the machine and the versions that matter for timings."""
    import sklearn
    import torch

    cpu = cpu_name()
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"scikit-learn {sklearn.__version__}, Python {sys.version.split()[0]}")


def load_real_nih(seed: int = 0, test_size: float = 0.25):
    """nih (421 images) + nih-64 (995 images) with one patient-wise, label-stratified split.

    Returns ``(paths_train, paths_test, Y_train, Y_test, groups_train, groups_test, target_names)``.
    """
    from skcxr.datasets import load_chestxray14
    from skcxr.model_selection import train_test_split_by_patient

    parts = [load_chestxray14(SHARED_DATA / name) for name in ("nih", "nih-64")]
    paths = np.concatenate([p.paths for p in parts])
    Y = np.concatenate([p.Y for p in parts])
    groups = np.concatenate([p.patient_ids for p in parts])
    p_tr, p_te, Y_tr, Y_te, g_tr, g_te = train_test_split_by_patient(
        paths, Y, groups, groups=groups, stratify=Y, test_size=test_size, random_state=seed)
    assert not set(g_tr) & set(g_te)
    return p_tr, p_te, Y_tr, Y_te, g_tr, g_te, parts[0].target_names


def source_of(paths) -> np.ndarray:
    """The data set (``"nih"`` or ``"nih-64"``) each image path comes from: its folder under SHARED_DATA.

    Read from the path alone (the first folder below ``SHARED_DATA``), so a model
    that uses it learns nothing from the pixels.
    """
    root = SHARED_DATA.resolve()
    return np.asarray([Path(p).resolve().relative_to(root).parts[0] for p in np.ravel(paths)], dtype=object)


def write_markdown(name: str, text: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(text)
    return path


def _rss(me) -> int:
    """RSS of the process and its worker processes (pages the workers share with it counted again: an upper bound)."""
    import psutil

    total = me.memory_info().rss
    for child in me.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:  # a worker that just ended
            pass
    return total


def timed(run) -> tuple[float, float, object]:
    """Seconds, peak RSS above the RSS before (MiB, sampled every 5 ms; workers included), and ``run()``."""
    import psutil

    me = psutil.Process()
    before = _rss(me)
    peak, stop = [before], threading.Event()

    def poll():
        while not stop.wait(0.005):
            peak[0] = max(peak[0], _rss(me))

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    tic = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - tic
    stop.set()
    thread.join()
    return seconds, (peak[0] - before) / 2**20, result


class GramSplit:
    """Every candidate's ``StandardScaler + make_logistic_regression(C)`` on one train/test split, solved exactly
    in the span of the training rows.

    L2-penalised logistic regression (unpenalised intercept) has its optimal weights in the row space of the
    standardised training matrix ``X = U S V^T``, so with ``w = V a`` it is the same problem on ``Z = U S``
    (n x n) with the same C, and the test scores are ``X_test V a``. ``X X^T`` of a concatenation is the sum
    of its blocks' Gram matrices, so each block is standardised (training statistics, as StandardScaler) and
    multiplied once per split, and a candidate (a list of block names) costs an n x n eigendecomposition and
    small fits. ``studies/pretrained_defaults.py`` checks it against the direct fit.
    """

    def __init__(self, blocks, train, test):
        self.train = train
        self.gram = {}
        from sklearn.preprocessing import StandardScaler

        for name, F in blocks.items():
            scaler = StandardScaler().fit(F[train])
            Xtr = scaler.transform(F[train]).astype(np.float64)
            Xte = scaler.transform(F[test]).astype(np.float64)
            self.gram[name] = (Xtr @ Xtr.T, Xte @ Xtr.T)
        self.bases = {}

    def basis(self, names):
        key = tuple(names)
        if key not in self.bases:
            K = sum(self.gram[n][0] for n in key)
            K_test = sum(self.gram[n][1] for n in key)
            lam, U = np.linalg.eigh(K)
            keep = lam > lam.max() * 1e-10
            root = np.sqrt(lam[keep])
            self.bases[key] = (U[:, keep] * root, K_test @ U[:, keep] / root)
        return self.bases[key]

    def predict(self, Y, names, C):
        from skcxr.pipelines import make_logistic_regression

        Z, Z_test = self.basis(names)  # n x n: Newton-CG converges in a few steps (6x faster than lbfgs here)
        clf = make_logistic_regression(C).set_params(estimator__solver="newton-cg")
        return clf.fit(Z, Y[self.train]).predict_proba(Z_test)
