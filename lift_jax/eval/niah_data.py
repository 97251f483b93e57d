"""Needle-in-a-Haystack documents: essays as distractor text, the needle at a sentence boundary at a depth.

Depth is a fraction of the document (0.0 = start, 1.0 = end), measured in tokens of the distractor text.
The distractor of a (length, sample) pair does not depend on the depth, so the cells of one length and
sample share every sentence except the needle's.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import itertools
import random
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from nltk.tokenize.punkt import PunktSentenceTokenizer

from lift_jax.errors import ConfigError, MissingInputError
from lift_jax.eval.benchmark import BenchmarkFormatError, Document, QAItem

NEEDLE = "The best thing to do in San Francisco is eat a sandwich and sit in Dolores Park on a sunny day."
QUESTION = "What is the best thing to do in San Francisco?"
ESSAY_SEPARATOR = "\n\n"

CountTokens = Callable[[str], int]
_CELL_ID = re.compile(r"L(\d+)_D([0-9.]+(?:e-\d+)?)_S(\d+)")
_WORD = re.compile(r"\S+")


@dataclasses.dataclass(frozen=True, order=True)
class NiahCell:
    """One grid cell sample: target length in tokens, needle depth (fraction), sample index."""

    length: int
    depth: float
    sample: int

    @property
    def id(self) -> str:
        """Stable id such as `L1000_D0.25_S0`."""
        return f"L{self.length}_D{float(self.depth)!r}_S{self.sample}"


@dataclasses.dataclass(frozen=True)
class NiahDocument:
    """A built NIAH document: its text, where the needle starts (character offset) and its token count."""

    cell: NiahCell
    text: str
    needle_start: int
    n_tokens: int
    needle: str
    question: str

    @property
    def id(self) -> str:
        """The cell id."""
        return self.cell.id

    def to_document(self) -> Document:
        """As a benchmark Document with one question whose gold answer is the needle, its passage the needle."""
        item = QAItem(id=self.id, question=self.question, answers=(self.needle,), passage=0)
        needle = (self.needle_start, self.needle_start + len(self.needle))
        return Document(id=self.id, title=self.id, text=self.text, questions=(item,), passages=(needle,))


def parse_cell_id(cell_id: str) -> NiahCell:
    """Inverse of NiahCell.id."""
    match = _CELL_ID.fullmatch(cell_id)
    if match is None:
        raise ConfigError(f"not a NIAH cell id: {cell_id!r} (expected e.g. L1000_D0.25_S0)")
    return NiahCell(int(match[1]), float(match[2]), int(match[3]))


def grid(lengths: Iterable[int], depths: Iterable[float], samples: int) -> list[NiahCell]:
    """All cells, length-major, then depth, then sample."""
    lengths, depths = list(lengths), [float(d) for d in depths]
    if samples < 1:
        raise ConfigError(f"samples must be >= 1, got {samples}")
    if any(length < 1 for length in lengths):
        raise ConfigError(f"lengths must be positive, got {lengths}")
    if any(not 0.0 <= d <= 1.0 for d in depths):
        raise ConfigError(f"depths are fractions in [0, 1] (not percent), got {depths}")
    return [NiahCell(length, d, s) for length in lengths for d in depths for s in range(samples)]


def cell_accuracy(scores: Iterable[tuple[str, float]]) -> dict[tuple[int, float], float]:
    """Mean score per (length, depth) over the samples, from (cell id, 0..1 score) pairs."""
    groups: dict[tuple[int, float], list[float]] = {}
    for cell_id, score in scores:
        cell = parse_cell_id(cell_id)
        groups.setdefault((cell.length, cell.depth), []).append(score)
    return {key: sum(values) / len(values) for key, values in sorted(groups.items())}


def load_essays(directory: str | Path) -> list[str]:
    """The `*.txt` essays of a folder, in sorted file-name order (hidden files such as macOS `._*` skipped)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise MissingInputError(f"{directory} is not a folder; set --config.data to the folder of haystack essays "
                                "(*.txt)")
    files = sorted(f for f in directory.glob("*.txt") if f.is_file() and not f.name.startswith("."))
    if not files:
        raise MissingInputError(f"no .txt essays in {directory}")
    essays = []
    for f in files:
        try:
            essays.append(f.read_text(encoding="utf-8-sig"))
        except UnicodeDecodeError as exc:
            raise BenchmarkFormatError(f, f"byte {exc.start}", "not UTF-8 text") from None
    return essays


