"""The report's results by subgroup (sex, age band, view position), read from the test images' metadata."""

from __future__ import annotations

import pandas as pd

from ..evaluation import MIN_SUBGROUP_IMAGES, subgroup_table
from ..plotting import plot_subgroup_auc
from ._html import _ci, _figure, _table


def _subgroup_section(result, frame, age_bands) -> str:
    if frame is None:
        return ("<p class='note'>No metadata given: pass <code>metadata=</code>, one row per test image with "
                "columns <code>sex</code>, <code>age</code>, <code>view</code> (the <code>frame</code> of "
                "<code>skcxr.datasets.load_chestxray14</code>, or NIH's headers).</p>")
    table = subgroup_table(result.Y_test, result.proba, frame, groups=result.groups_test,
                           sources=result.sources_test, age_bands=age_bands, n_boot=result.n_boot,
                           confidence=result.confidence, random_state=result.random_state)
    if table.empty:
        return ("<p class='note'>The metadata has none of the columns sex, age, view (or NIH's Patient Gender, "
                "Patient Age, View Position).</p>")
    shown = table[["images", "patients", "findings scored"]].copy()
    for model in result.proba:
        shown[model] = [f"too few (< {MIN_SUBGROUP_IMAGES} images)" if few else _ci(*values) for few, values in
                        zip(table["too few"], table[[model, f"{model} low", f"{model} high"]].to_numpy())]
    pooled = table.xs("all", level="source")
    pooled = pooled[~pooled["too few"]]
    labels = [f"{variable}: {value} ({n} images)" for (variable, value), n in zip(pooled.index, pooled["images"])]
    frames = {model: pd.DataFrame(pooled[[model, f"{model} low", f"{model} high"]].to_numpy(), index=labels,
                                  columns=["Macro-AUC", "AUC low", "AUC high"]) for model in result.proba}
    within = " and within each source (rows by source)" if result.sources_test is not None else ""
    figure = (_figure(plot_subgroup_auc(frames), "Macro-AUC by subgroup",
                      "Macro-AUC with its patient-bootstrap interval per subgroup of the pooled test part, one "
                      "colour per model; dashed: chance. Subgroups with too few images are left out.")
              if len(pooled) else "")
    return (
        f"<p>Macro-AUC within each subgroup of the test part{within}, with {result.confidence:.0%} "
        "patient-bootstrap intervals (<code>skcxr.evaluation.subgroup_table</code>). Macro-AUC averages over the "
        "findings that have both label values in the subgroup (“findings scored”), so subgroups with different "
        "label mixes are not strictly comparable; a pooled gap between subgroups may be their mix of sources, "
        f"which the within-source rows separate. Subgroups of fewer than {MIN_SUBGROUP_IMAGES} images get no AUC. "
        "Models are trained once, on all training images.</p>"
        + _table(shown) + figure
    )
