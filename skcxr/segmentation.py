"""Lung segmentation: :class:`UNetSegmenter`, a U-Net as a scikit-learn transformer, and the shipped lung U-Net.

The U-Net (:class:`skcxr.nn.UNet`) trains through skcxr's skorch stack
(:class:`skcxr.neural.SegmentationNet`) on chest X-rays with lung masks, e.g.
the Montgomery and Shenzhen sets (:func:`skcxr.datasets.load_lung_masks`).
Fitted, it maps preprocessed radiographs to lung probability maps. In a disease
pipeline it is a *prefit* step: wrapped in :class:`sklearn.frozen.FrozenEstimator`
(or given as a weights file), so ``pipe.fit(X, Y)`` never retrains it on disease
labels. :func:`load_lung_unet` loads the U-Net that ships with skcxr, trained by
``studies/lung_unet.py`` (its Dice and data are in ``skcxr/weights/lung_unet.json``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.utils._param_validation import Interval, validate_parameter_constraints
from sklearn.utils.validation import check_is_fitted

from .cache import check_memory
from ._torch import TorchEstimatorMixin, forward, inference_batch_size, load_images
from ._validation import image_stack_tags, is_path_array
from .datasets.lungs import read_mask
from .neural import SegmentationNet, fit_state, numpy_state
from .nn import UNet, augment_params
from .nn.resnet import float32_tensor

__all__ = ["LUNG_UNET", "UNetSegmenter", "frozen_segmenter", "load_lung_unet", "segment", "train_unet"]

#: The lung U-Net shipped with skcxr (fp16 weights) and its record (Dice, data, command) beside it.
LUNG_UNET = Path(__file__).resolve().parent / "weights" / "lung_unet.pt"
_FORMAT = "skcxr.UNetSegmenter/1"
#: Training batch of ``batch_size=None`` (and the CPU's inference batch).
_TRAIN_BATCH = 16


class _ProbabilityMaps(torch.nn.Module):
    """Sigmoid of the U-Net's logits, resized to ``size`` (the side of the images given to ``transform``)."""

    def __init__(self, unet, size: tuple[int, int]):
        super().__init__()
        self.unet, self.size = unet, tuple(size)

    def forward(self, x):
        logits = self.unet(x)
        with torch.autocast(logits.device.type, enabled=False):  # float32 from here, also under bf16 autocast
            p = torch.sigmoid(logits.float())
            if tuple(p.shape[-2:]) != self.size:
                p = F.interpolate(p, size=self.size, mode="bilinear", align_corners=False)
        return p[:, 0]


def _unet(depth: int, base_width: int, state: Mapping) -> UNet:
    """A :class:`UNet` holding ``state`` (float32), built without a random initialisation (torch's RNG untouched)."""
    with torch.device("meta"):
        unet = UNet(depth, base_width)
    unet.load_state_dict({k: float32_tensor(v) for k, v in state.items()}, assign=True)
    return unet.eval()


def segment(X, state: Mapping, *, depth, base_width, image_size, batch_size=None, device="auto", precision="fp32",
            n_jobs=None, verbose=0):
    """Lung probability maps of X with the U-Net weights ``state``: float32 (n, S, S) in [0, 1].

    The cacheable form of :meth:`UNetSegmenter.transform` (weights as numpy
    arrays, hashed by content). The network sees ``image_size``; the maps come
    back at the side of a preprocessed stack, or at ``image_size`` for paths.
    ``precision`` is resolved, ``"fp32"`` or ``"bf16"`` (the U-Net under
    ``torch.autocast`` to bfloat16; sigmoid and resizing in float32), so the
    cache key holds the arithmetic used.

    Examples
    --------
    >>> import numpy as np
    >>> from skcxr.nn import UNet
    >>> state = {k: v.numpy() for k, v in UNet(2, 4).state_dict().items()}
    >>> segment(np.zeros((2, 40, 40), np.float32), state, depth=2, base_width=4, image_size=32).shape
    (2, 40, 40)
    """
    size = (image_size, image_size) if is_path_array(X) else np.shape(X)[1:]
    net = _ProbabilityMaps(_unet(depth, base_width, state), size)
    return forward(net, X, image_size=image_size, batch_size=batch_size, device=device, precision=precision,
                   n_jobs=n_jobs, verbose=verbose, desc="U-Net")


