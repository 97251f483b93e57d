"""in_window: which answer passages the truncated-ICL window keeps, exact on a byte-level tokenizer whose
truncation point is known."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from tiny_models import tiny_tokenizer

from lift_jax.answering import ICL_TEMPLATE, Answerer
from lift_jax.eval.squad_data import article_document
from lift_jax.eval.window import DocumentTokens, place_questions
from lift_jax.prompting import PromptFormat, encode_prompt
from lift_jax.sampling import SamplingParams

# Five paragraphs of 8, 8, 30, 8 and 8 one-byte tokens; with the blank lines between them the document is 70
# tokens: A = [0, 8), B = [10, 18), C = [20, 50), D = [52, 60), E = [62, 70).
CONTEXTS = ["A" * 8, "B" * 8, "C" * 30, "D" * 8, "E" * 8]
QUESTION = "Which letters?"
MAX_NEW = 4


def answerer_with_budget(budget: int) -> Answerer:
    """An Answerer over the byte-level tokenizer (no weights needed) whose document budget for QUESTION is
    `budget` tokens: the window is the plain prompt's length + the answer + `budget`."""
    tok = tiny_tokenizer()
    fmt = PromptFormat(use_chat_template=False)
    prompt = len(encode_prompt(tok, ICL_TEMPLATE.format(document="", question=QUESTION), fmt))
    loaded = SimpleNamespace(tokenizer=tok, require_tokenizer=lambda purpose: tok,
                             spec=SimpleNamespace(eos_token_ids=(tok.eos_token_id,), max_position_embeddings=4096))
    return Answerer(loaded, fmt, SamplingParams(MAX_NEW), context_tokens=prompt + MAX_NEW + budget)


def shown_document(answerer: Answerer, text: str) -> str:
    """The document as the model is shown it in the ICL prompt."""
    prompt = answerer._with_context(QUESTION, text)
    return prompt.split("Document:\n", 1)[1].rsplit("\n\nQuestion:", 1)[0]


@pytest.mark.parametrize(
    ("budget", "inside", "edges"),
    [
        (40, [True, True, False, True, True], (20 / 70, 50 / 70)),  # head [0, 20), tail [50, 70): C dropped
        (34, [True, False, False, False, True], (17 / 70, 53 / 70)),  # the cuts go through B and D
        (70, [True] * 5, (1.0, 1.0)),  # the whole document fits
        (0, [False] * 5, (0.0, 1.0)),  # nothing fits
    ],
)
def test_in_window_is_exact_where_the_truncation_point_is_known(budget, inside, edges):
    doc = article_document("Letters", CONTEXTS, [])
    answerer = answerer_with_budget(budget)
    assert answerer.document_budget(QUESTION) == budget
    tokens = DocumentTokens(answerer.loaded.tokenizer, doc.text)
    assert len(tokens.ids) == 70
    assert tokens.ids == answerer.loaded.tokenizer(doc.text, add_special_tokens=False)["input_ids"]
    placed = [tokens.place(span, budget) for span in doc.passages]
    assert [p.in_window for p in placed] == inside
    assert [p.position for p in placed] == [0 / 70, 10 / 70, 20 / 70, 52 / 70, 62 / 70]
    assert all(p.window_edges == pytest.approx(edges) for p in placed)
    # the same verdict read off the prompt the model is given: a paragraph is inside iff all of it is shown
    shown = shown_document(answerer, doc.text)
    assert [context in shown for context in CONTEXTS] == inside


def test_place_questions_uses_each_questions_own_budget():
    doc = article_document("Letters", CONTEXTS, [])
    answerer = answerer_with_budget(40)
    longer = QUESTION + " " + "x" * 6  # 7 more prompt tokens: budget 33, head [0, 16) cuts B
    placed = place_questions(answerer, doc.text, {"q": (QUESTION, doc.passages[1]), "r": (longer, doc.passages[1])})
    assert answerer.document_budget(longer) == 33
    assert (placed["q"].in_window, placed["r"].in_window) == (True, False)
    assert placed["q"].fields() == {"in_window": True, "position": round(10 / 70, 4),
                                    "window_edges": [round(20 / 70, 4), round(50 / 70, 4)]}


def test_a_token_shared_with_the_neighbour_counts():
    # One token per byte, so the cut right after B's last byte keeps B; one byte earlier loses it.
    doc = article_document("Letters", CONTEXTS, [])
    tokens = DocumentTokens(tiny_tokenizer(), doc.text)
    assert tokens.place(doc.passages[1], 36).in_window  # head [0, 18)
    assert not tokens.place(doc.passages[1], 35).in_window  # head [0, 17)
    with pytest.raises(ValueError, match="not a non-empty span"):
        tokens.place((5, 5), 10)
