"""The skorch training stack: every torch network in skcxr trains through these classes.

:class:`MultilabelNeuralNetClassifier` is a :class:`skorch.NeuralNet` that
takes float features ``X`` of shape ``(n, d)`` and a 0/1 indicator matrix ``Y``
of shape ``(n, L)``, trains with :class:`torch.nn.BCEWithLogitsLoss` (one
sigmoid per label), stops early on the loss of an internal validation part
that is label-stratified and patient-disjoint when ``fit`` gets ``groups``,
keeps the weights of its best epoch and tunes per-label thresholds on that
part. It behaves like any scikit-learn classifier: ``clone``,
``get_params``/``set_params``, pickling, ``GridSearchCV``/``cross_validate``
with multi-label scorers.

:class:`BaseNet` holds what every net shares (seeding, ``device="auto"``,
patient-disjoint validation, early stopping, Ctrl-C, parameter checks).
:class:`CNNFineTuner` is the same classifier for image stacks: it trains a
:class:`skcxr.nn.resnet.CNNClassifier` (any backbone of :mod:`skcxr.nn.backbones`)
with batch augmentation; with ``fine_tune="last"`` the module freezes all but the
backbone's last stage. :func:`fine_tune_cnn` and its cached form
:func:`cached_fine_tune_cnn` are what :class:`skcxr.features.CNNEmbedder` (and
every other estimator that needs the fine-tuned network) call. :class:`SegmentationNet` trains the U-Net of
:class:`skcxr.segmentation.UNetSegmenter` on image/mask pairs.

Patient ids
-----------
Chest X-ray sets hold several images per patient. Pass ``groups`` (one patient
id per sample) to ``fit`` so the inner validation part never shares a patient
with the training part; without it, early stopping and tuned thresholds are
chosen on images of patients the network trains on, which makes them
optimistic. Inside a ``Pipeline`` with scikit-learn's metadata routing off (its
default), pass ``clf__groups=...`` (:func:`skcxr.model_selection.groups_params`
builds these names); with routing on, ``fit(X, Y, groups=...)`` reaches these
estimators by default, as it reaches the cross-validation splitter.
"""

from __future__ import annotations

import contextlib
import copy
import signal
import threading
from collections.abc import Mapping
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from sklearn.utils._param_validation import Interval, StrOptions, validate_parameter_constraints
from sklearn.utils.validation import check_is_fitted as _sklearn_check_is_fitted
from sklearn.utils.validation import validate_data
from skorch import NeuralNet
from skorch.callbacks import Callback, EarlyStopping, EpochTimer, LRScheduler, PassthroughScoring, PrintLog
from skorch.dataset import unpack_data
from skorch.utils import data_from_dataset, to_numpy
from torch import nn
from torch.utils.data import Dataset, Subset
from tqdm.auto import tqdm

from ._cache import check_memory
from ._torch import PRECISIONS, TorchEstimatorMixin, autocast, resolve_device, training_precision
from ._validation import check_image_stack, check_multilabel_Y
from .metrics import check_thresholds, tune_thresholds
from .model_selection import MultilabelStratifiedGroupShuffleSplit
from .nn import MLP, BCEDiceLoss, DeeperMLP, UNet, augment, augment_params, balanced_pos_weight, seeded
from .nn.backbones import OFFLINE_IMAGENET, build_cnn
from .nn.resnet import CNNClassifier, is_weights_name

__all__ = [
    "MLP",
    "DeeperMLP",
    "BaseNet",
    "MultilabelValidSplit",
    "TuneThresholds",
    "EpochProgress",
    "MultilabelNeuralNetClassifier",
    "CNNFineTuner",
    "ResNetFineTuner",
    "SegmentationNet",
    "fine_tune_cnn",
    "cached_fine_tune_cnn",
    "fit_state",
]


