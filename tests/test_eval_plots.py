"""NIAH heatmap PNG."""

from __future__ import annotations

from pathlib import Path

import pytest
from matplotlib.image import imread

from lift_jax.eval.plots import plot_niah_heatmap


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
