"""Jitted KV-cache decoding: batched prompts, greedy or temperature / top-p sampling, EOS stop.

The prefill computes every distinct prompt token once: an opening all prompts share at batch 1 (kept there:
every decode step reads its keys once for the whole batch), the rest of the distinct prompts packed into one
stream (no padding work), written into left-padded cache rows. Prompt
length, batch size and cache size are rounded up to buckets so repeated calls reuse compilations.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from lift_jax.models.layers import PackedRows
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


@dataclasses.dataclass(frozen=True)
class ShapeFloor:
    """Least sizes of a call's layout: batch `rows`, packed prefill `stream` tokens and cache `width` per row.
    Calls padded to the same floor whose prompts fit in it share one compilation (see `floor_for`). With
    `dense`, the stream also holds every row at the full width, so a call's shape follows from its widest
    row alone (a few padding tokens of prefill instead of a compilation per total length)."""

    rows: int = 1
    stream: int = 0
    width: int = 0
    dense: bool = False


PREFIX_BLOCK = 32  # an opening every prompt shares is computed once, cut to whole blocks (few compiled shapes)
PACK_STEP = 64  # packed prefill streams are padded to a multiple of this many tokens


@dataclasses.dataclass(frozen=True)
class Prefill:
    """A batch of prompts laid out for one prefill with no repeated work.

    Every row starts with `prefix` (computed once, at batch 1). The rest of each distinct row is packed into
    one stream, `tokens` / `positions` [n]; rows holding the same tokens share them, and attention runs on
    the stream within each distinct prompt (`segments`). The cache holds the rows left-padded to `width`
    cells: `source`, `cell_positions` and `segments` are `layers.PackedRows`'s arrays, and `last` [batch] is
    the packed index of each row's last token.
    """

    prefix: np.ndarray
    tokens: np.ndarray
    positions: np.ndarray
    source: np.ndarray
    cell_positions: np.ndarray
    segments: np.ndarray
    last: np.ndarray

    @property
    def width(self) -> int:
        return self.source.shape[1]


def batch_rows(rows: int) -> int:
    """The batch size a call with `rows` rows compiles for."""
    return bucket(rows, minimum=1) if rows <= 8 else prompt_bucket(rows, step=8)


def floor_for(prompts: Sequence[Sequence[int]], prefix: Sequence[int] = ()) -> ShapeFloor:
    """The floor holding `prompts` in one call: a series of calls, each with at most as many prompts, none
    longer in total or alone, compiles once when every call is given this floor (e.g. the largest batch a
    generator will send)."""
    plan = plan_prefill(prompts, prefix, batch_rows(len(prompts)), 0)
    return ShapeFloor(len(prompts), len(plan.tokens), plan.width)


def plan_prefill(
    prompts: Sequence[Sequence[int]], prefix: Sequence[int], batch: int, pad_id: int, floor: ShapeFloor = ShapeFloor()
) -> Prefill:
    """Lay out `prompts` (rows beyond them, up to `batch`, repeat the first) after the shared `prefix`, moving
    the whole blocks of any opening all prompts share into the prefix; the stream and the cache rows are at
    least `floor`'s sizes."""
    rows = [tuple(p) for p in prompts] + [tuple(prompts[0])] * (batch - len(prompts))
    distinct = list(dict.fromkeys(rows))
    shared = 0
    if len(distinct) > 1:
        common = min(len(os.path.commonprefix(distinct)), min(map(len, distinct)) - 1)
        shared = common // PREFIX_BLOCK * PREFIX_BLOCK
    full_prefix = np.asarray([*prefix, *distinct[0][:shared]], np.int32).reshape(-1)
    start = len(full_prefix)
    rows = [r[shared:] for r in rows]
    distinct = [d[shared:] for d in distinct]
    width = max(prompt_bucket(max(map(len, distinct))), floor.width)
    offsets = np.cumsum([0] + [len(d) for d in distinct])
    n = max(prompt_bucket(int(offsets[-1]), step=PACK_STEP), floor.stream)
    if floor.dense:
        n = max(n, prompt_bucket(batch * width, step=PACK_STEP))
    tokens = np.full((n,), pad_id, np.int32)
    positions = np.zeros((n,), np.int32)
    segments = np.full((n,), -1, np.int32)
    source = np.zeros((batch, width), np.int32)
    cell_positions = np.full((batch, width), -1, np.int32)
    last = np.zeros((batch,), np.int32)
    where = {d: i for i, d in enumerate(distinct)}
    placed: set[int] = set()
    for r, row in enumerate(rows):
        d, length = where[row], len(row)
        packed = np.arange(offsets[d], offsets[d] + length)
        source[r, width - length :] = packed
        cell_positions[r, width - length :] = start + np.arange(length)
        last[r] = packed[-1]
        if d not in placed:  # the first row holding these tokens computes their attention
            placed.add(d)
            tokens[packed] = row
            positions[packed] = start + np.arange(length)
            segments[packed] = d
    return Prefill(full_prefix, tokens, positions, source, cell_positions, segments, last)


