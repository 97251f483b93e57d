"""Building blocks of the decoder: dense projections, RMSNorm, rotary embeddings, attention, gated MLP.

Weights keep Hugging Face's names; a projection's `kernel` is HF's `weight` transposed to [in, out].
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Protocol

import jax
import jax.numpy as jnp
from flax import nnx

from lift_jax.models.spec import ModelSpec, RopeSpec


class KeySource(Protocol):
    """Where layers draw their initialisation keys: `nnx.Rngs`, or `transformer.KeyStream` for shape-only
    construction."""

    def params(self) -> jax.Array: ...


def _zeros_init(shape: tuple[int, ...], dtype: jnp.dtype) -> jax.Array:
    return jnp.zeros(shape, dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 3))
def einsum(spec: str, a: jax.Array, b: jax.Array, out_dtype: jnp.dtype | None = None) -> jax.Array:
    """Two-operand einsum accumulated in float32, returned in `out_dtype` (default: the operands' dtype).

    Its VJP keeps each gradient product in the operands' own dtypes (bfloat16 x bfloat16 with float32
    accumulation), where autodiff would pair a float32 cotangent with a bfloat16 operand. `spec` must name
    every summed index in both operands (plain contractions, as in matmuls and attention).
    """
    out = jnp.einsum(spec, a, b, preferred_element_type=jnp.float32)
    return out.astype(out_dtype or jnp.result_type(a, b))


def _einsum_fwd(
    spec: str, a: jax.Array, b: jax.Array, out_dtype: jnp.dtype | None
) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    return einsum(spec, a, b, out_dtype), (a, b)


def _einsum_bwd(
    spec: str, out_dtype: jnp.dtype | None, operands: tuple[jax.Array, jax.Array], g: jax.Array
) -> tuple[jax.Array, jax.Array]:
    a, b = operands
    inputs, out = spec.split("->")
    a_spec, b_spec = inputs.split(",")
    g = g.astype(jnp.result_type(a, b))
    da = jnp.einsum(f"{out},{b_spec}->{a_spec}", g, b, preferred_element_type=jnp.float32)
    db = jnp.einsum(f"{a_spec},{out}->{b_spec}", a, g, preferred_element_type=jnp.float32)
    return da.astype(a.dtype), db.astype(b.dtype)


einsum.defvjp(_einsum_fwd, _einsum_bwd)


class Dense(nnx.Module):
    """y = x @ kernel (+ bias). The base weights of every linear layer that LoRA can adapt."""

    def __init__(
        self, in_features: int, out_features: int, *, use_bias: bool, dtype: jnp.dtype, rngs: KeySource
    ):
        init = nnx.initializers.lecun_normal()
        self.in_features = in_features
        self.out_features = out_features
        self.kernel = nnx.Param(init(rngs.params(), (in_features, out_features), dtype))
        self.bias = nnx.Param(_zeros_init((out_features,), dtype)) if use_bias else None

    def __call__(self, x: jax.Array) -> jax.Array:
        y = einsum("...i,io->...o", x, self.kernel.get_value())
        if self.bias is not None:
            y = y + self.bias.get_value()
        return y


class RMSNorm(nnx.Module):
    """RMSNorm computed in float32; Gemma's variant scales by (1 + weight)."""

    def __init__(self, dim: int, *, eps: float, offset: float, dtype: jnp.dtype):
        self.eps = eps
        self.offset = offset
        self.weight = nnx.Param(jnp.zeros((dim,), dtype) if offset else jnp.ones((dim,), dtype))

    def __call__(self, x: jax.Array) -> jax.Array:
        x32 = x.astype(jnp.float32)
        normed = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
        w = self.weight.get_value()
        if self.offset:
            # Gemma multiplies in float32 before the cast; Llama/Qwen cast first.
            return (normed * (self.offset + w.astype(jnp.float32))).astype(x.dtype)
        return w * normed.astype(x.dtype)


def rope_cos_sin(rope: RopeSpec, positions: jax.Array, dtype: jnp.dtype) -> tuple[jax.Array, jax.Array]:
    """cos/sin tables [batch, seq, rotary_dim] for integer positions [batch, seq]."""
    inv_freq = jnp.asarray(rope.inv_freq, jnp.float32)
    freqs = positions.astype(jnp.float32)[..., None] * inv_freq
    emb = jnp.concatenate([freqs, freqs], axis=-1)
    return (jnp.cos(emb) * rope.attention_scaling).astype(dtype), (
        jnp.sin(emb) * rope.attention_scaling
    ).astype(dtype)


