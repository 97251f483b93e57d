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


def normalize_answer(text: str) -> str:
    """Official SQuAD v1.1 normalisation: lowercase, drop punctuation, drop a/an/the, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _exact(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def _f1(prediction: str, gold: str) -> float:
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    common = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if common == 0:
        return 0.0
    precision = common / len(pred_tokens)
    recall = common / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    """1.0 if the normalised prediction equals any normalised gold answer, else 0.0."""
    return max((_exact(prediction, gold) for gold in answers), default=0.0)


def f1_score(prediction: str, answers: Sequence[str]) -> float:
    """SQuAD token F1 of the prediction, maximised over the gold answers."""
    return max((_f1(prediction, gold) for gold in answers), default=0.0)


def contains_answer(prediction: str, answers: Sequence[str]) -> float:
    """1.0 if some normalised gold answer occurs in the normalised prediction as whole words, else 0.0."""
    padded = f" {normalize_answer(prediction)} "
    return max((float(bool(gold) and f" {gold} " in padded) for gold in map(normalize_answer, answers)),
               default=0.0)


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
