"""Which generated questions a sentence keeps: on-topic, not near-duplicates, at least one per sentence."""

from __future__ import annotations

import re
from collections.abc import Iterable

WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_STOPWORD_TEXT = """a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have having he her
    here hers him his how i if in into is it its itself just me more most my no nor not now of off on once only
    or other our out over own same she should so some such than that the their them then there these they this
    those through to too under until up very was we were what when where which while who whom why will with
    would you your yours document text passage sentence according mentioned say says said"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def content_words(text: str) -> set[str]:
    """Lower-case words of `text` that carry content (no stop words, no single letters)."""
    return {w for w in WORD.findall(text.lower()) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())}


def _overlap(a: set[str], b: set[str]) -> float:
    return len(a & b) / max(len(a | b), 1)


def select_questions(
    questions: Iterable[str], sentence: str, context: str, limit: int, duplicate_overlap: float
) -> list[str]:
    """Up to `limit` questions in order: whitespace-normalised, sharing a content word with the sentence or its
    context, and not a near-duplicate (content-word Jaccard >= `duplicate_overlap`) of one kept before."""
    allowed = content_words(f"{sentence} {context}")
    kept: list[str] = []
    kept_words: list[set[str]] = []
    for question in questions:
        question = " ".join(question.split())
        words = content_words(question)
        if not question or not words & allowed:
            continue
        if any(_overlap(words, seen) >= duplicate_overlap for seen in kept_words):
            continue
        kept.append(question)
        kept_words.append(words)
        if len(kept) == limit:
            break
    return kept


def fallback_question(sentence: str, kind: str) -> str | None:
    """The deterministic question for a sentence no generated question survived for (None: the sentence has no
    content words, or `kind` is "none"). "what_about": about the sentence's first four content words."""
    if kind == "none":
        return None
    words = [w for w in re.findall(r"[A-Za-z0-9][A-Za-z0-9'-]*", sentence) if content_words(w)]
    if not words:
        return None
    return f"What does the document say about {' '.join(words[:4])}?"
