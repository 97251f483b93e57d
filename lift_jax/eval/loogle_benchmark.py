"""The LooGLE benchmark for the evaluation harness (`python -m lift_jax.eval.loogle` runs it)."""

from __future__ import annotations

from pathlib import Path

import ml_collections

from lift_jax.errors import MissingInputError
from lift_jax.eval.benchmark import Document, QAItem
from lift_jax.eval.harness import Benchmark
from lift_jax.eval.loogle_data import load_loogle
from lift_jax.eval.metrics import LOOGLE_METRICS

SHORT_CATEGORY = "short_dependency"


def loogle_files(data: str | Path) -> list[Path]:
    """The JSONL file `data`, or the QA files of the folder `data` in name order: its *_qa.jsonl files (the
    published LooGLE-testdata layout, beside summarization and cloze files), else every *.jsonl."""
    path = Path(data)
    if path.is_dir():
        files = sorted(path.glob("*_qa.jsonl")) or sorted(path.glob("*.jsonl"))
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

