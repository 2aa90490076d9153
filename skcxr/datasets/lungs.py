"""Lung segmentation data: chest X-rays in ``images/`` with manual lung masks in ``masks/``.

Made for the Montgomery County (``MCUCXR_*``) and Shenzhen (``CHNCXR_*``) sets,
whose file names also carry the tuberculosis label (``_1``) or normal (``_0``);
any pair of folders with matching file names works.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from .io import read_image

__all__ = ["load_lung_masks", "read_mask"]

_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm", ".dicom")
_SOURCES = {"MCUCXR": "Montgomery", "CHNCXR": "Shenzhen"}
_NAME = re.compile(r"^(MCUCXR|CHNCXR)_\d+_([01])$")


def read_mask(path) -> np.ndarray:
    """Read a binary mask as a 2-D bool array.

    A pixel is True where :func:`skcxr.datasets.read_image` gives >= 0.5, i.e.
    >= 128 in an 8-bit file (masks stored as 0/255 or 0/1-scaled both work).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from PIL import Image
    >>> from skcxr.datasets import read_mask
    >>> path = os.path.join(tempfile.mkdtemp(), "m.png")
    >>> Image.fromarray(np.array([[0, 255]], dtype=np.uint8)).save(path)
    >>> read_mask(path)
    array([[False,  True]])
    """
    return read_image(path) >= 0.5


def load_lung_masks(root, *, load=False) -> Bunch:
    """List (and optionally load) chest X-rays and their lung masks.

    Parameters
    ----------
    root : str or path-like
        Folder with ``images/`` and ``masks/``. An image and its mask share the
        file name up to the extension; a mask may also end in ``_mask``
        (``CHNCXR_0001_0.png`` pairs with ``CHNCXR_0001_0_mask.png``).
    load : bool, default=False
        Also read the pixels: ``images`` as float32 (n, H, W) in [0, 1] (see
        :func:`read_image`) and ``masks`` as bool (n, H, W) (see
        :func:`read_mask`). All images must then share one size, and each mask
        the size of its image.

    Returns
    -------
    data : sklearn.utils.Bunch
        - ``paths``, ``mask_paths``: ndarray (n,) of str (object dtype), sorted
          by file name.
        - ``source``: ndarray (n,) of str, "Montgomery" (``MCUCXR_``),
          "Shenzhen" (``CHNCXR_``) or "unknown" for other names.
        - ``tuberculosis``: ndarray (n,) of int8, 1 for a ``_1`` suffix, 0 for
          ``_0``, -1 where the name does not follow that pattern.
        - ``images``, ``masks``: only with ``load=True``.

    Raises
    ------
    FileNotFoundError
        If ``root/images`` or ``root/masks`` is not a folder.
    ValueError
        For an image without a mask or a mask without an image (the message
        names them), two files with the same name stem in one folder, empty
        folders, or (with ``load=True``) sizes that do not match.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from PIL import Image
    >>> from skcxr.datasets import load_lung_masks
    >>> root = tempfile.mkdtemp()
    >>> for sub in ("images", "masks"):
    ...     os.mkdir(os.path.join(root, sub))
    ...     Image.fromarray(np.zeros((4, 4), np.uint8)).save(
    ...         os.path.join(root, sub, "MCUCXR_0001_1.png"))
    >>> data = load_lung_masks(root, load=True)
    >>> data.source, data.tuberculosis, data.masks.shape
    (array(['Montgomery'], dtype=object), array([1], dtype=int8), (1, 4, 4))
    """
    root = Path(root)
    images = _files_by_stem(root / "images", mask=False)
    masks = _files_by_stem(root / "masks", mask=True)
    lonely_images = sorted(images.keys() - masks.keys())
    lonely_masks = sorted(masks.keys() - images.keys())
    if lonely_images or lonely_masks:
        parts = []
        if lonely_images:
            parts.append(
                f"{len(lonely_images)} image(s) without a mask: {_names(images, lonely_images)}"
            )
        if lonely_masks:
            parts.append(
                f"{len(lonely_masks)} mask(s) without an image: {_names(masks, lonely_masks)}"
            )
        raise ValueError(f"Unpaired files in {str(root)!r}: " + "; ".join(parts) + ".")
    stems = sorted(images)
    matches = [_NAME.match(s) for s in stems]
    data = Bunch(
        paths=np.array([images[s] for s in stems], dtype=object),
        mask_paths=np.array([masks[s] for s in stems], dtype=object),
        source=np.array([_SOURCES[m.group(1)] if m else "unknown" for m in matches], dtype=object),
        tuberculosis=np.array([int(m.group(2)) if m else -1 for m in matches], dtype=np.int8),
    )
    if load:
        data.images, data.masks = _load_pairs(data.paths, data.mask_paths)
    return data


def _files_by_stem(folder: Path, *, mask: bool) -> dict[str, str]:
    if not folder.is_dir():
        raise FileNotFoundError(f"Folder not found: {str(folder)!r} (expected images/ and masks/).")
    found: dict[str, str] = {}
    for path in sorted(folder.iterdir()):
        name = path.name
        if name.startswith(".") or not name.lower().endswith(_SUFFIXES) or not path.is_file():
            continue
        stem = name.rsplit(".", 1)[0]
        if mask and stem.endswith("_mask"):
            stem = stem[: -len("_mask")]
        if stem in found:
            raise ValueError(
                f"Two files in {str(folder)!r} share the name {stem!r}: "
                f"{Path(found[stem]).name} and {name}."
            )
        found[stem] = str(path)
    if not found:
        raise ValueError(f"No image files ({', '.join(_SUFFIXES)}) in {str(folder)!r}.")
    return found


def _names(files: dict[str, str], stems: list[str], show: int = 5) -> str:
    shown = ", ".join(Path(files[s]).name for s in stems[:show])
    return shown + (f" and {len(stems) - show} more" if len(stems) > show else "")


def _load_pairs(paths, mask_paths) -> tuple[np.ndarray, np.ndarray]:
    images, masks = [], []
    for path, mask_path in zip(paths, mask_paths):
        image, mask = read_image(path), read_mask(mask_path)
        if images and image.shape != images[0].shape:
            raise ValueError(
                f"{path!r} is {image.shape}, {paths[0]!r} is {images[0].shape}: load=True "
                "needs one image size; use load=False and resize (CXRPreprocessor)."
            )
        if mask.shape != image.shape:
            raise ValueError(
                f"Mask {mask_path!r} is {mask.shape} but its image {path!r} is {image.shape}."
            )
        images.append(image)
        masks.append(mask)
    return np.stack(images), np.stack(masks)
