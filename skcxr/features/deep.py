"""ResNet18 embeddings of chest X-rays.

A torchvision ResNet18 with a 1-channel first convolution, wrapped as the
scikit-learn transformer :class:`ResNetEmbedder`: ``transform`` returns the
512-d global-average-pooled ``layer4`` output, ``fit`` optionally fine-tunes
the network on a multi-label ``Y``.

The fine-tuning is one module-level function, :func:`fine_tune_resnet`, run
through ``joblib.Memory`` by :func:`cached_fine_tune_resnet`, so every
estimator that asks for the same network on the same data with the same
``memory`` (the embedder, Grad-CAM) trains it once.

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
import math
import os
import time
import warnings
from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.exceptions import NotFittedError
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, check_memory
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights
from tqdm.auto import tqdm

from .._torch import resolve_device
from .._validation import check_image_stack, check_multilabel_Y, is_path_array
from ..preprocessing import CXRPreprocessor

__all__ = [
    "ResNetEmbedder",
    "ResNet18Classifier",
    "resnet18_1ch",
    "load_resnet18_weights",
    "fine_tune_resnet",
    "cached_fine_tune_resnet",
]

N_FEATURES = 512
VALID_FRACTION = 0.15  # internal validation split of fine-tuning
POS_WEIGHT_RANGE = (1 / 50, 50.0)  # clip of BCE pos_weight = negatives / positives
DEFAULT_AUGMENT = {"degrees": 7.0, "translate": 0.06, "brightness": 0.1, "contrast": 0.1, "hflip": False}
_FORMAT = "skcxr.ResNetEmbedder/1"


# --------------------------------------------------------------------------- networks
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

    Examples
    --------
    >>> import torch
    >>> ResNet18Classifier(14)(torch.zeros(2, 1, 64, 64)).shape
    torch.Size([2, 14])
    """

    def __init__(self, n_outputs: int, backbone: nn.Module | None = None):
        super().__init__()
        self.backbone = resnet18_1ch() if backbone is None else backbone
        self.head = nn.Linear(N_FEATURES, n_outputs)

    def forward(self, x):
        return self.head(self.backbone(x))


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


def _is_weights_name(weights) -> bool:
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
    if _is_weights_name(weights):
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
    if isinstance(state, Mapping) and state.get("format") == _FORMAT:  # a file of ResNetEmbedder.save
        state = state["backbone"]
    if not isinstance(state, Mapping):
        raise ValueError(f"weights file {path!r} holds a {type(state).__name__}, not a state dict.")
    return _to_1channel(state, f"weights file {path!r}")


class _NumpyState(dict):
    """A state dict of numpy arrays: ``joblib.Memory`` hashes it by content; its repr (cache metadata) is short."""

    def __repr__(self):
        return f"<ResNet18 state dict, {len(self)} arrays>"


def _cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in module.state_dict().items()}


def _numpy_state(state: Mapping) -> _NumpyState:
    return _NumpyState({k: v.detach().cpu().numpy() for k, v in state.items()})


def _seed(random_state) -> int:
    return int(check_random_state(random_state).randint(2**31 - 1))


