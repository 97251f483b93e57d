"""LooGLE loader (JSONL; `qa_pairs` is a Python literal, parsed with ast.literal_eval)."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from lift_jax.eval.benchmark import (
    BenchmarkFormatError,
    Document,
    QAItem,
    check_max_documents,
    kind_name,
    require,
)
from lift_jax.eval.metrics import LONGQA_CATEGORIES


def _evidence(item: dict, path: Path, where: str) -> tuple[str, ...]:
    evidence = item.get("S", ())
    if isinstance(evidence, str):
        return (evidence,)
    if isinstance(evidence, list | tuple) and all(isinstance(s, str) for s in evidence):
        return tuple(evidence)
    problem = f'"S" must be a string or a list of strings, got {kind_name(evidence)}'
    raise BenchmarkFormatError(path, where, problem)


def _qa_item(item: object, qid: str, path: Path, where: str) -> QAItem:
    question = require(item, "Q", str, path=path, where=where)
    answer = require(item, "A", str, path=path, where=where)
    category = None
    if "type" in item:
        category = require(item, "type", str, path=path, where=where)
        if category not in LONGQA_CATEGORIES:
            raise BenchmarkFormatError(
                path, where, f'unknown "type" {category!r}; expected one of {", ".join(LONGQA_CATEGORIES)}'
            )
    return QAItem(
        id=qid, question=question, answers=(answer,), category=category, evidence=_evidence(item, path, where)
    )


def _document(line: str, number: int, path: Path) -> Document:
    where = f"line {number}"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BenchmarkFormatError(path, where, f"invalid JSON ({exc.msg} at column {exc.colno})") from None
    text = require(record, "input", str, path=path, where=where)
    title = require(record, "title", str, path=path, where=where)
    literal = require(record, "qa_pairs", str, path=path, where=where)
    try:
        pairs = ast.literal_eval(literal)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
        raise BenchmarkFormatError(path, where, f'"qa_pairs" is not a Python literal ({exc})') from None
    if not isinstance(pairs, list):
        raise BenchmarkFormatError(path, where, f'"qa_pairs" must be a list, got {kind_name(pairs)}')
    doc_id = f"{path.stem}:{number}"
    questions = tuple(
        _qa_item(item, f"{doc_id}:{k}", path, f"{where}: qa_pairs[{k}]") for k, item in enumerate(pairs)
    )
    return Document(id=doc_id, title=title, text=text, questions=questions)


def _documents(path: Path) -> Iterator[Document]:
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise BenchmarkFormatError(path, f"line {number}", "not UTF-8 text") from None
            if line.strip():
                yield _document(line, number, path)


def load_loogle(path: str | Path, max_documents: int | None = None) -> list[Document]:
    """Documents of a LooGLE JSONL file (first `max_documents`; None = all), ids `<file stem>:<line>[:<qa>]`.

    LongQA items carry `category` (one of LONGQA_CATEGORIES) and `evidence`; a malformed line raises
    BenchmarkFormatError naming the file, the line number and the problem. Lines after the last returned
    document are not read.
    """
    check_max_documents(max_documents)
    return list(islice(_documents(Path(path)), max_documents))
