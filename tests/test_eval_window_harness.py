"""The harness beyond the window on a tiny model: SQuAD article mode, in_window in every record, the summary's
inside / outside split (equal to a recomputation from predictions.jsonl), the closed-book `base` method, any
absorb method of lift_jax.config.METHODS, and NIAH's needle in or out of the window."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jax.numpy as jnp
import pytest
from test_eval_harness import tiny_eval_config
from test_eval_niah_harness import niah_config

import lift_jax.eval.harness as harness
from lift_jax.absorbing import prepare_adapter
from lift_jax.answering import Answerer
from lift_jax.eval import squad
from lift_jax.eval.harness import run_benchmark
from lift_jax.eval.metrics import contains_answer, exact_match, f1_score, keywords_found
from lift_jax.eval.niah_benchmark import niah_benchmark
from lift_jax.eval.squad_benchmark import squad_benchmark
from lift_jax.lora import lora_modules
from lift_jax.models import load
from lift_jax.prompting import PromptFormat
from lift_jax.sampling import SamplingParams

FIXTURES = Path(__file__).parent / "fixtures" / "eval"
ARTICLES = FIXTURES / "squad_articles.json"
CONTEXT_TOKENS = 160  # with the tiny byte-level tokenizer: about 46 document tokens, 23 at each end
# Canned answers per (question id, document in the prompt): scores that differ inside / outside the window.
WITH_DOCUMENT = {"a1": "a red fox", "a2": "blue whale sings", "a3": "in the morning", "a4": "the green frog",
                 "a5": "straw", "a6": "a cat", "w1": "Warsaw"}
CLOSED_BOOK = {"a1": "a fox", "a2": "nobody", "a3": "at night", "a4": "frogs", "a5": "a nest", "a6": "dogs",
               "w1": "Krakow"}


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def article_config(checkpoint: Path, tmp_path: Path, methods: str):
    cfg = tiny_eval_config(checkpoint, ARTICLES, tmp_path / "eval", methods)
    cfg.document_unit = "article"
    cfg.titles = ""
    cfg.ask.context_tokens = CONTEXT_TOKENS
    return cfg


@pytest.fixture
def fake_absorb(monkeypatch):
    """absorb_document replaced by a fresh adapter with non-zero B (no generation, no training); the calls are
    recorded as (method, first words of the document, shared_cache_dir)."""
    calls: list[tuple[str, str, str]] = []

    def absorb(loaded, mesh, cfg, document, **kw):
        calls.append((cfg.method, document[:8], cfg.shared_cache_dir))
        Path(cfg.output_dir).mkdir(parents=True, exist_ok=True)  # the run directory, as absorb makes it
        prepare_adapter(loaded, cfg)
        for _, layer in lora_modules(loaded.module):
            layer.lora_b.set_value(jnp.full(layer.lora_b.get_value().shape, 0.05, jnp.float32))
        if cfg.method == "lift+cd":  # the teacher stage's counts, as absorb reports them
            return {"steps": 0, "cd": {"teacher_computed": 7, "teacher_cached": 3}}
        return {"steps": 0}

    monkeypatch.setattr(harness, "absorb_document", absorb)
    monkeypatch.setattr(harness, "check_generator", lambda cfg: calls.append(("check_generator", "", "")))
    return calls


@pytest.fixture
def canned_answers(monkeypatch):
    """Answerer.answer replaced by the canned answers (keyed by question text), no decoding."""
    by_question = {q["question"]: q["id"] for a in json.loads(ARTICLES.read_text())["data"]
                   for p in a["paragraphs"] for q in p["qas"]}

    def answer(self, questions, document=None):
        table = WITH_DOCUMENT if document else CLOSED_BOOK
        return [table[by_question[q]] for q in questions]

    monkeypatch.setattr(Answerer, "answer", answer)


def recompute(records: list[dict], method: str, side: bool | None) -> dict:
    """A summary part from the records alone: n, errors and each SQuAD metric in percent."""
    rows = [r for r in records if r["method"] == method and (side is None or r["in_window"] is side)]
    ok = [r for r in rows if not r.get("error")]
    want: dict = {"n": len(ok), "errors": len(rows) - len(ok)}
    for name, scorer in (("exact_match", exact_match), ("f1", f1_score), ("contains_answer", contains_answer)):
        if ok:
            want[name] = round(100 * sum(scorer(r["prediction"], r["answers"]) for r in ok) / len(ok), 2)
    return want


def test_article_mode_records_in_window_and_split_summary(tiny_checkpoints, tmp_path, fake_absorb,
                                                          canned_answers):
    cfg = article_config(tiny_checkpoints["llama_tied"], tmp_path, "base,icl,lift,lift+icl")
    out = Path(cfg.output_dir)
    summary = run_benchmark(cfg, squad_benchmark(cfg))

    # one absorb per article for lift (lift+icl reuses it), with the shared cache folder set
    assert fake_absorb == [("check_generator", "", ""), ("lift", "Oslo has", str(out)),
                           ("lift", "Warsaw i", str(out))]
    records = lines(out / "predictions.jsonl")
    assert len(records) == 7 * 4
    paragraph = {"a1": 0, "a2": 1, "a3": 1, "a4": 2, "a5": 3, "a6": 4, "w1": 0}
    inside = {"a1": True, "a2": False, "a3": False, "a4": False, "a5": False, "a6": True, "w1": True}
    for r in records:
        assert (r["paragraph"], r["in_window"]) == (paragraph[r["id"]], inside[r["id"]]), r
        assert r["doc_id"] == ("Warsaw" if r["id"] == "w1" else "Animals")
        head, tail = r["window_edges"]
        assert (head, tail) == (1.0, 1.0) if r["id"] == "w1" else 0.0 < head < tail < 1.0  # Warsaw fits whole

    # in_window agrees with the prompt icl is given: the paragraph is shown whole iff it is inside
    loaded = load(cfg.model_path)
    answerer = Answerer(loaded, PromptFormat(True, None), SamplingParams(cfg.ask.max_new_tokens),
                        CONTEXT_TOKENS)
    docs = {d.id: d for d in squad_benchmark(cfg).load_documents()}
    for r in records:
        doc = docs[r["doc_id"]]
        start, end = doc.passages[r["paragraph"]]
        assert (doc.text[start:end] in answerer._with_context(r["question"], doc.text)) == r["in_window"], r["id"]

    # every split metric equals its recomputation from predictions.jsonl, and the parts add up
    saved = json.loads((out / "summary.json").read_text())
    assert saved == summary
    for method in ("base", "icl", "lift", "lift+icl"):
        entry = saved[method]
        assert entry["context_tokens"] == CONTEXT_TOKENS
        assert {k: entry[k] for k in recompute(records, method, None)} == recompute(records, method, None)
        assert entry["in_window"] == {"inside": recompute(records, method, True),
                                      "outside": recompute(records, method, False)}
        assert entry["in_window"]["inside"]["n"] + entry["in_window"]["outside"]["n"] == entry["n"] == 7
    # the canned scores: with the document, 3 of the 3 inside are exact; outside 1 of 4 (a4), F1 of a2 and a5
    assert saved["icl"]["in_window"]["inside"]["exact_match"] == 100.0
    assert saved["icl"]["in_window"]["outside"]["exact_match"] == 25.0
    assert saved["base"]["in_window"]["inside"]["exact_match"] == 0.0

    markdown = (out / "summary.md").read_text()
    assert "## Inside / outside the truncated-ICL window" in markdown and "context_tokens" in markdown
    assert re.search(r"\| icl \| outside \| 4 \| 0 \| 25\.00 \|", markdown)
    assert (out / "f1_by_position.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_base_answers_with_the_untouched_model_and_no_document(tiny_checkpoints, tmp_path, fake_absorb):
    cfg = tiny_eval_config(tiny_checkpoints["llama_tied"], FIXTURES / "squad_small.json", tmp_path / "eval",
                           "lift,base")
    cfg.max_documents = 1
    summary = run_benchmark(cfg, squad_benchmark(cfg))  # lift's adapter is in the model when base answers
    assert [c[0] for c in fake_absorb] == ["check_generator", "lift"]
    assert {m: summary[m]["n"] for m in summary} == {"lift": 2, "base": 2}
    assert "in_window" not in summary["base"]  # paragraph mode: the document is its own passage, no split
    records = {(r["id"], r["method"]): r for r in lines(tmp_path / "eval" / "predictions.jsonl")}
    assert "in_window" not in records[("q1", "base")] and "paragraph" not in records[("q1", "base")]
    fresh = Answerer(load(cfg.model_path), PromptFormat(True, None), SamplingParams(cfg.ask.max_new_tokens), 0)
    questions = ["Who won Super Bowl 50?", "Who lost Super Bowl 50?"]
    assert fresh.answer(questions) == [records[(q, "base")]["prediction"] for q in ("q1", "q2")]


def test_any_absorb_method_of_the_config_runs(tiny_checkpoints, tmp_path, fake_absorb, canned_answers,
                                              monkeypatch, capsys):
    cfg = article_config(tiny_checkpoints["llama_tied"], tmp_path, "lift+cd+icl,lift+cd,raw")
    cfg.max_documents = 1
    cfg.eval.shared_qa_cache = False  # each run keeps its caches: shared_cache_dir stays ''
    summary = run_benchmark(cfg, squad_benchmark(cfg))
    assert fake_absorb == [("check_generator", "", ""), ("lift+cd", "Oslo has", ""), ("raw", "Oslo has", "")]
    assert {m: summary[m]["n"] for m in summary} == {"lift+cd+icl": 6, "lift+cd": 6, "raw": 6}
    assert (tmp_path / "eval" / "runs" / "Animals" / "lift_cd").is_dir()
    teacher = {m: (summary[m].get("teacher_computed"), summary[m].get("teacher_reused")) for m in summary}
    assert teacher == {"lift+cd+icl": (7, 3), "lift+cd": (7, 3), "raw": (None, None)}  # one absorb, one document
    log = (tmp_path / "eval" / "eval.log").read_text()
    assert "Animals lift+cd: absorbed in" in log and "teacher answers computed 7, reused 3" in log
    timing_row = next(line for line in (tmp_path / "eval" / "summary.md").read_text().splitlines()
                      if line.startswith("| Animals | lift+cd |"))
    assert timing_row.endswith("| 7 | 3 |"), timing_row

    with pytest.raises(SystemExit):
        squad.main(["--config.methods=base,lift+xx", f"--config.output_dir={tmp_path / 'x'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: unknown method 'lift+xx' in methods='base,lift+xx'; use base, icl, lift, raw, "
                   "lift+raw, lift+cd, lift+icl, raw+icl, lift+raw+icl, lift+cd+icl"]


@pytest.mark.parametrize(
    ("fixture", "message"),
    [
        ("squad_article_no_paragraphs.json", 'data[1]: article "Empty" has no paragraphs'),
        ("squad_empty_answers.json", 'data[0].paragraphs[1].qas[1]: "answers" is empty'),
    ],
)
def test_a_malformed_article_is_one_error_line(fixture, message, tmp_path, capsys):
    out = tmp_path / "eval"
    with pytest.raises(SystemExit) as exc:
        squad.main([f"--config.data={FIXTURES / fixture}", "--config.document_unit=article", "--config.methods=icl",
                    f"--config.output_dir={out}"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {FIXTURES / fixture}: {message}"), err
    assert not out.exists()


def test_niah_needle_inside_or_outside_the_window(tiny_checkpoints, tmp_path, monkeypatch):
    monkeypatch.setattr(Answerer, "answer", lambda self, questions, document=None: [
        "a sandwich in Dolores Park when sunny" if document else "no idea" for _ in questions])
    cfg = niah_config(tiny_checkpoints["llama_tied"], tmp_path, "icl,base", "230", "0,0.5,1", 1)
    cfg.ask.context_tokens = 180  # about 100 document tokens: 50 at each end of 230
    benchmark = niah_benchmark(cfg)
    docs = {d.id: d for d in benchmark.load_documents()}
    summary = run_benchmark(cfg, benchmark)
    records = lines(tmp_path / "eval" / "predictions.jsonl")
    assert [(r["id"], r["method"], r["in_window"]) for r in records] == [
        ("L230_D0.0_S0", "icl", True), ("L230_D0.0_S0", "base", True),
        ("L230_D0.5_S0", "icl", False), ("L230_D0.5_S0", "base", False),
        ("L230_D1.0_S0", "icl", True), ("L230_D1.0_S0", "base", True)]
    answerer = Answerer(load(cfg.model_path), PromptFormat(True, None), SamplingParams(cfg.ask.max_new_tokens),
                        cfg.ask.context_tokens)
    for r in records:
        shown = answerer._with_context(r["question"], docs[r["id"]].text)
        assert (cfg.niah.needle in shown) == r["in_window"]
    assert summary["icl"]["in_window"] == {"inside": {"n": 2, "errors": 0, "keyword_accuracy": 100.0},
                                           "outside": {"n": 1, "errors": 0, "keyword_accuracy": 100.0}}
    assert summary["base"]["keyword_accuracy"] == 0.0
    assert all(keywords_found(r["prediction"]) == (r["method"] == "icl") for r in records)


def test_titles_select_articles_in_file_order(tmp_path):
    cfg = article_config(Path("unused"), tmp_path, "icl")
    cfg.titles = "Warsaw | Animals"
    assert [d.id for d in squad_benchmark(cfg).load_documents()] == ["Animals", "Warsaw"]
    cfg.max_documents = 1
    assert [d.id for d in squad_benchmark(cfg).load_documents()] == ["Animals"]
