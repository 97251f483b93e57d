"""`python -m lift_jax.eval.squad [--config eval_squad] [--config.<field>=VALUE ...]`

SQuAD v1.1 from a file in the official JSON format. document_unit=paragraph (default, the paper's
single-passage setting): each paragraph is one document, absorbed on its own; its questions are asked without
it. document_unit=article (beyond the window): each article is one document, its paragraphs joined by blank
lines in order, with every question of the article; max_documents counts articles; each record gains
`paragraph` (the question's source paragraph), `in_window` (that whole paragraph lies inside the truncated-ICL
window of ask.context_tokens tokens that icl and <method>+icl see), `position` and `window_edges` (fractions of
the document's tokens); the summary splits every metric inside / outside the window and
output_dir/f1_by_position.png plots F1 against the paragraph's position, one line per method.
titles='A|B' keeps only the articles with those titles ('|'-separated: titles hold commas). Exact match, F1
(official normalisation, max over the gold answers) and contains_answer (a gold answer inside the prediction)
per method, plus the LLM judge when judge.enabled.
Example: python -m lift_jax.eval.squad --config.data=FILE --config.document_unit=article --config.max_documents=2
--config.methods=base,icl,lift,lift+icl --config.ask.context_tokens=512 --config.output_dir=DIR
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ml_collections

from lift_jax.eval.benchmark import Document, QAItem
from lift_jax.eval.cli import eval_main
from lift_jax.eval.harness import Benchmark
from lift_jax.eval.metrics import SQUAD_METRICS, f1_score
from lift_jax.eval.plots import plot_score_by_position
from lift_jax.eval.records import is_error
from lift_jax.eval.squad_data import load_squad

USAGE = __doc__
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


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    eval_main(argv, "eval_squad", USAGE, squad_benchmark)


if __name__ == "__main__":
    main()
