"""The functional trainers: fit_state, fine_tune_cnn and its cached form, and the state-dict cache key."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from .._validation import check_image_stack
from ..cache import check_memory
from ..nn.backbones import OFFLINE_IMAGENET, build_cnn
from ..nn.resnet import is_weights_name
from ._image_nets import CNNFineTuner


def fit_state(net, X, y, groups=None) -> tuple[dict, list[dict]]:
    """Fit a skorch ``net`` and return ``(state_dict of CPU tensors, per-epoch history)`` (see :func:`_history`)."""
    net.fit(X, y, groups=groups)
    state = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in net.module_.state_dict().items()}
    return state, _history(net)


def _history(net) -> list[dict]:
    """Per-epoch ``epoch``, ``train_loss``, ``valid_loss``, ``seconds`` and ``best`` (the restored epoch)."""
    rows = [
        {"epoch": int(h["epoch"]), "train_loss": float(h["train_loss"]),
         "valid_loss": float(h.get("valid_loss", np.nan)), "seconds": float(h["dur"]), "best": False}
        for h in net.history
    ]  # fmt: skip
    if rows and all(np.isfinite(r["valid_loss"]) for r in rows):
        rows[int(np.argmin([r["valid_loss"] for r in rows]))]["best"] = True
    return rows


def fine_tune_cnn(
    images,
    Y,
    *,
    groups=None,
    backbone="resnet18",
    weights=None,
    fine_tune="all",
    epochs=5,
    lr=1e-4,
    batch_size=32,
    augment=True,
    patience=3,
    random_state=None,
    device="auto",
    precision="fp32",
    verbose=0,
    net_params=None,
):
    """Fine-tune a 1-channel CNN with a new linear multi-label head, through :class:`CNNFineTuner`.

    15 % of the images (whole patients when ``groups`` is given) are held out;
    training stops after ``patience`` epochs without a lower validation loss
    and the best epoch's weights are returned. The loss is
    ``BCEWithLogitsLoss`` with the balanced ``pos_weight``. AdamW optimises
    the backbone's last stage and the head (``fine_tune="last"`` or, for
    ResNet, ``"layer4"``; every other layer frozen and kept in eval mode) or
    every layer (``fine_tune="all"``).

    Parameters
    ----------
    images : array (n, S, S)
        Preprocessed images in [-1, 1] at the training size.
    Y : array (n, L)
        0/1 labels.
    groups : array (n,), optional
        Patient ids: the validation part takes whole patients.
    backbone : str or torch.nn.Module, default="resnet18"
        See :func:`skcxr.nn.backbones.build_cnn`.
    weights : None, "imagenet", str, path or mapping
        Start weights, see :func:`skcxr.nn.backbones.build_cnn`; None is a
        random initialisation seeded by ``random_state``.
    fine_tune : {"last", "layer4", "all"}
    epochs, lr, batch_size, patience : int, float, int, int
    augment : bool or dict
        See :func:`skcxr.nn.augment_params`.
    random_state : int, RandomState or None
    device : str or torch.device
    precision : {"fp32", "bf16", "auto"}, default="fp32"
        ``"bf16"`` trains with AMP (bf16 autocast), see :class:`BaseNet`.
        Estimators pass it resolved (:func:`skcxr._torch.resolve_precision`
        with ``mode="train"``), so the cache key holds the arithmetic used.
    verbose : int
        1: a progress bar over the epochs with the losses; 2: skorch's per-epoch table.
    net_params : dict, optional
        Further :class:`CNNFineTuner` parameters, e.g. ``{"lr_scheduler": "cosine"}`` or
        ``{"callbacks": [("checkpoint", skorch.callbacks.Checkpoint(dirname="ckpt"))]}``.

    Returns
    -------
    state_dict : dict of CPU tensors
        The state dict of :class:`skcxr.nn.resnet.CNNClassifier` (``backbone.*``, ``head.*``).
    history : list of dict
        Per epoch: ``epoch``, ``train_loss`` (augmented batches), ``valid_loss``,
        ``seconds``, ``best`` (True for the returned epoch).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> images = rng.uniform(-1, 1, (12, 32, 32)).astype(np.float32)
    >>> Y = rng.integers(0, 2, (12, 3))
    >>> state, history = fine_tune_cnn(images, Y, epochs=1, batch_size=8, random_state=0)
    >>> tuple(state["head.weight"].shape), len(history)
    ((3, 512), 1)
    """
    images = check_image_stack(images, name="images")
    if len(images) < 4:
        raise ValueError(f"Fine-tuning needs at least 4 images (training and validation); got {len(images)}.")
    net = CNNFineTuner(
        module__backbone=backbone, module__weights=weights, module__fine_tune=fine_tune, augment=augment, lr=lr, max_epochs=epochs,
        batch_size=batch_size, patience=patience, random_state=random_state, device=device, precision=precision,
        verbose=verbose, **(net_params or {}),
    )  # fmt: skip
    return fit_state(net, images, Y, groups)


# The cache names a function by module and name (in its keys and in ContentMemory.stats): the public path.
fine_tune_cnn.__module__ = "skcxr.neural"


class _NumpyState(dict):
    """A state dict of numpy arrays: ``joblib.hash`` hashes it by content; its repr (cache metadata) is short."""

    def __repr__(self):
        return f"<state dict, {len(self)} arrays>"


def numpy_state(state: Mapping) -> _NumpyState:
    """A torch state dict as numpy arrays (hashable by content for cache keys)."""
    return _NumpyState({k: torch.as_tensor(v).detach().cpu().numpy() for k, v in state.items()})


def cached_fine_tune_cnn(memory, images, Y, *, backbone="resnet18", weights=None, **params):
    """:func:`fine_tune_cnn` through skcxr's content-keyed cache in ``memory``.

    The cache key is (images, Y, groups, backbone, weights, parameters,
    skcxr's code version) without ``device`` and ``verbose``. Weights given as
    a file or a state dict enter the key by content, so editing the file
    retrains; a torchvision name and ``"imagenet"`` (weights fixed by the
    installed package's version, part of the code version) enter by name; a
    backbone module enters by its tensors' content. An unseeded call (``random_state=None``)
    is never served from the cache. Every estimator that needs this network
    calls this function, so they share the cached result.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> images = rng.uniform(-1, 1, (12, 32, 32)).astype(np.float32)
    >>> Y = rng.integers(0, 2, (12, 2))
    >>> state, history = cached_fine_tune_cnn(None, images, Y, epochs=1, random_state=0)
    >>> len(history)
    1
    """
    by_name = is_weights_name(weights) or (weights == "imagenet" and backbone in OFFLINE_IMAGENET)
    if weights is not None and not by_name:  # a file or a mapping: by content, in the backbone's own names
        weights = numpy_state(build_cnn(backbone, weights).state_dict())
    fit = check_memory(memory).cache(fine_tune_cnn, ignore=["device", "verbose"])
    return fit(images, Y, backbone=backbone, weights=weights, **params)
