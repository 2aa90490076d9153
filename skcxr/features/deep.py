"""CNN embeddings of chest X-rays: the transformer :class:`CNNEmbedder` (formerly ``ResNetEmbedder``).

A 1-channel CNN backbone (:mod:`skcxr.nn.backbones`: ResNet18, ImageNet
EfficientNet-Lite0/2 that load offline, any timm or torchvision architecture)
wrapped as a scikit-learn transformer: ``transform`` returns its pooled last
feature map, ``fit`` optionally fine-tunes the network on a multi-label ``Y``
through skcxr's one skorch stack (:func:`skcxr.neural.cached_fine_tune_cnn`,
shared with every other estimator that needs the same network), and
``fit_transform`` can cross-fit: each training image is embedded by a network
that did not train on it, as scikit-learn's ``TargetEncoder`` does for its
encodings, so a classifier after it trains on features of the kind it is
tested on.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_parameter_constraints
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted
from tqdm.auto import tqdm

from ..cache import check_memory
from .._torch import TorchEstimatorMixin, forward, load_images
from .._validation import check_image_stack, check_multilabel_Y, image_stack_tags, is_path_array
from ..model_selection import MultilabelStratifiedGroupKFold
from ..neural import cached_fine_tune_cnn
from ..nn import augment_params
from ..nn.backbones import backbone_name, build_cnn
from ..nn.resnet import EMBEDDER_FORMAT, CNNClassifier, for_inference
from ..nn.training import seed_from

#: Fine-tuning batch of ``batch_size=None``.
_TRAIN_BATCH = 32

__all__ = ["CNNEmbedder", "ResNetEmbedder", "embed_cnn"]

#: The values of ``pooling``.
POOLINGS = ("avg", "avgmax")


def _cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in module.state_dict().items()}


def embed_cnn(X, backbone: torch.nn.Module, *, pooling="avg", image_size=224, batch_size=None, device="auto",
              precision="fp32", n_jobs=None, verbose=0) -> np.ndarray:
    """Pooled feature maps of X (paths or a preprocessed stack) under a backbone module.

    The cacheable form of :meth:`CNNEmbedder.transform` (the cache hashes the
    module's tensors by content). ``pooling="avg"``: the map's mean over
    positions, ``(n, C)``; ``"avgmax"``: its mean, then its maximum,
    ``(n, 2C)``; both in float32 from the (possibly bf16) map.
    ``precision`` is resolved, ``"fp32"`` or ``"bf16"``, so the cache key
    holds the arithmetic actually used.

    Examples
    --------
    >>> import numpy as np
    >>> from skcxr.nn import resnet18_1ch
    >>> embed_cnn(np.zeros((2, 32, 32), np.float32), resnet18_1ch(), image_size=32, pooling="avgmax").shape
    (2, 1024)
    """
    net = _Pooled(for_inference(backbone), pooling)
    return forward(net, X, image_size=image_size, batch_size=batch_size, device=device, precision=precision,
                   n_jobs=n_jobs, verbose=verbose, desc=backbone_name(getattr(backbone, "name", backbone)))


class _Pooled(torch.nn.Module):
    """Backbone feature map -> mean (and max) over positions, in float32 also under bf16 autocast."""

    def __init__(self, backbone, pooling):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}; got {pooling!r}.")
        self.backbone, self.pooling = backbone, pooling

    def forward(self, x):
        A = self.backbone.feature_map(x)
        with torch.autocast(A.device.type, enabled=False):
            A = A.float()
            pooled = [A.mean((-2, -1))] + ([A.amax((-2, -1))] if self.pooling == "avgmax" else [])
            return torch.cat(pooled, 1)


class _Proba(torch.nn.Module):
    """Backbone -> linear head -> sigmoid; the head and sigmoid in float32 even under bf16 autocast."""

    def __init__(self, backbone, head):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x):
        z = self.backbone(x)
        with torch.autocast(z.device.type, enabled=False):
            return torch.sigmoid(self.head(z.float()))


def _has_head(est) -> bool:
    if est.fine_tune is None:
        raise AttributeError(
            "predict_proba needs a classification head: CNNEmbedder(fine_tune=None) has none. "
            "Use fine_tune='last' or 'all' and fit with Y."
        )
    return True


class CNNEmbedder(TorchEstimatorMixin, TransformerMixin, BaseEstimator):
    """Pooled CNN features of chest X-rays (ResNet18, ImageNet EfficientNet-Lite, ...), optionally fine-tuned.

    A 1-channel backbone (:func:`skcxr.nn.backbones.build_cnn`; 3-channel
    weights are converted by summing the RGB kernels, which is exact for
    EfficientNet-Lite's input scaling, see :mod:`skcxr.nn.backbones`).
    ``transform`` returns its last post-activation feature map, pooled,
    computed in batches under ``torch.inference_mode`` (ResNets with
    BatchNorm folded into the convolutions) and, on CPU, channels_last.
    ``ResNetEmbedder`` is the same class under its former name.

    Parameters
    ----------
    backbone : str or torch.nn.Module, default="resnet18"
        ``"resnet18"``, ``"efficientnet_lite0"`` (1,280 features, trained at
        224 px), ``"efficientnet_lite2"`` (1,280, 260 px), any torchvision or
        timm architecture name, or a module mapping ``(b, 1, H, W)`` to a
        post-activation map ``(b, C, h, w)``.
    weights : None, "imagenet", str or path, default=None
        None: random initialisation seeded by ``random_state``. ``"imagenet"``:
        ImageNet weights read offline from an installed package
        (EfficientNet-Lite0/2; other backbones say in one line that they have
        none). A torchvision weights name such as ``"IMAGENET1K_V1"`` for
        ``"resnet18"`` (needs internet or torch's download cache). A local
        state-dict file (the bare network's keys or skcxr's, 3- or 1-channel,
        with or without a classifier; a file written by :meth:`save` also
        works for ResNet18), read with ``torch.load(weights_only=True)``.
    pooling : {"avg", "avgmax"}, default="avg"
        The embedding: the map's mean over positions (C features), or its
        mean and its maximum (2C). The fine-tuned head always sits on the
        mean, so Grad-CAM keeps its closed form.
    fine_tune : {None, "last", "layer4", "all"}, default=None
        None: ``fit`` only builds the network (no ``Y`` needed). ``"last"``
        (``"layer4"`` is its ResNet name): train the backbone's last stage
        (ResNet: ``layer4``; EfficientNet: its last two block stages and head
        convolution) and a new linear head; every other layer is frozen and
        kept in eval mode, BatchNorm included. ``"all"``: train every layer
        (the route to take without pretrained weights). Training runs through
        :class:`skcxr.neural.CNNFineTuner`: balanced BCE, a 15 %
        validation part of whole patients (pass ``groups`` to ``fit``), early
        stopping with best-epoch restore.
    epochs : int, default=5
    lr : float, default=1e-4
        AdamW learning rate (the report's fine-tuning: 1e-4, 5 epochs).
    batch_size : int or None, default=None
        Images per batch, in training and inference. None: 32 in training;
        in inference 32 on the CPU and 256 on CUDA at 224 px
        (:func:`skcxr._torch.inference_batch_size`).
    augment : bool or dict, default=True
        Training augmentation: rotation ±7°, shift ±6 %, brightness/contrast
        ±10 %, no horizontal flip (anatomy is lateralised); a dict overrides
        some of :data:`skcxr.nn.DEFAULT_AUGMENT` (e.g. ``{"hflip": True}``).
    patience : int, default=3
        Early stopping: epochs without a lower validation loss before training
        stops (the best epoch is restored).
    image_size : int, default=224
        Side the network sees (EfficientNet-Lite2 was trained at 260,
        :func:`skcxr.nn.backbones.native_image_size`). Preprocessed stacks of another size are resized
        (antialiased bilinear); paths are preprocessed with
        ``CXRPreprocessor(size=image_size)``, one batch at a time (by
        ``n_jobs`` worker processes while the network runs).
    output : {"embedding", "proba"}, default="embedding"
        What ``transform`` returns: the pooled embedding, or (with
        ``fine_tune``) the fine-tuned head's probabilities, one column per
        label, for stacking another classifier on top.
    cv : None, int or splitter, default=None
        Cross-fitting in ``fit_transform``, with ``fine_tune`` and
        ``output="proba"``: the training images are split into ``cv``
        patient-grouped folds
        (:class:`skcxr.model_selection.MultilabelStratifiedGroupKFold`), and
        each fold gets the probabilities of a network fine-tuned on the other
        folds, as scikit-learn's ``TargetEncoder`` encodes each fold with
        statistics of the others; ``fit`` and ``transform`` use the network
        fine-tuned on all images. So a classifier stacked on top trains on
        out-of-fold probabilities, of the kind it meets at prediction, not on
        the fitted network's overconfident in-sample ones. Costs ``cv`` more
        fine-tunings. Embeddings cannot be cross-fitted: the ``cv`` networks
        do not share a feature space (column 17 of one means nothing in
        another), and an MLP trained on such a mixture scored chance (0.49
        macro-AUC) in ``studies/table1.py``. None: no cross-fitting.
    net_params : dict or None, default=None
        Further parameters of the skorch net that fine-tunes
        (:class:`skcxr.neural.CNNFineTuner`): an LR schedule
        (``{"lr_scheduler": "cosine"}``), checkpoints
        (``{"callbacks": [("checkpoint", skorch.callbacks.Checkpoint(dirname="ckpt"))]}``), ...
    device : str or torch.device, default="auto"
        "auto" is CUDA when available.
    precision : {"auto", "fp32", "bf16"}, default="auto"
        Arithmetic of inference (``transform``, ``predict_proba``):
        ``"bf16"`` runs the network under ``torch.autocast`` to bfloat16,
        ``"fp32"`` in float32. ``"auto"`` is bf16 on a CUDA GPU that supports
        it and on a CPU with bf16 units (``avx512_bf16`` or ``amx_bf16``
        among its flags, detected), fp32 elsewhere. Outputs are float32
        either way. On 2 cores with AVX-512 bf16 / AMX units, bf16 embeds
        about 1.9-2x faster than fp32 at 224 px, with features correlated
        0.9999 with the fp32 ones (``studies/precision.py``). Results are
        bit-for-bit repeatable for one precision on one device (and batch
        size); bf16 and fp32 differ slightly. The resolved precision is part
        of the cache key: a bf16 result is never served to an fp32 request,
        nor across machines whose "auto" differs. Fine-tuning trains with AMP
        (bf16 autocast, float32 weights) on CUDA under "auto" or "bf16", and
        in fp32 on the CPU unless "bf16" is asked for
        (:func:`skcxr._torch.resolve_precision`, ``mode="train"``).
    n_jobs : int or None, default=None
        Worker processes that read and preprocess image paths: torch
        DataLoader workers in ``transform`` (decoding the next batches while
        the network runs), joblib workers when ``fit`` reads them. None: none
        on the CPU, one per core on CUDA; -1: every core. Results do not
        depend on it.
    memory : None, str or joblib.Memory, default=None
        Caches fine-tuning (shared with other estimators, see
        :func:`skcxr.neural.cached_fine_tune_cnn`) and embeddings, keyed on
        image content (paths by their bytes), weights, the resolved
        ``precision`` (embeddings) and skcxr's code version; unseeded fine-tuning (``random_state=None``) is never cached.
    random_state : int, RandomState or None, default=None
    verbose : int, default=0
        >0 shows progress bars (images/s; fine-tuning epochs with their
        losses, folds of the cross-fitting); 2 prints the per-epoch table.

    Attributes
    ----------
    model_ : torch.nn.Module
        The backbone (``model_(x)``: the mean-pooled map; ``model_.feature_map(x)``: the map).
    head_ : torch.nn.Linear or None
        The multi-label head when fine-tuned.
    history_ : list of dict
        Per-epoch losses of the fine-tuning (empty without it).
    n_features_out_ : int
        C (``pooling="avg"``), 2C (``"avgmax"``), or the number of labels (``output="proba"``).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.zeros((3, 64, 64), dtype=np.float32)
    >>> emb = CNNEmbedder(image_size=64, random_state=0).fit(X)
    >>> emb.transform(X).shape
    (3, 512)
    >>> emb.get_feature_names_out()[:2]
    array(['cnn_0', 'cnn_1'], dtype=object)
    >>> lite = CNNEmbedder("efficientnet_lite0", weights="imagenet", pooling="avgmax", image_size=64).fit(X)
    >>> lite.transform(X).shape
    (3, 2560)
    """

    # Patient ids are requested by default, so routed fits (metadata routing on) deliver them.
    __metadata_request__fit = {"groups": True}

    def __init__(
        self,
        backbone="resnet18",
        weights=None,
        pooling="avg",
        fine_tune=None,
        epochs=5,
        lr=1e-4,
        batch_size=None,
        augment=True,
        patience=3,
        image_size=224,
        output="embedding",
        cv=None,
        net_params=None,
        device="auto",
        precision="auto",
        n_jobs=None,
        memory=None,
        random_state=None,
        verbose=0,
    ):
        self.backbone = backbone
        self.weights = weights
        self.pooling = pooling
        self.fine_tune = fine_tune
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.augment = augment
        self.patience = patience
        self.image_size = image_size
        self.output = output
        self.cv = cv
        self.net_params = net_params
        self.device = device
        self.precision = precision
        self.n_jobs = n_jobs
        self.memory = memory
        self.random_state = random_state
        self.verbose = verbose

    _parameter_constraints = {
        **TorchEstimatorMixin._run_constraints,
        "backbone": [str, torch.nn.Module],
        "weights": [None, str, os.PathLike],
        "pooling": [StrOptions(set(POOLINGS))],
        "fine_tune": [None, StrOptions({"last", "layer4", "all"})],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "augment": ["boolean", dict],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "image_size": [Interval(Integral, 16, None, closed="left")],
        "output": [StrOptions({"embedding", "proba"})],
        "cv": [None, Interval(Integral, 2, None, closed="left"), "cv_object"],
        "net_params": [None, dict],
        "random_state": ["random_state"],
    }

    def _check_params(self) -> None:
        validate_parameter_constraints(self._parameter_constraints, self.get_params(deep=False), type(self).__name__)
        augment_params(self.augment)  # the dict's keys
        if self.output == "proba" and self.fine_tune is None:
            raise ValueError('output="proba" needs the fine-tuned head: set fine_tune="last" or "all".')
        if self.cv is not None and self.output != "proba":
            raise ValueError(
                'cv (cross-fitting) needs output="proba": the embeddings of networks fine-tuned on different '
                "folds do not share a feature space, so a classifier cannot learn from their mixture."
            )

    def _fine_tune(self, images, Y, groups, random_state):
        return cached_fine_tune_cnn(
            self.memory, images, Y, groups=groups, backbone=self.backbone, weights=self.weights,
            fine_tune=self.fine_tune,
            epochs=self.epochs, lr=self.lr, batch_size=self.batch_size or _TRAIN_BATCH, augment=self.augment,
            patience=self.patience, random_state=random_state, device=self.device,
            precision=self._resolved_precision("train"), verbose=self.verbose,
            net_params=self.net_params,
        )  # fmt: skip

    def _seeds(self, n: int) -> list:
        """``n`` seeds for the cross-fitting from ``random_state`` (None stays None: unseeded, never cached)."""
        if self.random_state is None:
            return [None] * n
        rng = check_random_state(self.random_state)
        return [seed_from(rng) for _ in range(n)]

    def fit(self, X, y=None, groups=None):
        """Build the network and, with ``fine_tune``, train it on (X, Y).

        Parameters
        ----------
        X : 1-D array of image paths, or float array (n, S, S)
            Paths, or images preprocessed by ``CXRPreprocessor`` (in [-1, 1]).
        y : array (n, L) of 0/1, optional
            Needed only when ``fine_tune`` is set.
        groups : array (n,), optional
            Patient ids: the fine-tuning's validation part takes whole patients.

        Returns
        -------
        self
        """
        self._fit(X, y, groups)
        return self

    def _fit(self, X, Y, groups):
        """Fit; return the training images as a stack when fine-tuning read them (else None)."""
        self._check_params()
        if self.fine_tune is None:
            if not is_path_array(X):
                check_image_stack(X)
            self.model_ = build_cnn(self.backbone, self.weights, self.random_state).eval()
            self.head_, self.history_ = None, []
            self.n_features_out_ = self._n_embedding()
            return None
        if Y is None:
            raise ValueError(f"CNNEmbedder(fine_tune={self.fine_tune!r}) needs Y to fit; got Y=None.")
        images = load_images(X, self.image_size, n_jobs=self.n_jobs)
        Y = check_multilabel_Y(Y, len(images))
        state, self.history_ = self._fine_tune(images, Y, groups, self.random_state)
        net = self._network(state)
        self.model_, self.head_ = net.backbone.eval(), net.head.eval()
        self.n_features_out_ = self._n_embedding() if self.output == "embedding" else Y.shape[1]
        return images

    def _n_embedding(self) -> int:
        return self.model_.n_features * (2 if self.pooling == "avgmax" else 1)

    def _network(self, state) -> CNNClassifier:
        """A :class:`~skcxr.nn.resnet.CNNClassifier` of this backbone holding the fine-tuned ``state``."""
        net = CNNClassifier(len(state["head.bias"]), self.backbone)
        net.load_state_dict(state)
        return net.eval()

    def fit_transform(self, X, y=None, groups=None):
        """Fit, then transform X; with ``cv``, each image by a network that did not train on it.

        Parameters
        ----------
        X, y, groups
            As in :meth:`fit`.

        Returns
        -------
        ndarray of shape (n, n_features_out_)
        """
        images = self._fit(X, y, groups)
        if images is None or self.cv is None:
            return self.transform(X if images is None else images)
        Y = check_multilabel_Y(y, len(images))
        out = np.empty((len(images), Y.shape[1]), dtype=np.float32)
        for _, test, net in self.fold_networks(images, Y, groups, self.cv):
            out[test] = self._head_proba(net.backbone, net.head, images[test])
        return out

    def fold_networks(self, images, Y, groups, cv):
        """Yield ``(train, test, network)`` per cross-fitting fold: the CNN fine-tuned on ``train`` only.

        The folds and seeds that ``fit_transform`` uses with ``cv``
        (:class:`~skcxr.model_selection.MultilabelStratifiedGroupKFold` over
        patients, seeds drawn from ``random_state``), through the same cached
        fine-tuning: any estimator that cross-fits this network (``GradCAM``
        with ``cv``) shares its fold networks.

        Parameters
        ----------
        images : float array (n, image_size, image_size)
            The preprocessed training images.
        Y : array (n, L) of 0/1
        groups : array (n,) or None
        cv : int or splitter

        Yields
        ------
        train, test : index arrays
        network : skcxr.nn.resnet.CNNClassifier (eval mode)
        """
        groups = np.arange(len(images)) if groups is None else np.asarray(groups)
        seeds = self._seeds(cv + 1 if isinstance(cv, Integral) else cv.get_n_splits(images, Y, groups) + 1)
        if isinstance(cv, Integral):
            cv = MultilabelStratifiedGroupKFold(cv, shuffle=True, random_state=seeds.pop())
        folds = list(zip(cv.split(images, Y, groups), seeds))
        for (train, test), seed in tqdm(folds, desc="cross-fitting folds", unit="fold", disable=not self.verbose):
            state, _ = self._fine_tune(images[train], Y[train], groups[train], seed)
            yield train, test, self._network(state)

    def _embed(self, X, state):
        embed = check_memory(self.memory).cache(embed_cnn, ignore=["batch_size", "n_jobs", "device", "verbose"])
        return embed(X, state, pooling=self.pooling, image_size=self.image_size, batch_size=self.batch_size, device=self.device,
                     precision=self._resolved_precision(), n_jobs=self.n_jobs, verbose=self.verbose)

    def _head_proba(self, backbone, head, X):
        net = _Proba(for_inference(backbone), copy.deepcopy(head))
        return forward(net, X, image_size=self.image_size, batch_size=self.batch_size, device=self.device,
                       precision=self._resolved_precision(), n_jobs=self.n_jobs, verbose=self.verbose,
                       desc=f"{backbone_name(self.backbone)} head")

    def transform(self, X):
        """Pooled embeddings, or the head's probabilities with ``output="proba"``; float32.

        Parameters
        ----------
        X : 1-D array of image paths, or float array (n, S, S)

        Returns
        -------
        ndarray of shape (n, n_features_out_)
        """
        check_is_fitted(self, "model_")
        if self.output == "proba":
            return self.predict_proba(X)
        return self._embed(X, self.model_)

    @available_if(_has_head)
    def predict_proba(self, X):
        """Probabilities of the fine-tuned network's own head, float32 (n, L).

        Only with ``fine_tune`` set: it is the end-to-end fine-tuned CNN.
        """
        check_is_fitted(self, "head_")
        if self.head_ is None:
            raise NotFittedError("This CNNEmbedder was fitted with fine_tune=None and has no head; refit it.")
        return self._head_proba(self.model_, self.head_, X)

    def get_feature_names_out(self, input_features=None):
        """``cnn_0`` ... ``cnn_{d-1}``, or ``cnn_proba_0`` ... with ``output="proba"``."""
        check_is_fitted(self, "n_features_out_")
        prefix = "cnn_" if self.output == "embedding" else "cnn_proba_"
        return np.asarray([f"{prefix}{i}" for i in range(self.n_features_out_)], dtype=object)

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> None:
        """Write the fitted network and the parameters to ``path`` (loadable with ``weights_only=True``).

        Examples
        --------
        >>> import numpy as np, tempfile, os
        >>> X = np.zeros((2, 32, 32), dtype=np.float32)
        >>> emb = CNNEmbedder(image_size=32, random_state=0).fit(X)
        >>> path = os.path.join(tempfile.mkdtemp(), "emb.pt")
        >>> emb.save(path)
        >>> np.allclose(CNNEmbedder.load(path).transform(X), emb.transform(X))
        True
        """
        check_is_fitted(self, "model_")
        if not isinstance(self.backbone, str):
            raise ValueError("save writes a weights-only file, which cannot hold a backbone module: pickle the "
                             "estimator (skcxr.persistence.save_model) instead.")
        params = self.get_params()
        params["weights"] = os.fspath(params["weights"]) if isinstance(params["weights"], (str, os.PathLike)) else None
        params["memory"] = params["memory"] if isinstance(params["memory"], str) else None
        params["random_state"] = params["random_state"] if isinstance(params["random_state"], int) else None
        params["cv"] = params["cv"] if isinstance(params["cv"], int) else None
        params["net_params"] = None  # callbacks and schedulers are objects: not part of a weights-only file
        params["device"] = str(params["device"])
        params["augment"] = augment_params(params["augment"]) or False
        torch.save(
            {
                "format": EMBEDDER_FORMAT,
                "params": params,
                "backbone": _cpu_state(self.model_),
                "head": None if self.head_ is None else _cpu_state(self.head_),
                "history": self.history_,
            },
            path,
        )

    @classmethod
    def load(cls, path, **params) -> CNNEmbedder:
        """Read an embedder written by :meth:`save`; ``params`` override saved parameters (e.g. ``device``)."""
        data = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(data, Mapping) or data.get("format") != EMBEDDER_FORMAT:
            raise ValueError(f"{os.fspath(path)!r} is not a file written by CNNEmbedder.save.")
        est = cls(**{**data["params"], **params})
        est.model_ = build_cnn(est.backbone)
        est.model_.load_state_dict(data["backbone"])
        est.model_.eval()
        est.head_ = None
        if data["head"] is not None:
            est.head_ = torch.nn.Linear(est.model_.n_features, data["head"]["weight"].shape[0])
            est.head_.load_state_dict(data["head"])
            est.head_.eval()
        est.history_ = list(data["history"])
        est.n_features_out_ = est._n_embedding() if est.output == "embedding" else len(data["head"]["weight"])
        return est

    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: object.__getstate__ gives the instance's own __dict__
        for key in ("model_", "head_"):  # pickles load on machines without the GPU
            module = state.get(key)
            if module is not None and any(p.device.type != "cpu" for p in module.parameters()):
                state[key] = copy.deepcopy(module).cpu()
        return state

    def __sklearn_tags__(self):
        return image_stack_tags(super().__sklearn_tags__(), paths=True, target_required=False)


#: The former name of :class:`CNNEmbedder` (ResNet18 is still its default backbone).
ResNetEmbedder = CNNEmbedder
