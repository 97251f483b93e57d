"""SQuAD loader (official JSON format), single-passage setting: each paragraph is one document."""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from lift_jax.eval.benchmark import BenchmarkFormatError, Document, QAItem, check_max_documents, require


def _read_json(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise BenchmarkFormatError(path, where, f"invalid JSON ({exc.msg})") from None
    except UnicodeDecodeError as exc:
        raise BenchmarkFormatError(path, f"byte {exc.start}", "not UTF-8 text") from None


def _question(qa: object, path: Path, where: str) -> QAItem:
    qid = require(qa, "id", str, path=path, where=where)
    question = require(qa, "question", str, path=path, where=where)
    answers = require(qa, "answers", list, path=path, where=where)
    if not answers:
        raise BenchmarkFormatError(path, where, '"answers" is empty (SQuAD v1.1 needs a gold answer)')
    texts = tuple(
        require(answer, "text", str, path=path, where=f"{where}.answers[{k}]")
        for k, answer in enumerate(answers)
    )
    return QAItem(id=qid, question=question, answers=texts)


def _documents(path: Path) -> Iterator[Document]:
    root = _read_json(path)
    articles = require(root, "data", list, path=path, where="top level")
    seen: set[str] = set()
    for a, article in enumerate(articles):
        where = f"data[{a}]"
        title = require(article, "title", str, path=path, where=where)
        paragraphs = require(article, "paragraphs", list, path=path, where=where)
        for p, paragraph in enumerate(paragraphs):
            where = f"data[{a}].paragraphs[{p}]"
            context = require(paragraph, "context", str, path=path, where=where)
            qas = require(paragraph, "qas", list, path=path, where=where)
            questions = []
            for q, qa in enumerate(qas):
                item = _question(qa, path, f"{where}.qas[{q}]")
                if item.id in seen:
                    raise BenchmarkFormatError(path, f"{where}.qas[{q}]", f'duplicate id "{item.id}"')
                seen.add(item.id)
                questions.append(item)
            yield Document(id=f"{title}/{p}", title=title, text=context, questions=tuple(questions))


def load_squad(path: str | Path, max_documents: int | None = None) -> list[Document]:
    """Paragraphs of a SQuAD-format file as documents (first `max_documents`; None = all).

    Only the records up to the last returned document are validated; a malformed one raises
    BenchmarkFormatError naming the file and the record (e.g. `data[3].paragraphs[7].qas[2]`).
    """
    check_max_documents(max_documents)
    return list(islice(_documents(Path(path)), max_documents))