def _build_backbone(state: Mapping | None, seed: int) -> nn.Module:
    """A :func:`resnet18_1ch` initialised from ``seed`` (without touching torch's global RNG), then ``state``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = resnet18_1ch()
    if state is not None:
        model.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()})
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


def _fused_for_inference(backbone: nn.Module) -> nn.Module:
    """An eval-mode copy of a ResNet18 with every BatchNorm folded into its convolution (exact up to rounding)."""
    memo = {}
    for conv, bn in _conv_bn_pairs(backbone):
        memo[id(conv)], memo[id(bn)] = _fold_bn(conv, bn), nn.Identity()
    return copy.deepcopy(backbone, memo).eval()


# --------------------------------------------------------------------------- image batches
def _as_tensor(batch: np.ndarray, image_size: int) -> torch.Tensor:
    """float32 (b, H, W) numpy -> (b, 1, S, S) tensor, resized (antialiased bilinear) when H or W != S."""
    x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).unsqueeze(1)
    if x.shape[-2:] != (image_size, image_size):
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False)
    return x


def _to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    fmt = torch.channels_last if device.type == "cpu" else torch.contiguous_format
    return x.to(device).contiguous(memory_format=fmt)


def _check_stack(X) -> np.ndarray:
    X = check_image_stack(X)
    lo, hi = float(X.min()), float(X.max())
    if lo < -1.05 or hi > 1.05:
        warnings.warn(
            f"ResNetEmbedder expects CXRPreprocessor output scaled to [-1, 1]; X spans [{lo:.3g}, {hi:.3g}].",
            stacklevel=3,
        )
    return X


def _iter_batches(X, image_size: int, batch_size: int):
    """Yield float32 (b, H, W) batches; paths are read and preprocessed one batch at a time."""
    if is_path_array(X):
        paths = np.asarray(list(X), dtype=object)
        pre = CXRPreprocessor(size=image_size)
        for start in range(0, len(paths), batch_size):
            chunk = paths[start : start + batch_size]
            yield pre.fit(chunk).transform(chunk)
    else:
        X = _check_stack(X)
        for start in range(0, len(X), batch_size):
            yield X[start : start + batch_size]


def _load_images(X, image_size: int) -> np.ndarray:
    """All images of X as float32 (n, S, S) at ``image_size`` (for training)."""
    if is_path_array(X):
        return CXRPreprocessor(size=image_size).fit_transform(np.asarray(list(X), dtype=object))
    X = _check_stack(X)
    if X.shape[1:] == (image_size, image_size):
        return X
    return np.concatenate([_as_tensor(X[i : i + 64], image_size).squeeze(1).numpy() for i in range(0, len(X), 64)])


def _forward(net: nn.Module, X, *, image_size: int, batch_size: int, device, verbose=0, desc="") -> np.ndarray:
    """Run ``net`` (eval, inference mode) over X batch by batch; float32 (n, d)."""
    device = resolve_device(device)
    net = net.to(device)
    if device.type == "cpu":
        net = net.to(memory_format=torch.channels_last)
    outputs = []
    bar = tqdm(total=len(X), desc=desc, unit="img", disable=not verbose)
    with torch.inference_mode():
        for batch in _iter_batches(X, image_size, batch_size):
            outputs.append(net(_to_device(_as_tensor(batch, image_size), device)).float().cpu().numpy())
            bar.update(len(batch))
    bar.close()
    return np.concatenate(outputs).astype(np.float32, copy=False)


def embed_resnet(X, backbone_state: Mapping, *, image_size=224, batch_size=32, device="auto", verbose=0) -> np.ndarray:
    """512-d ResNet18 embeddings of X (paths or a preprocessed stack) with the given backbone weights.

    The cacheable form of :meth:`ResNetEmbedder.transform` (weights as numpy
    arrays, so ``joblib.Memory`` hashes them by content).

    Examples
    --------
    >>> import numpy as np
    >>> state = {k: v.numpy() for k, v in resnet18_1ch().state_dict().items()}
    >>> embed_resnet(np.zeros((2, 32, 32), np.float32), state, image_size=32).shape
    (2, 512)
    """
    net = _fused_for_inference(_build_backbone(backbone_state, 0))
    return _forward(
        net, X, image_size=image_size, batch_size=batch_size, device=device, verbose=verbose, desc="ResNet18"
    )


# --------------------------------------------------------------------------- fine-tuning
def _augment_params(augment) -> dict | None:
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


def _augment(x: torch.Tensor, gen: torch.Generator, degrees, translate, brightness, contrast, hflip) -> torch.Tensor:
    """Random per-image rotation, shift, contrast and brightness of a (b, 1, S, S) batch in [-1, 1].

    One ``affine_grid``/``grid_sample`` call with a different draw per image
    (torchvision's v2 transforms draw one set of parameters per batch).
    Shifts are fractions of the image side, brightness shifts a fraction of
    the [-1, 1] range, contrast scales around each image's mean; borders
    repeat the edge pixels. No horizontal flip unless ``hflip``: anatomy is
    lateralised (heart on the left).
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
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    c = (1 + uniform(contrast)).view(n, 1, 1, 1)
    b = uniform(2 * brightness).view(n, 1, 1, 1)
    return ((x - mean) * c + mean + b).clamp_(-1, 1)


def _set_mode(net: ResNet18Classifier, fine_tune: str) -> None:
    """Training mode for the trained parts; frozen layers stay in eval (BatchNorm statistics untouched)."""
    if fine_tune == "all":
        net.train()
    else:
        net.eval()
        net.backbone.layer4.train()
        net.head.train()


def _mean_loss(net, images, Y, loss_fn, batch_size, device) -> float:
    net.eval()
    total = 0.0
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            x = _to_device(torch.from_numpy(images[start : start + batch_size]).unsqueeze(1), device)
            y = torch.from_numpy(Y[start : start + batch_size]).float().to(device)
            total += loss_fn(net(x), y).item() * len(y)
    return total / len(images)


def fine_tune_resnet(
    images,
    Y,
    *,
    weights=None,
    fine_tune="all",
    epochs=5,
    lr=1e-4,
    batch_size=32,
    augment=True,
    patience=3,
    random_state=None,
    device="auto",
    verbose=0,
):
    """Fine-tune a 1-channel ResNet18 with a new linear multi-label head.

    A random ``VALID_FRACTION`` (15 %) of the images is held out, seeded by
    ``random_state``; training stops after ``patience`` epochs without a
    lower validation loss and the best epoch's weights are returned. The split
    is patient-agnostic: pass images of training patients only (split by
    patient before). The loss is ``BCEWithLogitsLoss`` with ``pos_weight`` =
    negatives / positives per label on the training part, clipped to
    [1/50, 50]. AdamW optimises ``layer4`` and the head
    (``fine_tune="layer4"``; every other layer is frozen and stays in eval
    mode) or every layer (``fine_tune="all"``).

    Parameters
    ----------
    images : array (n, S, S)
        Preprocessed images in [-1, 1] at the training size.
    Y : array (n, L)
        0/1 labels.
    weights : None, str, path or mapping
        Start weights, see :func:`load_resnet18_weights`; None is a random
        initialisation seeded by ``random_state``.
    fine_tune : {"layer4", "all"}
    epochs, lr, batch_size : int, float, int
    patience : int
        Epochs without a lower validation loss before training stops.
    augment : bool or dict
        True for :data:`DEFAULT_AUGMENT` (rotation ±7°, shift ±6 %,
        brightness and contrast ±10 %, no flip), a dict to change some of them,
        False for none.
    random_state : int, RandomState or None
    device : str or torch.device
    verbose : int
        >0 shows a tqdm bar per epoch.

    Returns
    -------
    state_dict : dict of CPU tensors
        The state dict of :class:`ResNet18Classifier` (``backbone.*``, ``head.*``).
    history : list of dict
        Per epoch: ``epoch``, ``train_loss`` (mean over the epoch's batches,
        augmented), ``valid_loss``, ``seconds``, ``best`` (True for the
        returned epoch).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> images = rng.uniform(-1, 1, (12, 32, 32)).astype(np.float32)
    >>> Y = rng.integers(0, 2, (12, 3))
    >>> state, history = fine_tune_resnet(images, Y, epochs=1, batch_size=8, random_state=0)
    >>> tuple(state["head.weight"].shape), len(history)
    ((3, 512), 1)
    """
    images = check_image_stack(images, name="images")
    Y = check_multilabel_Y(Y, len(images)).astype(np.float32)
    if fine_tune not in ("layer4", "all"):
        raise ValueError(f"fine_tune must be 'layer4' or 'all', got {fine_tune!r}.")
    if len(images) < 4:
        raise ValueError(f"Fine-tuning needs at least 4 images (training and validation); got {len(images)}.")
    aug = _augment_params(augment)
    device = resolve_device(device)
    rng = check_random_state(random_state)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_seed(rng))
        net = ResNet18Classifier(Y.shape[1])
    start = load_resnet18_weights(weights)
    if start is not None:
        net.backbone.load_state_dict(start)
    gen = torch.Generator().manual_seed(_seed(rng))

    order = rng.permutation(len(images))
    n_valid = max(1, round(VALID_FRACTION * len(images)))
    valid, train = np.sort(order[:n_valid]), order[n_valid:]
    pos = Y[train].sum(0)
    pos_weight = np.clip((len(train) - pos) / np.maximum(pos, 1), *POS_WEIGHT_RANGE)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.as_tensor(pos_weight, dtype=torch.float32, device=device))

    for name, param in net.named_parameters():
        frozen = fine_tune == "layer4" and name.startswith("backbone.") and not name.startswith("backbone.layer4.")
        param.requires_grad_(not frozen)
    net.to(device)
    if device.type == "cpu":
        net.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=lr)

    history, best_loss, best_state, best_epoch = [], math.inf, None, 0
    images_valid, Y_valid = images[valid], Y[valid]
    for epoch in range(1, epochs + 1):
        tic = time.perf_counter()
        _set_mode(net, fine_tune)
        perm = rng.permutation(train)
        batches = np.array_split(perm, math.ceil(len(perm) / batch_size))  # balanced: no batch of 1
        total = 0.0
        for idx in tqdm(batches, desc=f"fine-tune epoch {epoch}/{epochs}", disable=not verbose):
            x = torch.from_numpy(images[idx]).unsqueeze(1)
            if aug is not None:
                x = _augment(x, gen, **aug)
            y = torch.from_numpy(Y[idx]).to(device)
            loss = loss_fn(net(_to_device(x, device)), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        valid_loss = _mean_loss(net, images_valid, Y_valid, loss_fn, batch_size, device)
        history.append(
            {
                "epoch": epoch,
                "train_loss": total / len(train),
                "valid_loss": valid_loss,
                "seconds": time.perf_counter() - tic,
                "best": False,
            }
        )
        if valid_loss < best_loss:
            best_loss, best_epoch = valid_loss, epoch
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}
        elif epoch - best_epoch >= patience:
            break
    if best_state is None:
        raise RuntimeError(f"Fine-tuning diverged (validation loss {valid_loss}); lower lr (now {lr}).")
    history[best_epoch - 1]["best"] = True
    best_state = {k: v.contiguous() for k, v in best_state.items()}
    return best_state, history


