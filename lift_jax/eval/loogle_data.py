"""LooGLE loader (JSONL; `qa_pairs` is a list, or a string holding one as JSON or as a Python literal)."""

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


def _parse_pairs(text: str, path: Path, where: str) -> object:
    """The value of a `qa_pairs` string: JSON first (escapes such as \\/ and surrogate pairs decoded as JSON
    means them), else a Python literal (the published files' repr of a list of dicts)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
        if text.strip().lower() == "none":
            problem = '"qa_pairs" is "none": this line holds no questions (a LooGLE summarization file?)'
        else:
            problem = f'"qa_pairs" is neither JSON nor a Python literal ({exc})'
        raise BenchmarkFormatError(path, where, problem) from None


def _document(line: str, number: int, path: Path) -> Document:
    where = f"line {number}"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BenchmarkFormatError(path, where, f"invalid JSON ({exc.msg} at column {exc.colno})") from None
    text = require(record, "input", str, path=path, where=where)
    title = require(record, "title", str, path=path, where=where)
    pairs = require(record, "qa_pairs", (str, list), path=path, where=where)
    if isinstance(pairs, str):
        pairs = _parse_pairs(pairs, path, where)
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

    Lines without questions are skipped. LongQA items carry `category` (one of LONGQA_CATEGORIES) and
    `evidence`; a malformed line raises
    BenchmarkFormatError naming the file, the line number and the problem. Lines after the last returned
    document are not read.
    """
    check_max_documents(max_documents)
    return list(islice((d for d in _documents(Path(path)) if d.questions), max_documents))