@functools.cache
def _punkt() -> PunktSentenceTokenizer:
    return PunktSentenceTokenizer()


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of `text` (nltk Punkt with default parameters, no trained model)."""
    return list(_punkt().span_tokenize(text))


def essay_order(n_essays: int, sample: int, seed: int) -> list[int]:
    """The essay order of a sample: a permutation fixed by (seed, sample)."""
    order = list(range(n_essays))
    # String seeds are hashed with SHA-512, so the order is the same across Python runs and versions.
    random.Random(f"niah:{seed}:{sample}").shuffle(order)
    return order


def _essay_text(
    essays: Sequence[str], order: Sequence[int], min_tokens: int, count_tokens: CountTokens
) -> str:
    """The essays in `order`, cycled, joined until they hold more than `min_tokens` tokens."""
    parts: list[str] = []
    total = 0
    for k, i in enumerate(itertools.cycle(order)):
        if total > min_tokens:
            break
        if k == len(order) and total == 0:
            raise ConfigError("the essays hold no tokens")
        parts.append(essays[i])
        total += count_tokens(essays[i])
    return ESSAY_SEPARATOR.join(parts)


def _first(n: int, predicate: Callable[[int], bool]) -> int:
    """First index in [0, n) where a monotone (False..., True...) predicate holds, else n."""
    return bisect.bisect_left(range(n), True, key=predicate)


def fit_distractor(
    essays: Sequence[str], order: Sequence[int], needle: str, length: int, count_tokens: CountTokens
) -> str:
    """Distractor text such that it plus the needle has `length` tokens (or just under).

    The window of the essays in `order` (cycled) ends at a sentence end, so a needle at depth 1.0 follows a
    whole sentence; the partial sentence that exact length needs is at the start. Binary searches over word
    boundaries: O(log n) calls of `count_tokens`.
    """
    if not essays or not order:
        raise ConfigError("no essays to build the haystack from")
    text = _essay_text(essays, order, length, count_tokens)
    ends = [m.end() for m in _WORD.finditer(text)]
    over = _first(len(ends), lambda k: count_tokens(text[: ends[k]] + " " + needle) > length)
    cut = ends[over] if over < len(ends) else len(text)
    end = next((e for _, e in split_sentences(text) if e >= cut), len(text))
    starts = [m.start() for m in _WORD.finditer(text, 0, end)]
    first = _first(len(starts), lambda k: count_tokens(text[starts[k] : end] + " " + needle) <= length)
    if first == len(starts):
        raise ConfigError(f"length {length} leaves no room for distractor text beside the needle")
    return text[starts[first] : end]


def insert_needle(distractor: str, needle: str, depth: float, count_tokens: CountTokens) -> tuple[str, int]:
    """Insert the needle at the sentence boundary nearest `depth` (fraction of the distractor's tokens).

    Returns the document and the needle's character offset. Binary search over the sentence starts:
    O(log n) calls of `count_tokens`.
    """
    if not 0.0 <= depth <= 1.0:
        raise ConfigError(f"depth is a fraction in [0, 1] (not percent), got {depth}")
    starts = [start for start, _ in split_sentences(distractor)[1:]]
    bounds = [0, *starts, len(distractor)]
    target = depth * count_tokens(distractor)

    def tokens_before(i: int) -> int:
        return count_tokens(distractor[: bounds[i]])

    i = _first(len(bounds), lambda k: tokens_before(k) >= target)
    if i > 0 and target - tokens_before(i - 1) <= tokens_before(i) - target:
        i -= 1
    left, right = distractor[: bounds[i]], distractor[bounds[i] :]
    pad_left = "" if not left or left[-1].isspace() else " "
    pad_right = " " if right and not right[0].isspace() else ""
    return left + pad_left + needle + pad_right + right, len(left) + len(pad_left)


def build_documents(
    essays: Sequence[str],
    cells: Iterable[NiahCell],
    count_tokens: CountTokens,
    *,
    needle: str = NEEDLE,
    question: str = QUESTION,
    seed: int = 0,
) -> Iterator[NiahDocument]:
    """The NIAH document of every cell; the distractor is built once per (length, sample)."""
    distractors: dict[tuple[int, int], str] = {}
    for cell in cells:
        key = (cell.length, cell.sample)
        if key not in distractors:
            order = essay_order(len(essays), cell.sample, seed)
            distractors[key] = fit_distractor(essays, order, needle, cell.length, count_tokens)
        text, start = insert_needle(distractors[key], needle, cell.depth, count_tokens)
        yield NiahDocument(
            cell=cell,
            text=text,
            needle_start=start,
            n_tokens=count_tokens(text),
            needle=needle,
            question=question,
        )
