"""Iterative stratification over groups: assign whole patients to parts of a split (see the package)."""

from __future__ import annotations

import numpy as np


def _stratify_groups(Y, groups, proportions, rng=None) -> np.ndarray:
    """Assign groups to parts by iterative stratification; return the part of each sample.

    Parameters
    ----------
    Y : ndarray (n, L) of 0/1, or None (balance sample counts only).
    groups : ndarray (n,) of group ids.
    proportions : sequence of floats summing to 1, one per part.
    rng : numpy RandomState or None
        Shuffles the group order and breaks ties randomly; None keeps the
        data order and breaks ties by the lowest part index.
    """
    proportions = np.asarray(proportions, dtype=float)
    group_ids, inverse = np.unique(groups, return_inverse=True)
    n_groups, n_parts = len(group_ids), len(proportions)
    if n_groups < n_parts:
        raise ValueError(
            f"Cannot split {n_groups} distinct groups ({len(groups)} samples) into {n_parts} parts."
        )
    sizes = np.bincount(inverse, minlength=n_groups).astype(float)
    counts = np.zeros((n_groups, 0 if Y is None else Y.shape[1]))
    if Y is not None:
        np.add.at(counts, inverse, Y.astype(float))

    want_samples = proportions * sizes.sum()
    want_labels = np.outer(proportions, counts.sum(axis=0))  # (parts, L)
    part_of_group = np.full(n_groups, -1)
    order = np.arange(n_groups)
    if rng is not None:
        rng.shuffle(order)

    def pick(candidates: np.ndarray) -> int:
        best = np.flatnonzero(candidates == candidates.max())
        if len(best) > 1:
            best = best[np.flatnonzero(want_samples[best] == want_samples[best].max())]
        return int(best[0] if rng is None or len(best) == 1 else rng.choice(best))

    def assign(g: int, part: int) -> None:
        part_of_group[g] = part
        want_samples[part] -= sizes[g]
        want_labels[part] -= counts[g]

    while True:
        unassigned = order[part_of_group[order] < 0]
        remaining = counts[unassigned].sum(axis=0)
        if not remaining.any():
            break
        rarest = np.flatnonzero(remaining == remaining[remaining > 0].min())
        label = int(rarest[0] if rng is None else rng.choice(rarest))
        carriers = unassigned[counts[unassigned, label] > 0]
        # Most positives first (stable, so the shuffled order breaks ties).
        carriers = carriers[np.argsort(-counts[carriers, label], kind="stable")]
        for g in carriers:
            assign(g, pick(want_labels[:, label]))

    unassigned = order[part_of_group[order] < 0]
    for g in unassigned[np.argsort(-sizes[unassigned], kind="stable")]:
        assign(g, pick(want_samples))
    return part_of_group[inverse]
