"""How errors and warnings reach the user: one ``skcxr: error:`` / ``skcxr: warning:`` line each (private)."""

from __future__ import annotations

import contextlib
import sys
import warnings


class _UsageError(Exception):
    """A bad command line (reported like every other error: one line, status 1)."""


def _warn_line(message, category) -> None:
    text = " ".join(str(message).split())
    print(f"skcxr: warning: {text} ({category.__name__})", file=sys.stderr)


@contextlib.contextmanager
def _one_line_warnings():
    """Show each warning as one ``skcxr: warning:`` line instead of Python's two-line form."""
    previous = warnings.showwarning
    warnings.showwarning = lambda message, category, *rest, **kw: _warn_line(message, category)
    try:
        yield
    finally:
        warnings.showwarning = previous


def _error_line(exc: BaseException) -> str:
    text = str(exc)
    filename = getattr(exc, "filename", None)
    if isinstance(exc, OSError) and filename is not None and str(filename) not in text:
        text = f"{filename}: {exc.strerror or text}"
    return " ".join(text.split()) or type(exc).__name__


def _close_bars() -> None:
    """End the progress bars an exception left open, so the message starts on a line of its own."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()
