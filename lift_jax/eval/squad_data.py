"""SQuAD loader (official JSON format): each paragraph one document (the paper's single-passage setting), or each
article one document (`unit="article"`: its paragraphs joined by blank lines, every question of the article)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

from lift_jax.errors import ConfigError, MissingInputError
from lift_jax.eval.benchmark import BenchmarkFormatError, Document, QAItem, check_max_documents, require

UNITS = ("paragraph", "article")
PARAGRAPH_SEPARATOR = "\n\n"  # between the paragraphs of an article document


def _read_json(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise BenchmarkFormatError(path, where, f"invalid JSON ({exc.msg})") from None
    except UnicodeDecodeError as exc:
        raise BenchmarkFormatError(path, f"byte {exc.start}", "not UTF-8 text") from None
    except FileNotFoundError:
        raise MissingInputError(f"{path} does not exist; set --config.data to a SQuAD JSON file") from None
    except IsADirectoryError:
        raise MissingInputError(f"{path} is a directory; set --config.data to a SQuAD JSON file") from None


def _question(qa: object, path: Path, where: str, passage: int | None) -> QAItem:
    qid = require(qa, "id", str, path=path, where=where)
    question = require(qa, "question", str, path=path, where=where)
    if qa.get("is_impossible"):
        raise BenchmarkFormatError(path, where, "an unanswerable question (is_impossible, SQuAD v2.0); this harness "
                                   "scores SQuAD v1.1: remove the unanswerable questions first")
    answers = require(qa, "answers", list, path=path, where=where)
    if not answers:
        raise BenchmarkFormatError(path, where, '"answers" is empty (SQuAD v1.1 needs a gold answer)')
    texts = tuple(
        require(answer, "text", str, path=path, where=f"{where}.answers[{k}]")
        for k, answer in enumerate(answers)
    )
    return QAItem(id=qid, question=question, answers=texts, passage=passage)


def _paragraphs(
    article: object, a: int, path: Path, seen: set[str], passages: bool
) -> Iterator[tuple[str, str, tuple[QAItem, ...]]]:
    """(title, context, questions) of each paragraph of article `a`, validated one paragraph at a time;
    `passages` tags each question with its paragraph index."""
    title = require(article, "title", str, path=path, where=f"data[{a}]")
    paragraphs = require(article, "paragraphs", list, path=path, where=f"data[{a}]")
    if not paragraphs:
        raise BenchmarkFormatError(path, f"data[{a}]", f'article "{title}" has no paragraphs')
    for p, paragraph in enumerate(paragraphs):
        where = f"data[{a}].paragraphs[{p}]"
        context = require(paragraph, "context", str, path=path, where=where)
        qas = require(paragraph, "qas", list, path=path, where=where)
        questions = []
        for q, qa in enumerate(qas):
            item = _question(qa, path, f"{where}.qas[{q}]", p if passages else None)
            if item.id in seen:
                raise BenchmarkFormatError(path, f"{where}.qas[{q}]", f'duplicate id "{item.id}"')
            seen.add(item.id)
            questions.append(item)
        yield title, context, tuple(questions)


def article_document(title: str, contexts: Sequence[str], questions: Sequence[QAItem]) -> Document:
    """One article as a document: the paragraphs joined by blank lines, in order; `passages` holds each
    paragraph's character span, which the questions' `passage` indexes."""
    spans, start = [], 0
    for context in contexts:
        spans.append((start, start + len(context)))
        start += len(context) + len(PARAGRAPH_SEPARATOR)
    return Document(id=title, title=title, text=PARAGRAPH_SEPARATOR.join(contexts), questions=tuple(questions),
                    passages=tuple(spans))


def _documents(path: Path, unit: str) -> Iterator[Document]:
    root = _read_json(path)
    articles = require(root, "data", list, path=path, where="top level")
    seen: set[str] = set()
    titles: dict[str, int] = {}
    for a, article in enumerate(articles):
        title = require(article, "title", str, path=path, where=f"data[{a}]")
        if title in titles:  # document ids are built from titles
            problem = f'article title "{title}" repeats data[{titles[title]}]; every article needs its own title'
            raise BenchmarkFormatError(path, f"data[{a}]", problem)
        titles[title] = a
        if unit == "paragraph":
            for p, (title, context, questions) in enumerate(_paragraphs(article, a, path, seen, passages=False)):
                yield Document(id=f"{title}/{p}", title=title, text=context, questions=questions)
        else:
            parts = list(_paragraphs(article, a, path, seen, passages=True))
            yield article_document(parts[0][0], [c for _, c, _ in parts], [q for _, _, qs in parts for q in qs])


def load_squad(
    path: str | Path, max_documents: int | None = None, unit: str = "paragraph", titles: Sequence[str] = ()
) -> list[Document]:
    """Documents of a SQuAD-format file: one per paragraph, or one per article with `unit="article"`; only the
    articles named in `titles` when given (file order); the first `max_documents` of them (None = all).
    Paragraphs (articles) without questions are skipped and keep their indices out of the others' ids.

    Only the records up to the last returned document are validated (the whole file when `titles` is given); a
    malformed one (an article without paragraphs, a question without answers, ...) raises
    BenchmarkFormatError naming the file and the record (e.g. `data[3].paragraphs[7].qas[2]`).
    """
    check_max_documents(max_documents)
    if unit not in UNITS:
        raise ConfigError(f"document_unit={unit!r} is unknown; use {' or '.join(UNITS)}")
    path = Path(path)
    docs: Iterable[Document] = (d for d in _documents(path, unit) if d.questions)
    if titles:
        selected = [d for d in docs if d.title in set(titles)]
        missing = [t for t in titles if t not in {d.title for d in selected}]
        if missing:
            raise ConfigError(f'{path}: no article with "title" {missing[0]!r}; check titles=')
        docs = selected
    return list(islice(docs, max_documents))
