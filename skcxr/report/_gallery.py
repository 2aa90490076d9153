"""The report's gallery: test radiographs of one finding (true and false positives, false negatives) with their maps."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.utils import Bunch

from .._fitted import fitted_model
from ..plotting import map_panel
from ..preprocessing import CXRPreprocessor
from ._checks import _as_rows
from ._html import _esc, _figure, _pretty

_CASES = {"TP": "True positives", "FP": "False positives", "FN": "False negatives"}


def _case_indices(y, p, threshold, n_cases):
    called = p >= threshold
    order = np.argsort(-p, kind="stable")
    tp = [i for i in order if y[i] and called[i]][:n_cases]
    fp = [i for i in order if not y[i] and called[i]][:n_cases]
    fn = [i for i in order[::-1] if y[i] and not called[i]][:n_cases]
    return {"TP": tp, "FP": fp, "FN": fn}


def _gallery_maps(fitted, X, k, cam, segmenter):
    """Preprocessed images and [(title, maps)] for the chosen images; and a note on what is (not) shown."""
    # torch: only a gallery needs it, so a report of scikit-learn models does not load it.
    from ..attention import AttentionFusion, attention_maps, attention_steps
    from ..attention._inference import fused_maps
    from ..segmentation import load_lung_unet

    notes = []
    try:
        fusion = attention_steps(fitted)[2]
    except ValueError:
        fusion = None
    if fusion is not None:
        own_seg, own_cam = isinstance(segmenter, str) and segmenter == "auto", cam is None
        used = [what for what, own in (("U-Net", own_seg), ("Grad-CAM network (asked for this finding)", own_cam))
                if own]
        parts = used + ["fusion"]
        listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
        notes.append(f"The model is an attention pipeline: its own {listed} "
                     f"(λ = {fusion.lam:g}) draw the maps" + ("" if own_seg and own_cam else
                                                               "; the other maps come from the arguments given")
                     + ".")
        out = attention_maps(fitted, X, segmenter=segmenter, cam="auto" if own_cam else cam, label=k, proba=False)
    else:
        model = fitted_model(fitted)
        first = model.steps[0][1] if isinstance(model, Pipeline) else None
        prep = first if isinstance(first, CXRPreprocessor) else None
        seg = load_lung_unet() if isinstance(segmenter, str) and segmenter == "auto" else segmenter
        fusion = AttentionFusion(lam=0.5) if cam is not None and seg is not None else None
        if cam is None:
            notes.append(
                "The model is not an attention pipeline and no <code>cam=</code> was given, so no Grad-CAM is "
                "shown: it has no CNN whose evidence for the finding could be mapped. A Grad-CAM needs a CNN "
                "fine-tuned on the training labels, e.g. <code>GradCAM(CNNEmbedder(\"efficientnet_lite0\", "
                "weights=\"imagenet\", fine_tune=\"last\", image_size=128)).fit(X_train, Y_train)</code> (minutes on a CPU for a thousand images, "
                "seconds on a GPU); pass the fitted GradCAM as <code>cam=</code> to add its maps and the fused "
                "map (λ = 0.5).")
        else:
            notes.append("Grad-CAM from the <code>cam=</code> given, asked for this finding; fused with the lung "
                         "map at λ = 0.5.")
        if prep is None:
            prep = CXRPreprocessor().fit(X)
            notes.append("Images preprocessed by <code>CXRPreprocessor()</code> (224 px) for display.")
        images = np.asarray(prep.transform(X), dtype=np.float32)
        out = Bunch(images=images, **fused_maps(images, seg, cam, fusion, k))
    shown = ((out.cam_name, out.cams), ("U-Net lung mask", out.lungs), ("Fused map", out.fused))
    return out.images, [(name, maps) for name, maps in shown if maps is not None], notes


def _image_name(X, i):
    value = X[i]
    if isinstance(value, (str, os.PathLike)):
        return Path(value).name
    return f"test image #{i}"


def _gallery_section(result, X_test, names, model, k, cam, segmenter, n_cases) -> str:
    finding = names[k]
    if X_test is None:
        return ("<p class='note'>No images given: pass <code>X_test=</code> (the test images or their paths, in "
                "the order of the result) to see true positives, false positives and false negatives with their "
                "maps.</p>")
    X = _as_rows(X_test, len(result.Y_test))
    y = result.Y_test[:, k].astype(bool)
    p = np.asarray(result.proba[model], dtype=float)[:, k]
    tuned = result.thresholds.get(model)
    threshold = float(tuned[k]) if tuned is not None else 0.5
    cases = _case_indices(y, p, threshold, n_cases)
    chosen = [i for kind in _CASES for i in cases[kind]]
    intro = (
        f"<p>Finding <b>{_esc(_pretty(finding))}</b>, model <b>{_esc(model)}</b>, called positive at probability ≥ "
        f"{threshold:.3f} ({'its threshold tuned on the training part' if tuned is not None else '0.5'}). "
        f"Per kind, the {n_cases} most confident cases: true positives and false positives with the highest "
        "probability, false negatives with the lowest. Maps are drawn in their own values (0-1, not stretched "
        "per image): a faint map is weak evidence.</p>")
    if not chosen:
        return intro + "<p class='note'>No positive image and no positive call for this finding.</p>"
    images, maps, notes = _gallery_maps(result.models[model], X[np.asarray(chosen)], k, cam, segmenter)
    where = {i: j for j, i in enumerate(chosen)}
    parts = [intro, "".join(f"<p class='note'>{n}</p>" for n in notes), "<div class='cases'>"]
    grid = "grid wide" if len(maps) > 1 else "grid"
    for kind, title in _CASES.items():
        parts.append(f"<h3>{title} ({len(cases[kind])} shown)</h3>")
        if not cases[kind]:
            parts.append("<p class='note'>None in the test part.</p>")
            continue
        parts.append(f"<div class='{grid}'>")
        for i in cases[kind]:
            j = where[i]
            present = [_pretty(n) for n, v in zip(names, result.Y_test[i]) if v] or ["No Finding"]
            label = f"{_image_name(X, i)}: P({_pretty(finding)}) = {p[i]:.3f}"
            if result.sources_test is not None:
                label += f" (source {result.sources_test[i]})"
            fig = map_panel(images[j], [(name, m[j]) for name, m in maps], contour=("U-Net lung mask",))
            parts.append(_figure(fig, f"{title[:-1]}: {label}",
                                 f"{kind} · {_esc(label)}; labels: {_esc(', '.join(present))}.", dpi=80))
        parts.append("</div>")
    parts.append("</div>")
    return "".join(parts)
