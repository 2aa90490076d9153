"""The entry point of the ``skcxr`` console script: parse, run the command, turn failures into one line (private)."""

from __future__ import annotations

import sys

from PIL import Image

from ._errors import _close_bars, _error_line, _one_line_warnings, _UsageError
from ._parser import _parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``skcxr`` console script; returns the exit status."""
    try:
        try:
            args = _parser().parse_args(argv)
        except SystemExit as exc:  # --help, --version
            return int(exc.code or 0)
        with _one_line_warnings():
            args.func(args)
    except KeyboardInterrupt:
        _close_bars()
        print("skcxr: interrupted", file=sys.stderr)
        return 130
    except (_UsageError, ValueError, OSError, Image.DecompressionBombError) as exc:
        # OSError covers FileNotFoundError, PermissionError, IsADirectoryError, disk full, ...
        _close_bars()
        print(f"skcxr: error: {_error_line(exc)}", file=sys.stderr)
        return 1
    return 0