def apply_rope(x: jax.Array, cos: jax.Array, sin: jax.Array) -> jax.Array:
    """Rotate-half RoPE (Hugging Face layout) on x [batch, seq, heads, head_dim]."""
    rot = cos.shape[-1]
    x_rot, x_pass = x[..., :rot], x[..., rot:]
    half = rot // 2
    rotated = jnp.concatenate([-x_rot[..., half:], x_rot[..., :half]], axis=-1)
    out = x_rot * cos[:, :, None, :] + rotated * sin[:, :, None, :]
    return jnp.concatenate([out, x_pass], axis=-1) if x_pass.shape[-1] else out


class LayerCache(NamedTuple):
    """One layer's KV cache. `positions` holds each slot's token position, -1 for an empty slot.

    Heads come before slots, the layouts attention multiplies in, so a decode step reads the cache in place
    instead of transposing all of it in every layer. Keys are stored transposed (slots last): the score
    product of a decode step (a few query rows against every slot) then streams through them at close to
    memory speed, where the [slots, head_dim] layout took about 1.5x as long on XLA:CPU.
    """

    k: jax.Array  # [batch, kv_heads, head_dim, slots]
    v: jax.Array  # [batch, kv_heads, slots, head_dim]
    positions: jax.Array  # [batch, slots] int32

    def write(self, k: jax.Array, v: jax.Array, key_pos: jax.Array, index: jax.Array) -> LayerCache:
        """The cache with k/v [batch, seq, kv_heads, head_dim] and positions [batch, seq] in slots
        [index, index + seq)."""
        return LayerCache(
            k=jax.lax.dynamic_update_slice(self.k, k.transpose(0, 2, 3, 1).astype(self.k.dtype), (0, 0, 0, index)),
            v=jax.lax.dynamic_update_slice(self.v, v.transpose(0, 2, 1, 3).astype(self.v.dtype), (0, 0, index, 0)),
            positions=jax.lax.dynamic_update_slice(self.positions, key_pos.astype(jnp.int32), (0, index)),
        )


class PackedRows(NamedTuple):
    """Where a packed token stream [1, n] sits in a batch of left-padded cache rows [batch, width], written from
    slot 0 (a prefill without padding work: the projections, the MLP and attention run on the n packed tokens;
    the rows are only written to, and rows with the same tokens share their packed ones).

    `source` [batch, width]: the packed index of each row cell (any index for an empty cell);
    `cell_positions` [batch, width]: each cell's token position, -1 for an empty cell;
    `segments` [n]: which distinct prompt each packed token belongs to (-1 for padding). A packed token
    attends to the shared cache, if any (the opening every row shares, held once at batch 1), and to the
    earlier tokens of its own segment, which lie at most `width` tokens before it in the stream.
    """

    source: jax.Array
    cell_positions: jax.Array
    segments: jax.Array


def attention_mask(
    query_pos: jax.Array,
    key_pos: jax.Array,
    key_valid: jax.Array,
    window: int | None,
    segments: jax.Array | None = None,
) -> jax.Array:
    """Boolean [batch, query, key]: causal, valid keys only, and within the sliding window if any.

    With `segments` [batch, seq] (queries and keys are the same tokens; packed rows) a query sees only keys of
    its own segment; positions restart at 0 in every segment, so causality and windows stay per example.
    """
    q = query_pos[:, :, None]
    k = key_pos[:, None, :]
    allowed = (k <= q) & key_valid[:, None, :]
    if window is not None:
        allowed &= k > q - window
    if segments is not None:
        allowed &= segments[:, :, None] == segments[:, None, :]
    return allowed


def _dot(spec: str, a: jax.Array, b: jax.Array, out_dtype: jnp.dtype) -> jax.Array:
    return jnp.einsum(spec, a, b, preferred_element_type=jnp.float32).astype(out_dtype)


def _attention_probs(
    q: jax.Array, k: jax.Array, mask: jax.Array, scale: float, softcap: float | None, keys: str = "bksd"
) -> tuple[jax.Array, jax.Array | None]:
    """Float32 probabilities [b, kv, groups * t, s] and the soft-capped scores (None without soft-capping);
    `keys` names k's layout: "bksd", or "bkds" for a cache's transposed keys."""
    return _probs_from_scores(_dot(f"bkqd,{keys}->bkqs", q, k, jnp.float32), mask, scale, softcap)


