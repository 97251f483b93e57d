"""The two bundled real models (GGUF): logits and 20 greedy tokens match transformers on the same file."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from lift_jax.models import load
from lift_jax.models.bundled import gemma3_270m_gguf, smollm2_gguf
from lift_jax.models.gguf_parse import sharing_parses
from lift_jax.sampling import SamplingParams, generate_ids

pytestmark = pytest.mark.slow

PROMPTS = ["The capital of France is", "Once upon a time, in a small village by the sea,"]


@pytest.mark.parametrize("locate", [smollm2_gguf, gemma3_270m_gguf], ids=["smollm2-135m", "gemma3-270m"])
def test_gguf_logits_and_greedy_tokens_match_transformers(locate):
    path: Path = locate()
    ours = load(path)
    with sharing_parses():  # transformers reads the same file; its header is parsed once, by `load`
        ref = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32).eval()
    ids = [ours.tokenizer(p)["input_ids"] for p in PROMPTS]

    logits = np.asarray(jax.jit(lambda m, x: m(x))(ours.module, np.asarray([ids[1]])))
    with torch.no_grad():
        ref_logits = ref(torch.tensor([ids[1]])).logits.numpy()
    assert np.abs(logits - ref_logits).max() <= 1e-3 * np.abs(ref_logits).max()

    tokens = generate_ids(ours.module, ids, SamplingParams(max_new_tokens=20), stop_ids=[], pad_id=0)
    for prompt, got in zip(ids, tokens, strict=True):
        with torch.no_grad():
            want = ref.generate(
                torch.tensor([prompt]), max_new_tokens=20, min_new_tokens=20, do_sample=False
            )[0, len(prompt) :]
        assert got == want.tolist()
