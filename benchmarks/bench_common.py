"""Pieces shared by the absorb benchmarks (ttft.py, decode.py): documents, the run config, plots."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ml_collections
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lift_jax.config import load_config_file
from lift_jax.eval.niah_data import NiahCell, build_documents, load_essays
from lift_jax.eval.paths import niah_essays_dir


def haystack_document(tokenizer: Any, length: int, sample: int = 0) -> str:
    """A `length`-token document of Paul Graham essays (the NIAH haystack) with the needle half-way."""

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    cell = NiahCell(length=length, depth=0.5, sample=sample)
    return next(build_documents(load_essays(niah_essays_dir()), [cell], count)).text


def server_run_config(
    config: str, base_url: str, output_dir: Path, *, epochs: int, qa_per_sentence: int, concurrency: int
) -> ml_collections.ConfigDict:
    """The absorb config `config` with its generator pointed at an OpenAI-compatible server."""
    cfg = load_config_file(config)
    cfg.output_dir = str(output_dir)
    cfg.train.epochs = epochs
    g = cfg.generator
    g.kind, g.base_url, g.model, g.api_key_env = "openai", base_url, "bench", ""
    g.prompt, g.json_mode, g.qa_per_sentence, g.concurrency = "general", False, qa_per_sentence, concurrency
    return cfg


def line_plot(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    path: Path,
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    logx: bool = False,
) -> Path:
    """Save a PNG with one marked line per series {label: (x, y)}; returns the path."""
    figure = Figure(figsize=(7.0, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for label, (x, y) in series.items():
        axes.plot(x, y, marker="o", label=label)
    if logx:
        axes.set_xscale("log", base=2)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path
