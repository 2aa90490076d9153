"""MultilabelNeuralNetClassifier: the skorch classifier of feature vectors with one sigmoid per label."""

from __future__ import annotations

from numbers import Real

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from sklearn.utils._param_validation import Interval, StrOptions, validate_parameter_constraints
from torch import nn

from .._validation import check_multilabel_Y
from ..metrics import check_thresholds
from ..nn import MLP, balanced_pos_weight
from ._base import BaseNet
from ._callbacks import TuneThresholds
from ._split import MultilabelValidSplit


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
