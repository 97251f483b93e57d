"""KV-cache decoding equals recomputing the full forward pass; sampling respects EOS and top-p."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from tiny_models import VOCAB

from lift_jax.models import load
from lift_jax.models.layers import cached_attention, packed_attention
from lift_jax.sampling import (
    PREFIX_BLOCK,
    SamplingParams,
    _select,
    bucket,
    generate_ids,
    generate_with_logprobs,
    plan_prefill,
)


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


def test_shared_openings_and_repeated_prompts_decode_as_each_prompt_alone(tiny_checkpoints):
    """The packed prefill computes a common opening once and a repeated prompt once; every row still decodes
    exactly what it decodes alone (a batch of one: no sharing, no packing of other rows)."""
    module = load(tiny_checkpoints["qwen3"]).module
    rng = np.random.RandomState(2)
    opening = rng.randint(6, VOCAB, PREFIX_BLOCK + 9).tolist()
    rests = [rng.randint(6, VOCAB, n).tolist() for n in (1, 7, 20)]
    prompts = [opening + r for r in rests] + [opening + rests[1], opening + rests[0]]
    plan = plan_prefill(prompts, [5, 6], batch=8, pad_id=0)
    assert plan.prefix.tolist() == [5, 6] + opening[:PREFIX_BLOCK]  # the opening's whole blocks, after `prefix`
    # packed once each: the distinct rests of 10, 16 and 29 tokens (9 opening tokens left + 1, 7, 20)
    assert plan.tokens[:55].tolist() == opening[PREFIX_BLOCK:] + rests[0] + opening[PREFIX_BLOCK:] + rests[1] + (
        opening[PREFIX_BLOCK:] + rests[2]
    )
    assert plan.positions[:10].tolist() == list(range(34, 44)) and len(plan.tokens) == 64
    assert plan.last.tolist() == [9, 25, 54, 25, 9, 9, 9, 9]  # rows 5-7 fill the batch with the first prompt
    params = SamplingParams(max_new_tokens=7)
    alone = [generate_ids(module, [p], params, [], 0)[0] for p in prompts[:3]]
    assert generate_ids(module, prompts, params, [], 0) == alone + [alone[1], alone[0]]


def test_logprobs_of_every_step_equal_a_full_forward_over_prompt_and_answer(tiny_checkpoints):
    module = load(tiny_checkpoints["llama3"]).module
    prompts = [[7, 8, 9], [11, 12, 13, 14, 15, 16]]
    free = generate_ids(module, prompts, SamplingParams(max_new_tokens=8), [], 0)
    stop = free[0][4]  # row 0 stops at its first occurrence of this token
    got = generate_with_logprobs(module, prompts, SamplingParams(max_new_tokens=8), [stop], 0, logprob_k=5)
    forward = nnx.jit(lambda m, x: m(x))
    for prompt, row, decoded in zip(prompts, free, got, strict=True):
        cut = row.index(stop) if stop in row else len(row)
        assert decoded.ids == row[:cut] and decoded.stop == (stop if cut < len(row) else None)
        steps = cut + (decoded.stop is not None)
        assert decoded.top_ids.shape == decoded.top_logprobs.shape == (steps, 5)
        logits = np.asarray(forward(module, jnp.asarray([prompt + row])), np.float64)[0]
        logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) - logits.max(
            -1, keepdims=True
        )
        want = logp[len(prompt) - 1 : len(prompt) - 1 + steps]
        np.testing.assert_array_equal(decoded.top_ids[:, 0], np.argmax(want, -1))
        picked = np.take_along_axis(want, decoded.top_ids, axis=-1)
        np.testing.assert_allclose(decoded.top_logprobs, picked, atol=1e-5)
        np.testing.assert_allclose(decoded.top_logprobs, -np.sort(-want, axis=-1)[:, :5], atol=1e-5)


def test_suppressed_tokens_are_never_chosen_and_logprobs_renormalise_over_the_rest(tiny_checkpoints):
    """Banning the tokens free greedy decoding picks changes the output, none of them appears, and every kept
    log-probability is the full forward's log-softmax with the banned logits removed."""
    module = load(tiny_checkpoints["llama3"]).module
    prompt = [7, 8, 9]
    free = generate_ids(module, [prompt], SamplingParams(max_new_tokens=8), [], 0)[0]
    banned = sorted(set(free[:3]))
    got = generate_with_logprobs(module, [prompt], SamplingParams(max_new_tokens=8), [], 0, logprob_k=5,
                                 suppress_ids=banned)[0]
    assert len(got.ids) == 8 and not set(got.ids) & set(banned) and got.ids != free
    logits = np.asarray(nnx.jit(lambda m, x: m(x))(module, jnp.asarray([prompt + got.ids])), np.float64)[0]
    logits = logits[len(prompt) - 1 : len(prompt) - 1 + 8]
    logits[:, banned] = -np.inf
    top = logits.max(-1, keepdims=True)
    logp = logits - top - np.log(np.exp(logits - top).sum(-1, keepdims=True))
    np.testing.assert_array_equal(got.top_ids[:, 0], got.ids)
    np.testing.assert_allclose(got.top_logprobs, -np.sort(-logp, axis=-1)[:, :5], atol=1e-5)
    with pytest.raises(ValueError, match=r"suppress_ids must be token ids in \[0, "):
        generate_with_logprobs(module, [prompt], SamplingParams(max_new_tokens=2), [], 0, suppress_ids=[VOCAB])


