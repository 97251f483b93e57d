"""Reply parsing: JSON in fences or prose, truncated JSON, line formats, de-duplication, the cap, filters."""

from __future__ import annotations

import json

from lift_jax.synth.parse import QAPair, extract_json, parse_lines, parse_reply, repair_json, usable_pair

PAIRS = [{"question": f"Question {i}?", "answer": f"Answer {i}"} for i in range(4)]


def test_code_fence_with_prose_around_it() -> None:
    reply = (
        "Sure, here are the pairs:\n```json\n" + json.dumps({"qa_list": PAIRS}) + "\n```\nHope this helps!"
    )
    assert parse_reply(reply, 10) == [QAPair(f"Question {i}?", f"Answer {i}") for i in range(4)]


def test_bare_json_inside_prose() -> None:
    reply = "Here you go: " + json.dumps(PAIRS) + " -- that's all {not json}"
    assert len(parse_reply(reply, 10)) == 4


def test_truncated_json_keeps_complete_pairs_and_drops_the_partial_one() -> None:
    full = json.dumps({"qa_list": PAIRS})
    cut = full[: full.index('"Answer 3"') + 5]  # inside the last answer string
    assert [p.question for p in parse_reply(cut, 10)] == ["Question 0?", "Question 1?", "Question 2?"]
    cut_after_key = full[: full.index('"answer": "Answer 2"') + len('"answer"')]
    assert len(parse_reply(cut_after_key, 10)) == 2
    unterminated_fence = "```json\n" + full[:-2]  # lost the closing "]}" and the fence
    assert len(parse_reply(unterminated_fence, 10)) == 4


def test_repair_json_closes_brackets() -> None:
    assert repair_json('[{"a": 1}, {"b": [1, 2') == [{"a": 1}, {"b": [1]}]
    assert repair_json('{"qa_list": [{"question": "q", "answer": "a"},') == {
        "qa_list": [{"question": "q", "answer": "a"}]
    }
    assert repair_json('{"x": "never closed') is None


def test_duplicates_are_dropped_after_normalisation_and_the_cap_applies() -> None:
    pairs = [
        {"question": "What is  LIFT?", "answer": "A method."},
        {"question": "what is lift", "answer": "Another answer."},
        {"question": "Who wrote it?", "answer": "Authors."},
        {"question": "", "answer": "no question"},
        {"question": "No answer?", "answer": "  "},
        {"question": "Numeric?", "answer": 1889},
        {"question": ["not", "a", "string"], "answer": "x"},
        {"question": "When?", "answer": "Later."},
    ]
    out = parse_reply(json.dumps({"qa_pairs": pairs}), 10)
    assert out == [
        QAPair("What is LIFT?", "A method."),
        QAPair("Who wrote it?", "Authors."),
        QAPair("Numeric?", "1889"),
        QAPair("When?", "Later."),
    ]
    assert len(parse_reply(json.dumps({"qa_pairs": pairs}), 2)) == 2


def test_other_json_shapes() -> None:
    assert parse_reply('{"question": "Q?", "answer": "A"}', 5) == [QAPair("Q?", "A")]
    assert parse_reply('[["Q1?", "A1"], ["Q2?", "A2"]]', 5) == [QAPair("Q1?", "A1"), QAPair("Q2?", "A2")]
    assert parse_reply('{"What is X?": "Y", "Who?": "Z", "note": "skip"}', 5) == [
        QAPair("What is X?", "Y"),
        QAPair("Who?", "Z"),
    ]
    assert parse_reply('{"Q": "Q?", "A": "A"}', 5) == [QAPair("Q?", "A")]


def test_line_formats() -> None:
    reply = (
        "**Question 1:** What?\n**Answer 1:** That.\n\nQ2: Who?\nA2: Him\nQuestion3: Where?\nAnswer3: Here"
    )
    assert parse_reply(reply, 10) == [
        QAPair("What?", "That."),
        QAPair("Who?", "Him"),
        QAPair("Where?", "Here"),
    ]


def test_completion_replies_stop_at_the_next_invented_text() -> None:
    reply = (
        " When was it built?\nAnswer: In 1841.\nQuestion: Where?\nAnswer: On the point.\n\n"
        "Text: Made up.\nQuestion: X?\nAnswer: Y"
    )
    assert parse_reply(reply, 10, completion=True) == [
        QAPair("When was it built?", "In 1841."),
        QAPair("Where?", "On the point."),
    ]
    assert parse_lines("Text: a\nQuestion: q?\nAnswer: a", stop_at_text=False) == [QAPair("q?", "a")]


def test_no_json_and_no_lines_gives_nothing() -> None:
    assert extract_json("I cannot help with that.") is None
    assert parse_reply("I cannot help with that.", 10) == []


def test_usable_pair_filters_small_model_output() -> None:
    sentence = "The first lighthouse on the point was built in 1841 after three ships were lost."
    examples = [QAPair("When was the Eiffel Tower completed?", "The Eiffel Tower was completed in 1889.")]
    assert usable_pair(QAPair("When was it built?", "It was built in 1841."), sentence, examples)
    assert not usable_pair(QAPair("When was it built?", "In 1852."), sentence, examples)  # number not in it
    assert not usable_pair(QAPair("Who?", "Marie Curie and the Nobel committee."), sentence, examples)
    assert not usable_pair(examples[0], sentence, examples)  # copied from the prompt
    assert not usable_pair(QAPair("Q?", "the of and"), sentence, examples)  # no content words
    assert not usable_pair(QAPair("Q?", sentence + " " + "lighthouse " * 20), sentence, examples)  # run-on
    assert not usable_pair(QAPair("Where was it built?", "The lighthouse was built in Norway."), sentence)
    assert not usable_pair(QAPair("Who built the Eiffel Tower?", "The first lighthouse."), sentence)
    assert not usable_pair(
        QAPair("What?", "The first lighthouse point burned oil."), sentence
    )  # 3 of 5 words


def test_the_first_json_value_that_holds_pairs_wins() -> None:
    expected = [QAPair(f"Question {i}?", f"Answer {i}") for i in range(4)]
    body = json.dumps({"qa_list": PAIRS})
    assert parse_reply("Here are [4 of them]: " + body, 10) == expected  # prose with brackets before the JSON
    assert parse_reply("<think>{question, answer} pairs</think>\n" + body, 10) == expected
    assert parse_reply(json.dumps({"response": {"qa_list": PAIRS}}), 10) == expected  # nested under an answer key
    pretty = json.dumps({"result": {"qa_list": PAIRS}}, indent=2)  # no line-format fallback storing '"Q?",'
    assert parse_reply(pretty, 10) == expected


def test_replies_that_would_crash_or_stall_the_parser() -> None:
    assert parse_reply("[" * 5000, 5) == []  # nesting deeper than the JSON decoder recurses
    pairs = parse_reply('{"question": "Why \\ud800?", "answer": "A lone surrogate"}', 5)
    assert pairs == [QAPair("Why ??", "A lone surrogate")]  # encodable for the cache
    # possessive quantifiers: the old line pattern took about n^3 steps on a run of n spaces (6 s at n = 800)
    assert parse_lines("Q" + " " * 20_000 + "x") == []
