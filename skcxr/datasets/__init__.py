"""Data for skcxr: image reading, NIH ChestX-ray14, lung masks and synthetic phantoms.

- :func:`read_image`: any PNG/JPEG/DICOM radiograph as a 2-D float32 array in [0, 1].
- :func:`load_chestxray14`, :func:`load_bboxes`, :data:`FINDINGS`: NIH ChestX-ray14;
  :func:`findings_to_Y` turns "Finding Labels" strings into the 0/1 target ``Y``.
- :func:`load_lung_masks`, :func:`read_mask`: images/ + masks/ folders (Montgomery, Shenzhen).
- :func:`make_phantoms`: synthetic chest radiographs with ground truth, the embedded default.
- :func:`train_test_split_by_patient`: re-exported from :mod:`skcxr.model_selection`.
"""

from __future__ import annotations

from ..model_selection import train_test_split_by_patient
from .chestxray14 import FINDINGS, findings_to_Y, load_bboxes, load_chestxray14
from .io import read_image
from .lungs import load_lung_masks, read_mask
from .phantoms import make_phantoms

__all__ = [
    "FINDINGS",
    "findings_to_Y",
    "read_image",
    "load_chestxray14",
    "load_bboxes",
    "load_lung_masks",
    "read_mask",
    "make_phantoms",
    "train_test_split_by_patient",
]

