"""``skcxr explain``: pictures of where an attention model looks (private)."""

from __future__ import annotations

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
    if args.model is not None:
        model, names, _, _ = _load_model(args.model)
    else:
        from ..model_selection import groups_fit_params, routing_context
        from ..persistence import data_fingerprint, image_fingerprints, save_model
        from ..pipelines import make_attention_pipeline

        paths, Y, groups, _, names, _ = _load([args.data])
        _check_size(groups)
        _say(args, f"Training make_attention_pipeline(size={args.size}) on {len(paths)} images of {args.data} ...")
        model = _configure(make_attention_pipeline(size=args.size, n_jobs=args.n_jobs, random_state=args.seed), args)
        params, routing = groups_fit_params(model, groups)
        with routing_context(routing):
            model.fit(paths, Y, **params)
        save_model(model, args.out / "model.skcxr", target_names=names, settings=_config(args),
                   data={"images": int(len(paths)), "fingerprint": data_fingerprint(paths, Y),
                         "images_seen": image_fingerprints(paths)})
    try:
        attention_steps(model)  # another model is a usage error, before any image is read
    except ValueError as exc:
        raise _UsageError(f"--model: {exc}. Get one with 'skcxr explain IMAGE --data DIR --out OUT' (trains "
                          "make_attention_pipeline and saves OUT/model.skcxr) or save_model(make_attention_pipeline()"
                          ".fit(X, Y), ...) in Python") from None
    seen = attention_maps(model, np.asarray([str(p) for p in args.images], dtype=object))
    names = np.asarray(names if names is not None else range(seen.proba.shape[1]), dtype=str)
    stems = _numbered(path.stem for path in args.images)  # a/chest.png and b/chest.png: two pictures
    for path, stem, x, lung, cam, f, p in zip(args.images, stems, seen.images, seen.lungs, seen.cams, seen.fused,
                                              seen.proba):
        top = np.argsort(p)[::-1][:3]
        title = f"{path.name}: " + ", ".join(f"{names[k]} {p[k]:.2f}" for k in top)
        out = args.out / f"{stem}_attention.png"
        attention_panel(x, cam, lung, f, title=title).savefig(out, dpi=100)
        _say(args, f"wrote {out}")
