"""Small HTML pieces of the report: escaping, figures as PNG data URIs, tables, formatted numbers."""

from __future__ import annotations

import base64
import html
import io

import numpy as np
import pandas as pd


def _esc(text) -> str:
    return html.escape(str(text), quote=True)


def _png(fig, dpi=100) -> str:
    """A matplotlib figure as a base64 PNG data URI."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(fig, alt: str, caption: str = "", dpi=100) -> str:
    caption = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f'<figure><img src="{_png(fig, dpi)}" alt="{_esc(alt)}">{caption}</figure>'


def _table(frame: pd.DataFrame) -> str:
    """A DataFrame as an HTML table; a single index's name heads its column (no extra header row)."""
    if frame.index.nlevels == 1 and frame.index.name:
        frame = frame.copy()
        frame.columns.names = [None] * (frame.columns.nlevels - 1) + [frame.index.name]
        frame.index.name = None
    return '<div class="scroll">' + frame.to_html(escape=True, na_rep="—", border=0) + "</div>"


def _kv_table(pairs) -> str:
    rows = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in pairs)
    return f'<div class="scroll"><table class="kv"><tbody>{rows}</tbody></table></div>'


def _ci(value, low, high, signed=False) -> str:
    if value is None or not np.isfinite(value):
        return "—"
    fmt = "{:+.3f}" if signed else "{:.3f}"
    if low is None or not (np.isfinite(low) and np.isfinite(high)):
        return fmt.format(value)
    return f"{fmt.format(value)} [{fmt.format(low)}, {fmt.format(high)}]"


def _num(value, fmt="{:.3f}") -> str:
    return "—" if value is None or not np.isfinite(value) else fmt.format(value)


def _pretty(name: str) -> str:
    return str(name).replace("_", " ")
