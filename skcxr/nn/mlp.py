"""Fully connected networks for feature vectors: :class:`MLP` and :class:`DeeperMLP`."""

from __future__ import annotations

from numbers import Integral

from torch import nn

__all__ = ["MLP", "DeeperMLP"]


class MLP(nn.Module):
    """Fully connected network: ``[Linear -> (BatchNorm) -> ReLU -> Dropout] * k -> Linear``.

    It returns one logit per label (no final sigmoid; the loss applies it).

    Parameters
    ----------
    n_features : int
        Input size. Set from the data by :class:`skcxr.neural.MultilabelNeuralNetClassifier`.
    n_outputs : int
        Number of labels. Set from the data by the classifier.
    hidden : int or tuple of int, default=(512,)
        Width of each hidden layer; ``()`` gives a linear model.
    dropout : float, default=0.4
        Dropout probability after each hidden layer.
    batchnorm : bool, default=False
        Batch normalisation after each hidden linear layer.

    Examples
    --------
    >>> import torch
    >>> from skcxr.nn import MLP
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
    >>> from skcxr.nn import DeeperMLP
    >>> DeeperMLP(20, 4).eval()(torch.zeros(5, 20)).shape
    torch.Size([5, 4])
    """

    def __init__(self, n_features, n_outputs, hidden=(1024, 512, 256), dropout=0.4, batchnorm=True):
        super().__init__(n_features, n_outputs, hidden=hidden, dropout=dropout, batchnorm=batchnorm)