class MultilabelValidSplit:
    """The internal train/validation split of the skorch nets: patient-disjoint, label-stratified.

    A skorch ``train_split``: called with the dataset, the 2-D ``y`` and the
    patient ``groups``, it returns ``(train, valid)`` subsets drawn by
    :class:`skcxr.model_selection.MultilabelStratifiedGroupShuffleSplit`, so
    every label's positives land in both parts as evenly as whole patients
    allow, and no patient is on both sides. Without ``groups`` each sample is
    its own group. (skorch's own ``ValidSplit(stratified=True)`` rejects a 2-D
    ``y``.)

    Parameters
    ----------
    valid_size : float or int, default=0.2
        Fraction (or number) of samples used for validation.
    stratified : bool, default=True
        Multi-label stratification; ``False`` balances sizes only.
    random_state : int or None, default=None
        ``None`` draws the seed from torch's global generator, which the nets
        seed from their ``random_state``, so the net's ``random_state`` fixes
        the split too.

    Examples
    --------
    >>> import numpy as np
    >>> from skorch.dataset import Dataset
    >>> from skcxr.neural import MultilabelValidSplit
    >>> X = np.zeros((10, 3), dtype="float32")
    >>> Y = np.eye(2, dtype="float32")[np.arange(10) % 2]
    >>> patients = np.repeat(np.arange(5), 2)
    >>> train, valid = MultilabelValidSplit(0.2, random_state=0)(Dataset(X, Y), Y, groups=patients)
    >>> set(patients[train.indices]) & set(patients[valid.indices])
    set()
    """

    def __init__(self, valid_size=0.2, stratified=True, random_state=None):
        self.valid_size = valid_size
        self.stratified = stratified
        self.random_state = random_state

    def __call__(self, dataset, y=None, groups=None):
        seed = self.random_state
        if seed is None:
            seed = int(torch.randint(2**31 - 1, (1,)).item())
        Y = None
        if self.stratified and y is not None:
            Y = (np.asarray(y) > 0.5).astype(np.uint8)
            if Y.ndim == 1:
                Y = Y[:, None]
        splitter = MultilabelStratifiedGroupShuffleSplit(1, test_size=self.valid_size, random_state=seed)
        train, valid = next(splitter.split(np.zeros(len(dataset)), Y, groups))
        return Subset(dataset, train), Subset(dataset, valid)

    def __repr__(self):
        return (
            f"{type(self).__name__}(valid_size={self.valid_size!r}, "
            f"stratified={self.stratified!r}, random_state={self.random_state!r})"
        )


class TuneThresholds(Callback):
    """skorch callback: per-label F1-optimal thresholds on the validation part, after training.

    Runs at the end of training (after early stopping restored the best
    weights) and sets ``net.tuned_thresholds_`` with
    :func:`skcxr.metrics.tune_thresholds`; ``None`` when the net has no
    validation part.
    """

    def on_train_begin(self, net, **kwargs):
        self.dataset_valid_ = None

    def on_epoch_end(self, net, dataset_valid=None, **kwargs):
        self.dataset_valid_ = dataset_valid

    def on_train_end(self, net, **kwargs):
        dataset, self.dataset_valid_ = getattr(self, "dataset_valid_", None), None
        net.tuned_thresholds_ = None
        if dataset is None:
            return
        _, Y_valid = data_from_dataset(dataset)
        net.tuned_thresholds_ = tune_thresholds(to_numpy(Y_valid), net.predict_proba(dataset))


class EpochProgress(Callback):
    """A tqdm bar over the training epochs with the last train and validation losses, shown at ``verbose=1``.

    ``verbose >= 2`` prints skorch's per-epoch table instead; 0 shows nothing.
    """

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.bar_ = tqdm(total=net.max_epochs, desc=type(net).__name__, unit="epoch", disable=net.verbose != 1)

    def on_epoch_end(self, net, **kwargs):
        last = net.history[-1]
        self.bar_.set_postfix({k: f"{last[k]:.4f}" for k in ("train_loss", "valid_loss") if k in last},
                              refresh=False)
        self.bar_.update()

    def on_train_end(self, net, X=None, y=None, **kwargs):
        self.bar_.close()


class _EpochTable(PrintLog):
    """skorch's per-epoch table, printed at ``verbose >= 2`` (1 shows :class:`EpochProgress`'s bar)."""

    def _sink(self, text, verbose):
        super()._sink(text, verbose >= 2)


