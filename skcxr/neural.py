"""Torch MLPs for feature vectors and a skorch classifier for multi-label ``Y``.

:class:`MultilabelNeuralNetClassifier` is a :class:`skorch.NeuralNet` that
takes float features ``X`` of shape ``(n, d)`` and a 0/1 indicator matrix ``Y``
of shape ``(n, L)``, trains with :class:`torch.nn.BCEWithLogitsLoss` (one
sigmoid per label), stops early on the loss of an internal, label-stratified
validation split and keeps the weights of its best epoch. It behaves like any
scikit-learn classifier: ``clone``, ``get_params``/``set_params``, pickling,
``GridSearchCV``/``cross_validate`` with multi-label scorers.

The modules :class:`MLP` and :class:`DeeperMLP` take the input size
(``n_features``) and the number of labels (``n_outputs``) from the data at
fit, so only their shape parameters are set by hand
(``module__hidden``, ``module__dropout``, ``module__batchnorm``). Any other
module that accepts ``n_features`` and ``n_outputs`` and returns one logit per
label works the same way.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from numbers import Integral

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from sklearn.model_selection import ShuffleSplit
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted as _sklearn_check_is_fitted
from sklearn.utils.validation import validate_data
from skorch import NeuralNet
from skorch.callbacks import EarlyStopping, EpochTimer, LRScheduler, PassthroughScoring, PrintLog
from skorch.utils import data_from_dataset
from torch import nn
from torch.utils.data import Subset

from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

from ._torch import resolve_device
from ._validation import check_multilabel_Y
from .metrics import check_thresholds, tune_thresholds

__all__ = ["MLP", "DeeperMLP", "MultilabelValidSplit", "MultilabelNeuralNetClassifier"]

#: Upper bound of ``pos_weight="balanced"`` (and 1/MAX_POS_WEIGHT the lower one):
#: a finding with 1 positive in 10,000 images must not dominate the loss.
MAX_POS_WEIGHT = 100.0


class MLP(nn.Module):
    """Fully connected network: ``[Linear -> (BatchNorm) -> ReLU -> Dropout] * k -> Linear``.

    It returns one logit per label (no final sigmoid; the loss applies it).

    Parameters
    ----------
    n_features : int
        Input size. Set from the data by :class:`MultilabelNeuralNetClassifier`.
    n_outputs : int
        Number of labels. Set from the data by :class:`MultilabelNeuralNetClassifier`.
    hidden : int or tuple of int, default=(512,)
        Width of each hidden layer; ``()`` gives a linear model.
    dropout : float, default=0.4
        Dropout probability after each hidden layer.
    batchnorm : bool, default=False
        Batch normalisation after each hidden linear layer.

    Examples
    --------
    >>> import torch
    >>> from skcxr.neural import MLP
    >>> MLP(20, 4, hidden=(32, 16))(torch.zeros(5, 20)).shape
    torch.Size([5, 4])
    """

    def __init__(self, n_features, n_outputs, hidden=(512,), dropout=0.4, batchnorm=False):
        super().__init__()
        hidden = (hidden,) if isinstance(hidden, Integral) else tuple(hidden)
        if any(not isinstance(h, Integral) or h < 1 for h in hidden):
            raise ValueError(f"hidden must be positive ints, got {hidden!r}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}.")
        layers = []
        width = int(n_features)
        for size in hidden:
            layers.append(nn.Linear(width, size))
            if batchnorm:
                layers.append(nn.BatchNorm1d(size))
            layers += [nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, int(n_outputs)))
        self.layers = nn.Sequential(*layers)

    def forward(self, X):
        return self.layers(X)


class DeeperMLP(MLP):
    """:class:`MLP` with three hidden layers (1024, 512, 256) and batch normalisation.

    Parameters
    ----------
    n_features, n_outputs : int
        Input size and number of labels (set from the data at fit).
    hidden : tuple of int, default=(1024, 512, 256)
    dropout : float, default=0.4
    batchnorm : bool, default=True

    Examples
    --------
    >>> import torch
    >>> from skcxr.neural import DeeperMLP
    >>> DeeperMLP(20, 4).eval()(torch.zeros(5, 20)).shape
    torch.Size([5, 4])
    """

    def __init__(self, n_features, n_outputs, hidden=(1024, 512, 256), dropout=0.4, batchnorm=True):
        super().__init__(n_features, n_outputs, hidden=hidden, dropout=dropout, batchnorm=batchnorm)


class MultilabelValidSplit:
    """The internal train/validation split of :class:`MultilabelNeuralNetClassifier`.

    A skorch ``train_split``: called with the dataset and the 2-D ``y``, it
    returns ``(train, valid)`` subsets. With ``stratified=True`` it uses
    iterative stratification (iterstrat's ``MultilabelStratifiedShuffleSplit``),
    so every label's positives land in both parts as evenly as possible; rare
    findings thus still have positives for the validation loss and the tuned
    thresholds. (skorch's own ``ValidSplit(stratified=True)`` rejects a 2-D ``y``.)

    Parameters
    ----------
    valid_size : float or int, default=0.2
        Fraction (or number) of samples used for validation.
    stratified : bool, default=True
        Multi-label stratification; ``False`` gives a plain shuffled split.
    random_state : int or None, default=None
        ``None`` draws the seed from torch's global generator, which
        :class:`MultilabelNeuralNetClassifier` seeds from its ``random_state``,
        so the classifier's ``random_state`` fixes the split too.

    Calling it with ``(dataset, y, groups=None)`` returns two
    :class:`torch.utils.data.Subset`; ``groups`` is ignored.

    Examples
    --------
    >>> import numpy as np
    >>> from skorch.dataset import Dataset
    >>> from skcxr.neural import MultilabelValidSplit
    >>> X = np.zeros((10, 3), dtype="float32")
    >>> Y = np.eye(2, dtype="float32")[np.arange(10) % 2]
    >>> train, valid = MultilabelValidSplit(0.2, random_state=0)(Dataset(X, Y), Y)
    >>> len(train), len(valid), Y[valid.indices].sum(axis=0).tolist()
    (8, 2, [1.0, 1.0])
    """

    def __init__(self, valid_size=0.2, stratified=True, random_state=None):
        self.valid_size = valid_size
        self.stratified = stratified
        self.random_state = random_state

    def __call__(self, dataset, y=None, groups=None):
        n_samples = len(dataset)
        seed = self.random_state
        if seed is None:
            seed = int(torch.randint(2**31 - 1, (1,)).item())
        indices = np.arange(n_samples)
        if self.stratified and y is not None:
            Y = np.asarray(y) > 0.5
            if Y.ndim == 1 or Y.shape[1] == 1:  # one label: stratify positives and negatives
                Y = np.column_stack([Y.reshape(-1), ~Y.reshape(-1)])
            splitter = MultilabelStratifiedShuffleSplit(
                n_splits=1, test_size=self.valid_size, random_state=seed
            )
            train, valid = next(splitter.split(indices, Y))
        else:
            splitter = ShuffleSplit(n_splits=1, test_size=self.valid_size, random_state=seed)
            train, valid = next(splitter.split(indices))
        if len(train) == 0 or len(valid) == 0:
            raise ValueError(
                f"valid_size={self.valid_size!r} leaves an empty train or validation part "
                f"with {n_samples} samples."
            )
        return Subset(dataset, train), Subset(dataset, valid)

    def __repr__(self):
        return (
            f"{type(self).__name__}(valid_size={self.valid_size!r}, "
            f"stratified={self.stratified!r}, random_state={self.random_state!r})"
        )


class MultilabelNeuralNetClassifier(ClassifierMixin, NeuralNet):
    """A skorch neural network for multi-label classification of feature vectors.

    One sigmoid output per label, trained with
    :class:`torch.nn.BCEWithLogitsLoss`. A part of the training data
    (``train_split``, label-stratified) is held out to stop training when its
    loss has not improved for ``patience`` epochs; the weights of the best
    epoch are restored, and per-label F1-optimal thresholds are found on that
    same part (used by ``predict`` with ``threshold="tuned"``).

    All skorch parameters work (``module__*``, ``optimizer__*``,
    ``iterator_train__*``, ``callbacks``, ``warm_start``, ...); the training
    batches are shuffled unless ``iterator_train__shuffle=False``.

    Parameters
    ----------
    module : torch module class or instance, default=MLP
        Takes ``n_features`` and ``n_outputs`` (set from the data at fit) and
        returns one logit per label: :class:`MLP`, :class:`DeeperMLP` or your own.
    criterion : torch loss class, default=torch.nn.BCEWithLogitsLoss
    optimizer : torch optimizer class, default=torch.optim.AdamW
    lr : float, default=1e-3
    max_epochs : int, default=100
    batch_size : int, default=128
        Training and prediction batch size. A last training batch of a single
        sample (which BatchNorm cannot train on) is dropped.
    train_split : callable or None, default=MultilabelValidSplit(0.2)
        skorch's internal validation split; ``None`` trains on all data with no
        early stopping and no tuned thresholds.
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
        ``n_negative / n_positive`` per label, computed from ``Y`` at fit and
        clipped to ``[1/MAX_POS_WEIGHT, MAX_POS_WEIGHT]`` (labels with one
        value only get 1, with a warning).
    threshold : float, array-like of shape (n_labels,) or "tuned", default=0.5
        ``predict`` calls label ``l`` positive when its probability is
        ``>= threshold[l]``. ``"tuned"`` uses :attr:`tuned_thresholds_`.
    device : str, default="auto"
        ``"auto"`` uses CUDA when available, else the CPU; or any torch device
        string. The ``device`` attribute reads as the resolved device, while
        ``get_params()`` keeps ``"auto"``, so a pickled model loads anywhere.
    random_state : int, RandomState or None, default=None
        Seeds torch during ``fit`` (weight init, dropout, batch order) and the
        internal split, so fits are reproducible; torch's global random state
        is left as it was. ``None``: not seeded.
    verbose : int, default=0
        ``1`` prints skorch's per-epoch table.
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
        Per-label F1-optimal thresholds on the validation split
        (:func:`skcxr.metrics.tune_thresholds`); None without ``train_split``.
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
    >>> from sklearn.datasets import make_multilabel_classification
    >>> from skcxr.neural import MultilabelNeuralNetClassifier
    >>> X, Y = make_multilabel_classification(200, n_features=20, n_classes=4, random_state=0)
    >>> clf = MultilabelNeuralNetClassifier(max_epochs=5, random_state=0)
    >>> clf = clf.set_params(module__hidden=(64,), module__dropout=0.2).fit(X, Y)
    >>> clf.predict_proba(X[:3]).shape, clf.predict(X[:3]).shape, clf.classes_.tolist()
    ((3, 4), (3, 4), [0, 1, 2, 3])
    """

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
        device="auto",
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
            device=device,
            verbose=verbose,
            **kwargs,
        )
        self.patience = patience
        self.lr_scheduler = lr_scheduler
        self.pos_weight = pos_weight
        self.threshold = threshold
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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = False
        tags.classifier_tags.multi_label = True
        return tags

    # -- skorch components built from the fitted data

    @property
    def _default_callbacks(self):
        callbacks = [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            ("valid_loss", PassthroughScoring(name="valid_loss")),
        ]
        if self.patience is not None and self.train_split:
            callbacks.append(
                (
                    "early_stopping",
                    EarlyStopping(monitor="valid_loss", patience=self.patience, load_best=True),
                )
            )
        scheduler = self._make_lr_scheduler()
        if scheduler is not None:
            callbacks.append(("lr_scheduler", scheduler))
        callbacks.append(("print_log", PrintLog()))
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

    def initialize_module(self):
        kwargs = self.get_params_for("module")
        if hasattr(self, "classes_") and (kwargs or not isinstance(self.module, nn.Module)):
            kwargs.setdefault("n_features", self.n_features_in_)
            kwargs.setdefault("n_outputs", len(self.classes_))
        self.module_ = self.initialized_instance(self.module, kwargs)
        return self

    def initialize_criterion(self):
        kwargs = self.get_params_for("criterion")
        pos_weight = getattr(self, "pos_weight_", None)
        if pos_weight is not None and "pos_weight" not in kwargs:
            kwargs["pos_weight"] = torch.as_tensor(pos_weight, dtype=torch.float32)
        self.criterion_ = self.initialized_instance(self.criterion, kwargs)
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
        dataset_train, dataset_valid = super().get_split_datasets(X, y, **fit_params)
        self._dataset_valid_ = dataset_valid  # read by _tune_thresholds, removed after training
        return dataset_train, dataset_valid

    # -- data checks and fitted attributes

    def _check_data(self, X, y, reset):
        X = validate_data(self, X, reset=reset, dtype=np.float32)
        Y = check_multilabel_Y(y, X.shape[0])
        if reset:
            columns = getattr(y, "columns", None)
            self.classes_ = np.asarray(columns) if columns is not None else np.arange(Y.shape[1])
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
        if isinstance(weight, str):
            if weight != "balanced":
                raise ValueError(f'pos_weight must be "balanced", None or an array, got {weight!r}.')
            n_pos = Y.sum(axis=0, dtype=np.float64)
            n_neg = Y.shape[0] - n_pos
            defined = (n_pos > 0) & (n_neg > 0)
            if not defined.all():
                warnings.warn(
                    f"Labels {self.classes_[~defined].tolist()} have one value only in Y "
                    "(no positive or no negative sample); their pos_weight is 1.",
                    UserWarning,
                    stacklevel=4,
                )
            ratio = np.divide(n_neg, n_pos, out=np.ones(n_labels), where=defined)
            return np.clip(ratio, 1.0 / MAX_POS_WEIGHT, MAX_POS_WEIGHT).astype(np.float32)
        weight = np.asarray(weight, dtype=np.float32)
        if weight.shape != (n_labels,) or not np.isfinite(weight).all() or (weight <= 0).any():
            raise ValueError(
                f"pos_weight must hold {n_labels} positive finite numbers (one per label), "
                f"got {self.pos_weight!r}."
            )
        return weight

    def _check_params(self):
        scheduler = self.lr_scheduler
        known = scheduler is None or isinstance(scheduler, LRScheduler)
        known = known or (isinstance(scheduler, str) and scheduler in ("plateau", "cosine"))
        if not known:
            raise ValueError(
                f'lr_scheduler must be None, "plateau", "cosine" or a skorch LRScheduler, got {scheduler!r}.'
            )
        if scheduler == "plateau" and not self.train_split:
            raise ValueError('lr_scheduler="plateau" monitors the validation loss; it needs a train_split.')
        if self.patience is not None and (not isinstance(self.patience, Integral) or self.patience < 1):
            raise ValueError(f"patience must be None or a positive int, got {self.patience!r}.")
        self._check_threshold_param()

    def _check_threshold_param(self):
        threshold = self.threshold
        if isinstance(threshold, str):
            if threshold != "tuned":
                raise ValueError(f'threshold must be a float, an array or "tuned", got {threshold!r}.')
            if not self.train_split:
                raise ValueError(
                    'threshold="tuned" needs the internal validation split; train_split is None.'
                )

    @contextlib.contextmanager
    def _seeded(self):
        """Seed torch from random_state for the duration of fit, restoring its global state after."""
        if self.random_state is None:
            yield
            return
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        device = torch.device(self.device) if self.device is not None else torch.device("cpu")
        devices = []
        if device.type == "cuda":
            devices = [device.index if device.index is not None else torch.cuda.current_device()]
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield

    # -- training

    def fit(self, X, y, **fit_params):
        """Train on features ``X`` (n, d) and a 0/1 label matrix ``y`` (n, L).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features; cast to float32.
        y : array-like or DataFrame of shape (n_samples, n_labels)
            0/1 indicator matrix; a DataFrame's columns become ``classes_``.
        **fit_params
            Passed to skorch's ``fit``.

        Returns
        -------
        self
        """
        self._check_params()
        X, Y = self._check_data(X, y, reset=not (self.warm_start and self.initialized_))
        with self._seeded():
            if not (self.warm_start and self.initialized_):
                self.initialize()
            # what skorch's NeuralNet.fit does after initialize (the routing tag included)
            self._train(X, Y, _routing_method="fit", **fit_params)
        return self

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """Train for ``max_epochs`` more epochs without re-initialising (skorch's ``partial_fit``)."""
        if y is None:
            raise ValueError("MultilabelNeuralNetClassifier needs Y, a 2-D 0/1 indicator matrix.")
        self._check_params()
        X, Y = self._check_data(X, y, reset=not hasattr(self, "classes_"))
        self._train(X, Y, classes=classes, **fit_params)
        return self

    def _train(self, X, Y, **fit_params):
        try:
            super().partial_fit(X, Y, **fit_params)
            self._tune_thresholds()
        finally:
            self.__dict__.pop("_dataset_valid_", None)

    def _tune_thresholds(self):
        dataset_valid = self.__dict__.get("_dataset_valid_")
        self.tuned_thresholds_ = None
        if dataset_valid is None:
            return
        try:
            _, Y_valid = data_from_dataset(dataset_valid)
        except AttributeError:
            warnings.warn(
                "Could not read Y from the validation dataset; tuned_thresholds_ is None.",
                UserWarning,
                stacklevel=3,
            )
            return
        with torch.inference_mode():
            proba = torch.sigmoid(self.forward(dataset_valid)).numpy()
        self.tuned_thresholds_ = tune_thresholds(np.asarray(Y_valid), proba)

    # -- prediction

    def predict_proba(self, X):
        """Probability of each label, ``sigmoid(logits)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_labels), float32
        """
        _sklearn_check_is_fitted(self, "classes_")
        X = validate_data(self, X, reset=False, dtype=np.float32)
        with torch.inference_mode():
            return torch.sigmoid(self.forward(X)).numpy()

    def predict(self, X):
        """0/1 label matrix: probability ``>= threshold`` per label.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_labels), uint8
        """
        proba = self.predict_proba(X)
        return (proba >= self._thresholds()).astype(np.uint8)

    def _thresholds(self):
        n_labels = len(self.classes_)
        self._check_threshold_param()
        if isinstance(self.threshold, str):
            if getattr(self, "tuned_thresholds_", None) is None:
                raise ValueError('threshold="tuned" but no thresholds were tuned: fit with a train_split.')
            return self.tuned_thresholds_
        return check_thresholds(self.threshold, n_labels)
