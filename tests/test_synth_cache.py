"""The QA cache: complete-sentence records, torn lines, keys, failures, shards, manifest."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from lift_jax.synth.cache import CacheError, QACache, cache_files, iter_qa_pairs, sentence_key
from lift_jax.synth.config import generator_config
from lift_jax.synth.parse import QAPair
from lift_jax.synth.pipeline import plan_document

P = [QAPair("Q1?", "A1"), QAPair("Q2?", "A2")]
DOC = (
    "The tower was built in 1841 by the crown. Its lamp burned whale oil for decades. Then came electricity."
)


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_records_carry_question_answer_index_and_key(tmp_path: Path) -> None:
    cache = QACache(tmp_path).open_writer()
    cache.append_ok("k1", 4, P)
    cache.append_failed("k2", 5, "HTTP 500")
    cache.close()
    assert lines(tmp_path / "qa_cache.jsonl") == [
        {"key": "k1", "sentence_index": 4, "question": "Q1?", "answer": "A1"},
        {"key": "k1", "sentence_index": 4, "question": "Q2?", "answer": "A2"},
        {"key": "k1", "sentence_index": 4, "status": "ok", "n_pairs": 2},
        {"key": "k2", "sentence_index": 5, "status": "failed", "error": "HTTP 500"},
    ]
    again = QACache(tmp_path)
    assert again.lookup("k1").pairs == tuple(P)
    assert again.lookup("k2") is None and again.failures("k2") == 1


def test_nothing_is_created_before_open_writer(tmp_path: Path) -> None:
    QACache(tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_a_torn_last_line_is_ignored_and_cut_before_the_next_append(tmp_path: Path) -> None:
    cache = QACache(tmp_path).open_writer()
    cache.append_ok("k1", 0, P)
    cache.close()
    path = tmp_path / "qa_cache.jsonl"
    with open(path, "a") as f:  # a crash in the middle of the next sentence's group
        f.write('{"key": "k2", "sentence_index": 1, "question": "Q?", "answer": "A"}\n{"key": "k2", "senten')
    reader = QACache(tmp_path)
    assert [c.key for c in reader.completed()] == ["k1"]
    writer = QACache(tmp_path).open_writer()
    assert path.read_text().endswith('"n_pairs": 2}\n')  # the unfinished group is cut off
    writer.append_ok("k2", 1, [QAPair("Q3?", "A3")])
    writer.close()
    done = QACache(tmp_path)
    assert done.lookup("k2").pairs == (QAPair("Q3?", "A3"),)
    assert len(lines(path)) == 5


def test_a_terminal_line_without_its_pairs_does_not_count(tmp_path: Path) -> None:
    path = tmp_path / "qa_cache.jsonl"
    path.write_text(
        '{"key": "k1", "sentence_index": 0, "question": "Q?", "answer": "A"}\n'
        '{"key": "k1", "sentence_index": 0, "status": "ok", "n_pairs": 2}\n'
        '{"key": "k2", "sentence_index": 1, "status": "ok"'  # torn terminal line: not complete either
    )
    assert QACache(tmp_path).completed() == []


def test_a_final_line_without_newline_is_torn_even_if_it_parses(tmp_path: Path) -> None:
    path = tmp_path / "qa_cache.jsonl"
    path.write_text(
        '{"key": "k1", "sentence_index": 0, "question": "Q?", "answer": "A"}\n'
        '{"key": "k1", "sentence_index": 0, "status": "ok", "n_pairs": 1}'
    )
    assert QACache(tmp_path).lookup("k1") is None
    QACache(tmp_path).open_writer().close()
    assert QACache(tmp_path).lookup("k1") is None and path.read_text() == ""


def test_the_key_changes_with_each_setting() -> None:
    cfg = generator_config()
    cfg.kind, cfg.prompt = "openai", "general"
    base = [p.key for p in plan_document(DOC, cfg)]
    assert len(set(base)) == 3
    variants = {
        "model": ("model", "other-model"),
        "m": ("qa_per_sentence", 5),
        "prompt": ("prompt", "squad"),
        "context": ("max_context_chars", 10),
    }
    for name, (field, value) in variants.items():
        changed = generator_config()
        changed.kind, changed.prompt = "openai", "general"
        changed[field] = value
        keys = [p.key for p in plan_document(DOC, changed)]
        assert keys[1:] != base[1:], name  # sentence 0 has no context, so max_context_chars leaves it alone
    # the key holds the sentence and its context, neither the rest of the document nor the sentence's index
    assert [p.key for p in plan_document(DOC + " Then came the automatic lamp.", cfg)][:3] == base
    assert [p.key for p in plan_document("A preface sentence of the text. " + DOC, cfg)][1:] != base  # context
    cfg.max_context_chars = 0
    no_context = [p.key for p in plan_document(DOC, cfg)]
    assert [p.key for p in plan_document("A preface sentence of the text. " + DOC, cfg)][1:] == no_context
    cfg.max_context_chars = 2048
    assert sentence_key(a=1, b=2) == sentence_key(b=2, a=1)
    cfg.concurrency, cfg.timeout_s = 3, 1.0  # transport settings do not change what is generated
    assert [p.key for p in plan_document(DOC, cfg)] == base


def _hold_lock(path: str, ready: multiprocessing.Event, release: multiprocessing.Event) -> None:
    cache = QACache(path).open_writer()
    ready.set()
    release.wait(10)
    cache.close()


def test_a_second_writer_of_the_same_file_is_refused(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(str(tmp_path), ready, release))
    proc.start()
    try:
        assert ready.wait(30)
        with pytest.raises(CacheError, match="another process is writing"):
            QACache(tmp_path).open_writer()
        QACache(tmp_path, 1, 2).open_writer().close()  # its own shard file is fine
    finally:
        release.set()
        proc.join(10)


def test_shard_files_and_a_union_reader(tmp_path: Path) -> None:
    for index in range(2):
        cache = QACache(tmp_path, index, 2).open_writer()
        cache.append_ok(f"k{index}", index, [QAPair(f"Q{index}?", f"A{index}")])
        cache.write_manifest({"shard": index}, {"ok": 1})
        cache.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "manifest.p0-of-2.json",
        "manifest.p1-of-2.json",
        "qa_cache.p0-of-2.jsonl",
        "qa_cache.p1-of-2.jsonl",
    ]
    assert [p.name for p in cache_files(tmp_path)] == ["qa_cache.p0-of-2.jsonl", "qa_cache.p1-of-2.jsonl"]
    assert list(iter_qa_pairs(tmp_path)) == [(0, QAPair("Q0?", "A0")), (1, QAPair("Q1?", "A1"))]
    assert list(iter_qa_pairs(tmp_path, keys={"k1"})) == [(1, QAPair("Q1?", "A1"))]
    assert QACache(tmp_path, 0, 2).lookup("k1") is not None  # every shard is read, only its own is written
    with pytest.raises(ValueError, match="outside"):
        QACache(tmp_path, 2, 2)


def test_manifest_is_replaced_atomically(tmp_path: Path) -> None:
    cache = QACache(tmp_path).open_writer()
    cache.write_manifest({"model": "a"}, {"status": "running"})
    cache.write_manifest({"model": "a"}, {"ok": 3})
    cache.close()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["format"] == "lift_jax.qa_cache/1" and manifest["summary"] == {"ok": 3}
    assert manifest["cache_file"] == "qa_cache.jsonl"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "qa_cache.jsonl"]  # no temp left
