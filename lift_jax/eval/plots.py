"""NIAH accuracy heatmap and score by position in the document (matplotlib Agg canvas, no pyplot state)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


def bin_means(points: Sequence[tuple[float, float]], bins: int) -> list[tuple[float, float, int]]:
    """(bin centre, mean score, count) of each non-empty of `bins` equal bins of [0, 1] over (position, score)
    points; position 1.0 falls in the last bin."""
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    sums, counts = [0.0] * bins, [0] * bins
    for position, score in points:
        if not 0.0 <= position <= 1.0:
            raise ValueError(f"position {position} is not a fraction in [0, 1]")
        b = min(int(position * bins), bins - 1)
        sums[b] += score
        counts[b] += 1
    return [((b + 0.5) / bins, sums[b] / counts[b], counts[b]) for b in range(bins) if counts[b]]


def plot_score_by_position(
    points: Mapping[str, Sequence[tuple[float, float]]],
    path: str | Path,
    *,
    window_edges: tuple[float, float] | None,
    metric: str = "F1",
    title: str = "",
    bins: int = 10,
    figsize: tuple[float, float] = (8.0, 5.0),
    dpi: int = 100,
) -> Path:
    """Line plot PNG of the mean score (percent) against the question's position in the document, one line
    per method from its (position fraction, score 0..100) points, binned into `bins` equal bins; the middle
    that truncated ICL drops (between `window_edges`, fractions of the document) is shaded. Returns the path."""
    if not any(points.values()):
        raise ValueError("no scored questions to plot")
    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if window_edges is not None and window_edges[0] < window_edges[1]:
        head, tail = window_edges
        ax.axvspan(head, tail, color="lightgrey", alpha=0.5, label="outside the ICL window")
        for edge in (head, tail):
            ax.axvline(edge, color="grey", linestyle="--", linewidth=1)
    for method, method_points in points.items():
        binned = bin_means(method_points, bins)
        if binned:
            xs, ys, _ = zip(*binned, strict=True)
            ax.plot(xs, ys, marker="o", label=f"{method} (n={len(method_points)})")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel("position of the answer's paragraph in the document (fraction of its tokens)")
    ax.set_ylabel(f"{metric} (%)")
    ax.set_title(title or f"{metric} by position in the document")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
