"""The generation pipeline: a flaky server loses no sentence, results come in completion order, cached
sentences cost no request, failures are recorded and retried, the local generator batches sentences."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from synth_fault_server import CLIENT_TIMEOUT_S, FaultServer

from lift_jax.synth.cache import QACache, iter_qa_pairs
from lift_jax.synth.config import generator_config
from lift_jax.synth.generators import GeneratorSampling, GeneratorUnavailable, LocalGenerator, make_generator
from lift_jax.synth.pipeline import GenerationSummary, document_pairs, generate_document, plan_document
from lift_jax.synth.prompts import load_prompt

WORDS = "amber basalt cobalt dune ember fjord glacier harbor island jungle kelp lagoon marsh"


def document(n: int, poison: int | None = None) -> str:
    sentences = [
        f"Sentence {i} tells that the {WORDS.split()[i % 13]} lies {i + 2} miles north of"
        f" {'POISON' if i == poison else 'town'}."
        for i in range(n)
    ]
    return " ".join(sentences)


def openai_config(server: FaultServer, **overrides):
    cfg = generator_config()
    cfg.kind, cfg.prompt, cfg.model, cfg.api_key_env = "openai", "general", "fake", ""
    cfg.base_url, cfg.timeout_s, cfg.max_retries = server.base_url, CLIENT_TIMEOUT_S, 5
    cfg.backoff_s, cfg.backoff_max_s, cfg.concurrency, cfg.qa_per_sentence = 0.01, 0.05, 8, 3
    for k, v in overrides.items():
        cfg[k] = v
    return cfg


def sentence_of(planned) -> str:
    return planned.task.sentence


def test_thirty_percent_faults_lose_no_sentence_and_repeat_no_success(tmp_path: Path) -> None:
    doc = document(40, poison=7)
    with FaultServer(fault_rate=0.3, seed=1, always_fail=("POISON",)) as server:
        cfg = openai_config(server)
        plan = {p.key: p for p in plan_document(doc, cfg)}
        summary = GenerationSummary()
        results = list(generate_document(doc, cfg, QACache(tmp_path), progress=False, summary=summary))
        assert sum(server.faults.values()) > 10 and len(server.faults) == 6  # every kind of fault happened
        assert sorted(r.index for r in results) == list(range(40))  # every sentence exactly once
        for r in results:
            sentence = sentence_of(plan[r.key])
            if r.status == "ok":
                assert server.successes[sentence] == 1 and len(r.pairs) == 3
            else:
                assert server.successes[sentence] == 0 and "gave up" in r.error
        failed = [r.index for r in results if r.status == "failed"]
        assert failed == [7]
        assert summary.ok == 39 and summary.failed == 1 and summary.cached == 0
        assert summary.retried > 0 and summary.requests == sum(server.requests.values())
        assert summary.pairs_generated == 39 * 3

        # The rerun asks only for the failed sentence, once the server is healed.
        server.reset()
        server.always_fail, server.fault_rate = (), 0.0
        summary = GenerationSummary()
        rerun = list(generate_document(doc, cfg, QACache(tmp_path), progress=False, summary=summary))
        assert sum(server.requests.values()) == 1 and [r.index for r in rerun if not r.cached] == [7]
        assert summary.cached == 39 and summary.ok == 40 and summary.pairs_reused == 39 * 3
        assert all(r.cached for r in rerun[:39])
    assert len(list(iter_qa_pairs(tmp_path))) == 40 * 3
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["summary"]["ok"] == 40 and manifest["settings"]["model"] == "fake"


def test_results_come_in_completion_order(tmp_path: Path) -> None:
    doc = document(6)
    with FaultServer() as server:
        cfg = openai_config(server, timeout_s=3.0)
        slow = sentence_of(plan_document(doc, cfg)[0])
        original = server._completion

        def completion(payload, key):
            if key == slow:
                time.sleep(0.6)
            return original(payload, key)

        server._completion = completion
        indices = [r.index for r in generate_document(doc, cfg, QACache(tmp_path), progress=False)]
    assert indices[-1] == 0 and sorted(indices) == list(range(6))
    assert server.requests[slow] == 1


def test_changed_settings_never_reuse_stale_entries(tmp_path: Path) -> None:
    doc = document(4)
    with FaultServer() as server:
        list(generate_document(doc, openai_config(server), QACache(tmp_path), progress=False))
        server.reset()
        results = list(
            generate_document(
                doc, openai_config(server, qa_per_sentence=2), QACache(tmp_path), progress=False
            )
        )
        assert sum(server.requests.values()) == 4 and not any(r.cached for r in results)
        assert all(len(r.pairs) == 2 for r in results)


def test_an_unreachable_server_writes_nothing(tmp_path: Path) -> None:
    with FaultServer() as server:
        cfg = openai_config(server, max_retries=1)
    cache_dir = tmp_path / "cache"
    with pytest.raises(GeneratorUnavailable, match="is not usable"):
        list(generate_document(document(3), cfg, QACache(cache_dir), progress=False))
    assert not cache_dir.exists()


def test_a_rejected_key_stops_the_document(tmp_path: Path) -> None:
    with FaultServer(required_key="right") as server:
        server.fault_for = lambda key, n: None
        cfg = openai_config(server)
        with pytest.raises(GeneratorUnavailable, match="HTTP 401"):
            list(generate_document(document(3), cfg, QACache(tmp_path), progress=False))
    assert sum(server.requests.values()) <= 3


def test_shards_split_sentences_by_index(tmp_path: Path) -> None:
    doc = document(7)
    with FaultServer() as server:
        cfg = openai_config(server)
        seen = []
        for index in range(3):
            cache = QACache(tmp_path, index, 3)
            seen.append(
                sorted(
                    r.index
                    for r in generate_document(
                        doc, cfg, cache, shard_index=index, shard_count=3, progress=False
                    )
                )
            )
    assert seen == [[0, 3, 6], [1, 4], [2, 5]]
    assert sorted(p.name for p in tmp_path.glob("qa_cache*")) == [
        f"qa_cache.p{i}-of-3.jsonl" for i in range(3)
    ]
    assert len(list(iter_qa_pairs(tmp_path))) == 7 * 3


def test_the_consumer_can_stop_early_and_resume(tmp_path: Path) -> None:
    doc = document(10)
    with FaultServer(delay_s=0.05) as server:
        cfg = openai_config(server, concurrency=2)
        results = generate_document(doc, cfg, QACache(tmp_path), progress=False)
        first = [next(results) for _ in range(3)]
        results.close()  # cancels the rest; what finished stays cached
        done = {c.key for c in QACache(tmp_path).completed()}
        assert {r.key for r in first} <= done and len(done) < 10
        server.reset()
        rest = list(generate_document(doc, cfg, QACache(tmp_path), progress=False))
        assert sum(server.requests.values()) == 10 - len(done)
        assert sorted(r.index for r in rest) == list(range(10))


def fake_completer(calls: list):
    def complete(prompts, max_new_tokens, temperature, top_p, seed, max_lines=0, prefix="", floor_prompts=()):
        calls.append(
            {
                "rows": len(prompts),
                "prompts": list(prompts),
                "floor": tuple(floor_prompts),
                "prefix": prefix,
                "max_lines": max_lines,
                "seed": seed,
                "thread": threading.current_thread().name,
            }
        )
        out = []
        for i, prompt in enumerate(prompts):
            sentence = prompt.split("Text: ")[-1].split("\nQuestion:")[0]
            words = sentence.rstrip(".").split()
            if "nonsense" in sentence:
                out.append(" What is the Eiffel Tower?\nAnswer: The Eiffel Tower was completed in 1889.\n")
            else:  # three samples: two usable and distinct, one a duplicate
                out.append(
                    f" Where does the {words[5]} lie (sample {i % 2})?\nAnswer: {' '.join(words[5:])}\n"
                )
        return out

    return complete


def local_config():
    cfg = generator_config()
    cfg.qa_per_sentence, cfg.samples_per_sentence, cfg.local_batch_size, cfg.empty_retries = 5, 3, 4, 1
    return cfg


def test_local_generator_batches_sentences_and_filters_pairs(tmp_path: Path) -> None:
    doc = document(9) + " This nonsense sentence has no facts at all."
    cfg = local_config()
    calls: list = []
    generator = LocalGenerator(
        fake_completer(calls), load_prompt("auto", "local"), GeneratorSampling.from_config(cfg), 4
    )
    summary = GenerationSummary()
    results = {
        r.index: r
        for r in generate_document(
            doc, cfg, QACache(tmp_path), generator=generator, progress=False, summary=summary
        )
    }
    assert [c["rows"] for c in calls[:3]] == [12, 12, 6]  # 10 sentences x 3 samples in batches of 4 sentences
    assert calls[3]["rows"] == 3  # the retry of the sentence without a usable pair
    # every call is laid out for the largest batch: the 4 longest prompts, 3 samples each (one compilation)
    floor = calls[0]["floor"]
    assert all(c["floor"] == floor for c in calls) and len(floor) == 12 and len(set(floor)) == 4
    others = {p for c in calls for p in c["prompts"]} - set(floor)
    assert len(others) == 6 and min(map(len, floor)) >= max(map(len, others))
    assert all(c["prefix"].startswith("Write questions about the text") for c in calls)
    assert {c["max_lines"] for c in calls} == {4}  # 2 lines per pair, ceil(5 / 3) pairs per sample
    assert len({c["seed"] for c in calls}) == 4
    assert all(len(results[i].pairs) == 2 for i in range(9))  # duplicates across samples dropped
    assert results[1].pairs[0].answer == "basalt lies 3 miles north of town"
    assert results[9].status == "failed" and "no usable QA pair in 2 reply(s)" in results[9].error
    assert summary.ok == 9 and summary.failed == 1 and summary.retried == 1


def test_local_kind_loads_the_model_through_lift_jax_sampling(monkeypatch: pytest.MonkeyPatch) -> None:
    import lift_jax.sampling

    loaded = []

    def make_local_completer(model_path: str, dtype: str):
        loaded.append((model_path, dtype))
        return fake_completer([])

    monkeypatch.setattr(lift_jax.sampling, "make_local_completer", make_local_completer)
    generator = make_generator(local_config(), dtype="bfloat16")
    assert isinstance(generator, LocalGenerator) and loaded == [("bundled:smollm2-135m-instruct", "bfloat16")]


def test_document_pairs_is_what_absorb_consumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import lift_jax.sampling
    from lift_jax.config import base_config

    monkeypatch.setattr(lift_jax.sampling, "make_local_completer", lambda path, dtype: fake_completer([]))
    cfg = base_config()
    cfg.generator = local_config()
    out = list(document_pairs(cfg, document(5), tmp_path / "qa_cache", progress=False))
    assert sorted(i for i, _ in out) == list(range(5))
    assert all(len(pairs) == 2 and all(isinstance(q, str) for q, a in pairs) for _, pairs in out)


def test_vllm_kind_without_vllm_is_a_clear_error(tmp_path: Path) -> None:
    cfg = generator_config()
    cfg.kind, cfg.model = "vllm", "Qwen/Qwen2.5-72B-Instruct"
    with pytest.raises(GeneratorUnavailable, match="needs the vllm package"):
        list(generate_document(document(2), cfg, QACache(tmp_path / "c"), progress=False))
    assert not (tmp_path / "c").exists()


def test_generation_runs_inside_a_producer_thread(tmp_path: Path) -> None:
    doc = document(5)
    out: list = []
    with FaultServer() as server:
        cfg = openai_config(server)
        thread = threading.Thread(
            target=lambda: out.extend(generate_document(doc, cfg, QACache(tmp_path), progress=False))
        )
        thread.start()
        thread.join(30)
    assert sorted(r.index for r in out) == list(range(5))


def test_vllm_generator_batches_through_the_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-process vLLM path with a stand-in `vllm` module (the real one needs a GPU host): one engine call
    per batch of chat prompts, JSON-guided with the paper's reply schema."""
    import sys
    import types

    calls: list = []

    class SamplingParams:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

    class StructuredOutputsParams:
        def __init__(self, json):
            self.json = json

    class LLM:
        def __init__(self, model: str, seed: int):
            self.model = model

        def chat(self, conversations, params, use_tqdm):
            calls.append((len(conversations), params.kwargs))
            outputs = []
            for messages in conversations:
                sentence = (
                    messages[-1]["content"].split("The last part of the paragraph:\n")[1].split("\n")[0]
                )
                reply = json.dumps({"qa_list": [{"question": f"About {sentence}?", "answer": sentence}]})
                outputs.append(types.SimpleNamespace(outputs=[types.SimpleNamespace(text=reply)]))
            return outputs

    vllm = types.ModuleType("vllm")
    vllm.LLM, vllm.SamplingParams = LLM, SamplingParams
    sampling_params = types.ModuleType("vllm.sampling_params")
    sampling_params.StructuredOutputsParams = StructuredOutputsParams
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", sampling_params)
    cfg = generator_config()
    cfg.kind, cfg.model, cfg.prompt, cfg.concurrency = "vllm", "Qwen/Qwen2.5-72B-Instruct", "general", 4
    results = list(generate_document(document(6), cfg, QACache(tmp_path), progress=False))
    assert sorted(r.index for r in results) == list(range(6)) and all(r.status == "ok" for r in results)
    assert [n for n, _ in calls] == [4, 2]
    schema = calls[0][1]["structured_outputs"].json
    assert schema["properties"]["qa_list"]["maxItems"] == 10 and calls[0][1]["n"] == 1