def train_unet(images, masks, *, groups=None, depth=4, base_width=16, epochs=60, lr=1e-3, batch_size=16,
               augment=True, patience=10, random_state=None, device="auto", precision="fp32", verbose=0,
               net_params=None):
    """Train a U-Net on (images, masks) through :class:`skcxr.neural.SegmentationNet`.

    Returns ``(state_dict, history)``: the best epoch's weights as CPU tensors
    and the per-epoch losses (see :func:`skcxr.neural.fine_tune_cnn`, also
    for ``precision``).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).uniform(-1, 1, (8, 32, 32)).astype(np.float32)
    >>> state, history = train_unet(X, X > 0, depth=2, base_width=4, epochs=2, random_state=0)
    >>> len(history)
    2
    """
    net = SegmentationNet(
        module__depth=depth, module__base_width=base_width, augment=augment, lr=lr, max_epochs=epochs,
        batch_size=batch_size, patience=patience, random_state=random_state, device=device, precision=precision,
        verbose=verbose, **(net_params or {}),
    )  # fmt: skip
    return fit_state(net, images, masks, groups)


def _resized_masks(masks, size: int) -> np.ndarray:
    """Masks (n, H, W) (arrays, or mask file paths) as float32 (n, size, size) in [0, 1] (area-averaged)."""
    if is_path_array(masks):  # files may differ in size: each is read and resized on its own
        return np.concatenate([_resized_masks(read_mask(p)[None], size) for p in masks])
    masks = np.asarray(masks, dtype=np.float32)
    if masks.ndim != 3:
        raise ValueError(f"masks must be (n, H, W) arrays or mask file paths; got shape {masks.shape}.")
    if masks.shape[1:] == (size, size):
        return masks
    t = F.interpolate(torch.from_numpy(masks)[:, None], size=(size, size), mode="area")
    return t[:, 0].numpy()


