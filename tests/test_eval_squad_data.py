"""SQuAD loader: the bundled dev half, a small fixture, and malformed files."""

from __future__ import annotations

from pathlib import Path

import pytest

from lift_jax.eval import paths
from lift_jax.eval.benchmark import BenchmarkFormatError, QAItem
from lift_jax.eval.squad_data import load_squad

FIXTURES = Path(__file__).parent / "fixtures" / "eval"


def test_bundled_file_counts() -> None:
    docs = load_squad(paths.squad_file())
    assert len(docs) == 913
    assert sum(len(d.questions) for d in docs) == 4961
    assert len({d.title for d in docs}) == 24
    assert len({q.id for d in docs for q in d.questions}) == 4961
    first = docs[0]
    assert first.id == "Super_Bowl_50/0"
    assert first.text.startswith("Super Bowl 50 was an American football game")
    assert first.questions[0] == QAItem(
        id="56be4db0acb8001400a502ec",
        question="Which NFL team represented the AFC at Super Bowl 50?",
        answers=("Denver Broncos", "Denver Broncos", "Denver Broncos"),
    )


def test_max_documents_counts_paragraphs() -> None:
    docs = load_squad(paths.squad_file(), max_documents=20)
    assert [d.id for d in docs[:2]] == ["Super_Bowl_50/0", "Super_Bowl_50/1"]
    assert len(docs) == 20
    assert load_squad(FIXTURES / "squad_small.json", max_documents=0) == []
    with pytest.raises(ValueError, match="max_documents"):
        load_squad(FIXTURES / "squad_small.json", max_documents=-1)


def test_small_fixture() -> None:
    docs = load_squad(FIXTURES / "squad_small.json")
    assert [d.id for d in docs] == ["Super_Bowl_50/0", "Super_Bowl_50/1", "Warsaw/0"]
    assert [[q.id for q in d.questions] for d in docs] == [["q1", "q2"], ["q3"], ["q4", "q5"]]
    assert docs[0].questions[0].answers == ("Denver Broncos", "The Denver Broncos")
    assert docs[2].title == "Warsaw"


def test_missing_answers_names_file_and_first_bad_record() -> None:
    path = FIXTURES / "squad_missing_answers.json"
    with pytest.raises(BenchmarkFormatError) as info:
        load_squad(path)
    assert str(info.value) == f'{path}: data[1].paragraphs[0].qas[1]: missing "answers"'
    assert info.value.where == "data[1].paragraphs[0].qas[1]"
    # documents before the bad record still load when the limit stops short of it
    assert len(load_squad(path, max_documents=2)) == 2


