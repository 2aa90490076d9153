"""Reading one radiograph from disk: PNG, JPEG (and what else Pillow reads) or DICOM.

:func:`read_image` is the single entry point every path-taking part of skcxr
uses. Whatever the file holds, it returns a 2-D ``float32`` array in [0, 1].
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, UnidentifiedImageError

__all__ = ["read_image"]

_DICOM_SUFFIXES = (".dcm", ".dicom")
# Rec. 601 luma, the weights Pillow's ``convert("L")`` uses for 8-bit colour.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def read_image(path) -> np.ndarray:
    """Read a radiograph as a 2-D float32 array in [0, 1].

    Parameters
    ----------
    path : str or path-like
        A PNG, JPEG or other file Pillow can read, or a DICOM file (``.dcm`` /
        ``.dicom``, or any file with the ``DICM`` signature) when pydicom is
        installed (``pip install 'skcxr[dicom]'``).

    Returns
    -------
    image : ndarray of shape (H, W), dtype float32
        Values in [0, 1], 0 black, 1 white, scaled as follows:

        - 8-bit data (modes ``L``, ``P``, ``1``, ``RGB``, JPEG, ...): value / 255.
        - 16-bit data (modes ``I;16*``, e.g. 16-bit grayscale PNG): value / 65535.
        - 32-bit or signed integer data (modes ``I``, ``I;16S``): value / 65535
          when every value lies in [0, 65535] (16-bit data widened by the
          decoder), else min-max.
        - floating-point data (mode ``F``): min-max.
        - DICOM: the modality LUT (``RescaleSlope``/``RescaleIntercept``) is
          applied; then, if the file has a window (``WindowCenter`` /
          ``WindowWidth``, first one when several), DICOM's linear window maps
          the values to [0, 1] (clipped), otherwise min-max. ``MONOCHROME1``
          images (high value = black) are inverted (``1 - x``).

        Min-max maps the smallest value to 0 and the largest to 1; a constant
        image becomes all zeros. An alpha channel is dropped (not composited).
        Colour becomes luminance, ``0.299 R + 0.587 G + 0.114 B``, so an RGB
        file with three equal channels reads exactly as its gray channel.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is corrupt, truncated, not an image, or a DICOM without a
        single 2-D frame. The message names the file.
    PIL.Image.DecompressionBombError
        If the image has more than twice ``PIL.Image.MAX_IMAGE_PIXELS``
        pixels. The message names the file.
    ImportError
        For a DICOM file when pydicom is not installed.

    Examples
    --------
    >>> import tempfile, os
    >>> import numpy as np
    >>> from PIL import Image
    >>> from skcxr.datasets import read_image
    >>> path = os.path.join(tempfile.mkdtemp(), "x.png")
    >>> Image.fromarray(np.array([[0, 255]], dtype=np.uint8)).convert("RGBA").save(path)
    >>> read_image(path)
    array([[0., 1.]], dtype=float32)
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        if os.path.isdir(path):
            raise IsADirectoryError(f"Expected an image file, got the directory {path!r}.")
        raise FileNotFoundError(f"Image file not found: {path!r}.")
    if path.lower().endswith(_DICOM_SUFFIXES):
        return _read_dicom(path)
    try:
        with Image.open(path) as im:
            return _from_pillow(im)
    except UnidentifiedImageError:
        if _has_dicom_signature(path):
            return _read_dicom(path)
        raise ValueError(
            f"Cannot read {path!r}: not an image format Pillow or pydicom recognises."
        ) from None
    except (PermissionError, MemoryError):
        raise
    except Image.DecompressionBombError as exc:
        raise Image.DecompressionBombError(
            f"Cannot read {path!r}: {exc} Downscale the file, or raise PIL.Image.MAX_IMAGE_PIXELS if you trust it."
        ) from exc
    except Exception as exc:  # noqa: BLE001 - Pillow's decoders raise OSError, struct.error, IndexError, ...
        raise ValueError(f"Cannot read {path!r}: corrupt or truncated image ({exc}).") from exc


def _from_pillow(im: Image.Image) -> np.ndarray:
    mode = im.mode
    if mode == "I" or mode.startswith("I;16"):
        a = np.asarray(im)
        if a.dtype.kind == "u" or (a.size and a.min() >= 0 and a.max() <= 65535):
            return _scale(a, 65535.0)
        return _minmax(a)
    if mode == "F":
        return _minmax(np.asarray(im, dtype=np.float32))
    if mode == "LA":
        im = im.getchannel(0)
    elif mode != "L":
        # P, 1, RGB, RGBA, CMYK, YCbCr, ...: Pillow's C conversion to 8-bit luma
        # (alpha ignored), the same Rec. 601 weights as _LUMA.
        im = im.convert("L")
    return _scale(np.asarray(im), 255.0)


def _scale(a: np.ndarray, full: float) -> np.ndarray:
    return np.divide(a, np.float32(full), dtype=np.float32)


def _minmax(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    lo, hi = float(a.min()), float(a.max())
    if hi <= lo:
        return np.zeros(a.shape, dtype=np.float32)
    out = a - np.float32(lo)
    out *= np.float32(1.0 / (hi - lo))
    return np.clip(out, 0.0, 1.0, out=out)


def _has_dicom_signature(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(132)[128:132] == b"DICM"


def _first(value) -> float:
    """First value of a possibly multi-valued DICOM element."""
    try:
        return float(value[0])
    except TypeError:
        return float(value)


def _read_dicom(path: str) -> np.ndarray:
    try:
        import pydicom
    except ImportError as exc:
        raise ImportError(
            f"Reading the DICOM file {path!r} needs pydicom: pip install 'skcxr[dicom]'."
        ) from exc
    try:
        ds = pydicom.dcmread(path)
        a = ds.pixel_array
    except Exception as exc:  # pydicom raises many types for bad or unsupported data
        raise ValueError(f"Cannot read DICOM {path!r}: {exc}") from exc
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric in ("MONOCHROME1", "MONOCHROME2"):
        if a.ndim != 2:
            raise ValueError(
                f"DICOM {path!r} holds pixel data of shape {a.shape}; expected one 2-D frame."
            )
        a = a.astype(np.float32)
        slope = _first(ds.get("RescaleSlope", 1.0))
        intercept = _first(ds.get("RescaleIntercept", 0.0))
        if slope != 1.0:
            a *= np.float32(slope)
        if intercept != 0.0:
            a += np.float32(intercept)
        center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
        if center is not None and width is not None and _first(width) >= 1:
            c, w = _first(center), _first(width)
            # DICOM PS3.3 C.11.2.1.2.1, linear window, rescaled to [0, 1].
            out = np.clip((a - np.float32(c - 0.5)) / np.float32(w - 1) + 0.5, 0.0, 1.0)
            out = out.astype(np.float32, copy=False)
        else:
            out = _minmax(a)
        if photometric == "MONOCHROME1":
            out = np.subtract(np.float32(1.0), out, dtype=np.float32)
        return out
    if a.ndim != 3 or a.shape[-1] not in (3, 4):
        raise ValueError(
            f"DICOM {path!r} ({photometric}) holds pixel data of shape {a.shape}; "
            "expected one colour frame (H, W, 3)."
        )
    # pydicom converts YBR to RGB by default; colour data is 8 or 16 bit.
    full = float(np.iinfo(a.dtype).max) if a.dtype.kind in "ui" else 1.0
    return np.clip(a[..., :3].astype(np.float32) @ _LUMA / np.float32(full), 0.0, 1.0)
