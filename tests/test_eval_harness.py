"""The evaluation harness end to end on a tiny model: counts, resume, retries, base-model ICL, CLI errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from synth_fault_server import FaultServer

import lift_jax.absorbing.job as absorb_job
import lift_jax.eval.harness as harness
from lift_jax.answering import Answerer
from lift_jax.eval import loogle, niah, squad
from lift_jax.eval.adapters import base_model
from lift_jax.eval.config import absorb_method, eval_config, parse_methods
from lift_jax.eval.harness import Evaluator, run_benchmark, run_dir_name
from lift_jax.eval.squad_benchmark import squad_benchmark
from lift_jax.lora import LoRAConfig, apply_lora, lora_modules
from lift_jax.models import load
from lift_jax.prompting import PromptFormat
from lift_jax.sampling import SamplingParams

FIXTURES = Path(__file__).parent / "fixtures" / "eval"
SQUAD = FIXTURES / "squad_small.json"


def tiny_eval_config(
    checkpoint: Path, data: Path | str, output_dir: Path, methods: str, base_url: str = "http://127.0.0.1:9/v1"
) -> ml_collections.ConfigDict:
    """An eval config over a tiny checkpoint: the generator is the OpenAI-compatible server at `base_url`."""
    cfg = eval_config("test", str(data), methods)
    cfg.model_path = str(checkpoint)
    cfg.output_dir = str(output_dir)
    g = cfg.generator
    g.kind, g.base_url, g.model, g.api_key_env, g.prompt = "openai", base_url, "fake", "", "general"
    g.qa_per_sentence, g.timeout_s, g.max_retries, g.backoff_s = 3, 5.0, 1, 0.01
    cfg.lora.rank, cfg.lora.alpha = 4, 8.0
    cfg.train.lr, cfg.train.epochs, cfg.train.batch_size = 3e-3, 1, 4
    cfg.train.max_length, cfg.train.min_bucket, cfg.train.checkpoint_every = 128, 128, 1000
    cfg.raw_chunk_tokens = 64
    cfg.mesh.data = 1
    cfg.ask.max_new_tokens = 4
    cfg.eval.progress = False
    return cfg


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


class Counting:
    """Wraps the harness's absorb_document / model load / Answerer.answer, counting calls and injecting faults."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.absorbed: list[tuple[str, str]] = []
        self.loads = 0
        self.answered: list[str] = []
        self.fail_absorb: set[tuple[str, str]] = set()  # (first words of the document, method)
        self.fail_question: set[str] = set()  # fails once, in a batch answered without the document
        absorb, load_model, answer = harness.absorb_document, absorb_job.load, Answerer.answer

        def counting_absorb(loaded, mesh, cfg, document, **kw):
            key = (document[:12], cfg.method)
            self.absorbed.append(key)
            if key in self.fail_absorb:
                raise RuntimeError("injected absorb failure")
            return absorb(loaded, mesh, cfg, document, **kw)

        def counting_load(*args, **kw):
            self.loads += 1
            return load_model(*args, **kw)

        def counting_answer(answerer, questions, document=None):
            self.answered += questions
            hit = self.fail_question & set(questions)
            if hit and document is None:
                self.fail_question -= hit
                raise RuntimeError("injected answer failure")
            return answer(answerer, questions, document)

        monkeypatch.setattr(harness, "absorb_document", counting_absorb)
        monkeypatch.setattr(absorb_job, "load", counting_load)
        monkeypatch.setattr(Answerer, "answer", counting_answer)


