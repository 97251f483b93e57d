"""The Needle in a Haystack benchmark for the evaluation harness (`python -m lift_jax.eval.niah` runs it)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import ml_collections

from lift_jax.errors import ConfigError
from lift_jax.eval.benchmark import Document, QAItem
from lift_jax.eval.harness import Benchmark
from lift_jax.eval.metrics import keyword_scorer, niah_metrics
from lift_jax.eval.niah_data import NiahCell, NiahDocument, build_documents, cell_accuracy, grid, load_essays
from lift_jax.eval.plots import plot_niah_heatmap
from lift_jax.eval.records import is_error


def _numbers(text: str, kind: type, field: str) -> list[Any]:
    try:
        values = [kind(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"niah.{field}={text!r}: expected a comma list of {kind.__name__}s") from None
    if not values:
        raise ConfigError(f"niah.{field} is empty")
    return values


def niah_cells(cfg: ml_collections.ConfigDict) -> list[NiahCell]:
    """The grid of `cfg.niah` (length-major, then depth, then sample), first `cfg.max_documents` cells."""
    n = cfg.niah
    cells = grid(_numbers(n.lengths, int, "lengths"), _numbers(n.depths, float, "depths"), n.samples)
    return cells[: cfg.max_documents] if cfg.max_documents else cells


def keywords(cfg: ml_collections.ConfigDict) -> tuple[str, ...]:
    """The scoring keywords of `cfg.niah`."""
    words = tuple(k.strip() for k in cfg.niah.keywords.split(",") if k.strip())
    if not words:
        raise ConfigError("niah.keywords is empty")
    return words


def token_counter(model_path: str) -> Callable[[str], int]:
    """Token count of a text under the model's tokenizer (loaded without the weights)."""
    from lift_jax.models.loader import load_tokenizer, resolve_source
    from lift_jax.models.weight_files import CheckpointError

    tokenizer = load_tokenizer(resolve_source(model_path))
    if tokenizer is None:
        raise CheckpointError(f"{model_path} has no tokenizer files; NIAH lengths are counted in its tokens")
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])


def heatmaps(output_dir: Path, records: list[dict[str, Any]], words: tuple[str, ...]) -> list[Path]:
    """A keyword-accuracy heatmap PNG per method, from the answered records."""
    score = keyword_scorer(words)
    by_method: dict[str, list[tuple[str, float]]] = {}
    for r in records:
        if not is_error(r):
            by_method.setdefault(str(r["method"]), []).append((str(r["id"]), score(str(r["prediction"]), [])))
    return [
        plot_niah_heatmap(cell_accuracy(scores), output_dir / f"heatmap_{method.replace('+', '_')}.png",
                          method=method)
        for method, scores in by_method.items()
    ]


def niah_benchmark(cfg: ml_collections.ConfigDict, count_tokens: Callable[[str], int] | None = None) -> Benchmark:
    """The NIAH harness for `cfg` (`count_tokens` defaults to the model's tokenizer)."""
    cells, words = niah_cells(cfg), keywords(cfg)
    built: dict[str, NiahDocument] = {}

    def load_documents() -> list[Document]:
        essays = load_essays(cfg.data)
        counter = count_tokens or token_counter(cfg.model_path)
        n = cfg.niah
        for d in build_documents(essays, cells, counter, needle=n.needle, question=n.question, seed=n.seed):
            built[d.id] = d
        return [built[c.id].to_document() for c in cells]

    def fields(doc: Document, item: QAItem) -> dict[str, Any]:
        d = built[doc.id]
        return {"length": d.cell.length, "depth": d.cell.depth, "sample": d.cell.sample, "n_tokens": d.n_tokens}

    return Benchmark(
        name="niah",
        title="Needle in a Haystack",
        metrics=niah_metrics(words),
        load_documents=load_documents,
        record_fields=fields,
        finish=lambda output_dir, records: heatmaps(output_dir, records, words),
    )

