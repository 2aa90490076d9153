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

from .backbones import FeatureMapMixin


__all__ = [
    "N_FEATURES",
    "CNNClassifier",
    "ResNet1ch",
    "ResNet18Classifier",
    "for_inference",
    "fused_for_inference",
    "is_weights_name",
    "load_resnet18_weights",
    "resnet18_1ch",
]

N_FEATURES = 512
#: The format tag of files written by :meth:`skcxr.features.CNNEmbedder.save`.
EMBEDDER_FORMAT = "skcxr.ResNetEmbedder/1"


class ResNet1ch(FeatureMapMixin, torchvision.models.ResNet):
    """torchvision's ResNet with a 1-channel ``conv1`` and no ``fc``: a backbone of :mod:`skcxr.nn.backbones`.

    ``feature_map(x)`` is the ``layer4`` output (post-ReLU); ``forward(x)``
    its mean over positions (512 features, in float32 under bf16 autocast).
    """

    n_features = N_FEATURES
    last_stage = ["layer4"]

    def feature_map(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    @property
    def map_layer(self) -> nn.Module:
        return self.layer4


def resnet18_1ch() -> nn.Module:
    """torchvision's ResNet18 with a 1-channel ``conv1`` and no ``fc`` (outputs 512 features).

    Examples
    --------
    >>> import torch
    >>> resnet18_1ch()(torch.zeros(2, 1, 64, 64)).shape
    torch.Size([2, 512])
    """
    model = ResNet1ch(torchvision.models.resnet.BasicBlock, [2, 2, 2, 2])
    model.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    model.fc = nn.Identity()
    return model


class CNNClassifier(nn.Module):
    """A 1-channel CNN ``backbone`` (:func:`skcxr.nn.backbones.build_cnn`) + a linear multi-label ``head`` (logits).

    The head sits on the mean-pooled post-activation feature map, so its
    Grad-CAM has a closed form (:mod:`skcxr.attention`).

    Parameters
    ----------
    n_outputs : int
        Number of labels.
    backbone : str or torch.nn.Module, default="resnet18"
    weights : None, "imagenet", str, path or mapping, default=None
        Start weights of the backbone, see :func:`skcxr.nn.backbones.build_cnn`.
    fine_tune : {"all", "last", "layer4"}, default="all"
        ``"last"`` (``"layer4"`` is its ResNet name) trains the backbone's
        ``last_stage`` and the head: every other backbone parameter is frozen
        (``requires_grad=False``) and its modules stay in eval mode in
        ``train()``, BatchNorm statistics included.

    Examples
    --------
    >>> import torch
    >>> CNNClassifier(14)(torch.zeros(2, 1, 64, 64)).shape
    torch.Size([2, 14])
    >>> net = CNNClassifier(3, fine_tune="layer4").train()
    >>> net.backbone.bn1.training, net.backbone.layer4.training, net.backbone.conv1.weight.requires_grad
    (False, True, False)
    """

    def __init__(self, n_outputs: int, backbone="resnet18", weights=None, fine_tune: str = "all"):
        super().__init__()
        from .backbones import build_cnn

        if fine_tune not in ("all", "last", "layer4"):
            raise ValueError(f"fine_tune must be 'all', 'last' or 'layer4', got {fine_tune!r}.")
        self.fine_tune = fine_tune
        self.backbone = build_cnn(backbone, weights)
        self.head = nn.Linear(self.backbone.n_features, n_outputs)
        for name, p in self.backbone.named_parameters():
            p.requires_grad_(not self._frozen(name))

    def _frozen(self, name: str) -> bool:
        """Whether the backbone's parameter or module ``name`` is frozen."""
        if self.fine_tune == "all":
            return False
        return not any(name == s or name.startswith(s + ".") for s in self.backbone.last_stage)

    def forward(self, x):
        return self.head(self.backbone(x))

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.fine_tune != "all":
            for name, module in self.backbone.named_modules():
                if name and self._frozen(name) and not any(s.startswith(name + ".") for s in self.backbone.last_stage):
                    module.eval()
        return self


class ResNet18Classifier(CNNClassifier):
    """:class:`CNNClassifier` with the ResNet18 backbone (the former name and signature)."""

    def __init__(self, n_outputs: int, weights=None, fine_tune: str = "all"):
        super().__init__(n_outputs, "resnet18", weights, fine_tune)


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
    if isinstance(state, Mapping) and state.get("format") == EMBEDDER_FORMAT:  # a file of CNNEmbedder.save
        state = state["backbone"]
    if not isinstance(state, Mapping):
        raise ValueError(f"weights file {path!r} holds a {type(state).__name__}, not a state dict.")
    return _to_1channel(state, f"weights file {path!r}")


def float32_tensor(value) -> torch.Tensor:
    """A copy of a state-dict entry as a tensor, floating point cast to float32 (fp16 and fp64 files load too)."""
    t = torch.as_tensor(value).clone()
    return t.float() if t.is_floating_point() else t


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


def for_inference(backbone: nn.Module) -> nn.Module:
    """An eval-mode copy of any backbone, BatchNorm folded into the convolutions where it is a ResNet.

    Examples
    --------
    >>> from skcxr.nn.backbones import build_cnn
    >>> net = build_cnn("efficientnet_lite0").train()
    >>> for_inference(net).training, net.training
    (False, True)
    """
    if isinstance(backbone, ResNet1ch):
        return fused_for_inference(backbone)
    return copy.deepcopy(backbone).eval()