def cached_fine_tune_resnet(memory, images, Y, *, weights=None, **params):
    """:func:`fine_tune_resnet` through ``sklearn.utils.validation.check_memory(memory)``.

    The cache key is (images, Y, weights, parameters) without ``device`` and
    ``verbose``. Weights given as a file or a state dict enter the key by
    content (as numpy arrays), so editing the file retrains; a torchvision
    name enters by name. Every estimator that needs this network calls this
    function, so they share the cached result.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> images = rng.uniform(-1, 1, (12, 32, 32)).astype(np.float32)
    >>> Y = rng.integers(0, 2, (12, 2))
    >>> state, history = cached_fine_tune_resnet(None, images, Y, epochs=1, random_state=0)
    >>> len(history)
    1
    """
    if weights is not None and not _is_weights_name(weights):
        weights = _numpy_state(load_resnet18_weights(weights))
    fit = check_memory(memory).cache(fine_tune_resnet, ignore=["device", "verbose"])
    return fit(images, Y, weights=weights, **params)


# --------------------------------------------------------------------------- estimator
def _has_head(est) -> bool:
    if est.fine_tune is None:
        raise AttributeError(
            "predict_proba needs a classification head: ResNetEmbedder(fine_tune=None) has none. "
            "Use fine_tune='layer4' or 'all' and fit with Y."
        )
    return True


