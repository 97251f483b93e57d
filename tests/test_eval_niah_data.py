"""NIAH builder: exact length, needle at the requested depth within one sentence, varied samples."""

from __future__ import annotations

import pytest

from lift_jax.errors import MissingInputError
from lift_jax.eval import niah_data, paths
from lift_jax.eval.benchmark import BenchmarkFormatError
from lift_jax.eval.niah_data import (
    NEEDLE,
    QUESTION,
    NiahCell,
    build_documents,
    cell_accuracy,
    fit_distractor,
    grid,
    insert_needle,
    load_essays,
    parse_cell_id,
    split_sentences,
)

DEPTHS = (0.0, 0.25, 0.5, 0.75, 1.0)
LENGTHS = (1000, 3000)


def words(text: str) -> int:
    return len(text.split())


def chars(text: str) -> int:
    return len(text)


@pytest.fixture(scope="module")
def essays() -> list[str]:
    return load_essays(paths.niah_essays_dir())


@pytest.fixture(scope="module")
def docs(essays: list[str]) -> dict[str, niah_data.NiahDocument]:
    return {d.id: d for d in build_documents(essays, grid(LENGTHS, DEPTHS, samples=2), words)}


def test_essays_load_in_sorted_order(essays: list[str]) -> None:
    assert len(essays) == 49
    assert sum(len(e.encode()) for e in essays) == 644_051
    assert essays[0].startswith("July 2010What hard liquor")  # addiction.txt sorts first


def test_grid_ids_and_order() -> None:
    cells = grid([1000, 2000], [0.25, 1], samples=2)
    assert [c.id for c in cells[:4]] == ["L1000_D0.25_S0", "L1000_D0.25_S1", "L1000_D1.0_S0", "L1000_D1.0_S1"]
    assert len(cells) == 8
    assert all(parse_cell_id(c.id) == c for c in cells)
    assert NiahCell(1000, 1, 0).id == "L1000_D1.0_S0"
    assert parse_cell_id(NiahCell(8, 1e-5, 0).id) == NiahCell(8, 1e-5, 0)
    with pytest.raises(ValueError, match="not percent"):
        grid([1000], [25], samples=1)
    with pytest.raises(ValueError, match="samples"):
        grid([1000], [0.5], samples=0)
    with pytest.raises(ValueError, match="not a NIAH cell id"):
        parse_cell_id("L1000_D0.5")


def test_exact_length_with_a_word_counter(docs: dict[str, niah_data.NiahDocument]) -> None:
    assert len(docs) == len(LENGTHS) * len(DEPTHS) * 2
    for doc in docs.values():
        assert doc.n_tokens == words(doc.text) == doc.cell.length
        assert doc.text.count(NEEDLE) == 1
        assert doc.text[doc.needle_start :].startswith(NEEDLE)


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("depth", DEPTHS)
def test_needle_at_requested_depth_within_one_sentence(
    docs: dict[str, niah_data.NiahDocument], length: int, depth: float
) -> None:
    for sample in range(2):
        doc = docs[NiahCell(length, depth, sample).id]
        start, end = doc.needle_start, doc.needle_start + len(NEEDLE)
        spans = split_sentences(doc.text)
        assert (start, end) in spans, "the needle is a sentence of its own"
        k = spans.index((start, end))
        before, after = words(doc.text[:start]), words(doc.text[end:])
        target = depth * (before + after)  # the depth as a position in the distractor's tokens
        prev_len = words(doc.text[slice(*spans[k - 1])]) if k > 0 else 0
        next_len = words(doc.text[slice(*spans[k + 1])]) if k + 1 < len(spans) else 0
        assert before - prev_len <= target <= before + next_len
        if depth == 0.0:
            assert start == 0
        if depth == 1.0:
            assert doc.text.endswith(NEEDLE)
        # the authors' script put every needle in the first 1 %: make sure the position follows the depth
        if length == 3000:
            assert abs(before / (before + after) - depth) < 0.05


def test_needle_at_end_follows_a_whole_sentence(docs: dict[str, niah_data.NiahDocument]) -> None:
    for sample in range(2):
        doc = docs[NiahCell(3000, 1.0, sample).id]
        assert doc.text[: doc.needle_start].rstrip()[-1] in ".!?\"')]"


def test_samples_differ_and_depths_share_the_distractor(docs: dict[str, niah_data.NiahDocument]) -> None:
    def without_needle(doc: niah_data.NiahDocument) -> str:
        return " ".join((doc.text[: doc.needle_start] + doc.text[doc.needle_start + len(NEEDLE) :]).split())

    for length in LENGTHS:
        s0 = {without_needle(docs[NiahCell(length, d, 0).id]) for d in DEPTHS}
        s1 = {without_needle(docs[NiahCell(length, d, 1).id]) for d in DEPTHS}
        assert len(s0) == len(s1) == 1
        assert s0 != s1


