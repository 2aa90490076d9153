"""The nets on image stacks: CNNFineTuner (formerly ResNetFineTuner) and SegmentationNet."""

from __future__ import annotations

import numpy as np
import torch
from skorch.dataset import unpack_data

from .._validation import check_image_stack
from ..nn import BCEDiceLoss, UNet, augment, augment_params
from ..nn.resnet import CNNClassifier
from ._base import BaseNet
from ._classifier import MultilabelNeuralNetClassifier
from ._split import MultilabelValidSplit


class _ImageNetMixin:
    """For nets on image stacks (n, S, S) in [-1, 1]: per-batch augmentation, channels_last.

    Each training batch gets :func:`skcxr.nn.augment` with ``self.augment``
    (:func:`skcxr.nn.augment_params`), drawn from a generator seeded under the
    fit's seed; with ``_augment_masks`` the targets are masks that get the
    same geometry. The validation part is not augmented.
    """

    _augment_masks = False

    def _validate_X(self, X, reset):
        X = check_image_stack(X)
        if reset:
            self.image_shape_ = X.shape[1:]
        elif X.shape[1:] != self.image_shape_:
            raise ValueError(f"X has images of shape {X.shape[1:]}; the net was trained on {self.image_shape_}.")
        return X[:, None]  # (n, 1, S, S)

    def _check_params(self):
        super()._check_params()
        augment_params(self.augment)  # the dict's keys

    def _start_fit(self):
        self.__dict__["_augment_gen"] = torch.Generator().manual_seed(int(torch.randint(2**31 - 1, (1,))))

    def _end_fit(self):
        self.__dict__.pop("_augment_gen", None)

    def initialize_module(self):
        super().initialize_module()
        self.module_.to(memory_format=torch.channels_last)
        return self

    def infer(self, x, **fit_params):
        if isinstance(x, torch.Tensor) and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return super().infer(x, **fit_params)

    def train_step_single(self, batch, **fit_params):
        params = augment_params(self.augment)
        if params is not None:
            Xi, yi = unpack_data(batch)
            gen = self.__dict__["_augment_gen"]
            batch = augment(Xi, gen, masks=yi, **params) if self._augment_masks else (augment(Xi, gen, **params), yi)
        return super().train_step_single(batch, **fit_params)


class CNNFineTuner(_ImageNetMixin, MultilabelNeuralNetClassifier):
    """:class:`MultilabelNeuralNetClassifier` for image stacks: trains a :class:`skcxr.nn.resnet.CNNClassifier`.

    ``X`` is a preprocessed stack ``(n, S, S)`` in [-1, 1]. Each training
    batch is augmented (:func:`skcxr.nn.augment`: per-image rotation, shift,
    brightness and contrast, no flip by default); the validation part is not.
    With ``module__fine_tune="last"`` (or ``"layer4"``) the module freezes
    every backbone parameter outside its last stage (``requires_grad=False``,
    so no gradient is computed for them) and keeps those layers in eval mode,
    BatchNorm statistics included. On the CPU batches run channels_last.
    ``ResNetFineTuner`` is the former name.

    Parameters
    ----------
    module : default=CNNClassifier
        Takes ``n_outputs`` (set from ``Y``); ``module__backbone``,
        ``module__weights`` and ``module__fine_tune`` reach
        :class:`skcxr.nn.resnet.CNNClassifier`.
    augment : bool or dict, default=True
        See :func:`skcxr.nn.augment_params`.
    lr, max_epochs, batch_size, patience, train_split
        As in :class:`MultilabelNeuralNetClassifier`, with defaults for
        fine-tuning (1e-4, 5, 32, 3, a 15 % patient-disjoint validation part).
    **kwargs
        Every other parameter of :class:`MultilabelNeuralNetClassifier`.

    Examples
    --------
    >>> import numpy as np
    >>> from skcxr.neural import CNNFineTuner
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-1, 1, (16, 32, 32)).astype(np.float32)
    >>> Y = rng.integers(0, 2, (16, 3))
    >>> net = CNNFineTuner(max_epochs=1, random_state=0).fit(X, Y)
    >>> net.predict_proba(X[:2]).shape
    (2, 3)
    """

    def __init__(
        self,
        module=CNNClassifier,
        *,
        augment=True,
        lr=1e-4,
        max_epochs=5,
        batch_size=32,
        patience=3,
        train_split=MultilabelValidSplit(0.15),
        **kwargs,
    ):
        super().__init__(
            module, lr=lr, max_epochs=max_epochs, batch_size=batch_size, patience=patience,
            train_split=train_split, **kwargs,
        )  # fmt: skip
        self.augment = augment

    def _module_size_params(self) -> dict:
        return {"n_outputs": len(self.classes_)} if hasattr(self, "classes_") else {}

    _parameter_constraints = {
        **MultilabelNeuralNetClassifier._parameter_constraints,
        "augment": ["boolean", dict],
    }


