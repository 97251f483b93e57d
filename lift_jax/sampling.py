"""Jitted KV-cache decoding: batched, left-padded prompts, greedy or temperature / top-p sampling, EOS stop.

Prompt length, batch size and cache size are rounded up to buckets so repeated calls reuse compilations.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from lift_jax.models.layers import LayerCache
from lift_jax.models.transformer import Transformer
from lift_jax.special_tokens import pad_token_id, stop_token_ids

TOP_P_CANDIDATES = 64


@dataclasses.dataclass(frozen=True)
class SamplingParams:
    """Decoding settings; temperature 0 is greedy."""

    max_new_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    max_lines: int = 0  # stop a row after this many line breaks (0: no limit), for completion prompts


def bucket(n: int, minimum: int = 16) -> int:
    """Smallest power of two >= max(n, minimum)."""
    return max(minimum, 1 << max(0, (n - 1).bit_length()))


def prompt_bucket(n: int, step: int = 64) -> int:
    """Prompt lengths round up to a multiple of `step`: less padding than powers of two, still few shapes."""
    return max(step, -(-n // step) * step)


def _select(logits: jax.Array, key: jax.Array, temperature: float, top_p: float) -> jax.Array:
    """Next token ids [batch] from float32 logits [batch, vocab]: argmax at temperature 0, else a sample of
    softmax(logits / temperature), restricted to the nucleus (the most likely tokens whose probability mass
    reaches `top_p`) when top_p < 1. The nucleus is looked for among the TOP_P_CANDIDATES most likely tokens
    only (a top-k instead of a full-vocabulary sort), and the sample is drawn among those candidates."""
    if temperature <= 0.0:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    logits = logits / temperature
    if top_p >= 1.0:
        return jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)
    top_logits, top_ids = jax.lax.top_k(logits, min(TOP_P_CANDIDATES, logits.shape[-1]))
    probs = jnp.exp(top_logits - jax.nn.logsumexp(logits, axis=-1, keepdims=True))
    keep = jnp.cumsum(probs, axis=-1) - probs < top_p  # the most likely token always survives
    choice = jax.random.categorical(key, jnp.where(keep, top_logits, -jnp.inf), axis=-1)
    return jnp.take_along_axis(top_ids, choice[:, None], axis=-1)[:, 0].astype(jnp.int32)


def _last_logits(
    module: Transformer,
    tokens: jax.Array,
    positions: jax.Array,
    mask: jax.Array,
    cache: list[LayerCache],
    index: jax.Array | int,
) -> tuple[jax.Array, list[LayerCache]]:
    """Run `tokens` through the model into the cache; float32 logits [batch, vocab] of the last position only
    (the head over every prompt position would cost more than the rest of the prefill)."""
    hidden, cache = module.hidden_states(tokens, positions, mask, cache, index)
    return module.logits(hidden[:, -1]), cache


@functools.partial(
    jax.jit, static_argnames=("graphdef", "max_new_tokens", "temperature", "top_p", "slots", "max_lines")
)
def _decode(
    graphdef: nnx.GraphDef,
    state: nnx.State,
    prefix: jax.Array,
    tokens: jax.Array,
    mask: jax.Array,
    stop_ids: jax.Array,
    line_ids: jax.Array,
    pad_id: jax.Array,
    key: jax.Array,
    *,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    slots: int,
    max_lines: int,
) -> tuple[jax.Array, jax.Array]:
    module: Transformer = nnx.merge(graphdef, state)
    batch, prompt_len = tokens.shape
    shared = prefix.shape[0]
    if shared:  # the common prefix is computed once and its cache copied to every row
        prefix_pos = jnp.arange(shared, dtype=jnp.int32)[None]
        _, prefix_cache = module.hidden_states(
            prefix[None], prefix_pos, jnp.ones((1, shared), bool), module.init_cache(1, slots), 0
        )
        cache = jax.tree.map(lambda x: jnp.repeat(x, batch, axis=0), prefix_cache)
    else:
        cache = module.init_cache(batch, slots)
    positions = (shared + jnp.maximum(jnp.cumsum(mask, axis=-1) - 1, 0)).astype(jnp.int32)
    last, cache = _last_logits(module, tokens, positions, mask, cache, shared)
    prompt_len = shared + prompt_len
    out = jnp.full((batch, max_new_tokens), pad_id, jnp.int32)
    ones = jnp.ones((batch, 1), bool)

    def cond(carry: tuple) -> jax.Array:
        i, _, done, *_ = carry
        return (i < max_new_tokens) & ~jnp.all(done)

    def body(carry: tuple) -> tuple:
        i, out, done, lines, lengths, last, cache, pos, key = carry
        key, sub = jax.random.split(key)
        token = jnp.where(done, pad_id, _select(last, sub, temperature, top_p))
        out = jax.lax.dynamic_update_slice(out, token[:, None], (0, i))
        lengths = jnp.where(done, lengths, i + 1)
        lines = lines + jnp.any(token[:, None] == line_ids, axis=-1).astype(jnp.int32)
        done = done | jnp.any(token[:, None] == stop_ids, axis=-1) | ((max_lines > 0) & (lines >= max_lines))
        last, cache = _last_logits(module, token[:, None], pos[:, None], ones, cache, prompt_len + i)
        return i + 1, out, done, lines, lengths, last, cache, pos + 1, key

    zeros = jnp.zeros((batch,), jnp.int32)
    carry = (jnp.int32(0), out, jnp.zeros((batch,), bool), zeros, zeros, last, cache, positions[:, -1] + 1, key)
    final = jax.lax.while_loop(cond, body, carry)
    return final[1], final[4]


def generate_ids(
    module: Transformer,
    prompts: Sequence[Sequence[int]],
    params: SamplingParams,
    stop_ids: Sequence[int],
    pad_id: int,
    line_break_ids: Sequence[int] = (),
    prefix: Sequence[int] = (),
) -> list[list[int]]:
    """Decode continuations of token-id prompts; each result stops before its first stop token.

    With `params.max_lines`, a row also stops after that many tokens from `line_break_ids`. A `prefix` shared by
    every prompt (which then holds only its own continuation of it) is computed once for the whole batch.
    """
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("generate_ids needs at least one prompt and no empty prompt")
    prompt_len = prompt_bucket(max(len(p) for p in prompts))
    batch = bucket(len(prompts), minimum=1) if len(prompts) <= 8 else prompt_bucket(len(prompts), step=8)
    tokens = np.full((batch, prompt_len), pad_id, np.int32)
    mask = np.zeros((batch, prompt_len), bool)
    for row, prompt in enumerate(prompts):  # left padding keeps every prompt's last token at the end
        tokens[row, prompt_len - len(prompt) :] = prompt
        mask[row, prompt_len - len(prompt) :] = True
    mask[len(prompts) :, -1] = True  # filler rows decode one harmless token stream
    graphdef, state = nnx.split(module)
    out, lengths = _decode(
        graphdef,
        state,
        jnp.asarray(np.asarray(prefix, np.int32).reshape(-1)),
        jnp.asarray(tokens),
        jnp.asarray(mask),
        jnp.asarray(stop_ids or [-1], jnp.int32),
        jnp.asarray(line_break_ids or [-1], jnp.int32),
        jnp.int32(pad_id),
        jax.random.key(params.seed),
        max_new_tokens=params.max_new_tokens,
        temperature=float(params.temperature),
        top_p=float(params.top_p),
        slots=len(prefix) + prompt_len + bucket(params.max_new_tokens),
        max_lines=params.max_lines,
    )
    out, lengths = np.asarray(out)[: len(prompts)], np.asarray(lengths)[: len(prompts)]
    stops = set(stop_ids)
    results = []
    for row, length in zip(out, lengths, strict=True):
        ids = row[:length].tolist()
        cut = next((i for i, t in enumerate(ids) if t in stops), len(ids))
        results.append(ids[:cut])
    return results


@functools.lru_cache(maxsize=8)
def _line_break_ids(tokenizer: Any) -> tuple[int, ...]:
    return tuple(i for i in range(len(tokenizer)) if "\n" in tokenizer.decode([i]))


def line_break_token_ids(tokenizer: Any) -> tuple[int, ...]:
    """Ids of every token whose text contains a line break."""
    return _line_break_ids(tokenizer)


def generate_texts(
    module: Transformer,
    tokenizer: Any,
    prompts: Sequence[str],
    params: SamplingParams,
    stop_ids: Sequence[int],
    prefix: str = "",
) -> list[str]:
    """Decode continuations of `prefix + prompt` for each text prompt and return the decoded new text."""
    prefix_ids = tokenizer(prefix)["input_ids"] if prefix else []
    encoded = [tokenizer(p, add_special_tokens=not prefix)["input_ids"] for p in prompts]
    pad = pad_token_id(tokenizer, stop_ids)
    lines = line_break_token_ids(tokenizer) if params.max_lines else ()
    ids = generate_ids(module, encoded, params, stop_ids, pad, lines, prefix_ids)
    return [tokenizer.decode(x, skip_special_tokens=True) for x in ids]


def make_local_completer(model_path: str, dtype: str = "float32") -> Callable[..., list[str]]:
    """A batched text-completion function over a local model, for the synthetic-QA generator."""
    from lift_jax.models import load

    loaded = load(model_path, dtype=dtype)
    stops = stop_token_ids(loaded.require_tokenizer("a local QA generator"), loaded.spec.eos_token_ids)

    def complete(
        prompts: list[str],
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        seed: int,
        max_lines: int = 0,
        prefix: str = "",
    ) -> list[str]:
        params = SamplingParams(max_new_tokens, temperature, top_p, seed, max_lines)
        return generate_texts(loaded.module, loaded.tokenizer, prompts, params, stops, prefix)

    return complete
