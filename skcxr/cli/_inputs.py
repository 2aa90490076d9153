"""The inputs of the commands: ChestX-ray14 folders and their split, image files, saved models (private)."""

from __future__ import annotations

import warnings

import numpy as np

from ._errors import _UsageError, _warn_line

#: The fewest images (of at least 10 patients) a patient-wise split with tuned thresholds is run on.
MIN_IMAGES = 40


def _source_names(folders) -> list[str]:
    names = [f.resolve().name or str(f) for f in folders]
    return [str(f) if names.count(n) > 1 else n for f, n in zip(folders, names)]


def _load(folders, views=None, split=None):
    """Paths, Y, patient ids, sources, finding names and CSV rows of ChestX-ray14 folders (``split``: NIH's list)."""
    import pandas as pd

    from ..datasets import load_chestxray14

    parts, names = [], _source_names(folders)
    for folder, name in zip(folders, names):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                part = load_chestxray14(folder, views=views, split=split, missing="drop")
            except (FileNotFoundError, ValueError) as exc:
                raise type(exc)(f"--data {folder}: {exc}") from None
        for w in caught:
            _warn_line(w.message, w.category)
        parts.append(part)
    paths = np.concatenate([p.paths for p in parts])
    Y = np.concatenate([p.Y for p in parts])
    groups = np.concatenate([p.patient_ids for p in parts])
    sources = np.concatenate([np.full(len(p.paths), name, dtype=object) for p, name in zip(parts, names)])
    rows = pd.concat([p.frame for p in parts], ignore_index=True)
    return paths, Y, groups, sources, parts[0].target_names, rows


def _check_size(groups) -> None:
    n_patients = len(np.unique(groups))
    if len(groups) < MIN_IMAGES or n_patients < 10:
        raise _UsageError(f"--data: {len(groups)} images of {n_patients} patients; a patient-wise split with "
                          f"tuned thresholds needs at least {MIN_IMAGES} images of 10 patients")


def _train_test(args):
    """``(train, test, target_names)`` of ``--data``, each part ``(paths, Y, groups, sources, rows)``.

    ``--split random``: a patient-wise, label-stratified split (``--test-size``,
    ``--seed``); ``--split official``: NIH's train_val_list.txt / test_list.txt.
    """
    from ..model_selection import train_test_split_by_patient

    if args.split == "official":
        train, test = _load(args.data, args.views, "train_val"), _load(args.data, args.views, "test")
        _check_size(np.concatenate([train[2], test[2]]))
        shared = np.intersect1d(train[2], test[2])
        if shared.size:
            raise _UsageError(f"--split official: {shared.size} patient(s) are in both train_val_list.txt and "
                              f"test_list.txt (e.g. {shared[0]}); NIH's lists split by patient")
        return train[:4] + train[5:], test[:4] + test[5:], train[4]
    paths, Y, groups, sources, names, rows = _load(args.data, args.views)
    _check_size(groups)
    parts = train_test_split_by_patient(paths, Y, groups, sources, rows, groups=groups, stratify=Y,
                                        test_size=args.test_size, random_state=args.seed)
    return tuple(parts[0::2]), tuple(parts[1::2]), names


def _check_images(images) -> None:
    """IMAGE arguments that are not files: one error line naming them."""
    missing = [str(p) for p in images if not p.is_file()]
    if missing:
        raise _UsageError(f"IMAGE: no such file: {', '.join(missing)}")


def _load_model(path):
    """A saved model as (model, target_names, thresholds, description); one-line errors for other versions or
    files (the description is None for a bare estimator)."""
    from ..persistence import load_model

    saved = load_model(path)
    return saved.model, saved.target_names, saved.thresholds, saved.description
