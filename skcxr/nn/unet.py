"""The U-Net (Ronneberger et al. 2015) for lung segmentation, and its BCE + Dice loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BCEDiceLoss", "UNet", "dice_coefficient"]


def _double_conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """U-Net: ``depth`` down-sampling levels, ``base_width`` channels at the top, doubling per level.

    Each level is two 3x3 convolutions with BatchNorm and ReLU; max-pooling
    goes down, a 2x2 transposed convolution goes up, and the skip connection
    concatenates the encoder's features of the same level. The output is one
    logit per pixel, ``(b, 1, H, W)``. Inputs whose sides are not a multiple
    of ``2**depth`` are zero-padded on the bottom/right and the output cropped
    back. Same padding throughout (the output has the input's size), as in
    most U-Nets since the original, whose valid convolutions shrank the map.

    Examples
    --------
    >>> import torch
    >>> UNet(depth=2, base_width=4)(torch.zeros(2, 1, 30, 30)).shape
    torch.Size([2, 1, 30, 30])
    """

    def __init__(self, depth: int = 4, base_width: int = 16, in_channels: int = 1):
        super().__init__()
        if depth < 1 or base_width < 1:
            raise ValueError(f"depth and base_width must be >= 1; got {depth} and {base_width}.")
        widths = [base_width * 2**i for i in range(depth + 1)]
        self.depth = depth
        self.down = nn.ModuleList(_double_conv(c, w) for c, w in zip([in_channels, *widths[:-2]], widths[:-1]))
        self.bottom = _double_conv(widths[-2], widths[-1])
        self.up = nn.ModuleList(nn.ConvTranspose2d(2 * w, w, 2, stride=2) for w in reversed(widths[:-1]))
        self.merge = nn.ModuleList(_double_conv(2 * w, w) for w in reversed(widths[:-1]))
        self.head = nn.Conv2d(widths[0], 1, 1)

    def forward(self, x):
        h, w = x.shape[-2:]
        m = 2**self.depth
        x = F.pad(x, (0, -w % m, 0, -h % m))
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottom(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips)):
            x = merge(torch.cat([up(x), skip], 1))
        return self.head(x)[..., :h, :w]


def dice_coefficient(pred: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Soft Dice per image, ``(2|P∩T| + eps) / (|P| + |T| + eps)`` over all but the first axis.

    Examples
    --------
    >>> import torch
    >>> dice_coefficient(torch.ones(1, 4), torch.ones(1, 4))
    tensor([1.])
    """
    dims = tuple(range(1, pred.ndim))
    inter = (pred * target).sum(dims)
    return (2 * inter + eps) / (pred.sum(dims) + target.sum(dims) + eps)


class BCEDiceLoss(nn.Module):
    """Pixel-wise binary cross-entropy on logits plus ``dice_weight`` x (1 - soft Dice), averaged over images.

    BCE gives every pixel a gradient from the start; the Dice term weighs the
    lung as a whole and is insensitive to the share of background.

    Examples
    --------
    >>> import torch
    >>> loss = BCEDiceLoss()(torch.full((1, 1, 4, 4), 10.0), torch.ones(1, 1, 4, 4))
    >>> round(float(loss), 3)
    0.0
    """

    def __init__(self, dice_weight: float = 1.0):
        super().__init__()
        self.dice_weight = dice_weight

    def forward(self, logits, target):
        target = target.to(logits.dtype)
        bce = F.binary_cross_entropy_with_logits(logits, target)
        dice = dice_coefficient(torch.sigmoid(logits), target).mean()
        return bce + self.dice_weight * (1 - dice)
