"""The report's page: its sections in order, its style, and :func:`write_report`, which assembles them."""

from __future__ import annotations

import datetime
import numbers
from pathlib import Path

import numpy as np
import pandas as pd

from ._checks import (
    _as_rows,
    _check_age_bands,
    _check_metadata,
    _check_result,
    _check_specificities,
    _pick_finding,
    _pick_model,
    _target_names,
)
from ._data import _data_section
from ._gallery import _gallery_section
from ._html import _ci, _esc, _pretty
from ._model_card import _model_card
from ._settings import _settings_section
from ._statistics import (
    _calibration_section,
    _class_auc_tables,
    _operating_points_section,
    _per_class_section,
    _results_section,
    _roc_section,
    _thresholds_section,
)
from ._subgroups import _subgroup_section

__all__ = ["SECTIONS", "write_report"]

#: The report's sections: HTML id -> heading, in page order.
SECTIONS = {
    "results": "Results",
    "per-class": "AUC per finding",
    "roc": "ROC curves",
    "operating-points": "Sensitivity at fixed specificity",
    "calibration": "Calibration",
    "thresholds": "Decision thresholds",
    "subgroups": "Results by subgroup",
    "data": "Data: label distribution",
    "gallery": "Gallery",
    "model-card": "Model card",
    "settings": "Settings and versions",
}


_CSS = """
:root { --fg: #1d1f23; --muted: #59606b; --line: #d8dce2; --band: #f5f7fa; --accent: #1f5fa8; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, Helvetica, sans-serif; color: var(--fg);
       max-width: 1200px; margin: 0 auto; padding: 0 28px 60px; line-height: 1.5; font-size: 15px; }
header { border-bottom: 3px solid var(--accent); padding: 22px 0 10px; margin-bottom: 10px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 21px; margin: 38px 0 8px; padding-top: 8px; border-top: 1px solid var(--line); }
h3 { font-size: 16px; margin: 22px 0 6px; }
p, li { max-width: 920px; }
.sub { color: var(--muted); margin: 0; }
.warning { background: #fff4e0; border-left: 5px solid #e69a16; padding: 10px 14px; margin: 14px 0; }
.note { color: var(--muted); font-size: 14px; }
nav ol { columns: 3; margin: 8px 0 0; padding-left: 22px; font-size: 14px; }
a { color: var(--accent); }
.scroll { overflow-x: auto; margin: 6px 0 14px; }
table { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 9px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
thead th { background: #e9edf3; vertical-align: bottom; white-space: normal; min-width: 60px; }
thead th:first-child { text-align: left; }
thead tr:not(:last-child) th { text-align: center; border-bottom: 2px solid #c5ccd6; }
tbody th { text-align: left; font-weight: 600; }
tbody tr:nth-child(even) { background: var(--band); }
table.kv td { text-align: left; white-space: normal; }
figure { margin: 12px 0 22px; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { font-size: 13.5px; color: var(--muted); margin-top: 4px; max-width: 920px; }
.cases h3 { margin-top: 26px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 6px 18px; }
.grid.wide { grid-template-columns: 1fr; }
.grid figure { margin: 6px 0; }
pre { background: var(--band); padding: 10px; overflow-x: auto; font-size: 12px; }
details summary { cursor: pointer; color: var(--accent); }
"""



