"""Shared fixtures: the real data beside the repository, skipped cleanly when absent."""

import os
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from skcxr.datasets import make_phantoms  # bound here: tests monkeypatch skcxr.datasets.make_phantoms
from skcxr.neural import MultilabelValidSplit

SHARED_DATA = Path(os.environ.get("SKCXR_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def _need(sub: str) -> Path:
    path = SHARED_DATA / sub
    if not path.exists():
        pytest.skip(f"real data not found at {path} (set SKCXR_SHARED_DATA to ../shared/data)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return _need("")


@pytest.fixture(scope="session")
def nih_root() -> Path:
    return _need("nih")


@pytest.fixture(scope="session")
def nih64_root() -> Path:
    return _need("nih-64")


@pytest.fixture(scope="session")
def lungs_root() -> Path:
    return _need("lungs")


@pytest.fixture(scope="session")
def full_label_file() -> Path:
    return _need("Data_Entry_2017_v2020.csv.gz")


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    # 2 cores: keep torch from oversubscribing when joblib workers also compute.
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a test module (small inputs; avoids contention with joblib workers)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def device_close() -> dict:
    """``assert_allclose`` tolerances for float32 network outputs computed by two code paths on the test device.

    On the CPU, different batch sizes, BatchNorm folding or a 3- vs 1-channel first
    convolution agree to rtol 1e-4, atol 1e-5. On CUDA, cuDNN picks convolution algorithms per
    batch shape and uses TF32 (10-bit mantissa) by default, so the same network
    differs at the 1e-3 level between two such paths (2e-3 measured on an H200):
    1e-2 there. Equality is still demanded where both sides compute the same way
    on the same device (cached vs uncached, pickled vs original).
    """
    from skcxr._torch import resolve_device

    if resolve_device("auto").type == "cuda":
        return {"rtol": 1e-2, "atol": 1e-2}
    return {"rtol": 1e-4, "atol": 1e-5}



#: (groups given to the inner split, train indices, valid indices), one entry per fit of a RecordingSplit.
SEEN = []


class RecordingSplit(MultilabelValidSplit):
    """The classifier's inner split, noting the patient ids it was called with (in ``SEEN``)."""

    def __call__(self, dataset, y=None, groups=None):
        train, valid = super().__call__(dataset, y, groups)
        SEEN.append((None if groups is None else np.asarray(groups), train.indices, valid.indices))
        return train, valid


def phantom_folder(root, n=48, size=32, seed=0, first_patient=1):
    """A ChestX-ray14-like folder: a label file with metadata (age, sex, view vary) and phantom PNGs, two per
    patient, patient ids from ``first_patient``."""
    data = make_phantoms(n, size=size, random_state=seed)
    (root / "images").mkdir(parents=True)
    rows = []
    for i, (image, y) in enumerate(zip(data.images, data.Y)):
        name = f"{seed:03d}{i:05d}_000.png"
        Image.fromarray(image).save(root / "images" / name)
        labels = "|".join(t for t, v in zip(data.target_names, y) if v) or "No Finding"
        rows.append([name, labels, 0, first_patient + i // 2, 20 + i, "MF"[i % 2], ("PA", "AP")[i % 3 == 0]])
    pd.DataFrame(rows, columns=["Image Index", "Finding Labels", "Follow-up #", "Patient ID", "Patient Age",
                                "Patient Gender", "View Position"]).to_csv(root / "Data_Entry_2017.csv", index=False)
    return root


@pytest.fixture
def ctrl_c_works():
    """Python's Ctrl-C handler for the test, also where the runner started us ignoring SIGINT.

    A shell that starts a job in the background (``cmd &``) sets SIGINT to SIG_IGN, and Python then never
    installs its KeyboardInterrupt handler; child processes inherit the SIG_IGN. The Ctrl-C tests restore
    what a terminal gives.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)