def test_max_lines_stops_each_row_after_its_line_breaks(tiny_checkpoints):
    module = load(tiny_checkpoints["qwen2"]).module
    prompt = [[20, 21, 22]]
    free = generate_ids(module, prompt, SamplingParams(max_new_tokens=10), [], 0)[0]
    breaks = [free[1], free[4]]  # pretend these two tokens are line breaks
    stopped = generate_ids(module, prompt, SamplingParams(max_new_tokens=10, max_lines=2), [], 0, breaks)[0]
    second = next(i for i, t in enumerate(free) if sum(x in breaks for x in free[: i + 1]) == 2)
    assert stopped == free[: second + 1]


def _nucleus(probs: np.ndarray, top_p: float) -> np.ndarray:
    """The reference nucleus distribution: the most likely tokens until their mass reaches top_p, renormalised."""
    order = np.argsort(-probs)
    before = np.cumsum(probs[order]) - probs[order]  # mass of the strictly more likely tokens
    kept = np.zeros_like(probs)
    kept[order[before < top_p]] = probs[order[before < top_p]]
    return kept / kept.sum()


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def _frequencies(tokens: np.ndarray, vocab: int) -> np.ndarray:
    return np.bincount(np.asarray(tokens).reshape(-1), minlength=vocab) / np.asarray(tokens).size


@pytest.mark.parametrize(("temperature", "top_p"), [(1.0, 1.0), (0.5, 1.0), (2.0, 1.0), (1.0, 0.7), (0.6, 0.9)])
def test_select_samples_the_tempered_nucleus_distribution(temperature, top_p):
    logits = np.array([2.0, 1.5, 1.0, 0.5, 0.0, -0.5, -1.0, -3.0], np.float32)
    rows = 40_000  # one independent draw per row: frequency standard errors <= 0.0025
    batch = jnp.asarray(np.broadcast_to(logits, (rows, logits.size)))
    tokens = _select(batch, jax.random.key(7), temperature, top_p)
    want = _nucleus(_softmax(logits / temperature), top_p)
    got = _frequencies(tokens, logits.size)
    assert np.abs(got - want).max() < 0.012, (got, want)
    assert got[want == 0].sum() == 0  # nothing outside the nucleus is ever drawn


