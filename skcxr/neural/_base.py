"""BaseNet: the skorch base every torch network in skcxr trains with."""

from __future__ import annotations

import contextlib
import copy
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions, validate_parameter_constraints
from sklearn.utils.validation import check_is_fitted as _sklearn_check_is_fitted
from sklearn.utils.validation import validate_data
from skorch import NeuralNet
from skorch.callbacks import EpochTimer, LRScheduler, PassthroughScoring
from skorch.utils import to_numpy
from torch import nn
from torch.utils.data import Dataset

from .._torch import PRECISIONS, TorchEstimatorMixin, autocast, resolve_device
from ..nn import seeded
from ._callbacks import EpochProgress, QuietEarlyStopping, _EpochTable
from ._interrupt import _watch_ctrl_c
from ._split import MultilabelValidSplit


class BaseNet(TorchEstimatorMixin, NeuralNet):
    """skcxr's skorch base: what every torch network in skcxr trains with.

    - ``device="auto"`` (CUDA when present) stays ``"auto"`` in
      ``get_params()`` and in pickles, so a saved model loads anywhere;
    - ``random_state`` seeds torch for the fit (weights, dropout, batch order,
      the validation split) and restores torch's global CPU and CUDA
      generators afterwards (:func:`skcxr.nn.seeded`);
    - ``train_split`` is called with the patient ids given to
      ``fit(X, y, groups=...)``, so the validation part takes whole patients;
    - early stopping on the validation loss restores the best epoch's weights
      (``patience``); ``lr_scheduler`` adds a schedule;
    - training batches are shuffled and a lone last sample (which BatchNorm
      cannot train on) is dropped;
    - a Ctrl-C during training propagates (skorch alone would return the
      half-trained net);
    - scikit-learn's parameter validation (``_parameter_constraints``) runs at fit;
    - ``precision`` (resolved with :func:`skcxr._torch.resolve_precision`'s
      ``mode="train"`` for every forward pass: training, validation and
      prediction): with "bf16", forward passes run under bf16 autocast (AMP);
      "auto" does so on CUDA GPUs with bf16 and stays fp32 on the CPU. Losses
      and outputs are float32.

    Subclasses say which data they take (``_check_data``), what the module's
    size parameters are (``_module_size_params``) and what they predict.
    """

    # Patient ids are requested by default, so routed fits (metadata routing on) deliver them.
    __metadata_request__fit = {"groups": True}
    __metadata_request__partial_fit = {"groups": True}
    #: The attribute set by the data at the first fit: marks a fitted net (checked before prediction).
    _fitted_attribute = "n_features_in_"
    #: Prediction runs in the arithmetic the net trained in.
    _precision_mode = "train"

    def __init__(
        self,
        module,
        *,
        criterion,
        optimizer=torch.optim.AdamW,
        lr=1e-3,
        max_epochs=100,
        batch_size=128,
        train_split=MultilabelValidSplit(0.2),
        callbacks=None,
        patience=10,
        lr_scheduler=None,
        predict_nonlinearity="auto",
        device="auto",
        precision="auto",
        random_state=None,
        verbose=0,
        **kwargs,
    ):
        super().__init__(
            module,
            criterion=criterion,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            train_split=train_split,
            callbacks=callbacks,
            predict_nonlinearity=predict_nonlinearity,
            device=device,
            verbose=verbose,
            **kwargs,
        )
        self.patience = patience
        self.lr_scheduler = lr_scheduler
        self.precision = precision
        self.random_state = random_state

    # -- device="auto": the parameter keeps "auto", skorch's internals read the resolved device

    @property
    def device(self):
        """The torch device in use (``"auto"`` resolved); ``get_params()["device"]`` is the setting."""
        requested = self.__dict__.get("device", "auto")
        if isinstance(requested, str) and requested == "auto":
            return resolve_device("auto")
        return requested

    @device.setter
    def device(self, value):
        self.__dict__["device"] = value

    def get_params(self, deep=True, **kwargs):
        params = super().get_params(deep=deep, **kwargs)
        params["device"] = self.__dict__.get("device", "auto")
        return params

    def __setstate__(self, state):
        requested = state.get("device")
        auto = isinstance(requested, str) and requested == "auto"
        if auto:
            state["device"] = str(resolve_device("auto"))
        super().__setstate__(state)
        if auto:
            self.__dict__["device"] = "auto"

    # -- skorch components

    @property
    def _default_callbacks(self):
        callbacks = [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            ("valid_loss", PassthroughScoring(name="valid_loss")),
        ]
        if self.patience is not None and self.train_split:
            early = QuietEarlyStopping(monitor="valid_loss", patience=self.patience, load_best=True)
            callbacks.append(("early_stopping", early))
        scheduler = self._make_lr_scheduler()
        if scheduler is not None:
            callbacks.append(("lr_scheduler", scheduler))
        callbacks += [("progress", EpochProgress()), ("print_log", _EpochTable())]
        return callbacks

    def _make_lr_scheduler(self):
        """The LR scheduler callback; None when there is none (invalid values are reported by fit)."""
        if isinstance(self.lr_scheduler, LRScheduler):
            return copy.deepcopy(self.lr_scheduler)
        if isinstance(self.lr_scheduler, str) and self.lr_scheduler == "plateau" and self.train_split:
            return LRScheduler(
                policy=torch.optim.lr_scheduler.ReduceLROnPlateau,
                monitor="valid_loss",
                factor=0.5,
                patience=3,
            )
        if isinstance(self.lr_scheduler, str) and self.lr_scheduler == "cosine":
            return LRScheduler(policy=torch.optim.lr_scheduler.CosineAnnealingLR, T_max=self.max_epochs)
        return None

    def _module_size_params(self) -> dict:
        """The module's size arguments taken from the data (none here; subclasses add theirs)."""
        return {}

    def initialize_module(self):
        kwargs = self.get_params_for("module")
        if kwargs or not isinstance(self.module, nn.Module):
            for key, value in self._module_size_params().items():
                kwargs.setdefault(key, value)
        self.module_ = self.initialized_instance(self.module, kwargs)
        return self

    def get_iterator(self, dataset, training=False):
        if not training:
            return super().get_iterator(dataset, training=False)
        kwargs = self.get_params_for("iterator_train")
        kwargs.setdefault("shuffle", True)
        batch_size = kwargs.setdefault("batch_size", self.batch_size)
        if batch_size == -1:
            batch_size = kwargs["batch_size"] = len(dataset)
        if "drop_last" not in kwargs and len(dataset) > batch_size and len(dataset) % batch_size == 1:
            kwargs["drop_last"] = True  # a lone last sample breaks BatchNorm in training mode
        return self.iterator_train(dataset, **kwargs)

    def get_split_datasets(self, X, y=None, **fit_params):
        """The training and validation datasets; ``train_split`` gets the patient ids given to ``fit``."""
        dataset = self.get_dataset(X, y)
        if not self.train_split:
            return dataset, None
        return self.train_split(dataset, y, groups=self.__dict__.get("_fit_groups"))

    def get_loss(self, y_pred, y_true, X=None, training=False):
        if isinstance(y_pred, tuple):  # modules may return (logits, extras...)
            y_pred = y_pred[0]
        return super().get_loss(y_pred.float(), y_true, X=X, training=training)

    def infer(self, x, **fit_params):
        with autocast(self._resolved_precision(), self.device):
            return super().infer(x, **fit_params)

    # -- parameters and data

    _parameter_constraints = {
        "lr": [Interval(Real, 0, None, closed="neither")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "patience": [None, Interval(Integral, 1, None, closed="left")],
        "lr_scheduler": [None, StrOptions({"plateau", "cosine"}), LRScheduler],
        "predict_nonlinearity": [None, StrOptions({"auto"}), callable],
        "precision": [StrOptions(set(PRECISIONS))],
        "random_state": ["random_state"],
    }

    def _check_params(self):
        # scikit-learn's check; skorch's own NeuralNet._validate_params shadows BaseEstimator's
        validate_parameter_constraints(self._parameter_constraints, self.get_params(deep=False), type(self).__name__)
        if self.lr_scheduler == "plateau" and not self.train_split:
            raise ValueError('lr_scheduler="plateau" monitors the validation loss; it needs a train_split.')

    def _validate_X(self, X, reset):
        return validate_data(self, X, reset=reset, dtype=np.float32)

    def _check_data(self, X, y, reset):
        """Checked ``(X, y)`` as float32 arrays; with ``reset``, the fitted attributes they define."""
        raise NotImplementedError

    # -- training

    @contextlib.contextmanager
    def _fitting(self, groups, n_samples):
        """Seed torch, hold the patient ids for ``train_split``, and let a Ctrl-C out of skorch."""
        if groups is not None:
            groups = np.asarray(groups)
            if groups.shape != (n_samples,):
                raise ValueError(f"groups must be 1-D with one patient id per sample ({n_samples}), got shape "
                                 f"{groups.shape}.")
        self.__dict__["_fit_groups"] = groups
        try:
            with seeded(self.random_state), _watch_ctrl_c() as interrupted:
                self._start_fit()
                yield
        finally:
            self.__dict__.pop("_fit_groups", None)
            self._end_fit()
        if interrupted:
            raise KeyboardInterrupt(f"{type(self).__name__}.fit interrupted (Ctrl-C)")

    def _start_fit(self):
        """Per-fit state created under the fit's seed (subclasses add to it)."""

    def _end_fit(self):
        """Drop the per-fit state."""

    def fit(self, X, y, groups=None, **fit_params):
        """Train on ``X`` and ``y`` (see the class for their forms).

        Parameters
        ----------
        X, y : array-like
        groups : array-like of shape (n_samples,), optional
            Patient id of each sample: the internal validation part takes whole
            patients. Without it, images of one patient may fall on both sides.
        **fit_params
            Passed to skorch's ``fit`` (and to the module's ``forward``).

        Returns
        -------
        self
        """
        self._check_params()
        reset = not (self.warm_start and self.initialized_)
        X, y = self._check_data(X, y, reset=reset)
        with self._fitting(groups, len(X)):
            if reset:
                self.initialize()
            super().partial_fit(X, y, **fit_params)  # skorch's fit is initialize + partial_fit
        return self

    def partial_fit(self, X, y=None, classes=None, groups=None, **fit_params):
        """Train for ``max_epochs`` more epochs without re-initialising (skorch's ``partial_fit``)."""
        self._check_params()
        X, y = self._check_data(X, y, reset=not hasattr(self, self._fitted_attribute))
        with self._fitting(groups, len(X)):
            super().partial_fit(X, y, classes=classes, **fit_params)
        return self

    # -- prediction

    def _predict_nonlinear(self, X) -> np.ndarray:
        """``predict_nonlinearity`` ("auto": sigmoid) of the module's output over X, float32."""
        _sklearn_check_is_fitted(self, self._fitted_attribute)
        if not isinstance(X, Dataset):
            X = self._validate_X(X, reset=False)
        nonlin = self.predict_nonlinearity
        if isinstance(nonlin, str) and nonlin == "auto":
            nonlin = torch.sigmoid
        probas = []
        for out in self.forward_iter(X, training=False):
            out = (out[0] if isinstance(out, tuple) else out).float()
            probas.append(to_numpy(out if nonlin is None else nonlin(out)))
        return np.concatenate(probas).astype(np.float32, copy=False)
