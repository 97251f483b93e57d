"""KV-cache decoding equals recomputing the full forward pass; sampling respects EOS and top-p."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from tiny_models import VOCAB

from lift_jax.models import load
from lift_jax.sampling import SamplingParams, bucket, generate_ids


def _greedy_by_full_forward(module, prompt: list[int], steps: int, width: int = 32) -> list[int]:
    """Greedy decoding that re-runs the whole (right-padded, causal) sequence for every new token."""
    forward = nnx.jit(lambda m, x: m(x))
    ids = list(prompt)
    for _ in range(steps):
        padded = np.zeros((1, width), np.int32)
        padded[0, : len(ids)] = ids
        logits = forward(module, jnp.asarray(padded))
        ids.append(int(jnp.argmax(logits[0, len(ids) - 1])))
    return ids[len(prompt) :]


@pytest.mark.parametrize("family", ["gemma2", "gemma3", "qwen3"])
def test_cached_greedy_decoding_equals_full_recompute(tiny_checkpoints, family):
    module = load(tiny_checkpoints[family]).module
    rng = np.random.RandomState(0)
    prompts = [rng.randint(6, VOCAB, n).tolist() for n in (3, 9, 17)]  # different lengths -> left padding
    steps = 12  # past every sliding window, so the windowed cache is exercised
    got = generate_ids(module, prompts, SamplingParams(max_new_tokens=steps), stop_ids=[], pad_id=0)
    for prompt, tokens in zip(prompts, got, strict=True):
        assert tokens == _greedy_by_full_forward(module, prompt, steps)


def test_decoding_stops_at_a_stop_token(tiny_checkpoints):
    module = load(tiny_checkpoints["llama3"]).module
    prompt = [7, 8, 9]
    free = generate_ids(module, [prompt], SamplingParams(max_new_tokens=8), stop_ids=[], pad_id=0)[0]
    stop = free[3]
    first = free.index(stop)
    stopped = generate_ids(module, [prompt], SamplingParams(max_new_tokens=8), stop_ids=[stop], pad_id=0)[0]
    assert stopped == free[:first]


def test_sampling_is_seeded_and_top_p_tiny_equals_greedy(tiny_checkpoints):
    module = load(tiny_checkpoints["qwen2"]).module
    prompt = [[11, 12, 13, 14]]
    hot = SamplingParams(max_new_tokens=10, temperature=1.5, seed=3)
    assert generate_ids(module, prompt, hot, [], 0) == generate_ids(module, prompt, hot, [], 0)
    greedy = generate_ids(module, prompt, SamplingParams(max_new_tokens=10), [], 0)
    nucleus = SamplingParams(max_new_tokens=10, temperature=1.0, top_p=1e-6, seed=5)
    assert generate_ids(module, prompt, nucleus, [], 0) == greedy


def test_bucket_sizes():
    assert [bucket(n) for n in (1, 16, 17, 100)] == [16, 16, 32, 128]
    assert bucket(3, minimum=1) == 4


def test_empty_prompt_is_rejected(tiny_checkpoints):
    module = load(tiny_checkpoints["qwen2"]).module
    with pytest.raises(ValueError, match="no empty prompt"):
        generate_ids(module, [[]], SamplingParams(), [], 0)


def test_shared_prefix_equals_full_prompts(tiny_checkpoints):
    module = load(tiny_checkpoints["gemma3"]).module
    rng = np.random.RandomState(1)
    prefix = rng.randint(6, VOCAB, 9).tolist()
    suffixes = [rng.randint(6, VOCAB, n).tolist() for n in (2, 5, 3)]
    params = SamplingParams(max_new_tokens=6)
    full = generate_ids(module, [prefix + s for s in suffixes], params, [], 0)
    assert generate_ids(module, suffixes, params, [], 0, prefix=prefix) == full


def test_max_lines_stops_each_row_after_its_line_breaks(tiny_checkpoints):
    module = load(tiny_checkpoints["qwen2"]).module
    prompt = [[20, 21, 22]]
    free = generate_ids(module, prompt, SamplingParams(max_new_tokens=10), [], 0)[0]
    breaks = [free[1], free[4]]  # pretend these two tokens are line breaks
    stopped = generate_ids(module, prompt, SamplingParams(max_new_tokens=10, max_lines=2), [], 0, breaks)[0]
    second = next(i for i, t in enumerate(free) if sum(x in breaks for x in free[: i + 1]) == 2)
    assert stopped == free[: second + 1]