def write_report(result, out_dir, *, X_test=None, metadata=None, config=None, model=None, finding=None, cam=None,
                 segmenter="auto", n_cases=3, specificities=(0.8, 0.9, 0.95), n_bins=10, age_bands=(18, 40, 60),
                 title="skcxr evaluation report", filename="report.html") -> Path:
    """Write one self-contained HTML page describing a held-out evaluation.

    The page (``out_dir/report.html``) embeds every figure as a PNG data URI
    and holds no script and no link to fetch: it opens offline, from any
    folder. Its sections are :data:`SECTIONS`: results with patient-bootstrap
    intervals, AUC per finding with intervals, ROC curves, sensitivity at fixed
    specificities, calibration (reliability curves, Brier scores), the tuned
    thresholds, results by subgroup (sex, age band, view position) from
    ``metadata``, the label distribution of the training and test parts per
    source, a gallery of test radiographs with their maps, a model card and
    the settings and versions of the run. A section whose inputs are missing
    (no ``metadata``, no ``X_test``) says what to pass instead of being left
    out.

    Parameters
    ----------
    result : skcxr.evaluation.HoldoutResult
        What :func:`skcxr.evaluation.holdout_report` returned (it keeps the
        test labels, patients, sources and the bootstrap's seed, so the
        report's intervals use the same resamples as its tables).
    out_dir : str or path-like
        Folder to write into (created if needed).
    X_test : array-like, optional
        The test images (paths or arrays, in the result's order), for the
        gallery.
    metadata : pandas.DataFrame or dict of arrays, optional
        One row per test image, in the result's order, with any of the
        columns ``sex``, ``age`` (years), ``view`` (as in
        ``load_chestxray14(...).frame``; NIH's ``Patient Gender``, ``Patient
        Age``, ``View Position`` work too), for the subgroup section.
    config : dict, optional
        The run's settings (command-line arguments, say), listed as given.
    model : str, optional
        The model of the gallery; by default the one with the highest
        macro-AUC.
    finding : str or int, optional
        The finding of the gallery; by default the one the gallery's model
        ranks best (highest AUC) among those with at least two positives.
    cam : fitted transformer, optional
        Grad-CAM maps for the gallery: a fitted :class:`skcxr.attention.GradCAM`
        (asked for the finding with ``target=``, on a copy) or any fitted
        transformer whose ``transform`` of preprocessed images gives ``(n, S,
        S)`` maps in [0, 1] (or ``(n, L, S, S)``, one per finding). None: the
        model's own Grad-CAM network when it is an attention pipeline
        (:func:`skcxr.pipelines.make_attention_pipeline`), else no Grad-CAM
        (the page says how to get one).
    segmenter : "auto", fitted transformer or None, default="auto"
        Lung maps for the gallery: "auto" is the attention pipeline's own
        U-Net, else the shipped one (:func:`skcxr.segmentation.load_lung_unet`);
        None shows none.
    n_cases : int, default=3
        Images per kind (true positive, false positive, false negative).
    specificities : sequence of float, default=(0.8, 0.9, 0.95)
        Where sensitivity is read off each ROC curve.
    n_bins : int, default=10
        Bins of the reliability curves.
    age_bands : sequence of int, default=(18, 40, 60)
        Ages where the age bands start (``< 18, 18–39, 40–59, ≥ 60``).
    title : str, default="skcxr evaluation report"
    filename : str, default="report.html"

    Returns
    -------
    pathlib.Path
        The page written.

    Examples
    --------
    >>> import tempfile
    >>> from sklearn.datasets import make_multilabel_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.multiclass import OneVsRestClassifier
    >>> from skcxr.evaluation import holdout_report
    >>> from skcxr.report import write_report
    >>> X, Y = make_multilabel_classification(200, n_classes=3, random_state=0)
    >>> result = holdout_report({"LR": OneVsRestClassifier(LogisticRegression(max_iter=500))},
    ...                         X[:150], Y[:150], X[150:], Y[150:], target_names=["Mass", "Nodule", "Edema"],
    ...                         threshold_cv=None, n_boot=100, random_state=0)
    >>> page = write_report(result, tempfile.mkdtemp())
    >>> page.name, "ROC curves" in page.read_text()
    ('report.html', True)
    """
    Y = _check_result(result)
    if isinstance(n_cases, bool) or not isinstance(n_cases, numbers.Integral) or n_cases < 1:
        raise ValueError(f"n_cases must be an int >= 1, got {n_cases!r}.")
    if not (isinstance(segmenter, str) and segmenter == "auto") and segmenter is not None \
            and not hasattr(segmenter, "transform"):
        raise ValueError(f'segmenter must be "auto", None or a fitted transformer, got {segmenter!r}.')
    if cam is not None and not hasattr(cam, "transform"):
        raise ValueError(f"cam must be None or a fitted transformer with transform, got {type(cam).__name__}.")
    specificities = _check_specificities(specificities)
    bands = _check_age_bands(age_bands)
    frame = _check_metadata(metadata, len(Y))
    if X_test is not None:
        X_test = _as_rows(X_test, len(Y))
    names = _target_names(result, Y.shape[1])
    gallery_model = _pick_model(result, model)
    k = _pick_finding(finding, names, Y, np.asarray(result.proba[gallery_model], dtype=float), n_cases)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    sources = [str(s) for s in pd.unique(np.concatenate(
        [s for s in (result.sources_train, result.sources_test) if s is not None]))] \
        if result.sources_train is not None or result.sources_test is not None else []
    class_auc = _class_auc_tables(result, names)
    body = {
        "results": _results_section(result),
        "per-class": _per_class_section(result, names, class_auc),
        "roc": _roc_section(result, names),
        "operating-points": _operating_points_section(result, names, specificities),
        "calibration": _calibration_section(result, names, n_bins),
        "thresholds": _thresholds_section(result, names),
        "subgroups": _subgroup_section(result, frame, bands),
        "data": _data_section(result, names),
        "gallery": _gallery_section(result, X_test, names, gallery_model, k, cam, segmenter, n_cases),
        "model-card": _model_card(result, names, sources),
        "settings": _settings_section(result, config, [
            ("gallery", f"{gallery_model}, finding {_pretty(names[k])}, {n_cases} cases per kind"),
            ("specificities", ", ".join(f"{s:g}" for s in specificities)),
            ("age bands start at", ", ".join(f"{b:g}" for b in bands)),
        ]),
    }
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    best = result.summary["Macro-AUC"].astype(float)
    headline = ""
    if best.notna().any():
        top = best.idxmax()
        row = result.summary.loc[top]
        headline = (f"Highest macro-AUC: <b>{_esc(top)}</b>, {_ci(row['Macro-AUC'], row['AUC low'], row['AUC high'])} "
                    f"({result.confidence:.0%} patient-bootstrap interval).")
    toc = "".join(f'<li><a href="#{key}">{_esc(heading)}</a></li>' for key, heading in SECTIONS.items())
    sections = "".join(f'<section id="{key}"><h2>{_esc(SECTIONS[key])}</h2>{content}</section>'
                       for key, content in body.items())
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="skcxr">
<title>{_esc(title)}</title>
<link rel="icon" href="data:,">
<style>{_CSS}</style>
</head>
<body>
<header>
<h1>{_esc(title)}</h1>
<p class="sub">{len(result.proba)} model(s) · {len(Y):,} test images · {len(names)} findings · written {when} by
skcxr</p>
</header>
<div class="warning"><b>Research use only — not for diagnosis.</b> See the <a href="#model-card">model card</a>.</div>
<p>{headline}</p>
<nav><b>Contents</b><ol>{toc}</ol></nav>
{sections}
</body>
</html>
"""
    path = out_dir / filename
    path.write_text(page, encoding="utf-8")
    return path
