"""NIAH heatmap PNG."""

from __future__ import annotations

from pathlib import Path

import pytest
from matplotlib.image import imread

from lift_jax.eval.plots import bin_means, plot_niah_heatmap, plot_score_by_position


def test_heatmap_written_with_expected_size(tmp_path: Path) -> None:
    accuracy = {
        (length, depth): (i + j) / 8
        for i, length in enumerate([1000, 2000, 4000])
        for j, depth in enumerate([0.0, 0.25, 0.5, 0.75, 1.0])
    }
    del accuracy[(4000, 1.0)]  # a missing cell is drawn grey
    path = plot_niah_heatmap(accuracy, tmp_path / "plots" / "lift.png", method="LIFT")
    assert path == tmp_path / "plots" / "lift.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert imread(path).shape[:2] == (500, 800)
    small = plot_niah_heatmap(accuracy, tmp_path / "small.png", method="raw", figsize=(4, 3), dpi=50)
    assert imread(small).shape[:2] == (150, 200)


def test_heatmap_needs_cells(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no NIAH cells"):
        plot_niah_heatmap({}, tmp_path / "x.png", method="LIFT")


def test_bin_means_and_position_plot(tmp_path: Path) -> None:
    points = [(0.0, 100.0), (0.05, 0.0), (0.5, 40.0), (0.55, 60.0), (1.0, 80.0)]
    assert bin_means(points, 4) == [(0.125, 50.0, 2), (0.625, 50.0, 2), (0.875, 80.0, 1)]
    with pytest.raises(ValueError, match="not a fraction"):
        bin_means([(1.5, 0.0)], 4)
    path = plot_score_by_position({"icl": points, "lift": points[:2]}, tmp_path / "f1.png",
                                  window_edges=(0.2, 0.8), title="F1", dpi=50)
    assert imread(path).shape[:2] == (250, 400)
    with pytest.raises(ValueError, match="no scored questions"):
        plot_score_by_position({"icl": []}, tmp_path / "x.png", window_edges=None)
