"""SQuAD v1.1 metrics against values hand-computed from the official definitions; NIAH keywords."""

from __future__ import annotations

import pytest

from lift_jax.eval.metrics import (
    aggregate,
    answer_tokens,
    by_category,
    contains_answer,
    exact_match,
    f1_score,
    keyword_scorer,
    keywords_found,
    niah_metrics,
    normalize_answer,
)


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("the Denver Broncos", "denver broncos"),
        ("  The  U.S.A.!", "usa"),
        ("Anthem at the theater", "anthem at theater"),  # articles only as whole words
        ("Jean-Paul Sartre", "jeanpaul sartre"),  # punctuation is deleted, not replaced by a space
        ("An apple, a pear\tand\nthe plum", "apple pear and plum"),
    ],
)
def test_normalize_answer(text: str, normalized: str) -> None:
    assert normalize_answer(text) == normalized


@pytest.mark.parametrize(
    ("prediction", "answers", "em", "f1"),
    [
        ("the Denver Broncos", ["Denver Broncos"], 1.0, 1.0),
        # 1 common token; P = 1/1, R = 1/2 -> F1 = 2/3
        ("Denver", ["Denver Broncos"], 0.0, 2 / 3),
        # "broncos of denver colorado" vs "denver broncos": 2 common; P = 2/4, R = 2/2 -> 2/3
        ("Broncos of Denver, Colorado", ["Denver Broncos"], 0.0, 2 / 3),
        # max over golds: 0 against "levis stadium", P = 2/4, R = 2/2 against "santa clara" -> 2/3
        ("in Santa Clara California", ["Levi's Stadium", "Santa Clara"], 0.0, 2 / 3),
        ("Santa Clara", ["Levi's Stadium", "Santa Clara, California", "Santa Clara"], 1.0, 1.0),
        # clipped counts: "cat cat sat" vs "cat sat on mat": 2 common; P = 2/3, R = 2/4 -> 4/7
        ("the cat the cat sat", ["a cat sat on the mat"], 0.0, 4 / 7),
        ("", ["Denver"], 0.0, 0.0),
        ("Carolina Panthers", ["Denver Broncos"], 0.0, 0.0),
        # Chinese and Japanese: one token per character, their punctuation dropped
        ("北京。", ["北京"], 1.0, 1.0),
        # 他 住 在 北 京 vs 北 京: 2 common; P = 2/5, R = 2/2 -> 4/7
        ("他住在北京。", ["北京"], 0.0, 4 / 7),
        # 東 京 タ ワ ー vs 東 京: the same 4/7 (kana are characters too)
        ("東京タワー", ["東京"], 0.0, 4 / 7),
    ],
)
def test_squad_exact_match_and_f1(prediction: str, answers: list[str], em: float, f1: float) -> None:
    assert exact_match(prediction, answers) == em
    assert f1_score(prediction, answers) == pytest.approx(f1, abs=1e-12)


def test_niah_keywords_case_insensitive_and_all_required() -> None:
    assert keywords_found("Eat a SANDWICH in dolores park when it is Sunny.")
    assert not keywords_found("Eat a sandwich in Dolores Park.")
    assert not keywords_found("sandwich, Dolores  Park, sunny")  # the phrase must appear as written
    assert keywords_found("blue moon", keywords=("Moon",))
    score = niah_metrics()["keyword_accuracy"]
    assert score("a sandwich in Dolores Park on a sunny day", []) == 1.0
    assert keyword_scorer(("x",))("no", ["x"]) == 0.0


def test_aggregate_in_percent_over_rows_holding_each_key() -> None:
    rows = [{"exact_match": 1.0, "judge": 1.0}, {"exact_match": 0.0}, {"exact_match": 0.0, "judge": 0.0}]
    assert aggregate(rows) == {"n": 3, "exact_match": pytest.approx(100 / 3), "judge": 50.0}
    assert aggregate([]) == {"n": 0}


def test_by_category_uses_the_paper_order() -> None:
    rows = [
        ("timeline_reorder", {"f1": 1.0}),
        ("other", {"f1": 0.0}),
        ("comprehension_and_reasoning", {"f1": 0.5}),
        ("timeline_reorder", {"f1": 0.0}),
    ]
    result = by_category(rows)
    assert list(result) == ["comprehension_and_reasoning", "timeline_reorder", "other"]
    assert result["timeline_reorder"] == {"n": 2, "f1": 50.0}


@pytest.mark.parametrize(
    ("prediction", "answers", "contained"),
    [
        ("It was the Denver Broncos, clearly.", ["Denver Broncos"], 1.0),
        ("Denver", ["Denver Broncos"], 0.0),
        ("Denverites", ["Denver"], 0.0),  # whole words only
        ("Santa Clara", ["Levi's Stadium", "Santa Clara, California", "Santa Clara"], 1.0),
        ("anything", ["the"], 0.0),  # a gold answer that normalises to nothing matches nothing
        ("x", [], 0.0),
        ("他住在北京。", ["北京"], 1.0),  # no spaces between Chinese words: characters in a row
        ("北方的京城", ["北京"], 0.0),
        ("It is 北京, China", ["北京"], 1.0),
    ],
)
def test_contains_answer(prediction: str, answers: list[str], contained: float) -> None:
    assert contains_answer(prediction, answers) == contained


def test_answer_tokens_split_chinese_and_japanese_characters_and_keep_squads_words_elsewhere() -> None:
    assert answer_tokens("「北京」，The Capital！") == ["北", "京", "capital"]
    assert answer_tokens("  The  U.S.A.!") == ["usa"]  # = normalize_answer(...).split()
    assert answer_tokens("서울 특별시") == ["서울", "특별시"]  # Korean puts spaces between words: kept as words
