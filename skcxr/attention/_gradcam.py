"""Grad-CAM maps of a fine-tuned CNN (any backbone of :mod:`skcxr.nn.backbones`): the transformer :class:`GradCAM`.

Every skcxr CNN classifier is a backbone whose last post-activation feature
map (ResNet's ``layer4``, EfficientNet-Lite's ``bn2`` with its ReLU6,
DenseNet's features and their ReLU) is mean-pooled and fed to a linear head,
so Grad-CAM has a closed form. With ``A`` that map ``(b, C, h, w)`` and ``W``
the head's weight ``(L, C)``, the logit of
label ``c`` is ``W[c] . mean_hw(A) + bias[c]``; its gradient with respect to
``A[k, i, j]`` is ``W[c, k] / (h*w)`` at every position, so Grad-CAM's channel
weights are ``W / (h*w)`` and

    CAM_c = ReLU(sum_k W[c, k] * A_k) / (h*w)

for every label at once, from one forward pass and no backward pass. Before
the ReLU, the positions' values add up to the label's logit minus its bias:
the maps are in logit units. :func:`cnn_cams` computes these maps this way (``method="closed_form"``)
or with autograd (``method="autograd"``: the gradient of each logit with
respect to the feature map, averaged over positions), which gives the same
maps and checks the algebra. The map is the output of one module (the
backbone's ``map_layer``), the layer a hook-based Grad-CAM such as
pytorch-grad-cam targets; ``tests/test_explain.py`` checks the maps against
it for each shipped backbone and DenseNet121.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from numbers import Integral, Real

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import Interval, StrOptions, validate_parameter_constraints
from sklearn.utils.validation import check_is_fitted

from ..cache import check_memory
from .._torch import TorchEstimatorMixin, forward, load_images, resolve_device
from .._validation import check_image_stack, check_multilabel_Y, image_stack_tags, is_path_array
from ..features.deep import CNNEmbedder
from ..neural import numpy_state
from ..nn.resnet import for_inference

__all__ = ["GradCAM", "cnn_cams"]
#: ``scale_`` reads each training map on a grid of about this many pixels a side.
_SCALE_GRID = 32
#: Floor of ``scale_`` (a label whose maps are all zero on the training images).
_MIN_SCALE = 1e-6
#: Maps upsampled and smoothed per step on the host (bounds the memory of full-size maps).
_MAP_CHUNK = 32


def _closed_form(backbone, head, x):
    A = backbone.feature_map(x)
    with torch.autocast(x.device.type, enabled=False):  # the head and the maps in float32
        z = torch.einsum("lk,bkhw->blhw", head.weight, A.float())
        logits = z.mean((-2, -1)) + head.bias
        return z.relu() / (z.shape[-2] * z.shape[-1]), logits


def _autograd(backbone, head, x):
    A = backbone.feature_map(x)
    # The head and the gradients in float32, outside inference mode; A is the only tensor that gets gradients
    # (the parameters have requires_grad False).
    with torch.autocast(x.device.type, enabled=False), torch.inference_mode(False), torch.enable_grad():
        A = A.float().clone().requires_grad_(True)
        logits = head(A.mean((-2, -1)))
        grads = [torch.autograd.grad(logits[:, c].sum(), A, retain_graph=True)[0] for c in range(logits.shape[1])]
        alpha = torch.stack(grads, 1).mean((-2, -1))  # (b, L, 512)
        return torch.einsum("blk,bkhw->blhw", alpha, A.detach()).relu(), logits.detach()


class _CamNet(torch.nn.Module):
    """A backbone and its linear head as one network for :func:`skcxr._torch.forward`.

    A batch's output is one row per image: its CAMs (flattened) followed by its logits; ``grid`` keeps the
    CAMs' shape ``(L, h, w)``.
    """

    def __init__(self, backbone, head, method):
        super().__init__()
        self.backbone, self.head = backbone, head
        self.run = _closed_form if method == "closed_form" else _autograd
        self.grid = None

    def forward(self, x):
        cams, logits = self.run(self.backbone, self.head, x)
        self.grid = tuple(cams.shape[1:])
        return torch.cat([cams.float().flatten(1), logits.float()], 1)


def cnn_cams(X, backbone: torch.nn.Module, head_state: Mapping, *, image_size=224, method="closed_form",
             batch_size=None, device="auto", precision="fp32", n_jobs=None,
             verbose=0) -> tuple[np.ndarray, np.ndarray]:
    """Raw Grad-CAMs of every label on the backbone's feature-map grid, and the head's logits.

    The cacheable core of :class:`GradCAM` (the cache hashes the backbone's
    tensors and the head's arrays by content).

    Parameters
    ----------
    X : 1-D array of image paths, or float array (n, H, W) in [-1, 1]
    backbone : torch.nn.Module
        A backbone of :mod:`skcxr.nn.backbones` (``CNNEmbedder.model_``): its
        ``feature_map`` is the post-activation map the head's mean pooling reads.
    head_state : mapping
        ``weight`` (L, C) and ``bias`` (L,) of the linear head.
    image_size : int, default=224
        Side the network sees (stacks of another size are resized).
    method : {"closed_form", "autograd"}, default="closed_form"
        Both give the same maps (see the module docstring); the closed form
        needs no gradients.
    batch_size, device, n_jobs, verbose
        As in :class:`skcxr.features.CNNEmbedder`.
    precision : {"fp32", "bf16"}, default="fp32"
        Resolved (:class:`GradCAM` passes its ``precision`` resolved for the
        device, so the cache key holds the arithmetic used): with bf16 the
        backbone up to its feature map runs under ``torch.autocast`` to bfloat16;
        the head, the maps and the logits are computed in float32 from its
        activations.

    Returns
    -------
    cams : float32 array (n, L, h, w)
        ``ReLU(sum_k alpha_ck A_k)``, in logit units per position; ``h = w``
        is the map's side (``image_size / 32`` rounded up for ResNet18 and EfficientNet-Lite).
    logits : float32 array (n, L)

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skcxr.nn import resnet18_1ch
    >>> head = {k: v.numpy() for k, v in torch.nn.Linear(512, 3).state_dict().items()}
    >>> cams, logits = cnn_cams(np.zeros((2, 64, 64), np.float32), resnet18_1ch(), head, image_size=64)
    >>> cams.shape, logits.shape
    ((2, 3, 2, 2), (2, 3))
    """
    if method not in ("closed_form", "autograd"):
        raise ValueError(f"method must be 'closed_form' or 'autograd', got {method!r}.")
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be resolved to 'fp32' or 'bf16', got {precision!r}.")
    device = resolve_device(device)
    backbone = for_inference(backbone).requires_grad_(False).to(device)
    backbone = backbone.to(memory_format=torch.channels_last)
    head = torch.nn.Linear(backbone.n_features, len(head_state["weight"]))
    head.load_state_dict({k: torch.as_tensor(v) for k, v in head_state.items()})
    net = _CamNet(backbone, head.requires_grad_(False).to(device), method)
    out = forward(net, X, image_size=image_size, batch_size=batch_size, device=device, precision=precision,
                  n_jobs=n_jobs, verbose=verbose, desc="Grad-CAM")
    n_labels = net.grid[0]
    cams = out[:, :-n_labels].reshape(len(out), *net.grid)
    return np.ascontiguousarray(cams), np.ascontiguousarray(out[:, -n_labels:])


class GradCAM(TorchEstimatorMixin, TransformerMixin, BaseEstimator):
    """Grad-CAM maps of a fine-tuned CNN, one per image (or per image and label).

    ``fit`` fine-tunes ``cnn`` (a :class:`skcxr.features.CNNEmbedder`, any
    backbone) on ``(X, Y)``; ``transform`` returns, per image, where the
    network's head found evidence for a label: Grad-CAM at the backbone's last
    post-activation feature map (all labels from one
    forward pass, see :mod:`skcxr.attention._gradcam`), bilinearly upsampled to the
    input's size, optionally smoothed, then normalised.

    Normalisation. Maps are not min-max scaled per image (as
    pytorch-grad-cam does): that stretches the weak evidence of an image
    where the label is absent into a full-strength blob, so every image
    looks equally sure. With ``normalize="fitted"`` each label's maps are
    divided by one constant learnt in ``fit``, ``scale_[l]``: the 99th
    percentile of that label's raw map values over the training images
    (the maps as ``transform`` computes them, smoothing included, read on
    a grid of about 32 x 32 pixels), and clipped to [0, 1]. Strong
    evidence reaches 1, weak evidence stays faint, and maps of different
    images compare. The raw maps (non-negative, in logit units per
    position) come with ``normalize=None``; on a fitted GradCAM,
    ``set_params(normalize=None)`` gives them without refitting.

    Parameters
    ----------
    cnn : CNNEmbedder or None, default=None
        The network, with ``fine_tune`` set (a head is needed for class
        scores); None is ``CNNEmbedder(fine_tune="all")`` (a ResNet18). Cloned
        in ``fit``. Its fine-tuning is the one cached function that
        ``CNNEmbedder`` calls (:func:`skcxr.neural.cached_fine_tune_cnn`),
        so a CNNEmbedder with the same parameters and memory and this
        GradCAM train the network once.
    target : "predicted", "all" or a label, default="predicted"
        ``"all"``: one map per label, ``(n, L, S, S)``. A label (one of
        :attr:`classes_`: a column name of a DataFrame ``Y``, else its index):
        that label's map, ``(n, S, S)``. ``"predicted"``: per image, the
        element-wise maximum of the normalised maps of the labels the head
        predicts (probability >= 0.5; the head is trained with balanced
        ``pos_weight``, so 0.5 is not the rare labels' prevalence), or of the
        most probable label where none is predicted; ``(n, S, S)``.
    method : {"auto", "closed_form", "autograd"}, default="auto"
        "auto" is the closed form, exact for the backbone's average pooling
        and linear head; "autograd" computes the same maps from gradients.
    smooth_sigma : float or None, default=None
        Standard deviation, in output pixels, of a Gaussian smoothing of each
        raw map, applied before normalisation. ``scale_`` is learnt on maps
        smoothed this way: refit after changing it.
    normalize : "fitted" or None, default="fitted"
        See above.
    cv : None, int or splitter, default=None
        Cross-fitting in ``fit_transform``: the training images are split
        into ``cv`` patient-grouped folds and each fold gets the maps of a
        network fine-tuned on the other folds (normalised by that network's
        own training scale), so a classifier after it trains on maps of the
        kind it meets at prediction. The in-sample maps of a network that
        trained on the image follow its labels (``target="predicted"``
        nearly *is* the label there), which a classifier would learn and
        never see again. The fold networks are those of
        ``CNNEmbedder(cv=...)`` (:meth:`~skcxr.features.CNNEmbedder.fold_networks`),
        cached and shared. ``fit`` and ``transform`` use the network
        fine-tuned on all images. Costs ``cv`` more fine-tunings.
    batch_size : int or None, default=None
        Images per batch of the network; None: 32 on the CPU, 256 on CUDA at
        224 px (:func:`skcxr._torch.inference_batch_size`).
    device : str or torch.device, default="auto"
        "auto" is CUDA when available.
    precision : {"auto", "fp32", "bf16"}, default="auto"
        Arithmetic of the maps (in ``fit``, for ``scale_``, and in
        ``transform``): ``"bf16"`` runs the backbone up to its feature map under
        ``torch.autocast`` to bfloat16 (the head, the maps and the logits in
        float32), ``"fp32"`` all in float32; ``"auto"`` is bf16 on a CUDA GPU
        that supports it and on a CPU with bf16 units (``avx512_bf16`` or
        ``amx_bf16``, detected), fp32 elsewhere. The maps are float32
        either way; bf16 maps correlate above 0.99 with the fp32 ones
        (``studies/precision.py``). Results are bit-for-bit repeatable for one
        precision on one device; the resolved precision is part of the cache
        key. ``cnn``'s fine-tuning follows ``cnn.precision``, and this
        parameter, not ``cnn.precision``, sets the maps' arithmetic.
    n_jobs : int or None, default=None
        Worker processes that read and preprocess image paths (as in
        :class:`skcxr.features.CNNEmbedder`). Results do not depend on it.
    memory : None, str or joblib.Memory, default=None
        Caches the feature-map-grid CAMs, keyed on image content, the network's
        weights and the resolved precision (not on ``target``, ``smooth_sigma`` or ``normalize``), and is
        passed on to ``cnn`` when it has no memory of its own.
    verbose : int, default=0
        >0 shows progress bars.

    Attributes
    ----------
    cnn_ : CNNEmbedder
        The fitted network (``cnn_.model_``: backbone, ``cnn_.head_``: head).
    classes_ : ndarray (L,)
        Label names: the columns of ``Y`` when it is a DataFrame, else ``0..L-1``.
    scale_ : float32 ndarray (L,) or None
        Per-label divisor of the raw maps (``normalize="fitted"``), else None.

    Examples
    --------
    >>> import numpy as np
    >>> from skcxr.features import CNNEmbedder
    >>> X = np.random.default_rng(0).uniform(-1, 1, (8, 32, 32)).astype(np.float32)
    >>> Y = np.array([[1, 0], [0, 1]] * 4)
    >>> cnn = CNNEmbedder(fine_tune="all", epochs=1, image_size=32, random_state=0)
    >>> cam = GradCAM(cnn).fit(X, Y)
    >>> maps = cam.transform(X)
    >>> maps.shape, maps.dtype, bool(maps.min() >= 0 and maps.max() <= 1)
    ((8, 32, 32), dtype('float32'), True)
    >>> cam.set_params(target="all").transform(X).shape  # transform parameters need no refit
    (8, 2, 32, 32)
    """

    # Patient ids are requested by default, so routed fits (metadata routing on) deliver them.
    __metadata_request__fit = {"groups": True}

    def __init__(
        self,
        cnn=None,
        target="predicted",
        method="auto",
        smooth_sigma=None,
        normalize="fitted",
        cv=None,
        batch_size=None,
        device="auto",
        precision="auto",
        n_jobs=None,
        memory=None,
        verbose=0,
    ):
        self.cnn = cnn
        self.target = target
        self.method = method
        self.smooth_sigma = smooth_sigma
        self.normalize = normalize
        self.cv = cv
        self.batch_size = batch_size
        self.device = device
        self.precision = precision
        self.n_jobs = n_jobs
        self.memory = memory
        self.verbose = verbose

    _parameter_constraints = {
        **TorchEstimatorMixin._run_constraints,
        "cnn": [None, CNNEmbedder],
        "target": [StrOptions({"all", "predicted"}), str, Integral],
        "method": [StrOptions({"auto", "closed_form", "autograd"})],
        "smooth_sigma": [None, Interval(Real, 0, None, closed="left")],
        "normalize": [None, StrOptions({"fitted"})],
        "cv": [None, Interval(Integral, 2, None, closed="left"), "cv_object"],
    }

    def _check_params(self) -> None:
        validate_parameter_constraints(self._parameter_constraints, self.get_params(deep=False), type(self).__name__)
        if self.cnn is not None and self.cnn.fine_tune is None:
            raise ValueError(
                "GradCAM needs class scores, and CNNEmbedder(fine_tune=None) has no classification head: "
                "use a cnn with fine_tune='last' or 'all'."
            )

    def _label(self):
        """The index of ``target`` in ``classes_``; None for "all" and "predicted"."""
        if isinstance(self.target, str) and self.target in ("all", "predicted"):
            return None
        matches = np.flatnonzero([label == self.target for label in self.classes_])
        if not len(matches):
            raise ValueError(
                f"target={self.target!r} is not a label: use 'all', 'predicted' or one of {self.classes_.tolist()}."
            )
        return int(matches[0])

    def fit(self, X, y=None, groups=None):
        """Fine-tune ``cnn`` on (X, Y) and, with ``normalize="fitted"``, learn ``scale_``.

        Parameters
        ----------
        X : 1-D array of image paths, or float array (n, S, S)
            Paths, or images preprocessed by ``CXRPreprocessor`` (in [-1, 1]).
        y : array or DataFrame (n, L) of 0/1
        groups : array (n,), optional
            Patient ids: the fine-tuning's validation part takes whole patients.

        Returns
        -------
        self
        """
        self._fit(X, y, groups)
        return self

    def _fit(self, X, y, groups):
        """Fit; return X as a stack (paths are read once, for the fine-tuning and the scale alike)."""
        self._check_params()
        if y is None:
            raise ValueError("GradCAM needs Y to fit: the maps explain the labels the network is fine-tuned on.")
        n_labels = check_multilabel_Y(y).shape[1]
        self.classes_ = np.asarray(y.columns, dtype=object) if hasattr(y, "columns") else np.arange(n_labels)
        self._label()  # an unknown target fails before training
        cnn = CNNEmbedder(fine_tune="all") if self.cnn is None else clone(self.cnn)
        if cnn.memory is None and self.memory is not None:
            cnn.set_params(memory=self.memory)
        X = load_images(X, cnn.image_size, n_jobs=self.n_jobs) if is_path_array(X) else check_image_stack(X)
        self.cnn_ = cnn.fit(X, y, groups=groups)
        self._fit_scale(X)
        return X

    def _fit_scale(self, X):
        """``scale_``: per label, the 99th percentile of the maps of the training images X (None without it)."""
        self.scale_ = None
        if self.normalize == "fitted":
            grid, _, size = self._grid_maps(X)
            step = -(-max(size) // _SCALE_GRID)
            n_labels = grid.shape[1]
            samples = [m[..., ::step, ::step].swapaxes(0, 1).reshape(n_labels, -1) for m in self._maps(grid, size)]
            scale = np.percentile(np.concatenate(samples, axis=1), 99, axis=1)
            self.scale_ = np.maximum(scale, _MIN_SCALE).astype(np.float32)

    def fit_transform(self, X, y=None, groups=None):
        """Fit, then the maps of X; with ``cv``, each image's from a network that did not train on it.

        Parameters
        ----------
        X, y, groups
            As in :meth:`fit`.

        Returns
        -------
        ndarray (n, S, S), or (n, L, S, S) with ``target="all"``
        """
        X = self._fit(X, y, groups)
        if self.cv is None:
            return self.transform(X)
        images = load_images(X, self.cnn_.image_size)  # what the fold networks train on
        Y = check_multilabel_Y(y, len(images))
        out = None
        for train, test, net in self.cnn_.fold_networks(images, Y, groups, self.cv):
            fold = copy.copy(self)  # this GradCAM, explaining the fold's network
            fold.cnn_ = copy.copy(self.cnn_)
            fold.cnn_.model_, fold.cnn_.head_ = net.backbone, net.head
            fold._fit_scale(X[train])
            maps = fold.transform(X[test])
            if out is None:
                out = np.empty((len(X), *maps.shape[1:]), dtype=np.float32)
            out[test] = maps
        return out

    def _grid_maps(self, X):
        """The cached feature-map-grid CAMs and logits of X, and the output size (H, W)."""
        if not is_path_array(X):
            X = check_image_stack(X)
        size = (self.cnn_.image_size,) * 2 if is_path_array(X) else X.shape[1:]
        cams = check_memory(self.memory).cache(cnn_cams, ignore=["batch_size", "n_jobs", "device", "verbose"])
        grid, logits = cams(
            X, self.cnn_.model_, numpy_state(self.cnn_.head_.state_dict()),
            image_size=self.cnn_.image_size, method="closed_form" if self.method == "auto" else self.method,
            batch_size=self.batch_size, device=self.device, precision=self._resolved_precision(),
            n_jobs=self.n_jobs, verbose=self.verbose,
        )  # fmt: skip
        return grid, logits, size

    def _maps(self, grid, size, scale=None):
        """Maps at ``size``, a batch at a time: upsampled (bilinear), smoothed; float32 (b, L, H, W).

        With ``scale`` (one divisor per label), divided by it and clipped to [0, 1]. Upsampling and smoothing
        are linear, so the division is done first, on the small grid.
        """
        if scale is not None:
            grid = grid / scale[:, None, None]
        for start in range(0, len(grid), _MAP_CHUNK):
            maps = F.interpolate(torch.from_numpy(grid[start : start + _MAP_CHUNK]), size=tuple(size),
                                 mode="bilinear", align_corners=False).numpy()
            if self.smooth_sigma:
                maps = gaussian_filter(maps, sigma=(0, 0, self.smooth_sigma, self.smooth_sigma))
            if scale is not None:
                np.clip(maps, 0, 1, out=maps)
            yield maps

    def transform(self, X):
        """Grad-CAM maps of X, float32 in [0, 1] (raw with ``normalize=None``).

        Parameters
        ----------
        X : 1-D array of image paths, or float array (n, S, S)

        Returns
        -------
        ndarray (n, S, S), or (n, L, S, S) with ``target="all"``
            S is the side of the input stack (``cnn.image_size`` for paths).
        """
        check_is_fitted(self, "cnn_")
        self._check_params()
        if self.normalize == "fitted" and self.scale_ is None:
            raise NotFittedError("This GradCAM was fitted with normalize=None and has no scale_; refit it.")
        label = self._label()
        grid, logits, size = self._grid_maps(X)
        labels = slice(None) if label is None else [label]
        grid = grid[:, labels]
        shape = (len(grid), *size) if self.target != "all" else (*grid.shape[:2], *size)
        out = np.empty(shape, dtype=np.float32)
        predicted = logits >= 0  # sigmoid >= 0.5
        none = ~predicted.any(1)
        predicted[none, logits[none].argmax(1)] = True  # the top label where none is predicted
        scale = self.scale_[labels] if self.normalize == "fitted" else None
        for start, maps in zip(range(0, len(grid), _MAP_CHUNK), self._maps(grid, size, scale)):
            if self.target == "predicted":
                maps = (maps * predicted[start : start + len(maps), :, None, None]).max(1)
            elif label is not None:
                maps = maps[:, 0]
            out[start : start + len(maps)] = maps
        return out

    def __sklearn_tags__(self):
        return image_stack_tags(super().__sklearn_tags__(), paths=True, target_required=True)
