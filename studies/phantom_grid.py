"""A 4x4 grid of phantom chest radiographs with their labels, for the README.

    .venv/bin/python studies/phantom_grid.py                 # -> studies/figures/phantoms.png
    .venv/bin/python studies/phantom_grid.py --overlay       # also phantoms_masks.png (lung + lesion masks)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from skcxr.datasets.phantoms import make_phantoms  # noqa: E402

FIGURES = Path(__file__).resolve().parent / "figures"
SHORT = {"Cardiomegaly": "Cardiomeg.", "Consolidation": "Consolid.", "Pneumothorax": "Pneumoth.",
         "Infiltration": "Infiltr."}


def title(y, names) -> str:
    found = [SHORT.get(nm, nm) for nm, v in zip(names, y) if v]
    if not found:
        return "No Finding"
    lines, line = [], ""
    for f in found:  # two per line
        line = f"{line}, {f}" if line else f
        if line.count(",") == 1:
            lines.append(line)
            line = ""
    return "\n".join(lines + ([line] if line else []))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--overlay", action="store_true", help="also save lung/lesion mask overlays")
    ap.add_argument("--out", type=Path, default=FIGURES / "phantoms.png")
    args = ap.parse_args()

    data = make_phantoms(16, size=args.size, random_state=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(4, 4, figsize=(8, 9.2))
    for i, ax in enumerate(axes.flat):
        ax.imshow(data.images[i], cmap="gray", vmin=0, vmax=255)
        ax.set_title(title(data.Y[i], data.target_names), fontsize=8)
        ax.axis("off")
    fig.suptitle("skcxr.datasets.make_phantoms(16, random_state=0)", fontsize=10)
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KB)")

    if args.overlay:
        colors = plt.get_cmap("tab10")(np.arange(len(data.target_names)))[:, :3]
        fig, axes = plt.subplots(4, 4, figsize=(10, 11))
        for i, ax in enumerate(axes.flat):
            rgb = np.repeat(data.images[i][..., None] / 255.0, 3, -1)
            rgb[data.lung_masks[i]] = 0.7 * rgb[data.lung_masks[i]] + 0.3 * np.array([0, 0.6, 1])
            for k in np.flatnonzero(data.Y[i]):
                mk = data.lesion_masks[i, k]
                rgb[mk] = 0.5 * rgb[mk] + 0.5 * colors[k]
            ax.imshow(rgb)
            for _, b in data.boxes[data.boxes.image == i].iterrows():
                k = data.target_names.index(b.finding)
                ax.add_patch(plt.Rectangle((b.x - 0.5, b.y - 0.5), b.w, b.h, fill=False, ec=colors[k], lw=1))
            ax.set_title(title(data.Y[i], data.target_names) + f"\nCTR {data.ctr[i]:.2f}", fontsize=7)
            ax.axis("off")
        fig.tight_layout()
        path = args.out.with_name(args.out.stem + "_masks.png")
        fig.savefig(path, dpi=72)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
