"""Pieces shared by the benchmarks: documents, the run config, plots, and the JSON every benchmark saves under
benchmarks/results/ (the README's tables are regenerated from it).

Imports stay light (matplotlib and the NIAH data load on first use): load.py's parent process must stay small.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ml_collections

from lift_jax.config import load_config_file

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def haystack_document(tokenizer: Any, length: int, sample: int = 0) -> str:
    """A `length`-token document of Paul Graham essays (the NIAH haystack) with the needle half-way."""

    from lift_jax.eval.niah_data import NiahCell, build_documents, load_essays
    from lift_jax.eval.paths import niah_essays_dir

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
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

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


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def allocator() -> str:
    """The malloc every process of the run uses: "system", or the preloaded library's name (e.g. "jemalloc",
    from LD_PRELOAD, which the benchmark's subprocesses inherit) with its MALLOC_CONF."""
    preload = [Path(p).name for p in os.environ.get("LD_PRELOAD", "").split() if "alloc" in Path(p).name]
    if not preload:
        return "system"
    name = preload[0].removeprefix("lib").split(".")[0]
    conf = os.environ.get("MALLOC_CONF", "")
    return f"{name} ({conf})" if conf else name


def machine_info() -> dict[str, Any]:
    """What a benchmark number depends on: CPU, usable cores, load averages (1, 5, 15 min) right now, malloc."""
    return {
        "cpu": cpu_model(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "allocator": allocator(),
    }


def code_version() -> str:
    """The git commit this checkout is at, with `+changes` when its code (the package, benchmarks, scripts,
    configs; not results or docs) differs from it; '' outside a git checkout."""
    root = Path(__file__).resolve().parents[1]
    code = ["--", "lift_jax", "benchmarks", ":(exclude)benchmarks/results", "scripts", "configs", "pyproject.toml"]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        changed = subprocess.run(["git", "diff", "--quiet", "HEAD", *code], cwd=root, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return ""
    return commit.stdout.strip() + ("+changes" if changed.returncode else "")


def save_results(name: str, payload: Mapping[str, Any], out_dir: Path = RESULTS_DIR) -> Path:
    """Write `payload` to `out_dir/name.json` (`name_<allocator>.json` under a preloaded malloc) with the command
    that produced it, the UTC time, the code's commit (`code_version`) and the machine (cores, load, malloc);
    returns the path. `payload` should hold
    the printed table (`table`: its lines)."""
    if allocator() != "system":
        name = f"{name}_{allocator().split()[0]}"
    record = {
        "command": shlex.join(["python", *sys.argv]),
        "utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "code": code_version(),
        "machine": machine_info(),
        **payload,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2, default=str) + "\n")
    os.replace(tmp, path)
    return path
