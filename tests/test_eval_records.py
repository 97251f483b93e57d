"""Resumable prediction store and summary tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lift_jax.eval.metrics import LOOGLE_METRICS, SQUAD_METRICS, niah_metrics
from lift_jax.eval.records import PredictionStore, summarize, summary_markdown, write_summary


def record(qid: str, method: str, prediction: str = "p", **extra: object) -> dict[str, object]:
    return {
        "id": qid,
        "method": method,
        "question": f"question {qid}?",
        "prediction": prediction,
        "answers": ["gold"],
        **extra,
    }


class Killed(Exception):
    pass


def run(
    store: PredictionStore,
    items: list[str],
    methods: list[str],
    fail: frozenset[str] = frozenset(),
    kill_after: int | None = None,
) -> list[tuple[str, str]]:
    """A minimal harness loop: skips done work, records errors, can be 'killed' mid-run."""
    done, attempted = store.done_keys(), []
    for qid in items:
        for method in methods:
            if (qid, method) in done:
                continue
            if kill_after is not None and len(attempted) == kill_after:
                raise Killed
            attempted.append((qid, method))
            if qid in fail:
                store.append(record(qid, method, prediction="", error="generator timed out"))
            else:
                store.append(record(qid, method, prediction=f"answer {qid}"))
    return attempted


def test_resume_skips_done_and_retries_errors(tmp_path: Path) -> None:
    store = PredictionStore(tmp_path / "run")
    items, methods = ["a", "b", "c"], ["icl", "lift"]
    with pytest.raises(Killed):
        run(store, items, methods, fail={"b"}, kill_after=4)
    assert store.done_keys() == {("a", "icl"), ("a", "lift")}  # b errored, c never ran
    # rerun (fresh store object, as a new process would have)
    again = run(PredictionStore(tmp_path / "run"), items, methods)
    assert again == [("b", "icl"), ("b", "lift"), ("c", "icl"), ("c", "lift")]
    assert len(store.done_keys()) == 6
    latest = {(r["id"], r["method"]): r for r in store.records()}
    assert "error" not in latest[("b", "icl")] and latest[("b", "icl")]["prediction"] == "answer b"
    assert run(store, items, methods) == []
    assert len(store.path.read_text().splitlines()) == 8  # 4 first run + 4 rerun: appends only


def test_torn_last_line_is_ignored_and_repaired(tmp_path: Path) -> None:
    store = PredictionStore(tmp_path)
    store.append(record("a", "icl"))
    with store.path.open("ab") as f:
        f.write(b'{"id": "b", "method": "icl", "quest')  # a write cut off by a kill
    assert [r["id"] for r in store.records()] == ["a"]
    assert store.done_keys() == {("a", "icl")}
    fresh = PredictionStore(tmp_path)
    fresh.append(record("b", "icl"))
    lines = store.path.read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["a", "b"]


def test_append_keeps_unicode_and_extras(tmp_path: Path) -> None:
    store = PredictionStore(tmp_path / "new" / "dir")
    store.append(record("q1", "lift", prediction="Jerez de la Frontera, Cádiz", seconds=1.5, judge=True))
    (only,) = store.records()
    assert only == record("q1", "lift", prediction="Jerez de la Frontera, Cádiz", seconds=1.5, judge=True)
    assert "Cádiz" in store.path.read_text(encoding="utf-8")


def test_invalid_records_and_corrupt_middle_line(tmp_path: Path) -> None:
    store = PredictionStore(tmp_path)
    with pytest.raises(ValueError, match="lacks prediction, answers"):
        store.append({"id": "a", "method": "icl", "question": "q"})
    store.path.write_text('{"id": "a", "method": "icl"}\nnot json\n{"id": "b", "method": "icl"}\n')
    with pytest.raises(ValueError, match=r"predictions\.jsonl:2: corrupt record"):
        store.records()


SQUAD_RECORDS = [
    {
        "id": "q1",
        "method": "icl",
        "question": "Who won?",
        "prediction": "the Denver Broncos",
        "answers": ["Denver Broncos"],
        "judge": True,
    },
    {
        "id": "q1",
        "method": "lift",
        "question": "Who won?",
        "prediction": "Carolina Panthers",
        "answers": ["Denver Broncos"],
    },
    {
        "id": "q2",
        "method": "icl",
        "question": "Who?",
        "prediction": "Denver",
        "answers": ["Denver Broncos"],
        "judge": False,
    },
    {
        "id": "q2",
        "method": "lift",
        "question": "Who?",
        "prediction": "",
        "answers": ["Denver Broncos"],
        "error": "out of memory",
    },
]


def test_squad_summary_files_exact(tmp_path: Path) -> None:
    summary = summarize(SQUAD_RECORDS, SQUAD_METRICS)
    # icl: EM (1 + 0) / 2; F1 (1 + 2/3) / 2 = 83.33; judge 1 of 2
    # contains_answer: "the Denver Broncos" holds the gold answer, "Denver" does not
    assert summary == {
        "icl": {"n": 2, "errors": 0, "exact_match": 50.0, "f1": 83.33, "contains_answer": 50.0, "judge": 50.0,
                "judge_n": 2},
        "lift": {"n": 1, "errors": 1, "exact_match": 0.0, "f1": 0.0, "contains_answer": 0.0},
    }
    json_path, md_path = write_summary(tmp_path, summary, title="SQuAD")
    assert json.loads(json_path.read_text()) == summary
    assert md_path.read_text() == (
        "# SQuAD\n"
        "\n"
        "| method | n | errors | exact_match | f1 | contains_answer | judge | judge_n |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
        "| icl | 2 | 0 | 50.00 | 83.33 | 50.00 | 50.00 | 2 |\n"
        "| lift | 1 | 1 | 0.00 | 0.00 | 0.00 | - | - |\n"
    )
    # rewriting replaces the files and leaves no temporary files behind
    write_summary(tmp_path, {"icl": {"n": 0, "errors": 2}}, title="SQuAD")
    assert json.loads(json_path.read_text()) == {"icl": {"n": 0, "errors": 2}}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json", "summary.md"]


def test_loogle_categories_and_niah_keywords() -> None:
    records = [
        record("d:1:0", "lift", prediction="gold", category="computation", judge=True),
        record(
            "d:1:1", "lift", prediction="gold standard", category="comprehension_and_reasoning", judge=False
        ),
        record("d:1:2", "lift", prediction="nothing", category="computation", judge=True),
    ]
    summary = summarize(records, LOOGLE_METRICS)
    assert summary["lift"]["categories"] == {
        "comprehension_and_reasoning": {"n": 1, "exact_match": 0.0, "f1": 66.67, "judge": 0.0},
        "computation": {"n": 2, "exact_match": 50.0, "f1": 50.0, "judge": 100.0},
    }
    assert summary_markdown(summary, "LooGLE LongQA").endswith(
        "## Per category\n"
        "\n"
        "| method | category | n | exact_match | f1 | judge |\n"
        "| --- | --- | ---: | ---: | ---: | ---: |\n"
        "| lift | comprehension_and_reasoning | 1 | 0.00 | 66.67 | 0.00 |\n"
        "| lift | computation | 2 | 50.00 | 50.00 | 100.00 |\n"
    )
    niah = [
        record("L1000_D0.5_S0", "raw", prediction="A sandwich in Dolores Park on a sunny day."),
        record("L1000_D0.5_S1", "raw", prediction="A sandwich."),
    ]
    assert summarize(niah, niah_metrics()) == {"raw": {"n": 2, "errors": 0, "keyword_accuracy": 50.0}}


def test_judge_must_be_bool() -> None:
    with pytest.raises(ValueError, match="must be a bool"):
        summarize([record("a", "icl", judge="True")], SQUAD_METRICS)


def test_in_window_splits_every_metric_and_error_count() -> None:
    records = [
        record("a", "icl", prediction="gold", in_window=True),
        record("b", "icl", prediction="gold medal", in_window=False),  # F1 2/3, holds the gold answer
        record("c", "icl", in_window=False, error="boom"),
        record("d", "lift", prediction="no", in_window=True),
        record("e", "lift", prediction="gold"),  # no in_window: counted in the whole only
    ]
    summary = summarize(records, SQUAD_METRICS)
    assert summary == {
        "icl": {"n": 2, "errors": 1, "exact_match": 50.0, "f1": 83.33, "contains_answer": 100.0, "in_window": {
            "inside": {"n": 1, "errors": 0, "exact_match": 100.0, "f1": 100.0, "contains_answer": 100.0},
            "outside": {"n": 1, "errors": 1, "exact_match": 0.0, "f1": 66.67, "contains_answer": 100.0}}},
        "lift": {"n": 2, "errors": 0, "exact_match": 50.0, "f1": 50.0, "contains_answer": 50.0, "in_window": {
            "inside": {"n": 1, "errors": 0, "exact_match": 0.0, "f1": 0.0, "contains_answer": 0.0},
            "outside": {"n": 0, "errors": 0}}},
    }
    assert summary_markdown(summary, "SQuAD").endswith(
        "## Inside / outside the truncated-ICL window\n"
        "\n"
        "| method | answer passage | n | errors | exact_match | f1 | contains_answer |\n"
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |\n"
        "| icl | all | 2 | 1 | 50.00 | 83.33 | 100.00 |\n"
        "| icl | inside | 1 | 0 | 100.00 | 100.00 | 100.00 |\n"
        "| icl | outside | 1 | 1 | 0.00 | 66.67 | 100.00 |\n"
        "| lift | all | 2 | 0 | 50.00 | 50.00 | 50.00 |\n"
        "| lift | inside | 1 | 0 | 0.00 | 0.00 | 0.00 |\n"
        "| lift | outside | 0 | 0 | - | - | - |\n"
    )
