"""``skcxr explain``: pictures of where an attention model looks (private)."""

from __future__ import annotations

import os

import numpy as np

from ._errors import _UsageError
from ._inputs import _check_images, _check_size, _load, _load_model
from ._models import _import_estimators
from ._options import _config, _configure, _say
from ._outputs import _check_out
from ._writers import _numbered


def explain(args) -> None:
    from ..attention import attention_maps, attention_steps
    from ..plotting import attention_panel

    _import_estimators()
    _check_out(args.out)
    _check_images(args.images)
    truth = {}
    if args.model is not None:
        model, names, _, _ = _load_model(args.model)
        _check_finding(args.finding, names)
    else:
        from ..model_selection import groups_fit_params, routing_context
        from ..persistence import data_fingerprint, image_fingerprints, save_model
        from ..pipelines import make_attention_pipeline

        paths, Y, groups, _, names, _ = _load([args.data])
        _check_size(groups)
        _check_finding(args.finding, names)
        truth = _findings_by_name(paths, Y, names)
        _say(args, f"Training make_attention_pipeline(size={args.size}) on {len(paths)} images of {args.data} ...")
        model = _configure(make_attention_pipeline(size=args.size, n_jobs=args.n_jobs, random_state=args.seed), args)
        params, routing = groups_fit_params(model, groups)
        with routing_context(routing):
            model.fit(paths, Y, **params)
        save_model(model, args.out / "model.skcxr", target_names=names, settings=_config(args),
                   data={"images": int(len(paths)), "fingerprint": data_fingerprint(paths, Y),
                         "images_seen": image_fingerprints(paths)})
    try:
        fusion = attention_steps(model)[2]  # another model is a usage error, before any image is read
    except ValueError as exc:
        raise _UsageError(f"--model: {exc}. Get one with 'skcxr explain IMAGE --data DIR --out OUT' (trains "
                          "make_attention_pipeline and saves OUT/model.skcxr) or save_model(make_attention_pipeline()"
                          ".fit(X, Y), ...) in Python") from None
    paths = np.asarray([str(p) for p in args.images], dtype=object)
    proba = np.asarray(model.predict_proba(paths))
    names = np.asarray(names if names is not None else range(proba.shape[1]), dtype=str)
    chosen = np.full(len(paths), list(names).index(args.finding)) if args.finding else proba.argmax(1)
    stems = _numbered(path.stem for path in args.images)  # a/chest.png and b/chest.png: two pictures
    for k in np.unique(chosen):  # one pass per finding drawn: the Grad-CAM and the fused map of that finding
        rows = np.flatnonzero(chosen == k)
        seen = attention_maps(model, paths[rows], label=int(k), proba=False)
        for i, x, lung, cam, f in zip(rows, seen.images, seen.lungs, seen.cams, seen.fused):
            path, p = args.images[i], proba[i]
            top = np.argsort(p)[::-1][:3]
            title = f"{path.name}: " + ", ".join(f"{names[j]} {p[j]:.2f}" for j in top)
            if path.name in truth:
                title += f"\ntrue: {truth[path.name]}"
            views = ("X-ray", f"{seen.cam_name}: {names[k]}", "U-Net lung mask",
                     f"Fused (λ={fusion.lam:g}): {names[k]}")
            out = args.out / f"{stems[i]}_attention.png"
            attention_panel(x, cam, lung, f, title=title, labels=views).savefig(out, dpi=100)
            _say(args, f"wrote {out}")


def _check_finding(finding, names) -> None:
    """``--finding`` names one of the model's labels (checked before any training or image reading)."""
    if finding is not None and names is not None and finding not in list(map(str, names)):
        raise _UsageError(f"--finding {finding}: not a label of this model ({', '.join(map(str, names))})")


def _findings_by_name(paths, Y, names) -> dict:
    """{file name: its findings ("No Finding" for none)}: the true labels a panel shows when they are known."""
    names = np.asarray(names, dtype=str)
    return {os.path.basename(p): ", ".join(names[Y[i] == 1]) or "No Finding" for i, p in enumerate(paths)}
