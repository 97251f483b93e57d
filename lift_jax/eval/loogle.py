"""`python -m lift_jax.eval.loogle [--config eval_loogle] [--config.<field>=VALUE ...]`

LooGLE: each line of a LooGLE JSONL file (or of every *.jsonl in a folder, in name order) is one long document
with its questions. Exact match / F1 per method and, for LongQA, per category (comprehension & reasoning,
multiple info retrieval, computation, timeline reorder); ShortQA items are grouped as `short_dependency`. Run
on longdep_qa.jsonl alone for the overall LongQA row; the judge (judge.enabled) is the paper's metric.
"""

from __future__ import annotations

from pathlib import Path

import ml_collections

from lift_jax.errors import MissingInputError
from lift_jax.eval.benchmark import Document, QAItem
from lift_jax.eval.cli import eval_main
from lift_jax.eval.harness import Benchmark
from lift_jax.eval.loogle_data import load_loogle
from lift_jax.eval.metrics import LOOGLE_METRICS

USAGE = __doc__
SHORT_CATEGORY = "short_dependency"


def loogle_files(data: str | Path) -> list[Path]:
    """The JSONL file `data`, or every *.jsonl in the folder `data` in name order."""
    path = Path(data)
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"))
        if not files:
            raise MissingInputError(f"no .jsonl files in {path}")
        return files
    if not path.exists():
        raise MissingInputError(f"{path} does not exist")
    return [path]


def load_documents(data: str | Path, max_documents: int = 0) -> list[Document]:
    """The documents of every LooGLE file of `data`, at most `max_documents` (0 = all) in total."""
    docs: list[Document] = []
    for path in loogle_files(data):
        left = max_documents - len(docs) if max_documents else None
        if left == 0:
            break
        docs += load_loogle(path, left)
    return docs


def _fields(doc: Document, item: QAItem) -> dict[str, str]:
    return {} if item.category is not None else {"category": SHORT_CATEGORY}


def loogle_benchmark(cfg: ml_collections.ConfigDict) -> Benchmark:
    """The LooGLE harness over `cfg.data`."""
    return Benchmark(
        name="loogle",
        title="LooGLE",
        metrics=LOOGLE_METRICS,
        load_documents=lambda: load_documents(cfg.data, cfg.max_documents),
        record_fields=_fields,
    )


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    eval_main(argv, "eval_loogle", USAGE, loogle_benchmark)


if __name__ == "__main__":
    main()
