"""The 1-channel ResNet18: construction, weight loading and conversion, BatchNorm folding.

Input scaling
-------------
The network sees the grayscale images of
:class:`skcxr.preprocessing.CXRPreprocessor` scaled to [-1, 1], with no
further normalisation. When 3-channel (ImageNet) weights are loaded, the
1-channel kernel of ``conv1`` is the sum of the red, green and blue kernels:
the network then computes exactly what the 3-channel network computes on a
gray image copied to the three channels. ImageNet's per-channel
normalisation (mean about 0.45, std about 0.225 on [0, 1]) is not applied;
[-1, 1] is centred like it and spans roughly half its range, a difference that
fine-tuning absorbs.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping

import torch
import torchvision
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from .training import seeded

__all__ = [
    "FROZEN_BY_LAYER4",
    "N_FEATURES",
    "ResNet18Classifier",
    "build_backbone",
    "fused_for_inference",
    "is_weights_name",
    "load_resnet18_weights",
    "resnet18_1ch",
]

N_FEATURES = 512
#: The format tag of files written by :meth:`skcxr.features.ResNetEmbedder.save`.
EMBEDDER_FORMAT = "skcxr.ResNetEmbedder/1"


def resnet18_1ch() -> nn.Module:
    """torchvision's ResNet18 with a 1-channel ``conv1`` and no ``fc`` (outputs 512 features).

    Examples
    --------
    >>> import torch
    >>> resnet18_1ch()(torch.zeros(2, 1, 64, 64)).shape
    torch.Size([2, 512])
    """
    model = torchvision.models.resnet18(weights=None)
    model.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    model.fc = nn.Identity()
    return model


class ResNet18Classifier(nn.Module):
    """A 1-channel ResNet18 ``backbone`` followed by a linear multi-label ``head`` (logits).

    Parameters
    ----------
    n_outputs : int
        Number of labels.
    weights : None, str, path or mapping, default=None
        Start weights of the backbone, see :func:`load_resnet18_weights`.
    fine_tune : {"all", "layer4"}, default="all"
        With ``"layer4"`` every backbone layer before ``layer4`` stays in eval
        mode in ``train()`` (its BatchNorm statistics are not updated); its
        parameters are frozen by the trainer (:data:`FROZEN_BY_LAYER4` names them).

    Examples
    --------
    >>> import torch
    >>> ResNet18Classifier(14)(torch.zeros(2, 1, 64, 64)).shape
    torch.Size([2, 14])
    >>> net = ResNet18Classifier(3, fine_tune="layer4").train()
    >>> net.backbone.bn1.training, net.backbone.layer4.training
    (False, True)
    """

    def __init__(self, n_outputs: int, weights=None, fine_tune: str = "all"):
        super().__init__()
        if fine_tune not in ("all", "layer4"):
            raise ValueError(f"fine_tune must be 'all' or 'layer4', got {fine_tune!r}.")
        self.fine_tune = fine_tune
        self.backbone = resnet18_1ch()
        state = load_resnet18_weights(weights)
        if state is not None:
            self.backbone.load_state_dict(state)
        self.head = nn.Linear(N_FEATURES, n_outputs)

    def forward(self, x):
        return self.head(self.backbone(x))

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.fine_tune == "layer4":
            for name, child in self.backbone.named_children():
                if name != "layer4":
                    child.eval()
        return self


#: Parameter-name patterns (``fnmatch``) that ``fine_tune="layer4"`` freezes, for skorch's ``Freezer``.
FROZEN_BY_LAYER4 = ["backbone.conv1.*", "backbone.bn1.*", "backbone.layer1.*", "backbone.layer2.*", "backbone.layer3.*"]


def _template_shapes() -> dict[str, tuple]:
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in resnet18_1ch().state_dict().items()}


def _short(items, k: int = 5) -> str:
    items = list(items)
    text = ", ".join(items[:k])
    return text + (f" and {len(items) - k} more" if len(items) > k else "")


def _to_1channel(state: Mapping, source: str) -> dict[str, torch.Tensor]:
    """Check a ResNet18 state dict and return the 1-channel backbone part of it."""
    state = {str(k): torch.as_tensor(v) for k, v in state.items()}
    for prefix in ("module.", "backbone."):  # DataParallel, ResNet18Classifier
        if state and all(k.startswith(prefix) or k.startswith("head.") for k in state):
            state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    conv1 = state.get("conv1.weight")
    if conv1 is not None and conv1.ndim == 4 and conv1.shape[1] == 3:
        state["conv1.weight"] = conv1.sum(dim=1, keepdim=True)
    template = _template_shapes()
    for key in template:  # old torchvision files lack the BatchNorm counters
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.tensor(0, dtype=torch.long)
    missing = [k for k in template if k not in state]
    unexpected = [k for k in state if k not in template]
    shapes = [
        f"{k} {tuple(state[k].shape)} (expected {template[k]})"
        for k in template
        if k in state and tuple(state[k].shape) != template[k]
    ]
    if missing or unexpected or shapes:
        problems = [
            f"{label}: {_short(items)}"
            for label, items in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", shapes))
            if items
        ]
        raise ValueError(
            f"{source} is not a ResNet18 state_dict (3-channel torchvision or 1-channel skcxr): "
            + "; ".join(problems)
            + "."
        )
    return state


def is_weights_name(weights) -> bool:
    """True for a torchvision weights name such as ``"IMAGENET1K_V1"`` that is not an existing file."""
    if not isinstance(weights, str) or os.path.exists(weights):
        return False
    name = weights.split(".")[-1]
    return name in torchvision.models.ResNet18_Weights.__members__ or name == "DEFAULT"


def load_resnet18_weights(weights) -> dict[str, torch.Tensor] | None:
    """Resolve ``weights`` into the state dict of :func:`resnet18_1ch` (or None for random init).

    Parameters
    ----------
    weights : None, str, path or mapping
        None; a torchvision weights name (``"IMAGENET1K_V1"``, ``"DEFAULT"`` or
        ``"ResNet18_Weights.IMAGENET1K_V1"``), downloaded by torchvision, so it
        needs internet or torch's download cache; a local file holding a state
        dict (3-channel torchvision ResNet18 or 1-channel skcxr network, with or
        without ``fc``/head), read with ``torch.load(..., weights_only=True)``;
        or such a state dict itself. 3-channel ``conv1`` kernels are summed over
        the colour channels.

    Returns
    -------
    dict of tensors or None

    Raises
    ------
    ValueError
        For an unknown name, a file that is not a ResNet18 state dict (the
        message names the file and the mismatching keys and shapes).
    FileNotFoundError
        For a path that does not exist.
    RuntimeError
        When torchvision cannot download the named weights (offline).

    Examples
    --------
    >>> load_resnet18_weights(None) is None
    True
    >>> import torchvision
    >>> state = load_resnet18_weights(torchvision.models.resnet18(weights=None).state_dict())
    >>> tuple(state["conv1.weight"].shape)
    (64, 1, 7, 7)
    """
    if weights is None:
        return None
    if isinstance(weights, Mapping):
        return _to_1channel(weights, "the given state dict")
    if is_weights_name(weights):
        enum = torchvision.models.ResNet18_Weights
        name = weights.split(".")[-1]
        entry = enum.DEFAULT if name == "DEFAULT" else enum[name]
        try:
            state = entry.get_state_dict(progress=False, check_hash=True)
        except Exception as err:  # URLError, OSError, hash errors: all mean "no usable download"
            raise RuntimeError(
                f"Could not download torchvision weights ResNet18_Weights.{entry.name} ({err}). "
                f"Without internet, fetch {entry.url} on another machine and pass the local "
                "file as weights='path/to/file.pth'."
            ) from err
        return _to_1channel(state, f"torchvision weights ResNet18_Weights.{entry.name}")
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(
            "weights must be None, a torchvision weights name, a file path or a state dict; "
            f"got {type(weights).__name__}."
        )
    path = os.fspath(weights)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"weights file {path!r} not found (and it is not a torchvision weights name; valid names: "
            f"{', '.join(torchvision.models.ResNet18_Weights.__members__)}, DEFAULT)."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"weights file {path!r} could not be read as a torch state dict: {err}") from err
    if isinstance(state, Mapping) and state.get("format") == EMBEDDER_FORMAT:  # a file of ResNetEmbedder.save
        state = state["backbone"]
    if not isinstance(state, Mapping):
        raise ValueError(f"weights file {path!r} holds a {type(state).__name__}, not a state dict.")
    return _to_1channel(state, f"weights file {path!r}")


def float32_tensor(value) -> torch.Tensor:
    """A copy of a state-dict entry as a tensor, floating point cast to float32 (fp16 and fp64 files load too)."""
    t = torch.as_tensor(value).clone()
    return t.float() if t.is_floating_point() else t


def build_backbone(state: Mapping | None, random_state=None) -> nn.Module:
    """A :func:`resnet18_1ch` with the weights ``state``, or initialised from ``random_state`` when ``state`` is None.

    torch's global generators are left untouched.

    Examples
    --------
    >>> a, b = build_backbone(None, 0), build_backbone(None, 0)
    >>> bool((a.conv1.weight == b.conv1.weight).all())
    True
    """
    if state is None:
        with seeded(random_state):
            return resnet18_1ch()
    with torch.device("meta"):  # no random initialisation for ``state`` to overwrite (0.2 s a call)
        model = resnet18_1ch()
    model.load_state_dict({k: float32_tensor(v) for k, v in state.items()}, assign=True)
    return model


def _conv_bn_pairs(model: nn.Module) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
    pairs = [(model.conv1, model.bn1)]
    for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
        for block in layer:
            pairs += [(block.conv1, block.bn1), (block.conv2, block.bn2)]
            if block.downsample is not None:
                pairs.append((block.downsample[0], block.downsample[1]))
    return pairs


def _fold_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A copy of ``conv`` with ``bn``'s inference-time affine map folded in (inputs untouched)."""
    fused = copy.deepcopy(conv, {id(conv.weight): conv.weight})  # the weight is replaced below: don't copy it
    fused.weight, fused.bias = fuse_conv_bn_weights(
        conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias
    )
    return fused


def fused_for_inference(backbone: nn.Module) -> nn.Module:
    """An eval-mode copy of a ResNet18 with every BatchNorm folded into its convolution (exact up to rounding).

    Examples
    --------
    >>> import torch
    >>> net = resnet18_1ch().eval()
    >>> x = torch.rand(1, 1, 32, 32)
    >>> bool(torch.allclose(fused_for_inference(net)(x), net(x), atol=1e-4))
    True
    """
    memo = {}
    for conv, bn in _conv_bn_pairs(backbone):
        memo[id(conv)], memo[id(bn)] = _fold_bn(conv, bn), nn.Identity()
    return copy.deepcopy(backbone, memo).eval()
