"""LooGLE loader: the two bundled sample files, a small fixture, and malformed lines."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

import pytest

from lift_jax.eval import paths
from lift_jax.eval.benchmark import BenchmarkFormatError, QAItem
from lift_jax.eval.loogle_benchmark import load_documents, loogle_files
from lift_jax.eval.loogle_data import load_loogle
from lift_jax.eval.metrics import LONGQA_CATEGORIES

FIXTURES = Path(__file__).parent / "fixtures" / "eval"


def test_bundled_longdep_sample() -> None:
    docs = load_loogle(paths.loogle_dir() / "longdep_qa.jsonl")
    assert len(docs) == 5
    assert [len(d.questions) for d in docs] == [6, 9, 11, 10, 7]
    items = [q for d in docs for q in d.questions]
    assert all(q.category in LONGQA_CATEGORIES for q in items)
    assert Counter(q.category for q in items) == {
        "comprehension_and_reasoning": 15,
        "multiple_information_retrieval": 15,
        "computation": 10,
        "timeline_reorder": 3,
    }
    assert all(q.evidence and len(q.answers) == 1 for q in items)
    assert docs[0].title == "José Luis Picardo"
    assert docs[0].id == "longdep_qa:1"
    assert items[0].id == "longdep_qa:1:0"
    assert items[0].answers == ("3",)
    assert all(53_000 <= len(d.text) <= 127_000 for d in docs)


def test_bundled_shortdep_sample() -> None:
    docs = load_loogle(paths.loogle_dir() / "shortdep_qa.jsonl")
    assert len(docs) == 5
    assert [len(d.questions) for d in docs] == [11, 12, 16, 25, 16]
    assert all(q.category is None and len(q.evidence) == 1 for d in docs for q in d.questions)
    assert load_loogle(paths.loogle_dir() / "shortdep_qa.jsonl", max_documents=2)[1].id == "shortdep_qa:2"


def test_small_fixture_skips_blank_lines() -> None:
    docs = load_loogle(FIXTURES / "loogle_small.jsonl")
    assert [d.id for d in docs] == ["loogle_small:1", "loogle_small:3"]
    assert docs[0].questions[1] == QAItem(
        id="loogle_small:1:1",
        question="Which came first, the school or the tower?",
        answers=("the school",),
        category="timeline_reorder",
        evidence=("The school opened in 1950.", "The tower was built in 1960."),
    )
    assert docs[1].questions[0].evidence == ("He was born in Jerez.",)


def test_code_in_qa_pairs_is_refused_not_run() -> None:
    path = FIXTURES / "loogle_code_in_qa_pairs.jsonl"
    with pytest.raises(BenchmarkFormatError) as info:
        load_loogle(path)
    assert str(info.value).startswith(f'{path}: line 2: "qa_pairs" is neither JSON nor a Python literal')


def test_first_bad_line_is_named() -> None:
    path = FIXTURES / "loogle_missing_answer.jsonl"
    with pytest.raises(BenchmarkFormatError) as info:
        load_loogle(path)
    assert str(info.value) == f'{path}: line 3: qa_pairs[1]: missing "A"'
    assert len(load_loogle(path, max_documents=2)) == 2


def test_unknown_type() -> None:
    path = FIXTURES / "loogle_unknown_type.jsonl"
    expected = r"line 1: qa_pairs\[0\]: unknown \"type\" 'summarization'"
    with pytest.raises(BenchmarkFormatError, match=expected):
        load_loogle(path)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"input": "t", "title": "x"', "line 1: invalid JSON"),
        ('["input"]', "line 1: expected an object, got a list"),
        ('{"title": "x", "qa_pairs": "[]"}', 'line 1: missing "input"'),
        ('{"input": "t", "title": "x", "qa_pairs": [1]}', "line 1: qa_pairs[0]: expected an object, got an integer"),
        ('{"input": "t", "title": "x", "qa_pairs": 7}',
         'line 1: "qa_pairs" must be a string or a list, got an integer'),
        ('{"input": "t", "title": "x", "qa_pairs": "none"}',
         'line 1: "qa_pairs" is "none": this line holds no questions'),
        (
            '{"input": "t", "title": "x", "qa_pairs": "{1: 2}"}',
            'line 1: "qa_pairs" must be a list, got an object',
        ),
        (
            '{"input": "t", "title": "x", "qa_pairs": "[{\'Q\': \'q\', \'A\': \'a\', \'S\': 3}]"}',
            'line 1: qa_pairs[0]: "S" must be a string or a list of strings, got an integer',
        ),
    ],
)
def test_malformed_lines(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(BenchmarkFormatError) as info:
        load_loogle(path)
    assert str(info.value).startswith(f"{path}: {message}")


def test_non_utf8_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes((FIXTURES / "loogle_small.jsonl").read_bytes() + b"\xff\xfe\n")
    with pytest.raises(BenchmarkFormatError, match=r"bad\.jsonl: line 4: not UTF-8 text"):
        load_loogle(path)


def test_qa_pairs_as_a_list_or_json_text_and_lines_without_questions_skipped(tmp_path: Path) -> None:
    pairs = [{"Q": "Who wrote a/b?", "A": "Ann \U0001f600", "S": ["x"]}]
    lines = [
        {"input": "t0", "title": "empty", "qa_pairs": "[]"},
        {"input": "t1", "title": "list", "qa_pairs": pairs},
        # JSON text with escapes a Python literal would read differently, and JSON's null
        {"input": "t2", "title": "json", "qa_pairs": '[{"Q": "Who wrote a\\/b?", "A": "Ann \\ud83d\\ude00", '
                                                       '"S": ["x"], "note": null}]'},
    ]
    path = tmp_path / "x_qa.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    docs = load_loogle(path, max_documents=2)
    assert [d.id for d in docs] == ["x_qa:2", "x_qa:3"]  # the question-less line is skipped, not counted
    expected = QAItem(id="x_qa:2:0", question="Who wrote a/b?", answers=("Ann \U0001f600",), evidence=("x",))
    assert docs[0].questions == (expected,)
    assert docs[1].questions == (dataclasses.replace(expected, id="x_qa:3:0"),)


def test_a_published_testdata_folder_reads_only_its_qa_files(tmp_path: Path) -> None:
    small = (FIXTURES / "loogle_small.jsonl").read_text()
    (tmp_path / "shortdep_qa.jsonl").write_text(small)
    (tmp_path / "longdep_summarization.jsonl").write_text('{"input": "t", "title": "x", "qa_pairs": "none"}\n')
    (tmp_path / "shortdep_cloze.jsonl").write_text('{"input": "t", "title": "x", "qa_pairs": "[{}]"}\n')
    assert loogle_files(tmp_path) == [tmp_path / "shortdep_qa.jsonl"]
    assert [d.id for d in load_documents(tmp_path)] == ["shortdep_qa:1", "shortdep_qa:3"]
