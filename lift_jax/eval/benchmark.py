"""Documents, QA items and the format error shared by the benchmark loaders."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from lift_jax.errors import ConfigError, LiftError

_KIND_NAMES = {str: "a string", int: "an integer", list: "a list", dict: "an object"}


class BenchmarkFormatError(LiftError, ValueError):
    """A benchmark file that breaks its format; the message names the file and the first bad record."""

    def __init__(self, path: str | Path, where: str, problem: str) -> None:
        self.path = Path(path)
        self.where = where
        self.problem = problem
        super().__init__(f"{path}: {where}: {problem}")


@dataclasses.dataclass(frozen=True)
class QAItem:
    """One benchmark question with its gold answers (and, for LooGLE, its category and evidence).

    `passage` indexes the document's `passages`: the span that holds the answer (a SQuAD article's paragraph,
    the NIAH needle); the harness reports whether it lies inside the truncated-ICL window.
    """

    id: str
    question: str
    answers: tuple[str, ...]
    category: str | None = None
    evidence: tuple[str, ...] = ()
    passage: int | None = None


@dataclasses.dataclass(frozen=True)
class Document:
    """One document to absorb, with the questions asked about it and the character spans [start, end) of the
    passages its questions point to (empty when its questions do not say where their answers are)."""

    id: str
    title: str
    text: str
    questions: tuple[QAItem, ...]
    passages: tuple[tuple[int, int], ...] = ()


def kind_name(value: object) -> str:
    """'a string', 'a list', ... for error messages."""
    return _KIND_NAMES.get(type(value), type(value).__name__)


def require(record: object, key: str, kind: type | tuple[type, ...], *, path: str | Path, where: str) -> Any:
    """`record[key]`, checked to exist and be of `kind` (or one of several); otherwise a BenchmarkFormatError at
    `where`."""
    if not isinstance(record, dict):
        raise BenchmarkFormatError(path, where, f"expected an object, got {kind_name(record)}")
    if key not in record:
        raise BenchmarkFormatError(path, where, f'missing "{key}"')
    value = record[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and int in kinds):
        expected = " or ".join(_KIND_NAMES.get(k, k.__name__) for k in kinds)
        raise BenchmarkFormatError(path, where, f'"{key}" must be {expected}, got {kind_name(value)}')
    return value


def check_max_documents(max_documents: int | None) -> None:
    """Reject a negative document limit (None means all documents)."""
    if max_documents is not None and max_documents < 0:
        raise ConfigError(f"max_documents must be >= 0 or None, got {max_documents}")