def test_deterministic_by_seed(essays: list[str], docs: dict[str, niah_data.NiahDocument]) -> None:
    cells = [NiahCell(1000, 0.5, 1)]
    again = next(build_documents(essays, cells, words))
    assert again == docs[cells[0].id]
    other_seed = next(build_documents(essays, cells, words, seed=1))
    assert other_seed.text != again.text


def test_character_counter_within_a_word_of_target(essays: list[str]) -> None:
    longest_word = max(len(w) for e in essays for w in e.split())
    for doc in build_documents(essays, grid([2000, 5000], [0.0, 0.5, 1.0], samples=1), chars):
        assert doc.cell.length - longest_word - 1 <= doc.n_tokens == len(doc.text) <= doc.cell.length


def test_token_counter_is_called_logarithmically_often(essays: list[str]) -> None:
    calls = 0

    def counting(text: str) -> int:
        nonlocal calls
        calls += 1
        return words(text)

    doc = next(build_documents(essays, [NiahCell(20_000, 0.5, 0)], counting))
    assert len(split_sentences(doc.text)) > 800
    assert calls < 120


def test_haystack_cycles_when_the_essays_are_too_short() -> None:
    essays = ["One short essay. It has two sentences.", "Another essay here."]
    distractor = fit_distractor(essays, [1, 0], "Needle sentence.", 30, words)
    assert words(distractor) == 28
    assert distractor.endswith(".")
    with pytest.raises(ValueError, match="no room"):
        fit_distractor(essays, [0, 1], "a needle of five words", 4, words)
    with pytest.raises(ValueError, match="no tokens"):
        fit_distractor(["", " "], [0, 1], "needle", 10, words)


def test_insert_needle_pads_with_spaces() -> None:
    text = "First one. Second one. Third one."
    assert insert_needle(text, "N.", 0.0, words) == ("N. First one. Second one. Third one.", 0)
    assert insert_needle(text, "N.", 0.6, words) == ("First one. Second one. N. Third one.", 23)
    # 0.5 -> token 3 lies halfway between the boundaries after tokens 2 and 4: ties go to the earlier one
    assert insert_needle(text, "N.", 0.5, words) == ("First one. N. Second one. Third one.", 11)
    assert insert_needle(text, "N.", 1.0, words) == ("First one. Second one. Third one. N.", 34)
    with pytest.raises(ValueError, match="not percent"):
        insert_needle(text, "N.", 50, words)


def test_custom_needle_and_question(essays: list[str]) -> None:
    needle = "The secret ingredient is cardamom."
    doc = next(build_documents(essays, [NiahCell(500, 0.5, 0)], words, needle=needle, question="What?"))
    assert needle in doc.text and NEEDLE not in doc.text
    document = doc.to_document()
    assert document.id == "L500_D0.5_S0"
    assert document.questions[0].question == "What?"
    assert document.questions[0].answers == (needle,)
    assert QUESTION == "What is the best thing to do in San Francisco?"


def test_cell_accuracy_averages_samples() -> None:
    scores = [("L1000_D0.5_S0", 1.0), ("L1000_D0.5_S1", 0.0), ("L2000_D0.0_S0", 1.0)]
    assert cell_accuracy(scores) == {(1000, 0.5): 0.5, (2000, 0.0): 1.0}


def test_data_root_env_override(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    assert (paths.data_root() / "SOURCES.md").is_file()
    monkeypatch.setenv(paths.DATA_ENV, str(tmp_path))
    assert paths.squad_file() == tmp_path / "squad" / "dev-v1.1-half-a.json"


def test_window_ends_at_a_sentence_end_and_starts_mid_sentence() -> None:
    essay = "Alpha beta gamma. Delta epsilon zeta. Eta theta."
    assert fit_distractor([essay], [0], "Needle.", 5, words) == "gamma. Delta epsilon zeta."


def test_essay_folder_skips_hidden_files_strips_a_bom_and_names_bad_ones(tmp_path) -> None:
    (tmp_path / "b.txt").write_text("\ufeffSecond essay.", encoding="utf-8")
    (tmp_path / "a.txt").write_text("First essay.")
    (tmp_path / "._a.txt").write_bytes(b"\x00\x05\x16\x07\xff")  # a macOS AppleDouble file
    (tmp_path / "old.txt").mkdir()
    assert load_essays(tmp_path) == ["First essay.", "Second essay."]
    (tmp_path / "c.txt").write_bytes(b"caf\xe9")
    with pytest.raises(BenchmarkFormatError, match=r"c\.txt: byte 3: not UTF-8 text"):
        load_essays(tmp_path)
    with pytest.raises(MissingInputError, match=r"a\.txt is not a folder; set --config.data to the folder"):
        load_essays(tmp_path / "a.txt")
