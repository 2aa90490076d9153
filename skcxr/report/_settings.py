"""The report's settings section: the evaluation's and the run's settings, library versions and the machine."""

from __future__ import annotations

import json
import platform
import sys

from .. import __version__
from .._env import REPORT_LIBRARIES, cpu_description, library_versions
from ._html import _esc, _kv_table


def _environment() -> list:
    pairs = [("skcxr", __version__), ("Python", platform.python_version())]
    pairs += [(name, version) for name, version in library_versions(REPORT_LIBRARIES) if version is not None]
    pairs += [("platform", platform.platform()), ("CPU", cpu_description())]
    torch = sys.modules.get("torch")  # not imported for this: a report of sklearn-only models stays light
    if torch is not None:
        pairs.append(("torch threads", torch.get_num_threads()))
        if torch.cuda.is_available():
            pairs.append(("GPU", torch.cuda.get_device_name(0)))
    return pairs


def _settings_section(result, config, extra) -> str:
    evaluation = [
        ("models", ", ".join(result.proba)),
        ("baseline", result.baseline or "none"),
        ("bootstrap", f"{result.n_boot:,} resamples of test patients, {result.confidence:.0%} percentile intervals"),
        ("bootstrap seed", "none recorded" if result.random_state is None else result.random_state),
        ("thresholds from", "; ".join(f"{m}: {t}" for m, t in result.summary.get("Thresholds", {}).items())
         if "Thresholds" in result.summary else "—"),
        *extra,
    ]
    parts = ["<h3>Evaluation</h3>", _kv_table(evaluation)]
    if config:
        parts += ["<h3>Run</h3>", _kv_table((k, v if isinstance(v, str) else json.dumps(v, default=str))
                                            for k, v in config.items())]
    parts += ["<h3>Versions and machine</h3>", _kv_table(_environment())]
    models = "".join(f"<p><b>{_esc(name)}</b></p><pre>{_esc(_model_repr(m))}</pre>"
                     for name, m in result.models.items())
    if models:
        parts.append(f"<details><summary>Fitted models (parameters that differ from the defaults)</summary>{models}"
                     "</details>")
    return "".join(parts)


def _model_repr(model) -> str:
    try:
        return repr(model)
    except Exception as exc:  # noqa: BLE001 - a repr must not stop the report
        return f"{type(model).__name__} (repr failed: {exc})"
