"""The results as the user gets them: the printed tables and results.csv/json/md, per-class files (private)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ._models import BASELINE


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "model"


def _numbered(keys) -> list[str]:
    """``keys`` made unique: a repeated key gets ``-2``, ``-3``, ... from its second time on."""
    seen, out = {}, []
    for key in keys:
        seen[key] = seen.get(key, 0) + 1
        out.append(key if seen[key] == 1 else f"{key}-{seen[key]}")
    return out


def _slugs(names) -> dict:
    names = list(names)
    return dict(zip(names, _numbered(map(_slug, names))))


def _report(result, out: Path | None, config: dict, data: dict, quiet: bool = False) -> None:
    text = [result.to_markdown(), "",
            f"Macro-AUC [95% CI]: bootstrap over test patients ({config['n_boot']} resamples); "
            f"ΔAUC: paired difference to {BASELINE}. (tuned): F1 and Hamming loss at per-label thresholds "
            "tuned on the training part only (Thresholds: where they come from)."]
    for name in result.reports:
        table = result.per_class(name)
        floatfmt = [""] + [".0f" if column == "support" else ".3f" for column in table.columns]
        text += ["", f"Per-class results, {name}:", "", table.to_markdown(floatfmt=floatfmt)]
        if result.reports[name].undefined_auc:
            text.append("AUC undefined (one label value only in the test set): "
                        + ", ".join(result.reports[name].undefined_auc))
    text = "\n".join(text)
    print(text)
    if out is None:
        return
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "results.csv", out / "results.json", out / "results.md"]
    result.summary.to_csv(written[0])
    payload = result.to_dict()
    slugs = _slugs(result.reports)
    payload = {
        "config": config,
        "data": data,
        "baseline": payload["baseline"],
        "results": {name: {**payload["summary"][name], "per_class": payload["per_class"][name],
                           "undefined_auc": payload["undefined_auc"][name],
                           "thresholds": payload["thresholds"][name],
                           "per_class_file": f"per_class_{slugs[name]}.csv"}
                    for name in result.reports},
        "by_source": payload["by_source"],
    }
    written[1].write_text(json.dumps(payload, indent=2, allow_nan=False, ensure_ascii=False))
    written[2].write_text(text + "\n")
    for name, slug in slugs.items():
        result.per_class(name).to_csv(out / f"per_class_{slug}.csv")
    if result.by_source:
        import pandas as pd

        path = out / "results_by_source.csv"
        pd.concat(result.by_source, names=["Source"]).to_csv(path)
        written.append(path)
    if not quiet:
        print(f"\nwrote {', '.join(p.name for p in written)} and per_class_<model>.csv to {out}")