def _probs_from_scores(
    scores: jax.Array, mask: jax.Array, scale: float, softcap: float | None
) -> tuple[jax.Array, jax.Array | None]:
    """`_attention_probs` from raw float32 scores q.k [b, kv, groups * t, s]."""
    b, kv_heads, rows, _ = scores.shape
    scores = scores * scale
    capped = None
    if softcap is not None:
        scores = capped = jnp.tanh(scores / softcap) * softcap
    groups = rows // mask.shape[1]
    scores = scores.reshape(b, kv_heads, groups, *mask.shape[1:])
    scores = jnp.where(mask[:, None, None], scores, jnp.finfo(jnp.float32).min)
    return jax.nn.softmax(scores, axis=-1).reshape(b, kv_heads, rows, -1), capped


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def _attention_core(
    q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array, scale: float, softcap: float | None
) -> jax.Array:
    """softmax(q k^T * scale, masked) v on q [b, kv, groups * t, d] and k/v [b, kv, s, d]."""
    probs, _ = _attention_probs(q, k, mask, scale, softcap)
    return _dot("bkqs,bksd->bkqd", probs.astype(v.dtype), v, v.dtype)


def _attention_core_fwd(
    q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array, scale: float, softcap: float | None
) -> tuple[jax.Array, tuple]:
    probs, capped = _attention_probs(q, k, mask, scale, softcap)
    out = _dot("bkqs,bksd->bkqd", probs.astype(v.dtype), v, v.dtype)
    return out, (q, k, v, mask, probs, capped)


def _attention_core_bwd(scale: float, softcap: float | None, residuals: tuple, g: jax.Array) -> tuple:
    q, k, v, mask, probs, capped = residuals
    dtype = q.dtype
    g = g.astype(dtype)
    dv = _dot("bkqs,bkqd->bksd", probs.astype(dtype), g, dtype)
    dprobs = _dot("bkqd,bksd->bkqs", g, v, jnp.float32)
    dscores = probs * (dprobs - jnp.sum(dprobs * probs, axis=-1, keepdims=True))
    # A query with no visible key (a padding row) has uniform probabilities over masked scores: no gradient.
    b, kv_heads, rows, keys = dscores.shape
    groups = rows // mask.shape[1]
    visible = jnp.broadcast_to(mask[:, None, None], (b, kv_heads, groups, *mask.shape[1:]))
    dscores = jnp.where(visible.reshape(b, kv_heads, rows, keys), dscores, 0.0)
    if softcap is not None:
        dscores = dscores * (1.0 - jnp.square(capped / softcap))
    dscores = (dscores * scale).astype(dtype)
    dq = _dot("bkqs,bksd->bkqd", dscores, k, dtype)
    dk = _dot("bkqs,bkqd->bksd", dscores, q, dtype)
    return dq, dk, dv, None


_attention_core.defvjp(_attention_core_fwd, _attention_core_bwd)


def grouped_attention(
    q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array, scale: float, softcap: float | None
) -> jax.Array:
    """Softmax attention with grouped KV heads: q [b, t, heads, d], k/v [b, s, kv_heads, d] -> [b, t, heads, d].

    Heads go in front and the query heads that share a KV head are stacked along the query axis, so each
    product is one batched [groups * t, d] x [d, s] matmul per (batch, KV head). The hand-written VJP is the
    usual softmax-attention backward (dS = P * (dP - rowsum(dP * P))) with every product a plain batched
    matmul; autodiff fused the dP product into the softmax reduction, which XLA:CPU ran 3x slower.
    `mask` [b, t, s] is True where a query may attend a key.
    """
    b, t, heads, d = q.shape
    kv_heads = k.shape[2]
    groups = heads // kv_heads
    q = q.reshape(b, t, kv_heads, groups, d).transpose(0, 2, 3, 1, 4).reshape(b, kv_heads, groups * t, d)
    k, v = k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3)
    out = _attention_core(q, k, v, mask, scale, softcap)
    return out.reshape(b, kv_heads, groups, t, d).transpose(0, 3, 1, 2, 4).reshape(b, t, heads, d)