def test_a_repeated_sentence_is_generated_and_yielded_once_on_every_run(tmp_path: Path) -> None:
    bell = "The old bell in the harbor tower rang at noon every day."
    doc = f"{bell} The fishing boats stayed out until the evening tide. {bell} Nobody remembered who cast it."
    with FaultServer() as server:
        cfg = openai_config(server, max_context_chars=0)  # no context: both bell sentences share one key
        first = list(generate_document(doc, cfg, QACache(tmp_path), progress=False))
        rerun = list(generate_document(doc, cfg, QACache(tmp_path), progress=False))
        assert server.successes[bell] == 1
    assert sorted(r.index for r in first) == [0, 1, 3]
    assert [r.index for r in rerun] == [r.index for r in first] and all(r.cached for r in rerun)  # same order


def test_questions_only_prompt_keeps_every_question_without_answers_and_caches_them(tmp_path: Path) -> None:
    calls: list = []

    def complete(prompts, max_new_tokens, temperature, top_p, seed, max_lines=0, prefix="", floor_prompts=()):
        calls.append({"prefix": prefix, "max_lines": max_lines})
        return [" Where does basalt lie?\nQuestion: How far north?\n\nText: invented next example\nQuestion: x?"
                for _ in prompts]

    cfg = local_config()
    cfg.prompt = "fewshot-questions"
    template = load_prompt(cfg.prompt, cfg.kind)
    generator = LocalGenerator(complete, template, GeneratorSampling.from_config(cfg), 4)
    results = list(generate_document(document(2), cfg, QACache(tmp_path), generator=generator, progress=False))
    assert {c["max_lines"] for c in calls} == {2}  # 1 line per question, ceil(5 / 3) questions per sample
    assert all(c["prefix"].startswith("Write questions that the text answers") for c in calls)
    want = [("Where does basalt lie?", ""), ("How far north?", "")]
    assert [[tuple(p) for p in r.pairs] for r in results] == [want, want]
    cached = [(p.question, p.answer) for _, p in iter_qa_pairs(tmp_path)]
    assert cached == [("Where does basalt lie?", ""), ("How far north?", "")] * 2
