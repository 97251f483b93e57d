"""The local generator model is loaded once per process, not once per absorbed document."""

from __future__ import annotations

from pathlib import Path

import pytest

import lift_jax.sampling
from lift_jax.synth.cache import QACache
from lift_jax.synth.config import generator_config
from lift_jax.synth.generators import clear_local_completers, make_generator
from lift_jax.synth.pipeline import generate_document


def fake_completer(prompts, max_new_tokens, temperature, top_p, seed, max_lines=0, prefix="", floor_prompts=()):
    return [" What is named here?\nAnswer: the words of this sentence\n" for _ in prompts]


def test_documents_share_one_local_generator_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[tuple[str, str]] = []

    def make_local_completer(model_path: str, dtype: str):
        loads.append((model_path, dtype))
        return fake_completer

    monkeypatch.setattr(lift_jax.sampling, "make_local_completer", make_local_completer)
    cfg = generator_config()
    cfg.kind, cfg.model, cfg.qa_per_sentence = "local", "some/model", 1
    for k in range(3):  # three documents, each through the pipeline as absorb runs it
        document = f"Document {k} opens with a sentence here. It closes with another sentence {k}."
        results = list(generate_document(document, cfg, QACache(tmp_path / f"c{k}"), progress=False))
        assert len(results) == 2  # (the fake replies need not be usable pairs)
    assert loads == [("some/model", "float32")]
    make_generator(cfg, dtype="bfloat16")  # another dtype is another model
    assert loads == [("some/model", "float32"), ("some/model", "bfloat16")]
    clear_local_completers()
    make_generator(cfg)
    assert len(loads) == 3
