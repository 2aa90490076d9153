"""ResNet18 embeddings of chest X-rays: the transformer :class:`ResNetEmbedder`.

A 1-channel ResNet18 (:mod:`skcxr.nn.resnet`) wrapped as a scikit-learn
transformer: ``transform`` returns the 512-d global-average-pooled ``layer4``
output, ``fit`` optionally fine-tunes the network on a multi-label ``Y``
through skcxr's one skorch stack (:func:`skcxr.neural.cached_fine_tune_resnet`,
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

from .._cache import check_memory
from .._torch import TorchEstimatorMixin, forward, load_images, training_precision
from .._validation import check_image_stack, check_multilabel_Y, image_stack_tags, is_path_array
from ..model_selection import MultilabelStratifiedGroupKFold
from ..neural import cached_fine_tune_resnet, numpy_state
from ..nn import N_FEATURES, ResNet18Classifier, augment_params, load_resnet18_weights
from ..nn.resnet import EMBEDDER_FORMAT, build_backbone, fused_for_inference
from ..nn.training import seed_from

#: Fine-tuning batch of ``batch_size=None``.
_TRAIN_BATCH = 32

__all__ = ["ResNetEmbedder", "embed_resnet"]


def _cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in module.state_dict().items()}


def embed_resnet(X, backbone_state: Mapping, *, image_size=224, batch_size=None, device="auto", precision="fp32",
                 n_jobs=None, verbose=0) -> np.ndarray:
    """512-d ResNet18 embeddings of X (paths or a preprocessed stack) with the given backbone weights.

    The cacheable form of :meth:`ResNetEmbedder.transform` (weights as numpy
    arrays, so the cache hashes them by content). ``precision`` is resolved,
    ``"fp32"`` or ``"bf16"`` (:class:`ResNetEmbedder` passes
    ``resolve_precision(self.precision, self.device)``), so the cache key
    holds the arithmetic actually used.

    Examples
    --------
    >>> import numpy as np
    >>> from skcxr.nn import resnet18_1ch
    >>> state = {k: v.numpy() for k, v in resnet18_1ch().state_dict().items()}
    >>> embed_resnet(np.zeros((2, 32, 32), np.float32), state, image_size=32).shape
    (2, 512)
    """
    net = _inference_backbone(build_backbone(backbone_state))
    return forward(net, X, image_size=image_size, batch_size=batch_size, device=device, precision=precision,
                   n_jobs=n_jobs, verbose=verbose, desc="ResNet18")


class _Float32Pool(torch.nn.Module):
    """A pooling layer run in float32 also under bf16 autocast: features are means of the bf16 activations."""

    def __init__(self, pool):
        super().__init__()
        self.pool = pool

    def forward(self, x):
        with torch.autocast(x.device.type, enabled=False):
            return self.pool(x.float())


def _inference_backbone(backbone: torch.nn.Module) -> torch.nn.Module:
    """A BatchNorm-folded copy of ``backbone`` whose global average pooling stays float32 under bf16 autocast.

    In fp32 this computes exactly what the folded backbone does. Under bf16,
    the convolutions run in bfloat16 and the 512 features are float32 means
    of their ``layer4`` output, as :mod:`skcxr.explain` averages its maps, so
    ``predict_proba`` and Grad-CAM's logits agree.
    """
    net = fused_for_inference(backbone)
    net.avgpool = _Float32Pool(net.avgpool)
    return net


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
            "predict_proba needs a classification head: ResNetEmbedder(fine_tune=None) has none. "
            "Use fine_tune='layer4' or 'all' and fit with Y."
        )
    return True


class ResNetEmbedder(TorchEstimatorMixin, TransformerMixin, BaseEstimator):
    """512-d ResNet18 features of chest X-rays, optionally fine-tuned on the labels.

    A torchvision ResNet18 with a 1-channel first convolution (3-channel
    weights are converted by summing the RGB kernels; see
    :mod:`skcxr.nn.resnet` for the input scaling). ``transform`` returns the
    global-average-pooled ``layer4`` output, computed in batches under
    ``torch.inference_mode`` with BatchNorm folded into the convolutions and,
    on CPU, channels_last.

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
        train ``layer4`` and a new linear head, other layers frozen and kept
        in eval mode. ``"all"``: train every layer (the route to take without
        pretrained weights). Training runs through
        :class:`skcxr.neural.ResNetFineTuner`: balanced BCE, a 15 %
        validation part of whole patients (pass ``groups`` to ``fit``), early
        stopping with best-epoch restore.
    epochs : int, default=5
    lr : float, default=1e-4
        AdamW learning rate.
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
        Side the network sees. Preprocessed stacks of another size are resized
        (antialiased bilinear); paths are preprocessed with
        ``CXRPreprocessor(size=image_size)``, one batch at a time (by
        ``n_jobs`` worker processes while the network runs).
    output : {"embedding", "proba"}, default="embedding"
        What ``transform`` returns: the 512-d embedding, or (with
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
        (:class:`skcxr.neural.ResNetFineTuner`): an LR schedule
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
        (:func:`skcxr._torch.training_precision`).
    n_jobs : int or None, default=None
        Worker processes that read and preprocess image paths: torch
        DataLoader workers in ``transform`` (decoding the next batches while
        the network runs), joblib workers when ``fit`` reads them. None: none
        on the CPU, one per core on CUDA; -1: every core. Results do not
        depend on it.
    memory : None, str or joblib.Memory, default=None
        Caches fine-tuning (shared with other estimators, see
        :func:`skcxr.neural.cached_fine_tune_resnet`) and embeddings, keyed on
        image content (paths by their bytes), weights, the resolved
        ``precision`` (embeddings) and skcxr's code version; unseeded fine-tuning (``random_state=None``) is never cached.
    random_state : int, RandomState or None, default=None
    verbose : int, default=0
        >0 shows progress bars (images/s; fine-tuning epochs with their
        losses, folds of the cross-fitting); 2 prints the per-epoch table.

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

    # Patient ids are requested by default, so routed fits (metadata routing on) deliver them.
    __metadata_request__fit = {"groups": True}

    def __init__(
        self,
        weights=None,
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
        self.weights = weights
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
        "weights": [None, str, os.PathLike],
        "fine_tune": [None, StrOptions({"layer4", "all"})],
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
            raise ValueError('output="proba" needs the fine-tuned head: set fine_tune="layer4" or "all".')
        if self.cv is not None and self.output != "proba":
            raise ValueError(
                'cv (cross-fitting) needs output="proba": the embeddings of networks fine-tuned on different '
                "folds do not share a feature space, so a classifier cannot learn from their mixture."
            )

    def _fine_tune(self, images, Y, groups, random_state):
        return cached_fine_tune_resnet(
            self.memory, images, Y, groups=groups, weights=self.weights, fine_tune=self.fine_tune,
            epochs=self.epochs, lr=self.lr, batch_size=self.batch_size or _TRAIN_BATCH, augment=self.augment,
            patience=self.patience, random_state=random_state, device=self.device,
            precision=training_precision(self.precision, self.device), verbose=self.verbose,
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
            self.model_ = build_backbone(load_resnet18_weights(self.weights), self.random_state).eval()
            self.head_, self.history_ = None, []
            self.n_features_out_ = N_FEATURES
            return None
        if Y is None:
            raise ValueError(f"ResNetEmbedder(fine_tune={self.fine_tune!r}) needs Y to fit; got Y=None.")
        images = load_images(X, self.image_size, n_jobs=self.n_jobs)
        Y = check_multilabel_Y(Y, len(images))
        state, self.history_ = self._fine_tune(images, Y, groups, self.random_state)
        net = ResNet18Classifier(Y.shape[1])
        net.load_state_dict(state)
        self.model_, self.head_ = net.backbone.eval(), net.head.eval()
        self.n_features_out_ = N_FEATURES if self.output == "embedding" else Y.shape[1]
        return images

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
        """Yield ``(train, test, network)`` per cross-fitting fold: the ResNet18 fine-tuned on ``train`` only.

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
        network : skcxr.nn.ResNet18Classifier (eval mode)
        """
        groups = np.arange(len(images)) if groups is None else np.asarray(groups)
        seeds = self._seeds(cv + 1 if isinstance(cv, Integral) else cv.get_n_splits(images, Y, groups) + 1)
        if isinstance(cv, Integral):
            cv = MultilabelStratifiedGroupKFold(cv, shuffle=True, random_state=seeds.pop())
        folds = list(zip(cv.split(images, Y, groups), seeds))
        for (train, test), seed in tqdm(folds, desc="cross-fitting folds", unit="fold", disable=not self.verbose):
            state, _ = self._fine_tune(images[train], Y[train], groups[train], seed)
            net = ResNet18Classifier(Y.shape[1])
            net.load_state_dict(state)
            yield train, test, net.eval()

    def _embed(self, X, state):
        embed = check_memory(self.memory).cache(embed_resnet, ignore=["batch_size", "n_jobs", "device", "verbose"])
        return embed(X, state, image_size=self.image_size, batch_size=self.batch_size, device=self.device,
                     precision=self._resolved_precision(), n_jobs=self.n_jobs, verbose=self.verbose)

    def _head_proba(self, backbone, head, X):
        net = _Proba(_inference_backbone(backbone), copy.deepcopy(head))
        return forward(net, X, image_size=self.image_size, batch_size=self.batch_size, device=self.device,
                       precision=self._resolved_precision(), n_jobs=self.n_jobs, verbose=self.verbose,
                       desc="ResNet18 head")

    def transform(self, X):
        """512-d embeddings, or the head's probabilities with ``output="proba"``; float32.

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
        return self._embed(X, numpy_state(self.model_.state_dict()))

    @available_if(_has_head)
    def predict_proba(self, X):
        """Probabilities of the fine-tuned network's own head, float32 (n, L).

        Only with ``fine_tune`` set: it is the end-to-end fine-tuned ResNet18.
        """
        check_is_fitted(self, "head_")
        if self.head_ is None:
            raise NotFittedError("This ResNetEmbedder was fitted with fine_tune=None and has no head; refit it.")
        return self._head_proba(self.model_, self.head_, X)

    def get_feature_names_out(self, input_features=None):
        """``resnet_0`` ... ``resnet_511``, or ``resnet_proba_0`` ... with ``output="proba"``."""
        check_is_fitted(self, "n_features_out_")
        prefix = "resnet_" if self.output == "embedding" else "resnet_proba_"
        return np.asarray([f"{prefix}{i}" for i in range(self.n_features_out_)], dtype=object)

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
    def load(cls, path, **params) -> ResNetEmbedder:
        """Read an embedder written by :meth:`save`; ``params`` override saved parameters (e.g. ``device``)."""
        data = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(data, Mapping) or data.get("format") != EMBEDDER_FORMAT:
            raise ValueError(f"{os.fspath(path)!r} is not a file written by ResNetEmbedder.save.")
        est = cls(**{**data["params"], **params})
        est.model_ = build_backbone(data["backbone"]).eval()
        est.head_ = None
        if data["head"] is not None:
            est.head_ = torch.nn.Linear(N_FEATURES, data["head"]["weight"].shape[0])
            est.head_.load_state_dict(data["head"])
            est.head_.eval()
        est.history_ = list(data["history"])
        est.n_features_out_ = N_FEATURES if est.output == "embedding" else len(data["head"]["weight"])
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