class ResNetEmbedder(TransformerMixin, BaseEstimator):
    """512-d ResNet18 features of chest X-rays, optionally fine-tuned on the labels.

    A torchvision ResNet18 with a 1-channel first convolution (3-channel
    weights are converted by summing the RGB kernels; see the module docstring
    for the input scaling). ``transform`` returns the global-average-pooled
    ``layer4`` output, computed in batches under ``torch.inference_mode`` with
    BatchNorm folded into the convolutions and, on CPU, channels_last.

    Parameters
    ----------
    weights : None, str or path, default=None
        None: random initialisation seeded by ``random_state``; a torchvision
        weights name such as ``"IMAGENET1K_V1"`` (needs internet or torch's
        download cache); or a local state-dict file (3-channel torchvision
        ResNet18 or 1-channel skcxr, with or without ``fc``; a file written by
        :meth:`save` also works), read with ``torch.load(weights_only=True)``.
    fine_tune : {None, "layer4", "all"}, default=None
        None: ``fit`` only builds the network (no ``Y`` needed). ``"layer4"``:
        train ``layer4`` and a new linear head, other layers frozen in eval
        mode. ``"all"``: train every layer (the route to take without
        pretrained weights). See :func:`fine_tune_resnet` for the loss, the
        15 % patient-agnostic validation split (pass data of training patients
        only) and early stopping with best-epoch restore.
    epochs : int, default=5
    lr : float, default=1e-4
        AdamW learning rate.
    batch_size : int, default=32
        For training and inference.
    augment : bool or dict, default=True
        Training augmentation: rotation ±7°, shift ±6 %, brightness/contrast
        ±10 %, no horizontal flip (anatomy is lateralised); a dict overrides
        some of :data:`DEFAULT_AUGMENT` (e.g. ``{"hflip": True}``).
    patience : int, default=3
        Early stopping: epochs without a lower validation loss before training
        stops (the best epoch is restored).
    image_size : int, default=224
        Side the network sees. Preprocessed stacks of another size are resized
        (antialiased bilinear); paths are preprocessed with
        ``CXRPreprocessor(size=image_size)``, one batch at a time.
    device : str or torch.device, default="auto"
        "auto" is CUDA when available.
    memory : None, str or joblib.Memory, default=None
        Caches fine-tuning (shared with other estimators, see
        :func:`cached_fine_tune_resnet`) and embeddings (keyed on the weights
        and X; paths are keyed by name, not file content).
    random_state : int, RandomState or None, default=None
    verbose : int, default=0
        >0 shows tqdm progress bars.

    Attributes
    ----------
    model_ : torch.nn.Module
        The backbone (outputs 512 features).
    head_ : torch.nn.Linear or None
        The multi-label head when fine-tuned.
    history_ : list of dict
        Per-epoch losses of the fine-tuning (empty without it).
    n_features_out_ : int
        512.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.zeros((3, 64, 64), dtype=np.float32)
    >>> emb = ResNetEmbedder(image_size=64, random_state=0).fit(X)
    >>> emb.transform(X).shape
    (3, 512)
    >>> emb.get_feature_names_out()[:2]
    array(['resnet_0', 'resnet_1'], dtype=object)
    """

    def __init__(
        self,
        weights=None,
        fine_tune=None,
        epochs=5,
        lr=1e-4,
        batch_size=32,
        augment=True,
        patience=3,
        image_size=224,
        device="auto",
        memory=None,
        random_state=None,
        verbose=0,
    ):
        self.weights = weights
        self.fine_tune = fine_tune
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.augment = augment
        self.patience = patience
        self.image_size = image_size
        self.device = device
        self.memory = memory
        self.random_state = random_state
        self.verbose = verbose

    def _check_params(self) -> None:
        if self.fine_tune not in (None, "layer4", "all"):
            raise ValueError(f"fine_tune must be None, 'layer4' or 'all', got {self.fine_tune!r}.")
        for name, low in (("epochs", 1), ("batch_size", 1), ("patience", 1), ("image_size", 16)):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}.")
        _augment_params(self.augment)

    def fit(self, X, Y=None):
        """Build the network and, with ``fine_tune``, train it on (X, Y).

        Parameters
        ----------
        X : 1-D array of image paths, or float array (n, S, S)
            Paths, or images preprocessed by ``CXRPreprocessor`` (in [-1, 1]).
        Y : array (n, L) of 0/1, optional
            Needed only when ``fine_tune`` is set.

        Returns
        -------
        self
        """
        self._check_params()
        if self.fine_tune is None:
            if not is_path_array(X):
                check_image_stack(X)
            self.model_ = _build_backbone(load_resnet18_weights(self.weights), _seed(self.random_state)).eval()
            self.head_ = None
            self.history_ = []
        else:
            if Y is None:
                raise ValueError(f"ResNetEmbedder(fine_tune={self.fine_tune!r}) needs Y to fit; got Y=None.")
            images = _load_images(X, self.image_size)
            Y = check_multilabel_Y(Y, len(images))
            state, history = cached_fine_tune_resnet(
                self.memory,
                images,
                Y,
                weights=self.weights,
                fine_tune=self.fine_tune,
                epochs=self.epochs,
                lr=self.lr,
                batch_size=self.batch_size,
                augment=self.augment,
                patience=self.patience,
                random_state=self.random_state,
                device=self.device,
                verbose=self.verbose,
            )
            net = ResNet18Classifier(Y.shape[1])
            net.load_state_dict(state)
            self.model_, self.head_ = net.backbone.eval(), net.head.eval()
            self.history_ = history
        self.n_features_out_ = N_FEATURES
        return self

    def transform(self, X):
        """512-d embeddings, float32 (n, 512).

        Parameters
        ----------
        X : 1-D array of image paths, or float array (n, S, S)

        Returns
        -------
        ndarray of shape (n, 512)
        """
        check_is_fitted(self, "model_")
        if self.memory is None:
            net = _fused_for_inference(self.model_)
            return _forward(
                net, X, image_size=self.image_size, batch_size=self.batch_size, device=self.device,
                verbose=self.verbose, desc="ResNet18",
            )  # fmt: skip
        state = _numpy_state(self.model_.state_dict())
        embed = check_memory(self.memory).cache(embed_resnet, ignore=["batch_size", "device", "verbose"])
        return embed(
            X, state, image_size=self.image_size, batch_size=self.batch_size, device=self.device, verbose=self.verbose
        )

    @available_if(_has_head)
    def predict_proba(self, X):
        """Probabilities of the fine-tuned network's own head, float32 (n, L).

        Only with ``fine_tune`` set: it is the end-to-end fine-tuned ResNet18.
        """
        check_is_fitted(self, "head_")
        if self.head_ is None:
            raise NotFittedError("This ResNetEmbedder was fitted with fine_tune=None and has no head; refit it.")
        net = nn.Sequential(_fused_for_inference(self.model_), copy.deepcopy(self.head_), nn.Sigmoid())
        return _forward(
            net, X, image_size=self.image_size, batch_size=self.batch_size, device=self.device,
            verbose=self.verbose, desc="ResNet18 head",
        )  # fmt: skip

    def get_feature_names_out(self, input_features=None):
        """``resnet_0`` ... ``resnet_511``."""
        check_is_fitted(self, "n_features_out_")
        return np.asarray([f"resnet_{i}" for i in range(self.n_features_out_)], dtype=object)

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> None:
        """Write the fitted network and the parameters to ``path`` (loadable with ``weights_only=True``).

        Examples
        --------
        >>> import numpy as np, tempfile, os
        >>> X = np.zeros((2, 32, 32), dtype=np.float32)
        >>> emb = ResNetEmbedder(image_size=32, random_state=0).fit(X)
        >>> path = os.path.join(tempfile.mkdtemp(), "emb.pt")
        >>> emb.save(path)
        >>> np.allclose(ResNetEmbedder.load(path).transform(X), emb.transform(X))
        True
        """
        check_is_fitted(self, "model_")
        params = self.get_params()
        params["weights"] = os.fspath(params["weights"]) if isinstance(params["weights"], (str, os.PathLike)) else None
        params["memory"] = params["memory"] if isinstance(params["memory"], str) else None
        params["random_state"] = params["random_state"] if isinstance(params["random_state"], int) else None
        params["device"] = str(params["device"])
        params["augment"] = _augment_params(params["augment"]) or False
        torch.save(
            {
                "format": _FORMAT,
                "params": params,
                "backbone": _cpu_state(self.model_),
                "head": None if self.head_ is None else _cpu_state(self.head_),
                "history": self.history_,
            },
            path,
        )

    @classmethod
    def load(cls, path, **params) -> ResNetEmbedder:
        """Read an embedder written by :meth:`save`; ``params`` override saved parameters (e.g. ``device``)."""
        data = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(data, Mapping) or data.get("format") != _FORMAT:
            raise ValueError(f"{os.fspath(path)!r} is not a file written by ResNetEmbedder.save.")
        est = cls(**{**data["params"], **params})
        est.model_ = _build_backbone(data["backbone"], 0).eval()
        est.head_ = None
        if data["head"] is not None:
            est.head_ = nn.Linear(N_FEATURES, data["head"]["weight"].shape[0])
            est.head_.load_state_dict(data["head"])
            est.head_.eval()
        est.history_ = list(data["history"])
        est.n_features_out_ = N_FEATURES
        return est

    def __getstate__(self):
        state = super().__getstate__()
        for key in ("model_", "head_"):  # pickles load on machines without the GPU
            module = state.get(key)
            if module is not None and any(p.device.type != "cpu" for p in module.parameters()):
                state[key] = copy.deepcopy(module).cpu()
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.input_tags.string = True
        tags.target_tags.required = False
        return tags