def cached_attention(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    mask: jax.Array,
    scale: float,
    softcap: float | None,
    shared: tuple[jax.Array, jax.Array, jax.Array] | None = None,
) -> jax.Array:
    """`grouped_attention` over a cache in its own layout: q [b, t, heads, d], k [b, kv_heads, d, s],
    v [b, kv_heads, s, d].

    `shared` = (k [kv_heads, d, p], v [kv_heads, p, d], mask [b, t, p]) are keys every row also attends to, held
    once instead of per row: a common opening, whose keys a decode step then reads once for the whole batch."""
    b, t, heads, d = q.shape
    kv_heads = k.shape[1]
    groups = heads // kv_heads
    q = q.reshape(b, t, kv_heads, groups, d).transpose(0, 2, 3, 1, 4).reshape(b, kv_heads, groups * t, d)
    if shared is None:
        probs, _ = _attention_probs(q, k, mask, scale, softcap, keys="bkds")
        out = _dot("bkqs,bksd->bkqd", probs.astype(v.dtype), v, v.dtype)
    else:
        shared_k, shared_v, shared_mask = shared
        opening = shared_k.shape[-1]
        scores = jnp.concatenate(
            [_dot("bkqd,kds->bkqs", q, shared_k, jnp.float32), _dot("bkqd,bkds->bkqs", q, k, jnp.float32)], axis=-1
        )
        probs, _ = _probs_from_scores(scores, jnp.concatenate([shared_mask, mask], axis=-1), scale, softcap)
        probs = probs.astype(v.dtype)
        out = _dot("bkqs,ksd->bkqd", probs[..., :opening], shared_v, v.dtype)
        out = out + _dot("bkqs,bksd->bkqd", probs[..., opening:], v, v.dtype)
    return out.reshape(b, kv_heads, groups, t, d).transpose(0, 3, 1, 2, 4).reshape(b, t, heads, d)


