"""Offline scores: SQuAD v1.1 exact match / F1 / gold answer contained, NIAH keyword accuracy, and their
aggregation in percent."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

# A scorer maps (prediction, gold answers) to a score in [0, 1].
Scorer = Callable[[str, Sequence[str]], float]

NIAH_KEYWORDS = ("sandwich", "Dolores Park", "sunny")
# Paper order (Table 3); unknown categories sort after these.
LONGQA_CATEGORIES = (
    "comprehension_and_reasoning",
    "multiple_information_retrieval",
    "computation",
    "timeline_reorder",
)

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
# Kana, CJK ideographs (with extension A, compatibility ideographs and the supplementary planes' extensions).
_CJK_CHARACTER = re.compile("([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f])")
# CJK symbols and punctuation (。、「」...) and the fullwidth ASCII punctuation (，！？：...).
_CJK_PUNCTUATION = re.compile("[\u3000-\u303f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65]")


def normalize_answer(text: str) -> str:
    """Official SQuAD v1.1 normalisation: lowercase, drop punctuation, drop a/an/the, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def answer_tokens(text: str) -> list[str]:
    """The tokens answers are compared by: the normalised text's words, every Chinese or Japanese character a
    token of its own and their punctuation dropped (the mixed segmentation of MLQA's evaluation: those scripts do
    not put spaces between words). For other text, exactly the official SQuAD tokens."""
    text = _CJK_PUNCTUATION.sub(" ", normalize_answer(text))
    return _CJK_CHARACTER.sub(r" \1 ", text).split()


def _exact(prediction: str, gold: str) -> float:
    return float(answer_tokens(prediction) == answer_tokens(gold))


def _f1(prediction: str, gold: str) -> float:
    pred_tokens = answer_tokens(prediction)
    gold_tokens = answer_tokens(gold)
    common = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if common == 0:
        return 0.0
    precision = common / len(pred_tokens)
    recall = common / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    """1.0 if the prediction's `answer_tokens` equal some gold answer's, else 0.0."""
    return max((_exact(prediction, gold) for gold in answers), default=0.0)


def f1_score(prediction: str, answers: Sequence[str]) -> float:
    """SQuAD token F1 of the prediction, maximised over the gold answers."""
    return max((_f1(prediction, gold) for gold in answers), default=0.0)


def contains_answer(prediction: str, answers: Sequence[str]) -> float:
    """1.0 if some gold answer's tokens occur in a row among the prediction's (`answer_tokens`: whole words;
    single characters of Chinese and Japanese), else 0.0."""
    padded = f" {' '.join(answer_tokens(prediction))} "
    golds = (" ".join(answer_tokens(gold)) for gold in answers)
    return max((float(bool(gold) and f" {gold} " in padded) for gold in golds), default=0.0)


def keywords_found(prediction: str, keywords: Sequence[str] = NIAH_KEYWORDS) -> bool:
    """True iff every keyword occurs in the prediction (case-insensitive)."""
    lowered = prediction.lower()
    return all(keyword.lower() in lowered for keyword in keywords)


def keyword_scorer(keywords: Sequence[str] = NIAH_KEYWORDS) -> Scorer:
    """A scorer giving 1.0 when the prediction holds all `keywords` (the gold answers are not used)."""
    frozen = tuple(keywords)

    def score(prediction: str, answers: Sequence[str]) -> float:
        return float(keywords_found(prediction, frozen))

    return score


LOOGLE_METRICS: dict[str, Scorer] = {"exact_match": exact_match, "f1": f1_score}
SQUAD_METRICS: dict[str, Scorer] = {**LOOGLE_METRICS, "contains_answer": contains_answer}


def niah_metrics(keywords: Sequence[str] = NIAH_KEYWORDS) -> dict[str, Scorer]:
    """NIAH offline metric: `keyword_accuracy` over `keywords`."""
    return {"keyword_accuracy": keyword_scorer(keywords)}


def aggregate(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """`n` = len(rows), plus each score key's mean in percent over the rows that hold it."""
    result: dict[str, float] = {"n": len(rows)}
    for key in dict.fromkeys(key for row in rows for key in row):
        values = [row[key] for row in rows if key in row]
        result[key] = 100.0 * sum(values) / len(values)
    return result


def by_category(rows: Iterable[tuple[str, Mapping[str, float]]]) -> dict[str, dict[str, float]]:
    """Aggregate (category, scores) rows per category; LongQA categories come first, in the paper's order."""
    groups: dict[str, list[Mapping[str, float]]] = {}
    for category, scores in rows:
        groups.setdefault(category, []).append(scores)
    known = [c for c in LONGQA_CATEGORIES if c in groups]
    other = sorted(c for c in groups if c not in LONGQA_CATEGORIES)
    return {category: aggregate(groups[category]) for category in known + other}