@functools.partial(
    jax.jit,
    static_argnames=("graphdef", "max_new_tokens", "temperature", "top_p", "slots", "max_lines", "logprob_k"),
)
def _decode(
    graphdef: nnx.GraphDef,
    state: nnx.State,
    prefix: jax.Array,
    tokens: jax.Array,
    positions: jax.Array,
    source: jax.Array,
    cell_positions: jax.Array,
    segments: jax.Array,
    last: jax.Array,
    stop_ids: jax.Array,
    line_ids: jax.Array,
    pad_id: jax.Array,
    key: jax.Array,
    suppress_ids: jax.Array,
    live: jax.Array,
    *,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    slots: int,
    max_lines: int,
    logprob_k: int,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    module: Transformer = nnx.merge(graphdef, state)
    batch, width = source.shape
    shared = prefix.shape[0]
    prefix_cache = None
    if shared:  # the common prefix is computed once and kept at batch 1: every row attends to the same copy
        prefix_pos = jnp.arange(shared, dtype=jnp.int32)[None]
        _, prefix_cache = module.hidden_states(
            prefix[None], prefix_pos, jnp.ones((1, shared), bool), module.init_cache(1, shared), 0
        )
    cache = module.init_cache(batch, slots)
    rows = PackedRows(source, cell_positions, segments)
    hidden, cache = module.hidden_states(tokens[None], positions[None], None, cache, rows, shared_cache=prefix_cache)
    logits = module.logits(hidden[0][last])
    out = jnp.full((batch, max_new_tokens), pad_id, jnp.int32)
    top_values = jnp.zeros((batch, max_new_tokens, logprob_k), jnp.float32)
    top_ids = jnp.zeros((batch, max_new_tokens, logprob_k), jnp.int32)
    ones = jnp.ones((batch, 1), bool)

    def cond(carry: tuple) -> jax.Array:
        i, _, done, *_ = carry
        return (i < max_new_tokens) & ~jnp.all(done)

    def body(carry: tuple) -> tuple:
        i, out, done, lines, lengths, logits, cache, pos, key, top_values, top_ids = carry
        logits = logits.at[:, suppress_ids].set(-jnp.inf, mode="drop")  # ids past the vocabulary: no-op padding
        key, sub = jax.random.split(key)
        token = jnp.where(done, pad_id, _select(logits, sub, temperature, top_p))
        out = jax.lax.dynamic_update_slice(out, token[:, None], (0, i))
        if logprob_k:
            values, ids = jax.lax.top_k(jax.nn.log_softmax(logits, axis=-1), logprob_k)
            top_values = jax.lax.dynamic_update_slice(top_values, values[:, None], (0, i, 0))
            top_ids = jax.lax.dynamic_update_slice(top_ids, ids[:, None].astype(jnp.int32), (0, i, 0))
        lengths = jnp.where(done, lengths, i + 1)
        lines = lines + jnp.any(token[:, None] == line_ids, axis=-1).astype(jnp.int32)
        done = done | jnp.any(token[:, None] == stop_ids, axis=-1) | ((max_lines > 0) & (lines >= max_lines))
        hidden, cache = module.hidden_states(
            token[:, None], pos[:, None], ones, cache, width + i, shared_cache=prefix_cache
        )
        logits = module.logits(hidden[:, -1])
        return i + 1, out, done, lines, lengths, logits, cache, pos + 1, key, top_values, top_ids

    zeros = jnp.zeros((batch,), jnp.int32)
    next_pos = cell_positions[:, -1] + 1
    padding = jnp.arange(batch) >= live  # rows past the prompts only fill the batch: done from the start
    carry = (jnp.int32(0), out, padding, zeros, zeros, logits, cache, next_pos, key, top_values, top_ids)
    final = jax.lax.while_loop(cond, body, carry)
    return final[1], final[4], final[9], final[10]


@dataclasses.dataclass(frozen=True)
class Decoded:
    """One row's new tokens up to (not including) its first stop token, that stop token (None if the row
    ended otherwise), and with `logprob_k`, the top-k log-probabilities and ids [steps, k] of every decoding
    step: one per new token, plus the step that chose the stop token."""

    ids: list[int]
    stop: int | None
    top_logprobs: np.ndarray
    top_ids: np.ndarray


def generate_with_logprobs(
    module: Transformer,
    prompts: Sequence[Sequence[int]],
    params: SamplingParams,
    stop_ids: Sequence[int],
    pad_id: int,
    line_break_ids: Sequence[int] = (),
    prefix: Sequence[int] = (),
    logprob_k: int = 0,
    suppress_ids: Sequence[int] = (),
    floor: ShapeFloor = ShapeFloor(),
) -> list[Decoded]:
    """`generate_ids` that also keeps the top-`logprob_k` log-probabilities of every step (see `Decoded`).

    Tokens in `suppress_ids` are never chosen: their logits are -inf at every step, so the kept
    log-probabilities are the model's distribution renormalised over the other tokens. The call's layout is
    at least `floor` (rows past the prompts idle).
    """
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("the sampler needs at least one prompt and no empty prompt")
    vocab = module.spec.vocab_size
    if any(not 0 <= t < vocab for t in suppress_ids):
        raise ValueError(f"suppress_ids must be token ids in [0, {vocab}), got {sorted(suppress_ids)}")
    # padded to a bucket of out-of-range ids (dropped by the scatter): few compiled shapes; none: an empty
    # scatter, which XLA drops from the decode loop
    width = bucket(len(suppress_ids), minimum=8) if suppress_ids else 0
    suppress = np.full((width,), np.iinfo(np.int32).max, np.int32)
    suppress[: len(suppress_ids)] = sorted(suppress_ids)
    plan = plan_prefill(prompts, prefix, batch_rows(max(len(prompts), floor.rows)), pad_id, floor)
    graphdef, state = nnx.split(module)
    arrays = (plan.prefix, plan.tokens, plan.positions, plan.source, plan.cell_positions, plan.segments, plan.last)
    out, lengths, top_values, top_ids = _decode(
        graphdef,
        state,
        *map(jnp.asarray, arrays),
        jnp.asarray(stop_ids or [-1], jnp.int32),
        jnp.asarray(line_break_ids or [-1], jnp.int32),
        jnp.int32(pad_id),
        jax.random.key(params.seed),
        jnp.asarray(suppress),
        jnp.int32(len(prompts)),
        max_new_tokens=params.max_new_tokens,
        temperature=float(params.temperature),
        top_p=float(params.top_p),
        slots=plan.width + bucket(params.max_new_tokens),
        max_lines=params.max_lines,
        logprob_k=logprob_k,
    )
    out, lengths = np.asarray(out)[: len(prompts)], np.asarray(lengths)[: len(prompts)]
    top_values, top_ids = np.asarray(top_values), np.asarray(top_ids)
    stops = set(stop_ids)
    results = []
    for row, (ids, length) in enumerate(zip(out, lengths, strict=True)):
        ids = ids[:length].tolist()
        cut = next((i for i, t in enumerate(ids) if t in stops), len(ids))
        stop = ids[cut] if cut < len(ids) else None
        steps = min(cut + 1, length)
        results.append(Decoded(ids[:cut], stop, top_values[row, :steps], top_ids[row, :steps]))
    return results


def generate_ids(
    module: Transformer,
    prompts: Sequence[Sequence[int]],
    params: SamplingParams,
    stop_ids: Sequence[int],
    pad_id: int,
    line_break_ids: Sequence[int] = (),
    prefix: Sequence[int] = (),
    floor: ShapeFloor = ShapeFloor(),
) -> list[list[int]]:
    """Decode continuations of token-id prompts; each result stops before its first stop token.

    With `params.max_lines`, a row also stops after that many tokens from `line_break_ids`. A `prefix` shared by
    every prompt (which then holds only its own continuation of it) is computed once for the whole batch, and
    so are any opening the prompts share and prompts that repeat (see `plan_prefill`). The layout is at least
    `floor` (the extra rows idle), so calls given the floor of their largest batch compile once.
    """
    decoded = generate_with_logprobs(module, prompts, params, stop_ids, pad_id, line_break_ids, prefix, floor=floor)
    return [d.ids for d in decoded]


@functools.lru_cache(maxsize=8)
def _line_break_ids(tokenizer: Any) -> tuple[int, ...]:
    return tuple(i for i in range(len(tokenizer)) if "\n" in tokenizer.decode([i]))


def line_break_token_ids(tokenizer: Any) -> tuple[int, ...]:
    """Ids of every token whose text contains a line break."""
    return _line_break_ids(tokenizer)


def _encode(tokenizer: Any, texts: Sequence[str], add_special_tokens: bool) -> list[list[int]]:
    return [tokenizer(t, add_special_tokens=add_special_tokens)["input_ids"] for t in texts]


@functools.lru_cache(maxsize=8)
def _text_floor(tokenizer: Any, floor_prompts: tuple[str, ...], prefix: str) -> ShapeFloor:
    """`floor_for` over text prompts, computed once per (tokenizer, prompts, prefix): a generator passes the
    same floor prompts with every call of a document."""
    prefix_ids = tokenizer(prefix)["input_ids"] if prefix else []
    return floor_for(_encode(tokenizer, floor_prompts, not prefix), prefix_ids)


def generate_texts(
    module: Transformer,
    tokenizer: Any,
    prompts: Sequence[str],
    params: SamplingParams,
    stop_ids: Sequence[int],
    prefix: str = "",
    floor_prompts: Sequence[str] = (),
) -> list[str]:
    """Decode continuations of `prefix + prompt` for each text prompt and return the decoded new text, in a
    layout that also holds `floor_prompts` (see `floor_for`: calls given the same ones compile once)."""
    prefix_ids = tokenizer(prefix)["input_ids"] if prefix else []
    encoded = _encode(tokenizer, prompts, not prefix)
    floor = _text_floor(tokenizer, tuple(floor_prompts), prefix) if floor_prompts else ShapeFloor()
    pad = pad_token_id(tokenizer, stop_ids)
    lines = line_break_token_ids(tokenizer) if params.max_lines else ()
    ids = generate_ids(module, encoded, params, stop_ids, pad, lines, prefix_ids, floor=floor)
    return [tokenizer.decode(x, skip_special_tokens=True) for x in ids]


def module_completer(module: Transformer, tokenizer: Any, stop_ids: Sequence[int]) -> Callable[..., list[str]]:
    """A batched text-completion function over `module` (for the synthetic-QA generator)."""

    def complete(
        prompts: list[str],
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        seed: int,
        max_lines: int = 0,
        prefix: str = "",
        floor_prompts: Sequence[str] = (),
    ) -> list[str]:
        params = SamplingParams(max_new_tokens, temperature, top_p, seed, max_lines)
        return generate_texts(module, tokenizer, prompts, params, stop_ids, prefix, floor_prompts)

    return complete


def make_local_completer(model_path: str, dtype: str = "float32") -> Callable[..., list[str]]:
    """`module_completer` over the model at `model_path`, loaded here."""
    from lift_jax.models import load

    loaded = load(model_path, dtype=dtype)
    stops = stop_token_ids(loaded.require_tokenizer("a local QA generator"), loaded.spec.eos_token_ids)
    return module_completer(loaded.module, loaded.tokenizer, stops)
