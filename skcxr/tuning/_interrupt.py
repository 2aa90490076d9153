"""Ctrl-C during a study: the running trial ends PRUNED, never RUNNING, and the study stops."""

from __future__ import annotations

import contextlib
import signal
import threading

import optuna


class _Interrupt:
    """Ctrl-C during :func:`tune`: the running trial ends ``PRUNED`` (``user_attrs["interrupted"]``), no new
    trial starts, and ``tune`` raises ``KeyboardInterrupt`` once Optuna has recorded it.

    A SIGINT handler (main thread only) raises ``KeyboardInterrupt`` while a trial's folds run in this thread
    and only takes note otherwise (inside Optuna's bookkeeping, or a second Ctrl-C while the first is handled),
    so a trial is never left ``RUNNING`` by an interrupt.
    """

    def __init__(self):
        self.requested, self._raising = False, threading.local()

    def _handler(self, signum, frame):
        first = not self.requested
        self.requested = True
        if first and getattr(self._raising, "on", False):
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.signal(signal.SIGINT, self._handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    @contextlib.contextmanager
    def trial(self, study, trial):
        """Around a trial's folds: an interrupt there prunes the trial and stops the study."""
        self._raising.on = True
        try:
            if self.requested:
                raise KeyboardInterrupt
            yield
        except KeyboardInterrupt:
            self._raising.on = False
            self.requested = True
            trial.set_user_attr("interrupted", True)
            study.stop()
            raise optuna.TrialPruned("interrupted (Ctrl-C)") from None
        finally:
            self._raising.on = False