def test_sampled_first_tokens_follow_the_model_distribution(tiny_checkpoints):
    """End to end through `generate_ids`: the first sampled token of many identical rows is distributed as the
    tempered nucleus of the model's next-token logits."""
    module = load(tiny_checkpoints["llama3"]).module
    prompt = [7, 8, 9, 10]
    logits = np.asarray(nnx.jit(lambda m, x: m(x))(module, jnp.asarray([prompt])))[0, -1].astype(np.float64)
    top = np.sort(logits)[::-1]
    temperature = float(top[0] - top[4]) / 2  # spreads the mass over the first few tokens
    top_p, rows = 0.8, 4096
    params = SamplingParams(max_new_tokens=1, temperature=temperature, top_p=top_p, seed=1)
    tokens = [row[0] for row in generate_ids(module, [prompt] * rows, params, [], 0)]
    want = _nucleus(_softmax(logits / temperature), top_p)
    got = _frequencies(np.asarray(tokens), logits.size)
    assert (want > 0).sum() >= 2, "the test needs a nucleus of several tokens"
    assert np.abs(got - want).max() < 5 * np.sqrt(0.25 / rows), (got[want > 0], want[want > 0])
    assert got[want == 0].sum() == 0


@pytest.mark.parametrize(("window", "softcap", "opening"), [(None, None, 5), (7, 30.0, 5), (None, None, 0)])
def test_packed_attention_equals_dense_masked_attention(window, softcap, opening):
    """Blocked attention on a packed stream (segments spanning several blocks, padding at the end, key chunks
    skipped) equals one dense softmax over the opening and each token's own segment."""
    rng = np.random.RandomState(3)
    lengths, heads, kv_heads, d = [150, 1, 70, 33], 4, 2, 8
    n = 320  # five blocks of 64; the 254 real tokens are followed by padding (segment -1)
    segments = np.full(n, -1, np.int32)
    positions = np.zeros(n, np.int32)
    start = 0
    for s, length in enumerate(lengths):
        segments[start : start + length] = s
        positions[start : start + length] = opening + np.arange(length)
        start += length
    q, k, v = (rng.randn(n, h, d).astype(np.float32) for h in (heads, kv_heads, kv_heads))
    shared_k, shared_v = rng.randn(kv_heads, opening, d).astype(np.float32), rng.randn(kv_heads, opening, d)
    shared_pos = np.arange(opening, dtype=np.int32)
    got = packed_attention(
        jnp.asarray(q), jnp.asarray(k), jnp.asarray(v), jnp.asarray(positions), jnp.asarray(segments),
        (jnp.asarray(shared_k.transpose(0, 2, 1)), jnp.asarray(shared_v, jnp.float32), jnp.asarray(shared_pos)),
        192, window, 0.3, softcap,  # span: the longest segment (150) rounded up to whole blocks
    )
    keys = np.concatenate([shared_k, k.transpose(1, 0, 2)], axis=1)  # [kv, opening + n, d]
    values = np.concatenate([shared_v, v.transpose(1, 0, 2)], axis=1)
    key_pos = np.concatenate([shared_pos, positions])
    key_seg = np.concatenate([np.full(opening, -3), segments])
    scores = np.einsum("nkgd,ksd->nkgs", q.reshape(n, kv_heads, heads // kv_heads, d), keys) * 0.3
    if softcap is not None:
        scores = np.tanh(scores / softcap) * softcap
    visible = (key_pos[None] <= positions[:, None]) & ((key_seg[None] == segments[:, None]) | (key_seg[None] == -3))
    if window is not None:
        visible &= key_pos[None] > positions[:, None] - window
    scores = np.where(visible[:, None, None], scores, -np.inf)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    want = np.einsum("nkgs,ksd->nkgd", probs / probs.sum(-1, keepdims=True), values).reshape(n, heads, d)
    real = segments >= 0
    np.testing.assert_allclose(np.asarray(got)[real], want[real], atol=2e-5)


@pytest.mark.parametrize("softcap", [None, 30.0])
def test_cached_attention_with_shared_keys_equals_per_row_copies(softcap):
    """Attending to a batch-1 shared opening plus each row's own cache equals attending to a cache in which every
    row holds its own copy of the opening (the layout before the opening was shared), masks included."""
    rng = np.random.RandomState(5)
    b, t, heads, kv_heads, d, opening, own = 3, 2, 4, 2, 8, 6, 5
    q = rng.randn(b, t, heads, d).astype(np.float32)
    shared_k, shared_v = rng.randn(kv_heads, d, opening).astype(np.float32), rng.randn(kv_heads, opening, d)
    k, v = rng.randn(b, kv_heads, d, own).astype(np.float32), rng.randn(b, kv_heads, own, d).astype(np.float32)
    shared_mask = rng.rand(b, t, opening) > 0.3
    mask = rng.rand(b, t, own) > 0.3
    mask[:, :, 0] = True  # every query sees at least one key
    got = cached_attention(
        jnp.asarray(q), jnp.asarray(k), jnp.asarray(v), jnp.asarray(mask), 0.3, softcap,
        shared=(jnp.asarray(shared_k), jnp.asarray(shared_v, jnp.float32), jnp.asarray(shared_mask)),
    )
    copies_k = np.concatenate([np.broadcast_to(shared_k, (b, *shared_k.shape)), k], axis=-1)
    copies_v = np.concatenate([np.broadcast_to(shared_v, (b, *shared_v.shape)).astype(np.float32), v], axis=-2)
    want = cached_attention(
        jnp.asarray(q), jnp.asarray(copies_k), jnp.asarray(copies_v),
        jnp.asarray(np.concatenate([shared_mask, mask], axis=-1)), 0.3, softcap,
    )
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)
    assert np.abs(np.asarray(got)).max() > 0.1


def test_calls_within_one_floor_compile_once_and_decode_as_without_it(tiny_checkpoints):
    from lift_jax import sampling

    module = load(tiny_checkpoints["llama3"]).module
    rng = np.random.RandomState(3)
    prompts = [rng.randint(6, VOCAB, int(rng.randint(2, 40))).tolist() for _ in range(16)]
    params = SamplingParams(max_new_tokens=6)
    floor = sampling.floor_for(prompts)
    assert (floor.rows, floor.width) == (16, 64) and floor.stream >= sum(map(len, prompts))
    full = generate_ids(module, prompts, params, stop_ids=[], pad_id=0, floor=floor)
    compiled = sampling._decode._cache_size()
    for part in (prompts[:3], prompts[5:13], sorted(prompts, key=len)[:1]):
        assert generate_ids(module, part, params, stop_ids=[], pad_id=0, floor=floor) == [
            full[prompts.index(p)] for p in part
        ]
        assert generate_ids(module, part, params, stop_ids=[], pad_id=0) == [full[prompts.index(p)] for p in part]
    # the three floored calls reused the full call's compilation; the unfloored ones compiled their own shapes
    assert sampling._decode._cache_size() == compiled + 3


def test_a_dense_floor_makes_the_shape_follow_the_widest_row_alone(tiny_checkpoints):
    from lift_jax import sampling

    module = load(tiny_checkpoints["llama3"]).module
    rng = np.random.RandomState(4)
    prefix = rng.randint(6, VOCAB, 40).tolist()
    params = SamplingParams(max_new_tokens=4)
    floor = sampling.ShapeFloor(rows=4, dense=True)
    calls = [[rng.randint(6, VOCAB, n).tolist() for n in lengths] for lengths in ([10, 60, 25, 7], [5, 50], [63])]
    before = sampling._decode._cache_size()
    for prompts in calls:  # 102, 55 and 63 tokens: packed, three stream sizes; dense, one
        got = generate_ids(module, prompts, params, stop_ids=[], pad_id=0, prefix=prefix, floor=floor)
        assert got == generate_ids(module, prompts, params, stop_ids=[], pad_id=0, prefix=prefix)
    assert sampling._decode._cache_size() == before + 1 + 3  # one dense shape, three unfloored ones