def test_squad_harness_counts_resume_and_retries(tiny_checkpoints, tmp_path, monkeypatch):
    counts = Counting(monkeypatch)
    out = tmp_path / "eval"
    with FaultServer() as server:
        cfg = tiny_eval_config(tiny_checkpoints["llama_tied"], SQUAD, out, "icl,lift,raw", server.base_url)
        cfg.max_documents = 2  # paragraphs: Super_Bowl_50/0 (q1, q2) and Super_Bowl_50/1 (q3)
        counts.fail_absorb = {("The game was", "raw")}
        counts.fail_question = {"Who lost Super Bowl 50?"}
        counts.answered.clear()
        summary = run_benchmark(cfg, squad_benchmark(cfg))

        records = lines(out / "predictions.jsonl")
        assert len(records) == 3 * 3  # 3 questions x 3 methods, one line each
        assert {(r["id"], r["method"]) for r in records} == {(q, m) for q in ("q1", "q2", "q3")
                                                              for m in ("icl", "lift", "raw")}
        assert all({"id", "method", "question", "prediction", "answers", "doc_id"} <= r.keys() for r in records)
        errors = {(r["id"], r["method"]): r["error"] for r in records if r.get("error")}
        # lift's answer batch holding q2 failed (q1 with it), and doc 2's raw absorb failed
        assert set(errors) == {("q1", "lift"), ("q2", "lift"), ("q3", "raw")}
        assert "injected answer failure" in errors[("q1", "lift")]
        assert errors[("q3", "raw")].startswith("absorb failed: RuntimeError: injected absorb failure")
        assert counts.loads == 1 and len(counts.absorbed) == 4  # one model load; 2 documents x (lift, raw)
        saved = json.loads((out / "summary.json").read_text())
        assert saved == summary
        assert {m: (saved[m]["n"], saved[m]["errors"]) for m in saved} == {
            "icl": (3, 0), "lift": (1, 2), "raw": (2, 1)}
        assert set(saved["icl"]) >= {"exact_match", "f1", "answer_s_per_doc"}
        assert saved["lift"]["docs"] == 1 and saved["lift"]["absorb_s_per_doc"] > 0
        assert saved["lift"]["pairs_generated"] > 0
        assert "Wall time per document" in (out / "summary.md").read_text()
        assert not list((out / "runs").glob("*/*/checkpoints"))  # dropped once the adapter is exported

        # rerun: only the errored items; the finished lift adapter is reused, the failed raw absorb is redone
        counts.fail_absorb, counts.fail_question = set(), set()
        counts.absorbed.clear()
        counts.answered.clear()
        summary = run_benchmark(cfg, squad_benchmark(cfg))
        assert counts.absorbed == [("The game was", "raw")]
        assert counts.answered == ["Who won Super Bowl 50?", "Who lost Super Bowl 50?", "Where was the game played?"]
        assert {m: (summary[m]["n"], summary[m]["errors"]) for m in summary} == {
            "icl": (3, 0), "lift": (3, 0), "raw": (3, 0)}
        retried = lines(out / "predictions.jsonl")
        assert len(retried) == 9 + 3

        # a third run has nothing left: no model load, no absorb, no new line
        counts.absorbed.clear()
        counts.answered.clear()
        run_benchmark(cfg, squad_benchmark(cfg))
        assert counts.loads == 2 and counts.absorbed == [] and counts.answered == []
        assert len(lines(out / "predictions.jsonl")) == 12

    # ICL answers are the untouched base model's, although adapters were trained in between
    final = {(r["id"], r["method"]): r for r in retried}
    fresh = load(cfg.model_path, dtype="float32")
    answerer = Answerer(fresh, PromptFormat(True, None), SamplingParams(cfg.ask.max_new_tokens), 0)
    for doc in squad_benchmark(cfg).load_documents()[:2]:  # the same batches as the harness: a document's questions
        want = [final[(q.id, "icl")]["prediction"] for q in doc.questions]
        assert answerer.answer([q.question for q in doc.questions], doc.text) == want, doc.id


def test_base_model_swaps_out_every_adapter_exactly(tiny_checkpoints):
    path = tiny_checkpoints["qwen3"]
    adapted, plain = load(path), load(path)
    apply_lora(adapted.module, LoRAConfig(rank=4, alpha=8.0), seed=1)
    for i, (_, layer) in enumerate(lora_modules(adapted.module)):  # a 'trained' adapter: B is not zero
        layer.lora_b.set_value(jnp.full(layer.lora_b.get_value().shape, 0.01 * (i + 1), jnp.float32))
    ids = jnp.array([[3, 17, 42, 99, 7, 120]], jnp.int32)
    want = np.asarray(plain.module(ids))
    with_adapter = np.asarray(adapted.module(ids))
    assert np.abs(with_adapter - want).max() > 1e-3
    with base_model(adapted.module):
        assert not lora_modules(adapted.module)
        np.testing.assert_array_equal(np.asarray(adapted.module(ids)), want)
    np.testing.assert_array_equal(np.asarray(adapted.module(ids)), with_adapter)  # the adapter is back


