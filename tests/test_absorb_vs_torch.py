"""The PyTorch reference of benchmarks/absorb_vs_torch.py trains on exactly what lift_jax trains on: the same
answer-only labels, stop tokens, steps per epoch and sentences."""

from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import tiny_tokenizer

from lift_jax.prompting import PromptFormat, encode_example
from lift_jax.special_tokens import pad_token_id, stop_token_ids
from lift_jax.synth.config import generator_config
from lift_jax.synth.pipeline import plan_document
from lift_jax.synth.split import split_sentences

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
bench = importlib.import_module("absorb_vs_torch")

PAIRS = [
    ("When was the second tower built?", "In 1853."),
    ("What did the lamp burn?", "Its lamp burned whale oil, and the light could be seen from about twelve miles."),
    ("Who paid for the tower?", "The harbour commission paid for a second, taller tower of dressed granite."),
    ("How tall?", "Sixty feet."),
]


def _assert_same_training_rows(tokenizer, fmt: PromptFormat, stops: tuple[int, ...], max_length: int) -> None:
    """The reference's rows are lift_jax's examples (`encode_example`) cut, as lift_jax cuts them, to
    max_length inputs (max_length + 1 ids), with labels exactly on the loss-mask positions."""
    examples = [encode_example(tokenizer, q, a, fmt, stops) for q, a in PAIRS]
    pad = pad_token_id(tokenizer, stops)
    ref = bench.collate(examples, max_length, pad)
    assert ref["input_ids"].shape[1] == min(max(len(ids) for ids, _ in examples), max_length + 1)
    loss_tokens = 0
    for row, (ids, mask) in enumerate(examples):
        n = min(len(ids), max_length + 1)  # ids lift_jax keeps for this row (inputs and the last target)
        np.testing.assert_array_equal(ref["input_ids"][row, :n], ids[:n])
        labelled = ref["labels"][row, :n] != bench.IGNORE
        np.testing.assert_array_equal(labelled, np.asarray(mask[:n]) == 1)
        np.testing.assert_array_equal(ref["labels"][row, :n][labelled], np.asarray(ids[:n])[labelled])
        assert ref["attention_mask"][row].sum() == n
        assert (ref["labels"][row, n:] == bench.IGNORE).all()
        loss_tokens += int(sum(mask[1:n]))
    assert bench.loss_tokens(ref["labels"]) == loss_tokens > 0


@pytest.mark.parametrize("max_length", [256, 40])  # 40 cuts the longer rows inside their answers
def test_reference_labels_equal_lift_jax_batches_tiny_tokenizer(max_length):
    tok = tiny_tokenizer()
    stops = stop_token_ids(tok)
    assert bench.reference_stop_ids(tok, None) == stops
    _assert_same_training_rows(tok, PromptFormat(system="Be brief."), stops, max_length)


@pytest.mark.slow
def test_reference_labels_and_stops_equal_lift_jax_on_bundled_smollm2():
    from lift_jax.models.loader import load_hf_config, load_tokenizer, resolve_source
    from lift_jax.models.spec import spec_from_hf_config

    source = resolve_source("bundled:smollm2-135m-instruct")
    tok = load_tokenizer(source)
    hf_config = load_hf_config(source)
    stops = stop_token_ids(tok, spec_from_hf_config(hf_config).eos_token_ids)
    assert bench.reference_stop_ids(tok, hf_config.eos_token_id) == stops
    _assert_same_training_rows(tok, PromptFormat(), stops, 256)


def test_step_batches_cover_every_example_once_per_epoch_with_lift_jax_step_count():
    steps = bench.step_batches(19, epochs=3, per_step=8, seed=0)
    assert len(steps) == 3 * math.ceil(19 / 8) == 9
    assert [len(s) for s in steps] == [8, 8, 3] * 3
    assert sum(steps[:3], []) == list(range(19))  # epoch 1: generation order
    for epoch in range(3):
        assert sorted(sum(steps[3 * epoch : 3 * epoch + 3], [])) == list(range(19))
    assert sum(steps[3:6], []) != sum(steps[6:9], [])  # later epochs shuffled differently


def test_row_stop_ends_rows_at_stop_token_or_line_budget_and_counts_their_tokens():
    line_break = torch.zeros(10, dtype=torch.bool)
    line_break[7] = True
    stop = bench._row_stop([9], line_break, max_lines=2, rows=3)
    sampled = [[1, 7, 2, 7, 3], [9, 1, 1, 1, 1], [1, 2, 3, 4, 5]]  # row 0: 2 lines, row 1: stop, row 2: runs on
    done = None
    for t in range(5):
        done = stop(torch.tensor([[0] + [r[i] for i in range(t + 1)] for r in sampled]), None)
    assert done.tolist() == [True, True, False]
    assert stop.lengths.tolist() == [4, 1, 5]
    assert bench.decoded_rows(sampled, stop.lengths.tolist(), [9]) == [[1, 7, 2, 7], [], [1, 2, 3, 4, 5]]


def test_cut_to_sentences_and_unique_tasks_follow_lift_jax_splitting():
    document = bench.SAMPLE_DOCUMENT.read_text()
    g = generator_config()
    cut = bench.cut_to_sentences(document, 6, g.min_sentence_chars, g.max_sentence_chars)
    full = split_sentences(document, g.min_sentence_chars, g.max_sentence_chars)
    assert [s.text for s in split_sentences(cut, g.min_sentence_chars, g.max_sentence_chars)] == [
        s.text for s in full[:6]
    ]
    g.max_context_chars = 0  # no context: a repeated sentence has one key, generated once by lift_jax
    planned = plan_document("A sentence that repeats itself. Another one follows it. " * 3, g)
    assert len(planned) == 6
    assert [(t.index, t.sentence) for t in bench.unique_tasks(planned)] == [
        (0, "A sentence that repeats itself."), (1, "Another one follows it.")
    ]


def _side(wall: float, steps: int, pairs: int, first_loss: float) -> dict:
    marks = {"model_loaded": 10.0, "first_step_started": 20.0, "generation_done": 30.0, "training_done": 50.0,
             "adapter_written": 55.0}
    return {"wall_s": wall, "timing": marks, "steps": steps, "loss_tokens": 400, "train_compute_s": 25.0,
            "losses": [first_loss, 1.0], "pairs_trained": pairs,
            "generation": {"pairs": pairs, "sentences": 6, "generated_tokens": 1000}}


def test_table_reports_phases_ratios_and_flags_sides_that_did_different_work():
    ours, ref = _side(60.0, 4, 30, 2.5), _side(120.0, 4, 30, 2.5)
    assert bench.phases(ours) == {"load": 10.0, "generation": 20.0, "training": 30.0, "to_adapter": 55.0,
                                  "startup_exit": 5.0, "total": 60.0}
    lines, notes = bench.table(ours, ref, "lift_jax")
    assert "| total, process wall (s) | 60.0 | 120.0 | 0.50 |" in lines
    assert "| loss tokens/s (training phase) | 13.3 | 13.3 | |" in lines
    assert not [n for n in notes if n.startswith("WARNING")]
    _, notes = bench.table(ours, _side(120.0, 5, 40, 2.6), "lift_jax")
    warnings = [n for n in notes if n.startswith("WARNING")]
    assert len(warnings) == 3  # pair counts 25 % apart, first losses differ, steps differ