#: The former name of :class:`CNNFineTuner`.
ResNetFineTuner = CNNFineTuner


class SegmentationNet(_ImageNetMixin, BaseNet):
    """A skorch net for binary segmentation of image stacks; trains a :class:`skcxr.nn.UNet` with BCE + Dice.

    ``X`` is a preprocessed stack ``(n, S, S)`` in [-1, 1], ``y`` the masks
    ``(n, S, S)`` (bool, 0/1, or soft values in [0, 1] from resizing). Each
    training batch is augmented with one random geometry per image shared by
    the image and its mask (:func:`skcxr.nn.augment`: small rotation, shift,
    brightness and contrast; no left-right flip unless ``augment={"hflip":
    True}``). Training stops early on the loss of a 15 % validation part that
    takes whole patients (or images, without ``groups``); the best epoch is
    restored. :class:`skcxr.segmentation.UNetSegmenter` is the scikit-learn
    transformer around it.

    Parameters
    ----------
    module : default=UNet
        ``module__depth`` and ``module__base_width`` reach :class:`skcxr.nn.UNet`.
    criterion : default=BCEDiceLoss
    augment : bool or dict, default=True
    lr, max_epochs, batch_size, patience, train_split
        As in :class:`BaseNet`, with defaults for U-Nets (1e-3, 60, 16, 10, a
        15 % validation part).
    **kwargs
        Every other parameter of :class:`BaseNet`.

    Examples
    --------
    >>> import numpy as np
    >>> from skcxr.neural import SegmentationNet
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-1, 1, (8, 32, 32)).astype(np.float32)
    >>> net = SegmentationNet(max_epochs=1, module__depth=2, module__base_width=4, random_state=0)
    >>> net.fit(X, X > 0).predict_proba(X[:2]).shape
    (2, 32, 32)
    """

    _augment_masks = True
    _fitted_attribute = "image_shape_"

    def __init__(
        self,
        module=UNet,
        *,
        criterion=BCEDiceLoss,
        augment=True,
        lr=1e-3,
        max_epochs=60,
        batch_size=16,
        patience=10,
        train_split=MultilabelValidSplit(0.15, stratified=False),
        **kwargs,
    ):
        super().__init__(
            module, criterion=criterion, lr=lr, max_epochs=max_epochs, batch_size=batch_size, patience=patience,
            train_split=train_split, **kwargs,
        )  # fmt: skip
        self.augment = augment

    _parameter_constraints = {**BaseNet._parameter_constraints, "augment": ["boolean", dict]}

    def _check_data(self, X, y, reset):
        X = self._validate_X(X, reset)
        if y is None:
            raise ValueError(f"{type(self).__name__} needs the masks y (n, S, S) to fit; got None.")
        masks = np.asarray(y, dtype=np.float32)
        if masks.shape != X.shape[:1] + X.shape[2:]:
            raise ValueError(f"masks have shape {masks.shape}; the images have {X.shape[:1] + X.shape[2:]}.")
        if not (np.isfinite(masks).all() and masks.min(initial=0) >= 0 and masks.max(initial=0) <= 1):
            raise ValueError("masks must hold values in [0, 1] (bool, 0/1 or soft).")
        return X, masks[:, None]

    def predict_proba(self, X):
        """Foreground probability of each pixel, float32 (n, S, S)."""
        return self._predict_nonlinear(X)[:, 0]