class UNetSegmenter(TorchEstimatorMixin, TransformerMixin, BaseEstimator):
    """A U-Net lung segmenter as a scikit-learn transformer: radiographs -> lung probability maps.

    ``fit(images, masks)`` trains :class:`skcxr.nn.UNet` at ``image_size``
    through :class:`skcxr.neural.SegmentationNet`: BCE + Dice loss, AdamW,
    augmentation that moves image and mask together (rotation ±7°, shift
    ±6 %, brightness/contrast ±10 %, no left-right flip unless asked), early
    stopping on a 15 % validation part of whole patients (``groups``; each
    image its own patient without it) with the best epoch restored.

    ``transform`` returns lung probability maps in [0, 1] at the side of the
    preprocessed stack it gets (the network sees ``image_size``; its output
    is resized back), ``predict`` the binary masks (``>= threshold``), and
    ``score`` the mean Dice against true masks.

    Parameters
    ----------
    depth : int, default=4
        Down-sampling levels of the U-Net.
    base_width : int, default=16
        Channels of the first level (doubling per level).
    image_size : int, default=128
        Side the network trains and predicts at.
    epochs : int, default=50
        Most training epochs (early stopping may end sooner).
    lr : float, default=1e-3
    batch_size : int or None, default=None
        Images per batch. None: 16 in training; in inference 16 on the CPU
        and more on CUDA (:func:`skcxr._torch.inference_batch_size`).
    augment : bool or dict, default=True
        See :func:`skcxr.nn.augment_params`.
    patience : int, default=10
        Epochs without a lower validation loss before training stops.
    threshold : float, default=0.5
        ``predict``'s cut on the probability.
    net_params : dict or None, default=None
        Further :class:`skcxr.neural.SegmentationNet` parameters
        (``{"lr_scheduler": "cosine"}``, callbacks, ...).
    device : str, default="auto"
    precision : {"auto", "fp32", "bf16"}, default="auto"
        Arithmetic of ``transform``/``predict``/``score``: ``"bf16"`` runs
        the U-Net under ``torch.autocast`` to bfloat16 (sigmoid and resizing
        in float32), ``"fp32"`` in float32; ``"auto"`` is bf16 on a CUDA GPU
        that supports it and on a CPU with bf16 units (``avx512_bf16`` or
        ``amx_bf16``, detected), fp32 elsewhere. Maps are float32 either
        way; bf16 and fp32 maps differ slightly (``studies/precision.py``
        measures by how much). Results are bit-for-bit repeatable for one
        precision on one device; the resolved precision is part of the cache
        key. Training runs with AMP (bf16 autocast) on CUDA under "auto"
        or "bf16", and in fp32 on the CPU unless "bf16" is asked for
        (:func:`skcxr._torch.resolve_precision`, ``mode="train"``).
    n_jobs : int or None, default=None
        Worker processes that read and preprocess image paths: torch
        DataLoader workers in ``transform`` (decoding the next batches while
        the network runs), joblib workers when ``fit`` reads them. None:
        none on the CPU, one per core on CUDA; -1: every core. Results do not
        depend on it.
    memory : None, str or joblib.Memory, default=None
        Caches training and the maps, keyed on content (images, masks,
        weights), the resolved precision (maps) and skcxr's code version;
        unseeded training is never cached.
    random_state : int, RandomState or None, default=None
    verbose : int, default=0
        >0 shows progress bars (images/s; epochs with their losses); 2
        prints the per-epoch table instead of the epoch bar.

    Attributes
    ----------
    model_ : skcxr.nn.UNet
        The trained network (eval mode, CPU).
    history_ : list of dict
        Per-epoch ``train_loss``, ``valid_loss``, ``seconds``, ``best``.
    record_ : dict
        Only after :meth:`load`: the description saved with the weights.

    Examples
    --------
    >>> from skcxr.datasets import make_phantoms
    >>> from skcxr.preprocessing import CXRPreprocessor
    >>> data = make_phantoms(16, size=64, random_state=0)
    >>> X = CXRPreprocessor(size=64).fit_transform(data.images)
    >>> seg = UNetSegmenter(depth=2, base_width=4, image_size=64, epochs=2, random_state=0)
    >>> seg.fit(X, data.lung_masks).transform(X).shape
    (16, 64, 64)
    >>> 0 <= seg.score(X, data.lung_masks) <= 1
    True
    """

    __metadata_request__fit = {"groups": True}

    def __init__(
        self,
        depth=4,
        base_width=16,
        image_size=128,
        epochs=50,
        lr=1e-3,
        batch_size=None,
        augment=True,
        patience=10,
        threshold=0.5,
        net_params=None,
        device="auto",
        precision="auto",
        n_jobs=None,
        memory=None,
        random_state=None,
        verbose=0,
    ):
        self.depth = depth
        self.base_width = base_width
        self.image_size = image_size
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.augment = augment
        self.patience = patience
        self.threshold = threshold
        self.net_params = net_params
        self.device = device
        self.precision = precision
        self.n_jobs = n_jobs
        self.memory = memory
        self.random_state = random_state
        self.verbose = verbose

    _parameter_constraints = {
        **TorchEstimatorMixin._run_constraints,
        "depth": [Interval(Integral, 1, 7, closed="both")],
        "base_width": [Interval(Integral, 1, None, closed="left")],
        "image_size": [Interval(Integral, 16, None, closed="left")],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "augment": ["boolean", dict],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "threshold": [Interval(Real, 0, 1, closed="neither")],
        "net_params": [None, dict],
        "random_state": ["random_state"],
    }

    def fit(self, X, y, groups=None):
        """Train on images ``X`` and lung masks ``y``.

        Parameters
        ----------
        X : 1-D array of image paths, or float array (n, S, S) preprocessed by ``CXRPreprocessor``
        y : array (n, H, W) of bool/0-1 masks, or 1-D array of mask file paths
            Resized (area-averaged) to ``image_size``.
        groups : array (n,), optional
            Patient ids: the validation part takes whole patients.

        Returns
        -------
        self
        """
        validate_parameter_constraints(self._parameter_constraints, self.get_params(deep=False), type(self).__name__)
        augment_params(self.augment)
        images = load_images(X, self.image_size, n_jobs=self.n_jobs)
        masks = _resized_masks(y, self.image_size)
        if len(masks) != len(images):
            raise ValueError(f"{len(images)} images but {len(masks)} masks.")
        train = check_memory(self.memory).cache(train_unet, ignore=["device", "verbose"])
        state, self.history_ = train(
            images, masks, groups=groups, depth=self.depth, base_width=self.base_width, epochs=self.epochs,
            lr=self.lr, batch_size=self.batch_size or _TRAIN_BATCH, augment=self.augment, patience=self.patience,
            random_state=self.random_state, device=self.device,
            precision=self._resolved_precision("train"), verbose=self.verbose,
            net_params=self.net_params,
        )  # fmt: skip
        self.model_ = _unet(self.depth, self.base_width, state)
        return self

    def transform(self, X):
        """Lung probability maps, float32 (n, S, S) in [0, 1] (S: the stack's side, or ``image_size`` for paths)."""
        check_is_fitted(self, "model_")
        run = check_memory(self.memory).cache(segment, ignore=["batch_size", "n_jobs", "device", "verbose"])
        batch_size = inference_batch_size(self.batch_size, self.device, self.image_size, cpu=_TRAIN_BATCH)
        return run(X, numpy_state(self.model_.state_dict()), depth=self.depth, base_width=self.base_width,
                   image_size=self.image_size, batch_size=batch_size, device=self.device,
                   precision=self._resolved_precision(), n_jobs=self.n_jobs, verbose=self.verbose)

    def predict(self, X):
        """Binary lung masks, bool (n, S, S): probability ``>= threshold``."""
        return self.transform(X) >= self.threshold

    def score(self, X, y):
        """Mean Dice of :meth:`predict` against the masks ``y`` (resized to the maps' side, cut at 0.5).

        An image where both masks are empty counts as Dice 1.
        """
        pred = self.predict(X)
        true = _resized_masks(y, pred.shape[-1]) >= 0.5
        inter = (pred & true).sum((1, 2))
        total = pred.sum((1, 2)) + true.sum((1, 2))
        return float(np.mean(np.where(total > 0, 2 * inter / np.maximum(total, 1), 1.0)))

    # ------------------------------------------------------------------ persistence
    def save(self, path, *, half: bool = False, record: Mapping | None = None) -> None:
        """Write the fitted U-Net and its parameters to ``path`` (a ``torch.load(weights_only=True)`` file).

        ``half=True`` stores the weights as float16 (half the size; maps agree
        to about 1e-3). ``record`` is any JSON-able description kept in the file.
        """
        check_is_fitted(self, "model_")
        params = {k: self.get_params()[k] for k in ("depth", "base_width", "image_size", "threshold")}
        dtype = torch.float16 if half else torch.float32
        state = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in self.model_.state_dict().items()}
        torch.save({"format": _FORMAT, "params": params, "state": state, "history": self.history_,
                    "record": json.dumps(dict(record or {}))}, path)

    @classmethod
    def load(cls, path, **params) -> UNetSegmenter:
        """Read a U-Net written by :meth:`save`; ``params`` set other parameters (``device``, ``memory``, ...)."""
        data = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(data, Mapping) or data.get("format") != _FORMAT:
            raise ValueError(f"{os.fspath(path)!r} is not a file written by UNetSegmenter.save.")
        est = cls(**{**data["params"], **params})
        est.model_ = _unet(est.depth, est.base_width, data["state"])
        est.history_ = list(data["history"])
        est.record_ = json.loads(data["record"])
        return est

    def __sklearn_tags__(self):
        return image_stack_tags(super().__sklearn_tags__(), paths=True, target_required=True)


