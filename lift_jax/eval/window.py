"""Whether a question's answer passage lies inside the truncated-ICL window that `ask` applies.

`Answerer` (lift_jax/answering.py) puts a document in the prompt as `middle_truncate(ids, budget)` of its tokens
`ids = tokenizer(document, add_special_tokens=False)`, with `budget = Answerer.document_budget(question)` (the
window, `ask.context_tokens` or the model's, minus the question's prompt and the answer tokens): the first
budget // 2 tokens and the last budget - budget // 2. Here the same tokenizer call (plus character offsets) and
the same two functions decide which token positions are kept: `middle_truncate` is applied to the positions
themselves, so the window cannot drift from what the model is shown.

Definition: a passage (character span [start, end) of the document: a SQuAD paragraph, the NIAH needle) is
*in the window* iff every token whose characters overlap the span is kept. A passage the cut goes through is
outside, and so is one whose boundary token (a token shared with the neighbouring text) was dropped.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from lift_jax.answering import Answerer, middle_truncate
from lift_jax.models.families import UnsupportedModelError


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where a passage lies for one question: `in_window`; `position`, the share of the document's tokens
    before the passage's first token; `window_edges` (head, tail), fractions of the document's tokens such
    that tokens before head and from tail on are kept (1.0, 1.0 when the whole document fits)."""

    in_window: bool
    position: float
    window_edges: tuple[float, float]

    def fields(self) -> dict[str, Any]:
        """The prediction-record fields: `in_window`, `position`, `window_edges` (rounded to 4 decimals)."""
        return {"in_window": self.in_window, "position": round(self.position, 4),
                "window_edges": [round(self.window_edges[0], 4), round(self.window_edges[1], 4)]}


class DocumentTokens:
    """A document tokenized as `Answerer` tokenizes it, with each token's character span."""

    def __init__(self, tokenizer: Any, text: str) -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise UnsupportedModelError("in_window needs a fast (Rust) tokenizer: it maps passages by token offsets")
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        self.ids: list[int] = list(encoded["input_ids"])
        self.offsets: list[tuple[int, int]] = [tuple(o) for o in encoded["offset_mapping"]]
        self.text = text

    def tokens_of(self, span: tuple[int, int]) -> list[int]:
        """Positions of the tokens whose characters overlap `span` = [start, end)."""
        start, end = span
        if not 0 <= start < end <= len(self.text):
            raise ValueError(f"passage span {span} is not a non-empty span of a {len(self.text)}-character text")
        return [i for i, (a, b) in enumerate(self.offsets) if a < end and b > start]

    def place(self, span: tuple[int, int], budget: int) -> Placement:
        """Where `span` lies when the document is middle-truncated to `budget` tokens."""
        n = len(self.ids)
        kept = middle_truncate(range(n), budget)
        head = next((i for i, position in enumerate(kept) if position != i), len(kept))
        tail = n - (len(kept) - head)
        tokens = self.tokens_of(span)
        if not tokens:
            raise ValueError(f"passage span {span} covers no token of the document")
        kept_set = set(kept)
        return Placement(
            in_window=all(i in kept_set for i in tokens),
            position=tokens[0] / n,
            window_edges=(head / n, tail / n),
        )


def place_questions(
    answerer: Answerer, text: str, spans: dict[str, tuple[str, tuple[int, int]]]
) -> dict[str, Placement]:
    """Placement per question id, from `spans`: id -> (question, passage span); each question gets its own
    budget (its prompt's length), as `Answerer` gives it."""
    tokens = DocumentTokens(answerer.loaded.tokenizer, text)
    return {qid: tokens.place(span, answerer.document_budget(question)) for qid, (question, span) in spans.items()}
