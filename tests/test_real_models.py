"""The two bundled real models (GGUF) against transformers on the same file, in float32: logits, 20 greedy tokens
per prompt, and (SmolLM2) a batch of mixed-length chat prompts decoded token for token like `generate`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from lift_jax.models import LoadedModel, load
from lift_jax.models.bundled import gemma3_270m_gguf, smollm2_gguf
from lift_jax.models.gguf_parse import sharing_parses
from lift_jax.sampling import SamplingParams, generate_ids

pytestmark = pytest.mark.slow

PROMPTS = ["The capital of France is", "Once upon a time, in a small village by the sea,"]
MODELS = {"smollm2-135m": smollm2_gguf, "gemma3-270m": gemma3_270m_gguf}


@dataclasses.dataclass
class Pair:
    ours: LoadedModel
    ref: Any  # transformers' model of the same GGUF file


@pytest.fixture(scope="module", params=list(MODELS))
def pair(request) -> Pair:
    """lift_jax and transformers on one bundled GGUF file, loaded once for this module's tests of that model."""
    path: Path = MODELS[request.param]()
    ours = load(path)
    with sharing_parses():  # transformers reads the same file; its header is parsed once, by `load`
        ref = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32).eval()
    return Pair(ours, ref)


def test_gguf_logits_and_greedy_tokens_match_transformers(pair: Pair):
    ours, ref = pair.ours, pair.ref
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


@pytest.mark.parametrize("pair", ["smollm2-135m"], indirect=True)  # the batch layout is the same for every family
def test_greedy_batch_equals_transformers_generate(pair: Pair):
    """Mixed-length chat prompts decoded as one left-padded batch: token for token what transformers `generate`
    produces for the same padded batch (no stop token on either side, so rows run past their end of turn)."""
    ours, ref = pair.ours, pair.ref
    questions = ["What is LIFT?", "Name three rivers in Europe and say which one is the longest, briefly.", "Hi!"]
    prompts = [
        ours.tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True)
        for q in questions
    ]
    prompts = [list(p["input_ids"] if hasattr(p, "keys") else p) for p in prompts]
    assert len({len(p) for p in prompts}) == len(prompts)
    steps, pad = 24, ours.tokenizer.pad_token_id
    got = generate_ids(ours.module, prompts, SamplingParams(max_new_tokens=steps), stop_ids=[], pad_id=pad)

    width = max(len(p) for p in prompts)
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    ref.generation_config.eos_token_id = None  # like stop_ids=[]: no stop, and no EOS suppression either
    with torch.no_grad():
        want = ref.generate(
            input_ids=ids, attention_mask=mask, max_new_tokens=steps, do_sample=False, pad_token_id=pad
        )[:, width:]
    assert got == want.tolist()