def test_absorb_method_without_a_generator_fails_before_writing(tiny_checkpoints, tmp_path):
    cfg = tiny_eval_config(tiny_checkpoints["llama_tied"], SQUAD, tmp_path / "eval", "lift")
    cfg.generator.timeout_s, cfg.generator.max_retries = 0.5, 0
    from lift_jax.synth.generators import GeneratorUnavailable

    with pytest.raises(GeneratorUnavailable):
        run_benchmark(cfg, squad_benchmark(cfg))
    assert not (tmp_path / "eval" / "predictions.jsonl").exists()


@pytest.mark.parametrize(
    ("fixture", "message"),
    [
        ("squad_truncated.json", r"squad_truncated.json: line \d+ column \d+: invalid JSON"),
        ("squad_missing_answers.json", r"squad_missing_answers.json: data\[1\]\.paragraphs\[0\]\.qas\[1\]: "
                                       r"missing \"answers\""),
    ],
)
def test_a_malformed_file_is_one_error_line_naming_file_and_record(fixture, message, tmp_path, capsys):
    out = tmp_path / "eval"
    with pytest.raises(SystemExit) as exc:
        squad.main([f"--config.data={FIXTURES / fixture}", "--config.methods=icl", f"--config.output_dir={out}"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert re.search(message, err[0]), err[0]
    assert not out.exists()


@pytest.mark.parametrize(("module", "name"), [(niah, "niah"), (squad, "squad"), (loogle, "loogle")])
def test_help_of_each_harness(module, name, capsys):
    with pytest.raises(SystemExit) as exc:
        module.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert f"python -m lift_jax.eval.{name}" in out and "max_documents" in out and "lift+icl" in out


def test_help_runs_as_a_module():
    out = subprocess.run([sys.executable, "-m", "lift_jax.eval.niah", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and "niah.lengths" in out.stdout


def test_bad_fields_are_one_error_line(capsys, tmp_path):
    for args, message in [
        (["--config.methods=icl,foo"], "unknown method 'foo'"),
        (["--config.max_documents=-1"], "max_documents must be >= 0"),
        (["--config.nosuch=1"], "unknown config key 'nosuch'"),
    ]:
        with pytest.raises(SystemExit) as exc:
            squad.main([*args, f"--config.output_dir={tmp_path}"])
        assert exc.value.code == 2
        assert message in capsys.readouterr().err


def test_methods_and_run_dir_names():
    assert parse_methods(" icl, lift,lift+icl,icl ") == ("icl", "lift", "lift+icl")
    assert parse_methods("base,raw+icl,lift+raw") == ("base", "raw+icl", "lift+raw")
    assert [absorb_method(m) for m in ("base", "icl", "lift", "lift+icl", "lift+raw", "lift+raw+icl")] == [
        None, None, "lift", "lift", "lift+raw", "lift+raw"]
    with pytest.raises(ValueError, match="no methods"):
        parse_methods(" , ")
    names = {run_dir_name(x) for x in ("Super_Bowl_50/0", "Super_Bowl_50_0", "longdep_qa:1", "L1000_D0.25_S0")}
    assert len(names) == 4 and "L1000_D0.25_S0" in names
    assert all("/" not in n and ":" not in n for n in names)


def test_lift_icl_alone_absorbs_lift_once(tiny_checkpoints, tmp_path, monkeypatch):
    counts = Counting(monkeypatch)
    with FaultServer() as server:
        cfg = tiny_eval_config(tiny_checkpoints["llama_tied"], SQUAD, tmp_path / "eval", "lift+icl,lift",
                               server.base_url)
        cfg.max_documents = 1
        summary = Evaluator(cfg, squad_benchmark(cfg)).run()
    assert counts.absorbed == [("Super Bowl 5", "lift")]
    assert {m: summary[m]["n"] for m in summary} == {"lift+icl": 2, "lift": 2}


@pytest.mark.slow
def test_squad_cli_runs_on_the_default_config_with_the_bundled_model(tmp_path):
    out = tmp_path / "eval"
    args = ["-m", "lift_jax.eval.squad", f"--config.data={SQUAD}", "--config.max_documents=1",
            "--config.methods=icl", f"--config.output_dir={out}"]
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| icl |" in done.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["icl"]["n"] == 2 and summary["icl"]["errors"] == 0


def test_questions_about_one_document_share_its_prefix(tiny_checkpoints):
    from lift_jax.answering import split_shared_prefix

    assert split_shared_prefix([[1, 2, 3, 4, 5], [1, 2, 3, 4, 6]], block=2) == ([1, 2, 3, 4], [[5], [6]])
    assert split_shared_prefix([[1, 2, 3], [1, 2, 3, 4]], block=1) == ([1, 2], [[3], [3, 4]])  # keeps a token
    assert split_shared_prefix([[1, 2, 3]], block=1) == ([], [[1, 2, 3]])
    assert split_shared_prefix([[1, 2, 3], [1, 2, 4]], block=4) == ([], [[1, 2, 3], [1, 2, 4]])
    loaded = load(tiny_checkpoints["llama_tied"])
    answerer = Answerer(loaded, PromptFormat(True, None), SamplingParams(6), 0)
    questions = ["Who won?", "Where was it played?", "When?"]
    document = "Super Bowl 50 was an American football game. The Denver Broncos won it 24-10 at Levi's Stadium."
    answerer.prefix_block = 10**9  # no shared prefix
    whole = answerer.answer(questions, document)
    answerer.prefix_block = 16
    assert answerer.answer(questions, document) == whole


def test_loogle_harness_scores_per_category_and_reads_a_folder(tiny_checkpoints, tmp_path):
    from lift_jax.eval.loogle_benchmark import load_documents, loogle_benchmark

    folder = tmp_path / "loogle"
    folder.mkdir()
    small = (FIXTURES / "loogle_small.jsonl").read_text()
    (folder / "longdep_qa.jsonl").write_text(small)
    (folder / "shortdep_qa.jsonl").write_text(small.replace("'type': 'computation', ", ""))
    assert [d.id for d in load_documents(folder, 3)] == ["longdep_qa:1", "longdep_qa:3", "shortdep_qa:1"]
    cfg = tiny_eval_config(tiny_checkpoints["llama_tied"], folder / "longdep_qa.jsonl", tmp_path / "eval", "icl")
    summary = run_benchmark(cfg, loogle_benchmark(cfg))
    assert summary["icl"]["n"] == 3
    categories = summary["icl"]["categories"]
    assert list(categories) == ["computation", "timeline_reorder", "short_dependency"]
    assert {c: s["n"] for c, s in categories.items()} == {"computation": 1, "timeline_reorder": 1,
                                                          "short_dependency": 1}
    assert "## Per category" in (tmp_path / "eval" / "summary.md").read_text()


def test_judge_scores_beside_the_offline_metrics_and_is_asked_once(tiny_checkpoints, tmp_path):
    replies = {"Who won Super Bowl 50?": "True", "Who lost Super Bowl 50?": "**False**"}
    with FaultServer(replies=replies) as server:
        cfg = tiny_eval_config(tiny_checkpoints["llama_tied"], SQUAD, tmp_path / "eval", "icl")
        cfg.max_documents = 1
        cfg.judge.enabled = True
        cfg.judge.base_url, cfg.judge.model, cfg.judge.api_key_env = server.base_url, "judge", ""
        summary = run_benchmark(cfg, squad_benchmark(cfg))
        assert summary["icl"]["judge"] == 50.0 and summary["icl"]["judge_n"] == 2
        assert {"exact_match", "f1"} <= summary["icl"].keys()
        judge_requests = sum(server.requests.values())
        assert judge_requests == 2
        run_benchmark(cfg, squad_benchmark(cfg))  # nothing left to answer or to judge
        assert sum(server.requests.values()) == judge_requests
    records = lines(tmp_path / "eval" / "predictions.jsonl")
    assert [(r["id"], r.get("judge")) for r in records[-2:]] == [("q1", True), ("q2", False)]
    payload = server.payloads[0]["messages"][0]["content"]
    assert payload.startswith("Given one question, there is a groundtruth and a predict_answer.")
    assert "groundtruth = Denver Broncos; The Denver Broncos" in payload or "groundtruth = Carolina" in payload
