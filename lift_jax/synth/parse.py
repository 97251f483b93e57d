"""Generator replies -> validated, de-duplicated question-answer pairs.

JSON replies are found inside code fences or surrounding prose and repaired when truncated; completion
replies are read as `Question: ... / Answer: ...` lines. Pairs from small models are also filtered: the answer
must be grounded in the sentence, neither field may copy the prompt's examples, and answers may not run on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, NamedTuple

_FENCE = re.compile(r"```[\w-]*[ \t]*\n?(.*?)(?:```|\Z)", re.DOTALL)
# possessive quantifiers: no backtracking over long runs of whitespace (the old form was cubic in their length)
_Q_LINE = re.compile(r"^\W*(?:question|q)\s*+\d*+[^\w:.)]*+[:.)]\W*\s*(.*)$", re.IGNORECASE)
_A_LINE = re.compile(r"^\W*(?:answer|a)\s*+\d*+[^\w:.)]*+[:.)]\W*\s*(.*)$", re.IGNORECASE)
_TEXT_LINE = re.compile(r"^\W*(?:text|paragraph)\s*:", re.IGNORECASE)
_WORD = re.compile(r"\w+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_QUESTION_KEYS = ("question", "q", "query")
_ANSWER_KEYS = ("answer", "a", "response")
_MAX_REPAIR_TRIES = 64
_MAX_JSON_STARTS = 16
_JSON_START = re.compile(r"[{\[]")
_STOPWORDS = frozenset(
    re.split(
        r"\s+",
        "a an the of in on at to for by with from as and or but is are was were be been being it its this"
        " that these those he she they them his her their what which who whom when where why how did does"
        " do has have had not no yes",
    )
)


class QAPair(NamedTuple):
    """One synthetic question-answer pair."""

    question: str
    answer: str


def _close(stack: list[str]) -> str:
    return "".join("}" if c == "{" else "]" for c in reversed(stack))


def repair_json(text: str) -> Any | None:
    """Parse JSON that may be cut off: keep every complete element, drop the partial last one (a string,
    number or object cut anywhere), close the brackets.

    `text` must start with `{` or `[`. Returns None if nothing parseable remains.
    """
    stack: list[str] = []
    cuts: list[tuple[int, str]] = []  # (end of a complete element, closers needed there)
    in_string = escaped = False
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append(ch)
        elif ch in "}]":
            if not stack or (ch == "}") != (stack[-1] == "{"):
                break
            stack.pop()
            cuts.append((i + 1, _close(stack)))
            if not stack:
                break
        elif ch == "," and stack:
            cuts.append((i, _close(stack)))
    for end, closers in reversed(cuts[-_MAX_REPAIR_TRIES:]):
        try:
            return json.loads(text[:end].rstrip().rstrip(",") + closers)
        except (json.JSONDecodeError, RecursionError):
            continue
    return None


def _json_candidates(text: str) -> Iterable[str]:
    for match in _FENCE.finditer(text):
        yield match.group(1)
    yield text


def iter_json(text: str) -> Iterable[Any]:
    """Each JSON object or array in `text` (fenced, bare, or inside prose), repaired if truncated."""
    for candidate in _json_candidates(text):
        for start in [m.start() for m in _JSON_START.finditer(candidate)][:_MAX_JSON_STARTS]:
            fragment = candidate[start:]
            try:
                yield json.JSONDecoder().raw_decode(fragment)[0]
            except (json.JSONDecodeError, RecursionError):
                repaired = repair_json(fragment)
                if repaired is not None:
                    yield repaired


def extract_json(text: str) -> Any | None:
    """The first JSON object or array in `text` (fenced, bare, or inside prose), repaired if truncated."""
    return next(iter(iter_json(text)), None)


def _field(obj: dict[str, Any], names: tuple[str, ...]) -> Any:
    lowered = {str(k).lower(): v for k, v in obj.items()}
    return next((lowered[n] for n in names if n in lowered), None)


def pairs_from_json(obj: Any) -> list[QAPair]:
    """Pairs from the JSON shapes generators produce: {"qa_list": [...]}, any dict holding a list of pairs,
    a list of {"question", "answer"} objects or [question, answer] lists, one such object, or a
    {"Question?": "answer"} mapping (keys holding a question mark)."""
    if isinstance(obj, list):
        pairs: list[QAPair] = []
        for item in obj:
            if isinstance(item, dict):
                pairs.extend(pairs_from_json(item))
            elif isinstance(item, list) and len(item) == 2:
                pairs.append(QAPair(item[0], item[1]))
        return pairs
    if not isinstance(obj, dict):
        return []
    question, answer = _field(obj, _QUESTION_KEYS), _field(obj, _ANSWER_KEYS)
    if not isinstance(question, (dict, list, type(None))) or not isinstance(answer, (dict, list, type(None))):
        return [QAPair(question, answer)]
    nested = [p for v in obj.values() if isinstance(v, (list, dict)) for p in pairs_from_json(v)]
    if nested:
        return nested
    return [QAPair(k, v) for k, v in obj.items() if isinstance(v, str) and "?" in k]


def parse_lines(text: str, stop_at_text: bool = True) -> list[QAPair]:
    """Pairs from `Question: ... / Answer: ...` lines (also `Q1:`/`A1:`, `**Question 2:**`); reading stops
    at a `Text:` line (where a completion model starts inventing its next example) unless `stop_at_text` is
    off."""
    pairs: list[QAPair] = []
    question: str | None = None
    for line in text.splitlines():
        if stop_at_text and _TEXT_LINE.match(line):
            break
        if q := _Q_LINE.match(line):
            question = q.group(1)
        elif (a := _A_LINE.match(line)) and question is not None:
            pairs.append(QAPair(question, a.group(1)))
            question = None
    return pairs


def parse_questions(text: str, m: int) -> list[str]:
    """Up to `m` distinct questions from the `Question:` lines of a completion that continues a prompt ending in
    `Question:` (reading stops at the first line that is not a question)."""
    out: list[str] = []
    seen: set[str] = set()
    for line in ("Question:" + text).splitlines():
        match = _Q_LINE.match(line)
        if not match:
            if line.strip():
                break
            continue
        question = " ".join(_utf8(match.group(1)).split())
        key = _normalize(question)
        if key and key not in seen:
            seen.add(key)
            out.append(question)
            if len(out) == m:
                break
    return out


def _utf8(text: str) -> str:
    """`text` with anything UTF-8 cannot encode (lone surrogates from a `\\ud800` escape) replaced by '?'."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _normalize(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def clean_pairs(pairs: Iterable[QAPair], m: int) -> list[QAPair]:
    """Keep pairs whose question and answer are non-empty strings (numbers become text), whitespace collapsed,
    the first of each normalised question only, at most `m`."""
    out: list[QAPair] = []
    seen: set[str] = set()
    for question, answer in pairs:
        if isinstance(answer, (int, float)) and not isinstance(answer, bool):
            answer = str(answer)
        if not isinstance(question, str) or not isinstance(answer, str):
            continue
        question, answer = (" ".join(_utf8(t).split()) for t in (question, answer))
        key = _normalize(question)
        if not key or not _normalize(answer) or key in seen:
            continue
        seen.add(key)
        out.append(QAPair(question, answer))
        if len(out) == m:
            break
    return out


