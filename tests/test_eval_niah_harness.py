"""The NIAH harness on a tiny model: cell ids, record fields, heatmaps, and QA-cache sharing across cells."""

from __future__ import annotations

import json
from pathlib import Path

from synth_fault_server import FaultServer
from test_eval_harness import tiny_eval_config

from lift_jax.eval.harness import run_benchmark
from lift_jax.eval.niah_benchmark import niah_benchmark
from lift_jax.eval.niah_data import grid, parse_cell_id
from lift_jax.synth.split import sentence_tasks

NEEDLE = "Eat a sandwich in Dolores Park when sunny."
WORDS = ["apple", "river", "stone", "cloud", "maple", "tiger", "lemon", "harbor", "violet", "candle", "meadow",
         "copper"]


def essays(folder: Path, n: int = 3) -> Path:
    """`n` small essays of distinct short sentences."""
    folder.mkdir()
    for e in range(n):
        sentences = [f"The {WORDS[(e + i) % 12]} number {e}{i} sat near the {WORDS[(e * 5 + i) % 12]}."
                     for i in range(12)]
        (folder / f"essay{e}.txt").write_text(" ".join(sentences) + "\n")
    return folder


def niah_config(checkpoint: Path, tmp_path: Path, methods: str, lengths: str, depths: str, samples: int,
                base_url: str = "http://127.0.0.1:9/v1"):
    cfg = tiny_eval_config(checkpoint, essays(tmp_path / "essays"), tmp_path / "eval", methods, base_url)
    cfg.niah = {"lengths": lengths, "depths": depths, "samples": samples, "needle": NEEDLE,
                "question": "What is best?", "keywords": "sandwich,Dolores Park,sunny", "seed": 0}
    return cfg


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_niah_grid_ids_fields_and_heatmap(tiny_checkpoints, tmp_path):
    cfg = niah_config(tiny_checkpoints["llama_tied"], tmp_path, "icl", "150,230", "0,0.5,1", 2)
    summary = run_benchmark(cfg, niah_benchmark(cfg))
    records = lines(tmp_path / "eval" / "predictions.jsonl")
    cells = grid([150, 230], [0.0, 0.5, 1.0], 2)
    assert [r["id"] for r in records] == [c.id for c in cells]  # L150_D0.0_S0, L150_D0.0_S1, ...
    for r in records:
        cell = parse_cell_id(r["id"])
        assert (r["length"], r["depth"], r["sample"]) == (cell.length, cell.depth, cell.sample)
        assert r["answers"] == [NEEDLE] and r["question"] == "What is best?" and r["method"] == "icl"
        assert cell.length - 20 <= r["n_tokens"] <= cell.length
    assert summary["icl"]["n"] == 12 and "keyword_accuracy" in summary["icl"]
    png = tmp_path / "eval" / "heatmap_icl.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_max_documents_takes_the_first_cells(tiny_checkpoints, tmp_path):
    cfg = niah_config(tiny_checkpoints["llama_tied"], tmp_path, "icl", "150", "0,0.5,1", 1)
    cfg.max_documents = 2
    docs = niah_benchmark(cfg).load_documents()
    assert [d.id for d in docs] == ["L150_D0.0_S0", "L150_D0.5_S0"]
    assert all(NEEDLE in d.text for d in docs)


def test_cells_of_one_length_share_qa_generation(tiny_checkpoints, tmp_path):
    with FaultServer() as server:
        cfg = niah_config(tiny_checkpoints["llama_tied"], tmp_path, "lift", "300", "0.25,0.75", 1, server.base_url)
        cfg.generator.max_context_chars = 60  # only the sentence or two after the needle see it
        benchmark = niah_benchmark(cfg)
        docs = benchmark.load_documents()
        run_benchmark(cfg, benchmark)
        g = cfg.generator
        tasks = [(t.sentence, t.context) for d in docs
                 for t in sentence_tasks(d.text, g.min_sentence_chars, g.max_sentence_chars, g.max_context_chars)]
        shared = len(tasks) - len(set(tasks))  # sentences of the second cell with the first cell's context
        assert shared > 0 and sum(server.successes.values()) == len(tasks) - shared
    records = {r["id"]: r for r in lines(tmp_path / "eval" / "predictions.jsonl")}
    first, second = records["L300_D0.25_S0"], records["L300_D0.75_S0"]
    m = cfg.generator.qa_per_sentence  # the fake server writes m pairs per sentence
    assert first["pairs_reused"] == 0 and first["pairs_generated"] == m * len(tasks) // 2
    assert second["pairs_reused"] == m * shared and second["pairs_generated"] == m * (len(tasks) // 2 - shared)