class Attention(nnx.Module):
    """Multi-head attention with GQA, optional q/k norms, logit soft-capping and sliding window."""

    def __init__(self, spec: ModelSpec, layer: int, *, dtype: jnp.dtype, rngs: KeySource):
        h, n, kv, d = spec.hidden_size, spec.num_heads, spec.num_kv_heads, spec.head_dim
        self.num_heads, self.num_kv_heads, self.head_dim = n, kv, d
        self.scale = spec.query_scale
        self.softcap = spec.attn_softcap
        self.window = spec.layer_window(layer)
        self.rope = spec.layer_rope(layer)
        self.q_proj = Dense(h, n * d, use_bias=spec.qkv_bias, dtype=dtype, rngs=rngs)
        self.k_proj = Dense(h, kv * d, use_bias=spec.qkv_bias, dtype=dtype, rngs=rngs)
        self.v_proj = Dense(h, kv * d, use_bias=spec.qkv_bias, dtype=dtype, rngs=rngs)
        self.o_proj = Dense(n * d, h, use_bias=spec.o_bias, dtype=dtype, rngs=rngs)
        if spec.qk_norm:
            norm = {"eps": spec.rms_norm_eps, "offset": spec.norm_offset, "dtype": dtype}
            self.q_norm = RMSNorm(d, **norm)
            self.k_norm = RMSNorm(d, **norm)
        else:
            self.q_norm = self.k_norm = None

    def __call__(
        self,
        x: jax.Array,
        positions: jax.Array,
        key_valid: jax.Array,
        cache: LayerCache | None = None,
        cache_index: jax.Array | int | PackedRows | None = None,
        segments: jax.Array | None = None,
        shared: LayerCache | None = None,
    ) -> tuple[jax.Array, LayerCache | None]:
        """Self-attention over x [b, t, hidden]; `segments` (packed rows, no cache) keeps each example apart.

        With a `PackedRows` cache index, x is a packed stream [1, n, hidden] written into the cache's rows.
        `shared` (with a cache) is a batch-1 cache of keys every row attends to before its own: a common opening
        computed and read once for the whole batch."""
        if isinstance(cache_index, PackedRows):
            return self._packed(x, positions, cache, cache_index, shared)
        b, t, _ = x.shape
        q, k, v = self._projected(x, positions)
        key_pos = jnp.where(key_valid, positions, -1)
        if cache is not None:
            cache = cache.write(k, v, key_pos, cache_index)
            # A static (int) write position bounds the filled slots: attend to those only (a prefill).
            filled = cache_index + t if isinstance(cache_index, int) else cache.positions.shape[1]
            k, v = cache.k[..., :filled].astype(x.dtype), cache.v[:, :, :filled].astype(x.dtype)
            key_pos = cache.positions[:, :filled]
            mask = attention_mask(positions, key_pos, key_pos >= 0, self.window)
            opening = None
            if shared is not None:
                shared_pos = jnp.broadcast_to(shared.positions, (b, shared.positions.shape[1]))
                opening = (
                    shared.k[0].astype(x.dtype),
                    shared.v[0].astype(x.dtype),
                    attention_mask(positions, shared_pos, shared_pos >= 0, self.window),
                )
            out = cached_attention(q, k, v, mask, self.scale, self.softcap, opening)
            return self.o_proj(out.reshape(b, t, self.num_heads * self.head_dim)), cache
        mask = attention_mask(positions, key_pos, key_pos >= 0, self.window, segments)

        out = grouped_attention(q, k, v, mask, self.scale, self.softcap)
        return self.o_proj(out.reshape(b, t, self.num_heads * self.head_dim)), cache

    def _projected(self, x: jax.Array, positions: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """q [b, t, heads, d] and k/v [b, t, kv_heads, d] of x [b, t, hidden], normed and rotated."""
        b, t, _ = x.shape
        q = self.q_proj(x).reshape(b, t, self.num_heads, self.head_dim)
        k = self.k_proj(x).reshape(b, t, self.num_kv_heads, self.head_dim)
        v = self.v_proj(x).reshape(b, t, self.num_kv_heads, self.head_dim)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        cos, sin = rope_cos_sin(self.rope, positions, x.dtype)
        return apply_rope(q, cos, sin), apply_rope(k, cos, sin), v

    def _packed(
        self, x: jax.Array, positions: jax.Array, cache: LayerCache, rows: PackedRows, shared: LayerCache | None
    ) -> tuple[jax.Array, LayerCache]:
        """Prefill of a packed stream x [1, n, hidden] (positions [1, n]) into the cache rows `rows` names,
        each token also attending to the `shared` batch-1 cache (if any)."""
        q, k, v = (z[0] for z in self._projected(x, positions))  # [n, heads | kv_heads, d]
        cache = cache.write(k[rows.source], v[rows.source], rows.cell_positions, 0)
        if shared is None:
            shared = LayerCache(k=cache.k[:1, ..., :0], v=cache.v[:1, :, :0], positions=cache.positions[:1, :0])
        opening = (shared.k[0].astype(x.dtype), shared.v[0].astype(x.dtype), shared.positions[0])
        out = packed_attention(
            q, k, v, positions[0], rows.segments, opening, rows.source.shape[1], self.window, self.scale,
            self.softcap,
        )
        return self.o_proj(out.reshape(1, -1, self.num_heads * self.head_dim)), cache


PACKED_BLOCK = 64  # queries per block of `packed_attention`


def packed_attention(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    positions: jax.Array,
    segments: jax.Array,
    shared: tuple[jax.Array, jax.Array, jax.Array],
    span: int,
    window: int | None,
    scale: float,
    softcap: float | None,
) -> jax.Array:
    """Causal attention within the segments of a packed stream, plus keys every token sees.

    q [n, heads, d], k/v [n, kv_heads, d], positions/segments [n] (n a multiple of PACKED_BLOCK; a token sees
    the earlier tokens of its own segment, at most `span` tokens back). `shared` = (k [kv_heads, d, s],
    v [kv_heads, s, d], positions [s]; keys transposed as in `LayerCache`; -1 positions are empty) are keys
    every token sees (a common opening). Blocks of queries attend to the shared keys and to the `span` stream
    tokens before them, so the work grows with n * span, not with n squared or with the batch's padding, and
    each block's scores stay small. Returns [n, heads, d].
    """
    n, heads, d = q.shape
    kv_heads = k.shape[1]
    groups = heads // kv_heads
    blocks = n // PACKED_BLOCK
    keys_k, keys_v = (jnp.pad(z, ((span, 0), (0, 0), (0, 0))).transpose(1, 0, 2) for z in (k, v))
    key_pos = jnp.pad(positions, (span, 0))
    key_seg = jnp.pad(segments, (span, 0), constant_values=-2)  # matches no query
    shared_k, shared_v, shared_pos = shared
    opening = shared_k.shape[2]
    q = q.reshape(blocks, PACKED_BLOCK, kv_heads, groups, d).transpose(0, 2, 3, 1, 4)
    q = q.reshape(blocks, kv_heads, groups * PACKED_BLOCK, d)

    def block(args: tuple[jax.Array, jax.Array]) -> jax.Array:
        i, qb = args
        first = i * PACKED_BLOCK
        ks = jax.lax.dynamic_slice_in_dim(keys_k, first, span + PACKED_BLOCK, axis=1)
        vs = jax.lax.dynamic_slice_in_dim(keys_v, first, span + PACKED_BLOCK, axis=1)
        kpos = jax.lax.dynamic_slice_in_dim(key_pos, first, span + PACKED_BLOCK)
        kseg = jax.lax.dynamic_slice_in_dim(key_seg, first, span + PACKED_BLOCK)
        qpos = jax.lax.dynamic_slice_in_dim(positions, first, PACKED_BLOCK)[None]
        qseg = jax.lax.dynamic_slice_in_dim(segments, first, PACKED_BLOCK)
        mask = attention_mask(qpos, kpos[None], kpos[None] >= 0, window)[0] & (kseg[None] == qseg[:, None])
        # Key chunks no query of the block sees (other segments; most of the span for a segment's early blocks)
        # are skipped: their scores are masked anyway and their probabilities are exactly 0.
        chunks = [slice(c, c + PACKED_BLOCK) for c in range(0, span + PACKED_BLOCK, PACKED_BLOCK)]
        needed = [jnp.any(mask[:, c]) for c in chunks]
        empty = jnp.zeros((kv_heads, groups * PACKED_BLOCK, PACKED_BLOCK), jnp.float32)
        parts = [
            jax.lax.cond(need, lambda c=c: _dot("kqd,ksd->kqs", qb, ks[:, c], jnp.float32), lambda: empty)
            for c, need in zip(chunks, needed, strict=True)
        ]
        if opening:
            seen = attention_mask(qpos, shared_pos[None], shared_pos[None] >= 0, window)[0]
            mask = jnp.concatenate([seen, mask], axis=-1)
            parts.insert(0, _dot("kqd,kds->kqs", qb, shared_k, jnp.float32))
        scores = jnp.concatenate(parts, axis=-1) * scale
        if softcap is not None:
            scores = jnp.tanh(scores / softcap) * softcap
        scores = scores.reshape(kv_heads, groups, PACKED_BLOCK, -1)
        scores = jnp.where(mask[None, None], scores, jnp.finfo(jnp.float32).min)
        probs = jax.nn.softmax(scores, axis=-1).reshape(kv_heads, groups * PACKED_BLOCK, -1).astype(v.dtype)
        out = _dot("kqs,ksd->kqd", probs[..., :opening], shared_v, v.dtype) if opening else jnp.zeros_like(qb)
        none = jnp.zeros_like(out)
        for c, need in zip(chunks, needed, strict=True):
            own = probs[..., opening + c.start : opening + c.stop]
            out = out + jax.lax.cond(need, lambda c=c, p=own: _dot("kqs,ksd->kqd", p, vs[:, c], v.dtype), lambda: none)
        return out

    out = jax.lax.map(block, (jnp.arange(blocks, dtype=jnp.int32), q))  # [blocks, kv, groups * B, d]
    out = out.reshape(blocks, kv_heads, groups, PACKED_BLOCK, d).transpose(0, 3, 1, 2, 4)
    return out.reshape(n, heads, d)


_ACTIVATION_FNS = {
    "silu": jax.nn.silu,
    "gelu_tanh": lambda x: jax.nn.gelu(x, approximate=True),
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),
}


class GatedMLP(nnx.Module):
    """down(act(gate(x)) * up(x)): SwiGLU for Llama/Qwen, GeGLU for Gemma."""

    def __init__(self, spec: ModelSpec, *, dtype: jnp.dtype, rngs: KeySource):
        h, f = spec.hidden_size, spec.intermediate_size
        self.act = _ACTIVATION_FNS[spec.activation]
        self.gate_proj = Dense(h, f, use_bias=spec.mlp_bias, dtype=dtype, rngs=rngs)
        self.up_proj = Dense(h, f, use_bias=spec.mlp_bias, dtype=dtype, rngs=rngs)
        self.down_proj = Dense(f, h, use_bias=spec.mlp_bias, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))
