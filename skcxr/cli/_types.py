"""argparse types: each argument checked while parsing, before anything is read (private)."""

from __future__ import annotations

import argparse
from pathlib import Path


def _number(cast, valid, expected: str):
    """An argparse type: ``cast(text)`` that ``valid`` accepts, else "must be <expected>, got ..."."""

    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {expected}, got {text!r}") from None
        if not valid(value):
            raise argparse.ArgumentTypeError(f"must be {expected}, got {value:g}")
        return value

    return parse


def _int_at_least(low: int):
    return _number(int, lambda v: v >= low, f"an integer >= {low}")


_fraction = _number(float, lambda v: 0 < v < 1, "a number strictly between 0 and 1")
_n_jobs = _number(int, lambda v: v != 0, "a non-zero integer (-1: all cores)")
_threshold_cv = _number(int, lambda v: v == 0 or v >= 2, "0 (no tuning: 0.5 only) or an integer >= 2")


def _storage_url(text: str) -> str:
    """A database URL for Optuna (``sqlite:///study.db``, ``postgresql://...``): its syntax, at parsing."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(text)
    except ArgumentError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a database URL (e.g. sqlite:///study.db)") from None
    return text  # what the database itself allows is checked by skcxr.tuning.open_storage, before any feature


def _device(text: str) -> str:
    """A torch device this machine has (or "auto")."""
    if text == "auto":
        return text
    import torch

    try:
        device = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a torch device (auto, cpu, cuda, cuda:1, ...)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text}: this machine has no CUDA device")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise argparse.ArgumentTypeError(f"{text}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return text


def _folder(text: str) -> Path:
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such folder")
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: not a folder")
    if not any(p.name.endswith((".csv", ".csv.gz")) for p in path.glob("Data_Entry_2017*")):
        raise argparse.ArgumentTypeError(
            f"{text}: no label file Data_Entry_2017*.csv(.gz) in this folder (NIH ChestX-ray14 layout: "
            "the label file beside images/)")
    return path
