"""Which questions a sentence gets: the generated ones that are on-topic and not near-duplicates, a deterministic
fallback when none survives, and optional deterministic fill-in-the-blank questions about its names and numbers."""

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


_ANSWER_WORDS = frozenset({"no", "not", "never", "yes"})  # an answer that only adds these still answers
_FRAME_WORDS = frozenset({"answer", "answers", "question", "questions"})  # "The answer to the question is:"
_SUFFIX = re.compile(r"(?:ing|ed|es|s)$")


def _answer_stems(text: str) -> set[str]:
    words = (content_words(text) - _FRAME_WORDS) | (set(WORD.findall(text.lower())) & _ANSWER_WORDS)
    return {_SUFFIX.sub("", w) if len(w) > 4 else w for w in words}


def adds_nothing(question: str, answer: str) -> bool:
    """Whether `answer` has no content word (or yes/no/not/never) beyond `question`'s, compared without common
    suffixes: an echo of the question ("The best thing to do in San Francisco?") or a stub ("The answer to the
    question is:")."""
    return _answer_stems(answer) <= _answer_stems(question)

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


_COPULA = re.compile(r"\s(is|are|was|were)\s")
_DETERMINERS = frozenset({"the", "a", "an", "this", "that", "these", "those", "its", "their", "his", "her", "our"})


def copula_question(sentence: str) -> str | None:
    """"What is X?" for a sentence that opens with a short subject and a copula ("X is Y" -> "What is X?"), else
    None. The subject is the text before the first is/are/was/were: 2-12 words, no comma, starting the sentence
    with a capital; the word after the copula is not an -ed or -ing form ("was electrified"); a leading
    determiner is lower-cased ("The best thing to do in San Francisco is ..." -> "What is the best thing to do
    in San Francisco?")."""
    sentence = " ".join(sentence.split())
    match = _COPULA.search(sentence)
    if match is None:
        return None
    subject = sentence[: match.start()].strip()
    words = subject.split()
    after = sentence[match.end() :].split()[:1]
    if after and re.fullmatch(r"[a-z]+(?:ed|ing)", after[0]):  # passive or progressive: not "X is Y"
        return None
    if not 2 <= len(words) <= 12 or "," in subject or not subject[:1].isupper() or not content_words(subject):
        return None
    if words[0].lower() in _DETERMINERS:
        subject = words[0].lower() + subject[len(words[0]) :]
    return f"What {match.group(1)} {subject}?"


def fallback_question(sentence: str, kind: str) -> str | None:
    """The deterministic question for a sentence no generated question survived for (None: the sentence has no
    content words, or `kind` is "none"). "what_about" / "text_about": what the document / the text says about
    the sentence's first four content words; "what_is": `copula_question` when the sentence has that form, else
    the "what_about" one."""
    if kind == "none":
        return None
    if kind == "what_is" and (question := copula_question(sentence)) is not None:
        return question
    words = [w for w in re.findall(r"[A-Za-z0-9][A-Za-z0-9'-]*", sentence) if content_words(w)]
    if not words:
        return None
    source = "text" if kind == "text_about" else "document"
    return f"What does the {source} say about {' '.join(words[:4])}?"


# A name (capitalised words, "of"/"and"/"the"/"de"/"for" allowed between them), a date ("February 7, 2016") or a
# number with its separators and scale ("24–10", "1.2 billion").
_MONTH = r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
_NAME_WORD = rf"(?!{_MONTH}\s+\d)[A-Z][\w'’.&-]*"  # a date's month starts a date, not a name
_SPAN = re.compile(
    rf"{_MONTH}(?:\s+\d{{1,2}}\b)?(?:,?\s+\d{{4}}\b)?"
    rf"|{_NAME_WORD}(?:\s+(?:(?:of|and|the|de|for)\s+)?{_NAME_WORD})*"
    r"|\d(?:[\d,.:/–-]*\d)?(?:\s*(?:%|percent|million|billion|thousand))?"
)
BLANK = "____"
CLOZE_PROMPT = 'Fill in the blank as the document says: "{masked}"'


def cloze_spans(sentence: str) -> list[tuple[int, int]]:
    """(start, end) of the names, dates and numbers in `sentence`, in order. A leading stop word is not part of a
    name ("The American Football Conference" -> "American Football Conference"); skipped: a lone stop word, a
    parenthesised abbreviation ("(AFC)", a repeat of the name before it) and a span that is most of the sentence."""
    spans = []
    for match in _SPAN.finditer(sentence):
        start, text = match.start(), match.group().rstrip(".")
        first, _, rest = text.partition(" ")
        if rest and first.lower() in STOPWORDS:
            start, text = start + len(first) + 1, rest
        end = start + len(text)
        if text.lower() in STOPWORDS or not content_words(text) or end - start > len(sentence) // 2:
            continue
        if sentence[start - 1 : start] == "(" and sentence[end : end + 1] == ")":
            continue
        spans.append((start, end))
    return spans


def cloze_questions(sentence: str, limit: int) -> list[str]:
    """Up to `limit` fill-in-the-blank questions: `sentence` with one of its first `limit` names, dates or numbers
    replaced by a blank. The teacher, reading the window, answers them; the student learns to recall the span
    from the rest of the sentence."""
    sentence = " ".join(sentence.split())
    spans = cloze_spans(sentence)[:limit]
    return [CLOZE_PROMPT.format(masked=f"{sentence[:a]}{BLANK}{sentence[b:]}") for a, b in spans]
