"""The report's data section: the label distribution of the training and test parts per source."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..plotting import plot_label_distribution
from ._html import _figure, _pretty, _table


def _data_section(result, names) -> str:
    parts_Y, colours, hatches = {}, [], []

    def add(label, Y, colour, test):  # one colour per source, test hatched beside its training part
        parts_Y[label], _ = Y, colours.append(colour)
        hatches.append("//" if test else "")

    split = [(part, Y, sources) for part, Y, sources in (("train", result.Y_train, result.sources_train),
                                                         ("test", result.Y_test, result.sources_test))
             if Y is not None]
    known = sorted({str(v) for _, _, sources in split if sources is not None for v in sources})
    if not known:
        for part, Y, _ in split:
            add(part, Y, "C0", part == "test")
    else:
        for part, Y, sources in split:
            if sources is None and part == "train":
                add("train (all sources)", Y, "C7", False)
        for c, source in enumerate(known):
            for part, Y, sources in split:
                if sources is not None and (sources.astype(str) == source).any():
                    add(f"{part} · {source}", Y[sources.astype(str) == source], f"C{c % 10}", part == "test")
        if result.sources_test is None:
            add("test (all sources)", result.Y_test, "C7", True)
    table = pd.DataFrame(index=pd.Index([_pretty(n) for n in names] + ["No Finding", "images"], name="finding"))
    for label, Y in parts_Y.items():
        counts = np.append(Y.sum(axis=0), [(Y.sum(axis=1) == 0).sum(), len(Y)]).astype(int)
        share = np.append(100 * counts[:-1] / max(len(Y), 1), [100.0])
        table[label] = [f"{c:,} ({s:.1f}%)" for c, s in zip(counts, share)]
    note = ("" if result.sources_train is not None or result.sources_test is None else
            "<p class='note'>The training part's sources were not recorded (pass <code>sources_train</code> to "
            "holdout_report): it is shown pooled.</p>")
    return (
        "<p>Images with each finding in each part of the data (count and share). Several findings per image "
        "are common; “No Finding” is an image with none of them. When sources differ in their label mix, a "
        "model can score by recognising the source: compare the within-source results.</p>"
        + _table(table) + note
        + _figure(plot_label_distribution(parts_Y, names, colors=colours, hatches=hatches), "Label distribution",
                  "Share of images with each finding, per part of the data (hatched: test).")
    )
