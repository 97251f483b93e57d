"""Sentence splitting with the shipped Punkt parameters, and the per-sentence tasks."""

from __future__ import annotations

import pytest

from lift_jax.synth.split import preceding_context, sentence_tasks, split_sentences


def texts(text: str, min_chars: int = 1, max_chars: int = 1000) -> list[str]:
    return [s.text for s in split_sentences(text, min_chars, max_chars)]


def test_abbreviations_do_not_end_sentences() -> None:
    text = (
        "Dr. Smith joined the U.S. Army in 1990. He served abroad, e.g. in Germany, i.e. near Berlin. "
        "Mr. J. R. Tolkien met Prof. Jones at 5 p.m. on Jan. 3. She moved to the U.S. The war ended."
    )
    assert texts(text) == [
        "Dr. Smith joined the U.S. Army in 1990.",
        "He served abroad, e.g. in Germany, i.e. near Berlin.",
        "Mr. J. R. Tolkien met Prof. Jones at 5 p.m. on Jan. 3.",
        "She moved to the U.S.",
        "The war ended.",
    ]


def test_no_punkt_download_is_needed() -> None:
    # nltk.sent_tokenize would need the punkt_tab resource; the shipped parameters need none.
    assert texts("Hello there. General Kenobi, you are a bold one.") == [
        "Hello there.",
        "General Kenobi, you are a bold one.",
    ]


def test_blank_lines_end_sentences_and_whitespace_is_collapsed() -> None:
    text = "A Title Without A Period\n\nThe first line\nwraps here. Next one."
    assert texts(text) == ["A Title Without A Period", "The first line wraps here.", "Next one."]


def test_short_sentences_merge_up_to_the_minimum() -> None:
    text = "It rained. Yes. The river rose over its banks. Then it stopped. Ok."
    assert texts(text, min_chars=20) == [
        "It rained. Yes. The river rose over its banks.",
        "Then it stopped. Ok.",
    ]


def test_a_short_last_sentence_joins_the_previous_one() -> None:
    assert texts("The river rose over its banks. Ok.", min_chars=20) == ["The river rose over its banks. Ok."]


def test_long_sentences_are_cut_at_whitespace_into_near_equal_pieces() -> None:
    sentence = " ".join(f"word{i:02d}" for i in range(30)) + "."  # 30 words of 6 chars: 210 chars
    pieces = texts(sentence, min_chars=1, max_chars=80)
    assert [len(p) for p in pieces] == [69, 69, 70]
    assert " ".join(pieces) == sentence
    assert pieces[0].startswith("word00 ") and pieces[1].startswith("word10 ")


def test_a_word_longer_than_the_maximum_is_cut_hard() -> None:
    assert texts("x" * 25, max_chars=10) == ["x" * 9, "x" * 8, "x" * 8]


def test_spans_point_into_the_document() -> None:
    text = "First sentence here.  Second one follows.\nThird."
    for s in split_sentences(text, 1, 1000):
        assert " ".join(text[s.start : s.end].split()) == s.text


def test_min_above_max_is_rejected() -> None:
    with pytest.raises(ValueError, match="min_sentence_chars"):
        split_sentences("Some text.", 50, 10)


def test_context_ends_right_before_the_sentence_and_is_bounded() -> None:
    text = "Alpha beta gamma. Delta epsilon zeta. Eta theta iota."
    tasks = sentence_tasks(text, min_chars=1, max_chars=1000, max_context_chars=2048)
    assert [(t.index, t.sentence, t.context) for t in tasks] == [
        (0, "Alpha beta gamma.", ""),
        (1, "Delta epsilon zeta.", "Alpha beta gamma."),
        (2, "Eta theta iota.", "Alpha beta gamma. Delta epsilon zeta."),
    ]
    bounded = sentence_tasks(text, min_chars=1, max_chars=1000, max_context_chars=25)
    # 25 characters before "Eta" start inside "gamma."; the context starts at the next word.
    assert bounded[2].context == "Delta epsilon zeta."
    assert all(len(t.context) <= 25 for t in bounded)


def test_preceding_context_keeps_whole_words() -> None:
    text = "one two three four five"
    assert preceding_context(text, len(text), 9) == "four five"
    assert preceding_context(text, len(text), 10) == "four five"
    assert preceding_context(text, len(text), 0) == ""
    assert preceding_context("abcdefghij", 10, 4) == "ghij"  # no space to start at (Chinese): cut mid-word


def test_sentence_ends_punkt_does_not_know_split_and_keep_their_context() -> None:
    zh = "猫坐在垫子上，看着窗外的鸟。它很高兴地叫了一声！你今天好吗？我们明天去公园散步吧。"
    sentences = split_sentences(zh, min_chars=1)
    assert [s.text for s in sentences] == ["猫坐在垫子上，看着窗外的鸟。", "它很高兴地叫了一声！", "你今天好吗？",
                                           "我们明天去公园散步吧。"]
    assert "".join(zh[s.start : s.end] for s in sentences) == zh
    hindi = "राम घर गया। सीता बाज़ार गई।"
    assert [s.text for s in split_sentences(hindi, min_chars=1)] == ["राम घर गया।", "सीता बाज़ार गई।"]
    tasks = sentence_tasks(zh * 50, min_chars=1, max_context_chars=100)
    assert [len(t.context) for t in tasks[10:]] == [100] * (len(tasks) - 10)  # no space needed to start it


def test_long_lists_and_tables_are_cut_between_rows() -> None:
    rows = "\n".join(f"| City{i} | {i * 1000} |" for i in range(60))
    pieces = split_sentences(rows, max_chars=500)
    assert len(pieces) > 1
    assert all(rows[p.start : p.end].startswith("| City") and rows[p.start : p.end].endswith(" |") for p in pieces)
