"""How long each default pipeline's ``fit`` takes on the 1,416 shared NIH images, from image paths, cold.

``make_classical_pipeline()``, ``make_hybrid_pipeline()`` and ``make_attention_pipeline()`` with no arguments
but ``n_jobs=2`` and ``random_state=0`` (no cache), fitted on all 1,416 images of ../shared/data (nih + nih-64),
one after the other in one process; wall time and peak RSS above the start (workers included).

    .venv/bin/python studies/default_fit_times.py      # ~15 min on 2 cores
"""

from __future__ import annotations


import sklearn
from _common import machine, timed, write_markdown
from choose_defaults import load_data

from skcxr.pipelines import make_attention_pipeline, make_classical_pipeline, make_hybrid_pipeline

DEFAULTS = {
    "make_classical_pipeline()": make_classical_pipeline,
    "make_hybrid_pipeline()": make_hybrid_pipeline,
    "make_attention_pipeline()": make_attention_pipeline,
}


def main():
    paths, Y, groups, _, _ = load_data()
    rows = []
    for name, make in DEFAULTS.items():
        pipe = make(n_jobs=2) if make is make_classical_pipeline else make(n_jobs=2, random_state=0)
        routed = make is make_attention_pipeline  # patient ids reach the Grad-CAM network's validation split
        with sklearn.config_context(enable_metadata_routing=routed):
            seconds, rss, _ = timed(lambda: pipe.fit(paths, Y, **({"groups": groups} if routed else {})))
        rows.append(f"| `{name}` | {seconds / 60:.1f} min ({seconds:.0f} s) | {rss:.0f} MiB |")
        print(rows[-1], flush=True)
    text = "\n".join([
        "# Fit time of the default pipelines (`studies/default_fit_times.py`)", "",
        f"Machine: {machine()}. All 1,416 shared NIH images from paths, no cache, `n_jobs=2`, `random_state=0`.",
        "", "| pipeline | fit | peak RSS above start |", "|---|---|---|", *rows, ""])
    print(write_markdown("default_fit_times.md", text))


if __name__ == "__main__":
    main()
