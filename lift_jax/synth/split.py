"""Sentence splitting (nltk Punkt with shipped English parameters) and the per-sentence generation tasks."""

from __future__ import annotations

import dataclasses
import functools
import re

from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

from lift_jax.errors import ConfigError
from lift_jax.synth.punkt_en import ABBREVIATIONS, LOWERCASE_WORDS

_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n")
# Sentence ends Punkt's English parameters do not know (they need a space after . ? !): CJK full stops and
# marks, the Arabic question mark, the Devanagari danda.
_OTHER_SENTENCE_END = re.compile(r"(?<=[\u3002\uff01\uff1f\u061f\u0964])\s*")
_ORTHO_MID_LC = 1 << 5  # Punkt's flag: "seen lower-case inside a sentence"


@dataclasses.dataclass(frozen=True)
class Sentence:
    """A sentence with its character span `[start, end)` in the document; `text` has whitespace collapsed."""

    text: str
    start: int
    end: int


@dataclasses.dataclass(frozen=True)
class SentenceTask:
    """What the generator sees for one sentence: the sentence and the text right before it."""

    index: int
    sentence: str
    context: str


@functools.cache
def punkt_tokenizer() -> PunktSentenceTokenizer:
    """A Punkt sentence tokenizer built from the shipped English parameters (no pickle, no download)."""
    params = PunktParameters()
    params.abbrev_types = set(ABBREVIATIONS)
    for word in LOWERCASE_WORDS:
        params.add_ortho_context(word, _ORTHO_MID_LC)
    return PunktSentenceTokenizer(params)


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _punkt_spans(text: str) -> list[tuple[int, int]]:
    """Punkt sentence spans, never crossing a blank line (headings and paragraphs end sentences)."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in [*_PARAGRAPH_BREAK.finditer(text), None]:
        end = match.start() if match else len(text)
        for a, b in punkt_tokenizer().span_tokenize(text[start:end]):
            spans.extend(_other_ends(text, start + a, start + b))
        start = match.end() if match else len(text)
    return spans


def _other_ends(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """`[start, end)` split after each sentence end Punkt does not see (`_OTHER_SENTENCE_END`)."""
    spans = []
    for match in _OTHER_SENTENCE_END.finditer(text, start, end):
        if start < match.start() and match.end() < end:
            spans.append((start, match.start()))
            start = match.end()
    return [*spans, (start, end)]


def _merge_short(text: str, spans: list[tuple[int, int]], min_chars: int) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and len(_collapse(text[merged[-1][0] : merged[-1][1]])) < min_chars:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    if len(merged) > 1 and len(_collapse(text[merged[-1][0] : merged[-1][1]])) < min_chars:
        last = merged.pop()
        merged[-1] = (merged[-1][0], last[1])
    return merged


def _cut_long(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """Cut `[start, end)` into near-equal pieces of at most `max_chars`, at a line break in a piece's second half
    (a list or table row stays whole), else at whitespace, else (inside an over-long word) anywhere."""
    pieces: list[tuple[int, int]] = []
    while end - start > max_chars:
        target = -(-(end - start) // -(-(end - start) // max_chars))  # ceil(length / ceil(length / max))
        window = text[start : start + target + 1]
        lines = [m.start() for m in re.finditer(r"\n", window) if m.start() > target // 2]
        cut = lines[-1] if lines else max((m.start() for m in re.finditer(r"\s", window)), default=0)
        cut = start + (cut if cut > 0 else target)
        pieces.append((start, cut))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if start < end:
        pieces.append((start, end))
    return pieces


def split_sentences(text: str, min_chars: int = 20, max_chars: int = 1000) -> list[Sentence]:
    """Punkt sentences of `text`; ones shorter than `min_chars` merge with the next, ones longer than
    `max_chars` are cut into near-equal pieces at whitespace (hard cuts only inside over-long words)."""
    if min_chars > max_chars:
        raise ConfigError(f"min_sentence_chars ({min_chars}) must not exceed max_sentence_chars ({max_chars})")
    sentences = []
    for start, end in _merge_short(text, _punkt_spans(text), min_chars):
        for a, b in _cut_long(text, start, end, max_chars):
            sentences.append(Sentence(_collapse(text[a:b]), a, b))
    return [s for s in sentences if s.text]


def preceding_context(text: str, start: int, max_chars: int) -> str:
    """At most `max_chars` characters of `text` ending right before `start`, beginning at a word boundary."""
    lo = max(0, start - max_chars)
    if lo > 0 and not text[lo - 1].isspace():
        space = re.search(r"\s", text[lo:start])
        lo = lo + space.start() if space else lo  # no space (e.g. Chinese): cut mid-word, keep the context
    return text[lo:start].strip()


def sentence_tasks(
    text: str, min_chars: int = 20, max_chars: int = 1000, max_context_chars: int = 2048
) -> list[SentenceTask]:
    """One task per sentence: its index, the sentence, and up to `max_context_chars` of preceding text."""
    return [
        SentenceTask(i, s.text, preceding_context(text, s.start, max_context_chars))
        for i, s in enumerate(split_sentences(text, min_chars, max_chars))
    ]
