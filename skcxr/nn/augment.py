"""Training augmentation for radiographs: one random geometry for an image batch and its masks."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F

__all__ = ["DEFAULT_AUGMENT", "augment", "augment_params"]

#: Rotation ±7°, shift ±6 % of the side, brightness and contrast ±10 %, no left-right flip.
DEFAULT_AUGMENT = {"degrees": 7.0, "translate": 0.06, "brightness": 0.1, "contrast": 0.1, "hflip": False}


def augment_params(augment) -> dict | None:
    """``True`` -> :data:`DEFAULT_AUGMENT`; a dict overrides some of it; ``False``/``None`` -> None.

    Examples
    --------
    >>> augment_params({"degrees": 3})["degrees"], augment_params(False)
    (3, None)
    """
    if augment is False or augment is None:
        return None
    if augment is True:
        return dict(DEFAULT_AUGMENT)
    if isinstance(augment, Mapping):
        unknown = set(augment) - set(DEFAULT_AUGMENT)
        if unknown:
            raise ValueError(f"augment has unknown keys {sorted(unknown)}; allowed: {sorted(DEFAULT_AUGMENT)}.")
        return {**DEFAULT_AUGMENT, **augment}
    raise ValueError(f"augment must be True, False or a dict of {sorted(DEFAULT_AUGMENT)}; got {augment!r}.")


def augment(x, gen, masks=None, *, degrees, translate, brightness, contrast, hflip):
    """Random per-image rotation, shift (and flip), then contrast and brightness, of a (b, 1, S, S) batch in [-1, 1].

    One ``affine_grid``/``grid_sample`` call with a different draw per image
    (torchvision's v2 transforms draw one set of parameters per batch). Shifts
    are fractions of the image side, brightness shifts a fraction of the
    [-1, 1] range, contrast scales around each image's mean; image borders
    repeat the edge pixels. ``masks`` (b, C, S, S), if given, get exactly the
    same geometry (bilinear, zero outside) and no intensity change, so an
    image and its lung mask stay aligned. No horizontal flip unless ``hflip``:
    anatomy is lateralised (heart on the left).

    Returns the augmented images, or ``(images, masks)`` when masks are given.

    Examples
    --------
    >>> import torch
    >>> x = torch.zeros(2, 1, 8, 8)
    >>> augment(x, torch.Generator().manual_seed(0), **DEFAULT_AUGMENT).shape
    torch.Size([2, 1, 8, 8])
    """
    n = x.shape[0]

    def uniform(scale):
        return (torch.rand(n, generator=gen) * 2 - 1) * scale

    angle = uniform(math.radians(degrees))
    tx, ty = uniform(2 * translate), uniform(2 * translate)  # grid coordinates span 2
    cos, sin = angle.cos(), angle.sin()
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    if hflip:
        flip = torch.rand(n, generator=gen) < 0.5
        theta[flip, :, 0] *= -1
    theta = theta.to(x.device, x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    c = (1 + uniform(contrast)).view(n, 1, 1, 1).to(x.device, x.dtype)
    b = uniform(2 * brightness).view(n, 1, 1, 1).to(x.device, x.dtype)
    out = ((out - mean) * c + mean + b).clamp_(-1, 1)
    if masks is None:
        return out
    masks = F.grid_sample(masks.to(grid.dtype), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out, masks
