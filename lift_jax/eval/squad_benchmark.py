"""The SQuAD v1.1 benchmark for the evaluation harness (`python -m lift_jax.eval.squad` runs it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ml_collections

from lift_jax.eval.benchmark import Document, QAItem
from lift_jax.eval.harness import Benchmark
from lift_jax.eval.metrics import SQUAD_METRICS, f1_score
from lift_jax.eval.plots import plot_score_by_position
from lift_jax.eval.records import is_error
from lift_jax.eval.squad_data import load_squad

POSITION_PLOT = "f1_by_position.png"


def position_plot(output_dir: Path, records: list[dict[str, Any]], context_tokens: int) -> list[Path]:
    """F1 against the answer paragraph's position, one line per method (the window's edges averaged over the
    documents); nothing when no answered record has a position."""
    points: dict[str, list[tuple[float, float]]] = {}
    edges: dict[str, tuple[float, float]] = {}
    for r in records:
        if is_error(r) or "position" not in r:
            continue
        points.setdefault(str(r["method"]), []).append((float(r["position"]), 100.0 * f1_score(
            str(r["prediction"]), list(r["answers"]))))
        edges.setdefault(str(r["doc_id"]), tuple(r["window_edges"]))
    if not points:
        return []
    head = sum(e[0] for e in edges.values()) / len(edges)
    tail = sum(e[1] for e in edges.values()) / len(edges)
    window = f"{context_tokens} tokens" if context_tokens else "the model's"
    documents = f"{len(edges)} document" + ("s" if len(edges) > 1 else "")
    title = f"SQuAD articles: F1 by position ({documents}, ICL window {window})"
    return [plot_score_by_position(points, output_dir / POSITION_PLOT, window_edges=(head, tail), title=title)]


def squad_benchmark(cfg: ml_collections.ConfigDict) -> Benchmark:
    """The SQuAD harness over `cfg.data`: the first `cfg.max_documents` paragraphs, or articles with
    `cfg.document_unit = "article"` (only those in `cfg.titles` when set)."""
    unit = cfg.get("document_unit", "paragraph")  # configs not made from eval_squad lack the SQuAD fields
    article = unit == "article"
    titles = tuple(t.strip() for t in str(cfg.get("titles", "")).split("|") if t.strip())

    def fields(doc: Document, item: QAItem) -> dict[str, Any]:
        return {"paragraph": item.passage} if item.passage is not None else {}

    return Benchmark(
        name="squad",
        title="SQuAD v1.1 (" + ("articles" if article else "single passage") + ")",
        metrics=SQUAD_METRICS,
        load_documents=lambda: load_squad(cfg.data, cfg.max_documents or None, unit, titles),
        record_fields=fields,
        finish=(lambda out, records: position_plot(out, records, cfg.ask.context_tokens)) if article else None,
    )

