"""The figure of a population comparison: each distance matrix (networks grouped by label) above the
networks' 2-D classical MDS map for that distance, coloured by the label."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

TITLES = {"cca": "geometry: CCA (1 - mean canonical correlation)",
          "procrustes": "geometry: Procrustes shape (angle, rad)",
          "dsa": "dynamics: DSA (angle, rad)",
          "topology": "topology: fixed-point signatures"}


def similarity_figure(matrices: dict, maps: dict, labels: list[str], colour_by: str, path) -> Path:
    """``matrices``: name -> (M, M) distances; ``maps``: name -> (M, 2) MDS coordinates of the same."""
    names = list(matrices)
    order = np.argsort(np.asarray(labels), kind="stable")
    groups = sorted(set(labels))
    colours = {g: plt.cm.tab10(i % 10) for i, g in enumerate(groups)}
    fig, axes = plt.subplots(2, len(names), figsize=(4.2 * len(names), 8.2), squeeze=False)
    for c, name in enumerate(names):
        D = np.asarray(matrices[name], dtype=np.float64)
        ax = axes[0, c]
        im = ax.imshow(D[np.ix_(order, order)], cmap="viridis", interpolation="nearest")
        ax.set_title(TITLES.get(name, name), fontsize=9)
        edges = [i for i in range(1, len(order)) if labels[order[i]] != labels[order[i - 1]]]
        for e in edges:
            ax.axhline(e - 0.5, color="white", lw=1)
            ax.axvline(e - 0.5, color="white", lw=1)
        ax.set_xlabel(f"network (grouped by {colour_by})")
        ax.set_ylabel("network")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        xy = np.asarray(maps[name])
        ax = axes[1, c]
        for g in groups:
            sel = [i for i, lab in enumerate(labels) if lab == g]
            ax.scatter(xy[sel, 0], xy[sel, 1], s=36, color=colours[g], label=g, edgecolor="black", lw=0.4)
        if not np.any(D):                 # every pair at distance 0: one point, nothing to map
            ax.text(0.5, 0.5, f"all {len(D)} networks at distance 0:\nthe same by this measure",
                    transform=ax.transAxes, ha="center", va="center", fontsize=9,
                    bbox=dict(facecolor="white", alpha=0.85, edgecolor="grey"))
        ax.set_title(f"MDS of {name}", fontsize=9)
        ax.set_xlabel("MDS 1")
        ax.set_ylabel("MDS 2")
        ax.grid(alpha=0.3)
        ax.legend(title=colour_by, fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