def load_lung_unet(**params) -> UNetSegmenter:
    """The lung U-Net that ships with skcxr, fitted (see ``skcxr/weights/lung_unet.json`` for its Dice and data).

    Examples
    --------
    >>> import numpy as np
    >>> seg = load_lung_unet()
    >>> seg.transform(np.zeros((1, 64, 64), np.float32)).shape
    (1, 64, 64)
    """
    return UNetSegmenter.load(LUNG_UNET, **params)


def frozen_segmenter(segmenter, owner: str = "This step") -> FrozenEstimator:
    """A segmenter parameter as a fitted :class:`~sklearn.frozen.FrozenEstimator` that ``fit`` never retrains.

    ``None`` is the shipped lung U-Net (:func:`load_lung_unet`), a path a file
    written by :meth:`UNetSegmenter.save`, an estimator is wrapped (it must be
    fitted), a ``FrozenEstimator`` is kept.

    Examples
    --------
    >>> type(frozen_segmenter(None)).__name__
    'FrozenEstimator'
    """
    if segmenter is None:
        segmenter = load_lung_unet()
    elif isinstance(segmenter, (str, os.PathLike)):
        segmenter = UNetSegmenter.load(segmenter)
    if not isinstance(segmenter, FrozenEstimator):
        segmenter = FrozenEstimator(segmenter)
    try:
        check_is_fitted(segmenter)
    except NotFittedError:
        raise NotFittedError(
            f"{owner}: the segmenter {type(segmenter.estimator).__name__} is not fitted; fit a "
            "UNetSegmenter on lung masks first, or pass a weights file. A pipeline that is cloned "
            "(GridSearchCV, cross_validate, holdout_report) needs FrozenEstimator(segmenter) or a weights "
            "path: clone() of a raw fitted segmenter drops its fit."
        ) from None
    return segmenter
