"""The Ctrl-C guard of the nets' fits: tells a user's Ctrl-C from skorch's early stop."""

from __future__ import annotations

import contextlib
import signal
import threading


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