@contextlib.contextmanager
def _watch_ctrl_c():
    """Record a Ctrl-C (SIGINT) in the block; skorch's ``partial_fit`` swallows the KeyboardInterrupt it raises.

    skorch uses ``KeyboardInterrupt`` for two things: a user's Ctrl-C and
    ``EarlyStopping``'s stop, and its ``partial_fit`` ends training quietly on
    both. Watching the signal tells them apart. Only the main thread receives
    signals; elsewhere nothing is installed.
    """
    interrupted = []
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield interrupted
        return

    def handler(signum, frame):
        interrupted.append(signum)
        previous(signum, frame)  # Python's default raises KeyboardInterrupt
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)


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
    - ``precision`` (see :func:`skcxr._torch.training_precision`): with "bf16",
      forward passes (training, validation, prediction) run under bf16
      autocast (AMP); "auto" does so on CUDA GPUs with bf16 and stays fp32 on
      the CPU. Losses and outputs are float32.

    Subclasses say which data they take (``_check_data``), what the module's
    size parameters are (``_module_size_params``) and what they predict.
    """

    # Patient ids are requested by default, so routed fits (metadata routing on) deliver them.
    __metadata_request__fit = {"groups": True}
    __metadata_request__partial_fit = {"groups": True}
    #: The attribute set by the data at the first fit: marks a fitted net (checked before prediction).
    _fitted_attribute = "n_features_in_"

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
            early = EarlyStopping(monitor="valid_loss", patience=self.patience, load_best=True)
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

    def _resolved_precision(self) -> str:
        """``precision`` resolved for training and prediction on ``device`` (:func:`training_precision`)."""
        return training_precision(self.precision, self.device)

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


class MultilabelNeuralNetClassifier(ClassifierMixin, BaseNet):
    """A skorch neural network for multi-label classification of feature vectors.

    One sigmoid output per label, trained with
    :class:`torch.nn.BCEWithLogitsLoss`. A part of the training data
    (``train_split``: label-stratified, patient-disjoint given ``groups``) is
    held out to stop training when its loss has not improved for ``patience``
    epochs; the weights of the best epoch are restored, and per-label
    F1-optimal thresholds are found on that same part (used by ``predict``
    with ``threshold="tuned"``).

    All skorch parameters work (``module__*``, ``optimizer__*``,
    ``iterator_train__*``, ``callbacks``, ``warm_start``, ...); the training
    batches are shuffled unless ``iterator_train__shuffle=False``. A
    ``KeyboardInterrupt`` (Ctrl-C) during training propagates (skorch alone
    would return the half-trained net).

    Parameters
    ----------
    module : torch module class or instance, default=MLP
        Takes ``n_features`` and ``n_outputs`` (set from the data at fit) and
        returns one logit per label, or a tuple whose first element is the
        logits: :class:`MLP`, :class:`DeeperMLP` or your own.
    criterion : torch loss class, default=torch.nn.BCEWithLogitsLoss
    optimizer : torch optimizer class, default=torch.optim.AdamW
    lr : float, default=1e-3
    max_epochs : int, default=100
    batch_size : int, default=128
        Training and prediction batch size. A last training batch of a single
        sample (which BatchNorm cannot train on) is dropped.
    train_split : callable or None, default=MultilabelValidSplit(0.2)
        skorch's internal validation split, called with ``groups``; ``None``
        trains on all data with no early stopping and no tuned thresholds.
    callbacks : list of (name, callback) or None, default=None
        Extra skorch callbacks.
    patience : int or None, default=10
        Early stopping: epochs without improvement of the validation loss
        before training stops; the best epoch's weights are restored.
        ``None`` trains ``max_epochs`` epochs and keeps the last weights.
    lr_scheduler : {None, "plateau", "cosine"} or skorch LRScheduler, default=None
        ``"plateau"`` halves the learning rate after 3 epochs without
        improvement of the validation loss; ``"cosine"`` anneals it to 0 over
        ``max_epochs``; a :class:`skorch.callbacks.LRScheduler` is used as given.
    pos_weight : "balanced", None or array-like of shape (n_labels,), default="balanced"
        Weight of the positive term of each label's loss. ``"balanced"`` gives
        :func:`skcxr.nn.balanced_pos_weight` of ``Y`` (negatives / positives,
        clipped to [1/100, 100]).
    threshold : float, array-like of shape (n_labels,) or "tuned", default=0.5
        ``predict`` calls label ``l`` positive when its probability is
        ``>= threshold[l]``. ``"tuned"`` uses :attr:`tuned_thresholds_`.
    predict_nonlinearity : "auto", callable or None, default="auto"
        Turns the module's output into probabilities in ``predict_proba``;
        ``"auto"`` is one sigmoid per label, ``None`` returns the raw output.
    device : str, default="auto"
        ``"auto"`` uses CUDA when available, else the CPU; or any torch device
        string. The ``device`` attribute reads as the resolved device, while
        ``get_params()`` keeps ``"auto"``, so a pickled model loads anywhere.
    precision : {"auto", "fp32", "bf16"}, default="auto"
        ``"bf16"``: forward passes (training and prediction) under bfloat16
        autocast, i.e. mixed precision (AMP) with float32 weights, gradients
        and losses. ``"auto"`` is bf16 on a CUDA GPU that supports it and
        fp32 on the CPU. Probabilities are float32 either way.
    random_state : int, RandomState or None, default=None
        Seeds torch during ``fit`` (weight init, dropout, batch order) and the
        internal split, so fits are reproducible on one device; torch's global
        random state (CPU and CUDA) is left as it was. ``None``: not seeded.
    verbose : int, default=0
        ``1`` shows a progress bar over the epochs with the last losses
        (:class:`EpochProgress`), ``2`` prints skorch's per-epoch table.
    **kwargs
        Further skorch parameters, e.g. ``module__hidden=(256, 128)``,
        ``optimizer__weight_decay=1e-4``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_labels,)
        Label names: the columns of ``Y`` when it is a DataFrame, else ``0..L-1``.
    n_features_in_ : int
        Number of input features.
    feature_names_in_ : ndarray of str
        Column names of ``X`` when it was a DataFrame with string columns.
    pos_weight_ : ndarray of shape (n_labels,) or None
        The positive-class weights used in the loss.
    tuned_thresholds_ : ndarray of shape (n_labels,) or None
        Per-label F1-optimal thresholds on the validation part
        (:class:`TuneThresholds`); None without ``train_split``.
    module_, criterion_, optimizer_, history_
        skorch's fitted components and per-epoch history.

    Notes
    -----
    ``classes_`` follows scikit-learn's multi-label ``MLPClassifier``. With
    ``L <= 2`` labels, scorers built by ``make_scorer(response_method=
    "predict_proba")`` (those of :mod:`skcxr.metrics` included) read
    ``classes_`` as a binary problem and keep one column only, as they do for
    ``OneVsRestClassifier``; there, call the metric on ``predict_proba``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_multilabel_classification
    >>> from skcxr.neural import MultilabelNeuralNetClassifier
    >>> X, Y = make_multilabel_classification(200, n_features=20, n_classes=4, random_state=0)
    >>> patients = np.arange(200) // 2                    # two images per patient
    >>> clf = MultilabelNeuralNetClassifier(max_epochs=5, random_state=0)
    >>> clf = clf.set_params(module__hidden=(64,), module__dropout=0.2).fit(X, Y, groups=patients)
    >>> clf.predict_proba(X[:3]).shape, clf.predict(X[:3]).shape, clf.classes_.tolist()
    ((3, 4), (3, 4), [0, 1, 2, 3])
    """

    _fitted_attribute = "classes_"

    def __init__(
        self,
        module=MLP,
        *,
        criterion=nn.BCEWithLogitsLoss,
        optimizer=torch.optim.AdamW,
        lr=1e-3,
        max_epochs=100,
        batch_size=128,
        train_split=MultilabelValidSplit(0.2),
        callbacks=None,
        patience=10,
        lr_scheduler=None,
        pos_weight="balanced",
        threshold=0.5,
        predict_nonlinearity="auto",
        device="auto",
        random_state=None,
        verbose=0,
        **kwargs,
    ):
        super().__init__(
            module, criterion=criterion, optimizer=optimizer, lr=lr, max_epochs=max_epochs, batch_size=batch_size,
            train_split=train_split, callbacks=callbacks, patience=patience, lr_scheduler=lr_scheduler,
            predict_nonlinearity=predict_nonlinearity, device=device, random_state=random_state, verbose=verbose,
            **kwargs,
        )  # fmt: skip
        self.pos_weight = pos_weight
        self.threshold = threshold


    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = False
        tags.classifier_tags.multi_label = True
        return tags

    @property
    def _default_callbacks(self):
        callbacks = super()._default_callbacks
        callbacks.insert(-1, ("tune_thresholds", TuneThresholds()))  # after early stopping restored the best epoch
        return callbacks

    def _module_size_params(self) -> dict:
        """The input width and the number of labels, once the data has been seen."""
        if not hasattr(self, "classes_"):
            return {}
        return {"n_features": self.n_features_in_, "n_outputs": len(self.classes_)}

    def initialize_criterion(self):
        kwargs = self.get_params_for("criterion")
        pos_weight = getattr(self, "pos_weight_", None)
        if pos_weight is not None and "pos_weight" not in kwargs:
            kwargs["pos_weight"] = torch.as_tensor(pos_weight, dtype=torch.float32)
        self.criterion_ = self.initialized_instance(self.criterion, kwargs)
        return self

    def _check_data(self, X, y, reset):
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None; "
                "pass Y, a 2-D 0/1 indicator matrix (n_samples, n_labels)."
            )
        X = self._validate_X(X, reset)
        Y = check_multilabel_Y(y, len(X))
        if reset:
            columns = getattr(y, "columns", None)
            self.classes_ = np.asarray(columns) if columns is not None else np.arange(Y.shape[1])
            self.y_dtype_ = np.asarray(y).dtype
            self.pos_weight_ = self._compute_pos_weight(Y)
        elif Y.shape[1] != len(self.classes_):
            raise ValueError(
                f"Y has {Y.shape[1]} labels but the classifier was fitted with {len(self.classes_)}."
            )
        return X, Y.astype(np.float32)

    def _compute_pos_weight(self, Y):
        weight = self.pos_weight
        n_labels = Y.shape[1]
        if weight is None:
            return None
        if isinstance(weight, str):  # "balanced"
            return balanced_pos_weight(Y, names=self.classes_)
        weight = np.asarray(weight, dtype=np.float32)
        if weight.shape != (n_labels,) or not np.isfinite(weight).all() or (weight <= 0).any():
            raise ValueError(
                f"pos_weight must hold {n_labels} positive finite numbers (one per label), "
                f"got {self.pos_weight!r}."
            )
        return weight

    _parameter_constraints = {
        **BaseNet._parameter_constraints,
        "pos_weight": [None, StrOptions({"balanced"}), "array-like"],
        "threshold": [Interval(Real, None, None, closed="neither"), "array-like", StrOptions({"tuned"})],
    }

    def _check_params(self):
        super()._check_params()
        self._check_threshold_param()

    def _check_threshold_param(self):
        constraint = {"threshold": self._parameter_constraints["threshold"]}
        validate_parameter_constraints(constraint, {"threshold": self.threshold}, type(self).__name__)
        if isinstance(self.threshold, str) and not self.train_split:
            raise ValueError('threshold="tuned" needs the internal validation split; train_split is None.')

    # -- prediction

    def predict_proba(self, X):
        """Probability of each label: ``predict_nonlinearity`` of the module's output (sigmoid by default).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or a torch Dataset

        Returns
        -------
        ndarray of shape (n_samples, n_labels), float32
        """
        return self._predict_nonlinear(X)

    def predict(self, X):
        """0/1 label matrix: probability ``>= threshold`` per label, in the dtype of the ``y`` given to ``fit``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_labels)
        """
        proba = self.predict_proba(X)
        return (proba >= self._thresholds()).astype(self.y_dtype_)

    def _thresholds(self):
        n_labels = len(self.classes_)
        self._check_threshold_param()
        if isinstance(self.threshold, str):
            if getattr(self, "tuned_thresholds_", None) is None:
                raise ValueError('threshold="tuned" but no thresholds were tuned: fit with a train_split.')
            return self.tuned_thresholds_
        return check_thresholds(self.threshold, n_labels)


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


# --------------------------------------------------------------------------- the fine-tuning function
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
        Estimators pass it resolved (:func:`skcxr._torch.training_precision`),
        so the cache key holds the arithmetic used.
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