def parse_reply(text: str, m: int, completion: bool = False) -> list[QAPair]:
    """Up to `m` clean pairs from one reply; a completion reply continues a prompt ending in `Question:`."""
    if completion:
        return clean_pairs(parse_lines("Question:" + text), m)
    for found in iter_json(text):
        if pairs := clean_pairs(pairs_from_json(found), m):
            return pairs
    return clean_pairs(parse_lines(text), m)


def _content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS}


def _names(text: str) -> set[str]:
    """Capitalised words after the first word: names a grounded question or answer must take from the text."""
    return {w.lower() for w in _WORD.findall(text)[1:] if w[0].isupper()}


def usable_pair(pair: QAPair, sentence: str, examples: Iterable[QAPair] = ()) -> bool:
    """A small model's pair is usable if its answer is grounded in `sentence` (two thirds of its content words
    and all of its numbers occur there), neither field names something the sentence does not (capitalised
    words), the answer does not run on far past the sentence's length, and neither field copies one of the
    prompt's `examples`."""
    copied = {_normalize(x) for pair_ in examples for x in pair_}
    if _normalize(pair.question) in copied or _normalize(pair.answer) in copied:
        return False
    if len(pair.answer) > len(sentence) + 80 or len(pair.question) > len(sentence) + 200:
        return False
    if not set(_NUMBER.findall(pair.answer)) <= set(_NUMBER.findall(sentence)):
        return False
    vocabulary = {w.lower() for w in _WORD.findall(sentence)}
    if not (_names(pair.question) | _names(pair.answer)) <= vocabulary:
        return False
    words = _content_words(pair.answer)
    return bool(words) and 3 * len(words & _content_words(sentence)) >= 2 * len(words)
