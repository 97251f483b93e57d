"""NIAH accuracy heatmap (matplotlib Agg canvas, no pyplot state)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def plot_niah_heatmap(
    accuracy: Mapping[tuple[int, float], float],
    path: str | Path,
    *,
    method: str,
    figsize: tuple[float, float] = (8.0, 5.0),
    dpi: int = 100,
) -> Path:
    """Heatmap PNG of accuracy (0..1) per (length in tokens, depth fraction); missing cells are grey.

    x = document length, y = needle depth in percent (0 % at the top), each cell annotated; the image is
    figsize * dpi pixels. Returns the path written.
    """
    if not accuracy:
        raise ValueError("no NIAH cells to plot")
    lengths = sorted({length for length, _ in accuracy})
    depths = sorted({depth for _, depth in accuracy})
    grid = np.full((len(depths), len(lengths)), np.nan)
    for (length, depth), value in accuracy.items():
        grid[depths.index(depth), lengths.index(length)] = value

    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    cmap = colormaps["RdYlGn"].with_extremes(bad="lightgrey")
    image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
    for row, col in np.ndindex(grid.shape):
        value = grid[row, col]
        dark = not np.isnan(value) and (value < 0.15 or value > 0.85)
        label = "n/a" if np.isnan(value) else f"{value:.2f}"
        ax.text(col, row, label, ha="center", va="center", fontsize=9, color="white" if dark else "black")
    ax.set_xticks(range(len(lengths)), [str(length) for length in lengths])
    ax.set_yticks(range(len(depths)), [f"{100 * depth:g}%" for depth in depths])
    ax.set_xlabel("document length (tokens)")
    ax.set_ylabel("needle depth")
    ax.set_title(f"NIAH accuracy: {method}")
    fig.colorbar(image, ax=ax, label="accuracy")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