def test_invalid_json_names_the_position() -> None:
    path = FIXTURES / "squad_truncated.json"
    with pytest.raises(BenchmarkFormatError, match=r"truncated\.json: line \d+ column \d+: invalid JSON"):
        load_squad(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"version": "1.1"}', 'top level: missing "data"'),
        (
            '{"data": [{"title": "T", "paragraphs": [["x"]]}]}',
            "data[0].paragraphs[0]: expected an object, got a list",
        ),
        (
            '{"data": [{"title": "T", "paragraphs": [{"context": 3, "qas": []}]}]}',
            'data[0].paragraphs[0]: "context" must be a string, got an integer',
        ),
        (
            '{"data": [{"title": "T", "paragraphs": [{"context": "c", "qas": '
            '[{"id": "a", "question": "q", "answers": []}]}]}]}',
            'data[0].paragraphs[0].qas[0]: "answers" is empty',
        ),
        (
            '{"data": [{"title": "T", "paragraphs": [{"context": "c", "qas": '
            '[{"id": "a", "question": "q", "answers": [{"answer_start": 0}]}]}]}]}',
            'data[0].paragraphs[0].qas[0].answers[0]: missing "text"',
        ),
        (
            '{"data": [{"title": "T", "paragraphs": [{"context": "c", "qas": ['
            '{"id": "a", "question": "q", "answers": [{"text": "x"}]}, '
            '{"id": "a", "question": "q", "answers": [{"text": "x"}]}]}]}]}',
            'data[0].paragraphs[0].qas[1]: duplicate id "a"',
        ),
        (
            '{"data": [{"title": "T", "paragraphs": [{"context": "c", "qas": '
            '[{"id": "a", "question": "q", "answers": [], "is_impossible": true}]}]}]}',
            "data[0].paragraphs[0].qas[0]: an unanswerable question (is_impossible, SQuAD v2.0)",
        ),
        (
            '{"data": [{"title": "T", "paragraphs": [{"context": "c", "qas": []}]}, '
            '{"title": "T", "paragraphs": [{"context": "c", "qas": []}]}]}',
            'data[1]: article title "T" repeats data[0]',
        ),
    ],
)
def test_malformed_records(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(BenchmarkFormatError) as info:
        load_squad(path)
    assert str(info.value).startswith(f"{path}: {message}")


ARTICLES = FIXTURES / "squad_articles.json"


def test_article_mode_builds_one_document_per_article() -> None:
    docs = load_squad(ARTICLES, unit="article")
    assert [d.id for d in docs] == ["Animals", "Warsaw"]
    animals, warsaw = docs
    assert [q.id for q in animals.questions] == ["a1", "a2", "a3", "a4", "a5", "a6"]
    assert [q.passage for q in animals.questions] == [0, 1, 1, 2, 3, 4]
    assert [(q.id, q.passage) for q in warsaw.questions] == [("w1", 0)]
    paragraphs = [p.text for p in load_squad(ARTICLES) if p.title == "Animals"]
    assert len(paragraphs) == 5 and animals.text == "\n\n".join(paragraphs)
    assert [animals.text[a:b] for a, b in animals.passages] == paragraphs
    # every gold answer lies in the paragraph its question points to
    for q in animals.questions:
        start, end = animals.passages[q.passage]
        assert q.answers[0] in animals.text[start:end]
    assert warsaw.passages == ((0, len(warsaw.text)),)


def test_article_mode_counts_articles_and_selects_titles() -> None:
    assert [d.id for d in load_squad(ARTICLES, max_documents=1, unit="article")] == ["Animals"]
    assert [d.id for d in load_squad(ARTICLES, unit="article", titles=["Warsaw"])] == ["Warsaw"]
    assert [d.id for d in load_squad(ARTICLES, titles=["Warsaw"])] == ["Warsaw/0"]  # paragraph mode too
    assert len(load_squad(paths.squad_file(), unit="article")) == 24
    with pytest.raises(ValueError, match="no article with \"title\" 'Paris'"):
        load_squad(ARTICLES, unit="article", titles=["Warsaw", "Paris"])
    with pytest.raises(ValueError, match="document_unit='page' is unknown; use paragraph or article"):
        load_squad(ARTICLES, unit="page")


@pytest.mark.parametrize("unit", ["paragraph", "article"])
def test_malformed_articles_name_the_record(unit: str) -> None:
    path = FIXTURES / "squad_article_no_paragraphs.json"
    with pytest.raises(BenchmarkFormatError) as info:
        load_squad(path, unit=unit)
    assert str(info.value) == f'{path}: data[1]: article "Empty" has no paragraphs'
    path = FIXTURES / "squad_empty_answers.json"
    with pytest.raises(BenchmarkFormatError) as info:
        load_squad(path, unit=unit)
    assert str(info.value) == (f'{path}: data[0].paragraphs[1].qas[1]: "answers" is empty (SQuAD v1.1 needs a '
                               "gold answer)")


@pytest.mark.parametrize("unit", ["paragraph", "article"])
def test_documents_without_questions_are_skipped_and_not_counted(tmp_path: Path, unit: str) -> None:
    qa = '{{"id": "{0}", "question": "q{0}", "answers": [{{"text": "x"}}]}}'
    content = (
        '{"data": [{"title": "Empty", "paragraphs": [{"context": "c", "qas": []}]}, '
        '{"title": "T", "paragraphs": [{"context": "c0", "qas": []}, {"context": "c1", "qas": [' + qa.format("a")
        + ']}]}, {"title": "U", "paragraphs": [{"context": "c", "qas": [' + qa.format("b") + "]}]}]}"
    )
    path = tmp_path / "holes.json"
    path.write_text(content)
    docs = load_squad(path, max_documents=1, unit=unit)
    assert [d.id for d in docs] == (["T/1"] if unit == "paragraph" else ["T"])
    assert [q.id for q in docs[0].questions] == ["a"]
    if unit == "article":
        assert docs[0].questions[0].passage == 1 and docs[0].text == "c0\n\nc1"
    assert len(load_squad(path, unit=unit)) == 2
