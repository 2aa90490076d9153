"""The skorch callbacks of the nets: tuned thresholds, the epoch bar and the epoch table."""

from __future__ import annotations

from skorch.callbacks import Callback, EarlyStopping, PrintLog
from skorch.utils import data_from_dataset, to_numpy
from tqdm.auto import tqdm

from ..metrics import tune_thresholds


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


class QuietEarlyStopping(EarlyStopping):
    """skorch's ``EarlyStopping``, whose "Stopping since ..." and "Restoring best model ..." lines are printed
    at ``verbose >= 2`` only, like the epoch table (skorch prints them at any ``verbose``, amid results)."""

    def _sink(self, text, verbose):
        super()._sink(text, verbose >= 2)
