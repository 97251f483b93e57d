"""One decoder-only transformer for Llama, Gemma 2/3 and Qwen 2/3, with an optional KV cache."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from lift_jax.models.layers import Attention, Dense, GatedMLP, KeySource, LayerCache, PackedRows, RMSNorm
from lift_jax.models.spec import ModelSpec

NLL_CHUNK = 256  # positions per slice of the output head in `Transformer.token_loss`


def head_logits(hidden: jax.Array, weight: jax.Array, layout: str, softcap: float | None) -> jax.Array:
    """float32 logits [..., V] of the output head: `weight` is [V, D] (layout "vd") or [D, V] ("dv")."""
    out = jnp.einsum(f"...d,{layout}->...v", hidden, weight, preferred_element_type=jnp.float32)
    return out if softcap is None else jnp.tanh(out / softcap) * softcap


def _loss_and_unit_grad(
    hidden: jax.Array, weight: jax.Array, targets: jax.Array, weights: jax.Array, layout: str,
    softcap: float | None,
) -> tuple[jax.Array, jax.Array]:
    """Loss [n] = sum_k weights[:, k] * -log q(targets[:, k]) for hidden [n, D] and targets/weights [n, K], and
    d(loss_i)/d(hidden_i) [n, D] (float32): the logit gradient is sum(w) * softmax - scatter(w)."""
    logits = head_logits(hidden, weight, layout, softcap)
    top = jnp.max(logits, axis=-1, keepdims=True)
    exp = jnp.exp(logits - top)
    total = jnp.sum(exp, axis=-1, keepdims=True)
    picked = jnp.take_along_axis(logits, targets, axis=-1)
    mass = jnp.sum(weights, axis=-1, keepdims=True)
    loss = (mass * (top + jnp.log(total)) - jnp.sum(weights * picked, axis=-1, keepdims=True))[:, 0]
    dlogits = mass * (exp / total) - _scatter(weights, targets, logits.shape)
    if softcap is not None:
        dlogits = dlogits * (1.0 - jnp.square(logits / softcap))
    unit = jnp.einsum(f"nv,{layout}->nd", dlogits.astype(weight.dtype), weight, preferred_element_type=jnp.float32)
    return loss, unit


def _scatter(weights: jax.Array, targets: jax.Array, shape: tuple[int, int]) -> jax.Array:
    """[n, V] float32 with weights[i, k] added at column targets[i, k]."""
    if targets.shape[1] == 1:  # hard targets: a compare that fuses into the softmax, no scatter
        vocab = jax.lax.broadcasted_iota(targets.dtype, shape, 1)
        return jnp.where(vocab == targets, weights, 0.0)
    rows = jax.lax.broadcasted_iota(targets.dtype, targets.shape, 0)
    return jnp.zeros(shape, jnp.float32).at[rows, targets].add(weights)


def _sliced(x: jax.Array, size: int) -> jax.Array:
    """[n, ...] -> [n / size, size, ...], zero-padding n up to a multiple of `size`."""
    pad = -x.shape[0] % size
    x = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1))
    return x.reshape(-1, size, *x.shape[1:])


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5, 6))
def chunked_loss(
    hidden: jax.Array, weight: jax.Array, targets: jax.Array, weights: jax.Array, layout: str,
    softcap: float | None, chunk: int,
) -> jax.Array:
    """Per-position loss [n] = sum_k weights[:, k] * -log q(targets[:, k]) for hidden [n, D] and
    targets/weights [n, K], `chunk` positions at a time (never [n, V] at once).

    The head weight and the target weights are constants (no gradient). The backward pass is folded into the
    forward one: each position's loss depends on its own hidden state only, so
    d(sum_i g_i loss_i)/d(hidden_i) = g_i * d(loss_i)/d(hidden_i), computed while a slice's logits are at hand.
    """
    n = targets.shape[0]

    def one(args: tuple[jax.Array, jax.Array, jax.Array]) -> jax.Array:
        h, t, w = args
        logits = head_logits(h, weight, layout, softcap)
        lse = jax.nn.logsumexp(logits, axis=-1)
        return jnp.sum(w, axis=-1) * lse - jnp.sum(w * jnp.take_along_axis(logits, t, axis=-1), axis=-1)

    sliced = (_sliced(hidden, chunk), _sliced(targets, chunk), _sliced(weights, chunk))
    return jax.lax.map(one, sliced).reshape(-1)[:n]


def _chunked_loss_fwd(
    hidden: jax.Array, weight: jax.Array, targets: jax.Array, weights: jax.Array, layout: str,
    softcap: float | None, chunk: int,
) -> tuple[jax.Array, tuple[jax.Array, jax.Array, jax.Array]]:
    n = targets.shape[0]

    def one(args: tuple[jax.Array, jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        h, t, w = args
        return _loss_and_unit_grad(h, weight, t, w, layout, softcap)

    sliced = (_sliced(hidden, chunk), _sliced(targets, chunk), _sliced(weights, chunk))
    loss, unit = jax.lax.map(one, sliced)
    return loss.reshape(-1)[:n], (unit.reshape(-1, hidden.shape[-1])[:n].astype(hidden.dtype), targets, weights)


def _chunked_loss_bwd(
    layout: str, softcap: float | None, chunk: int, residuals: tuple[jax.Array, jax.Array, jax.Array],
    g: jax.Array,
) -> tuple[jax.Array, None, jax.Array, jax.Array]:
    unit, targets, weights = residuals
    no_target_grad = np.zeros(targets.shape, jax.dtypes.float0)
    return (g[:, None] * unit).astype(unit.dtype), None, no_target_grad, jnp.zeros_like(weights)


chunked_loss.defvjp(_chunked_loss_fwd, _chunked_loss_bwd)


class DecoderLayer(nnx.Module):
    """Pre-norm block; Gemma adds a norm after attention and around the feed-forward."""

    def __init__(self, spec: ModelSpec, layer: int, *, dtype: jnp.dtype, rngs: KeySource):
        norm = {"eps": spec.rms_norm_eps, "offset": spec.norm_offset, "dtype": dtype}
        self.self_attn = Attention(spec, layer, dtype=dtype, rngs=rngs)
        self.mlp = GatedMLP(spec, dtype=dtype, rngs=rngs)
        self.input_layernorm = RMSNorm(spec.hidden_size, **norm)
        # Hugging Face's names: for Llama/Qwen `post_attention_layernorm` is the norm *before* the MLP.
        self.post_attention_layernorm = RMSNorm(spec.hidden_size, **norm)
        if spec.sandwich_norms:
            self.pre_feedforward_layernorm = RMSNorm(spec.hidden_size, **norm)
            self.post_feedforward_layernorm = RMSNorm(spec.hidden_size, **norm)
        else:
            self.pre_feedforward_layernorm = self.post_feedforward_layernorm = None

    def __call__(
        self,
        x: jax.Array,
        positions: jax.Array,
        key_valid: jax.Array,
        cache: LayerCache | None,
        cache_index: jax.Array | int | PackedRows | None,
        segments: jax.Array | None = None,
        shared: LayerCache | None = None,
    ) -> tuple[jax.Array, LayerCache | None]:
        attn, cache = self.self_attn(
            self.input_layernorm(x), positions, key_valid, cache, cache_index, segments, shared
        )
        if self.pre_feedforward_layernorm is not None:
            x = x + self.post_attention_layernorm(attn)
            return x + self.post_feedforward_layernorm(self.mlp(self.pre_feedforward_layernorm(x))), cache
        x = x + attn
        return x + self.mlp(self.post_attention_layernorm(x)), cache


class Embedding(nnx.Module):
    """Token embedding table [vocab, hidden], also the tied output head."""

    def __init__(self, vocab: int, hidden: int, *, dtype: jnp.dtype, rngs: KeySource):
        self.weight = nnx.Param(jax.random.normal(rngs.params(), (vocab, hidden), dtype) * 0.02)

    def __call__(self, ids: jax.Array) -> jax.Array:
        return jnp.take(self.weight.get_value(), ids, axis=0)


class Transformer(nnx.Module):
    """Decoder-only LM. `module(input_ids) -> logits [batch, seq, vocab]` (float32)."""

    def __init__(self, spec: ModelSpec, *, dtype: jnp.dtype = jnp.float32, rngs: KeySource):
        self.spec = spec
        self.dtype = dtype
        self.embed_tokens = Embedding(spec.vocab_size, spec.hidden_size, dtype=dtype, rngs=rngs)
        self.layers = nnx.List(
            [DecoderLayer(spec, i, dtype=dtype, rngs=rngs) for i in range(spec.num_layers)]
        )
        self.norm = RMSNorm(spec.hidden_size, eps=spec.rms_norm_eps, offset=spec.norm_offset, dtype=dtype)
        self.lm_head = (
            None
            if spec.tie_embeddings
            else Dense(spec.hidden_size, spec.vocab_size, use_bias=False, dtype=dtype, rngs=rngs)
        )

    def hidden_states(
        self,
        input_ids: jax.Array,
        positions: jax.Array | None = None,
        attention_mask: jax.Array | None = None,
        cache: list[LayerCache] | None = None,
        cache_index: jax.Array | int | PackedRows | None = None,
        segment_ids: jax.Array | None = None,
        shared_cache: list[LayerCache] | None = None,
    ) -> tuple[jax.Array, list[LayerCache] | None]:
        """Final-norm hidden states [batch, seq, hidden] and the updated cache (if one was given).

        A `PackedRows` cache index prefills a packed stream (input_ids and positions [1, n]) into the cache's
        rows; see `layers.PackedRows`.

        `shared_cache` (with a cache): a batch-1 cache of an opening every row shares, attended to before each
        row's own cache and never written (see `layers.Attention`).

        `segment_ids` [batch, seq] (no cache) packs several examples in a row: tokens attend only within their
        segment (0 = padding, masked unless `attention_mask` says otherwise); pass per-example `positions`.
        """
        b, t = input_ids.shape
        if positions is None:
            positions = jnp.broadcast_to(jnp.arange(t, dtype=jnp.int32), (b, t))
        if attention_mask is None:
            attention_mask = jnp.ones((b, t), bool) if segment_ids is None else segment_ids > 0
        key_valid = attention_mask.astype(bool)
        x = self.embed_tokens(input_ids)
        x = x * jnp.asarray(self.spec.embed_scale, x.dtype)
        new_cache = [] if cache is not None else None
        for i, layer in enumerate(self.layers):
            layer_cache = cache[i] if cache is not None else None
            shared = shared_cache[i] if shared_cache is not None else None
            x, layer_cache = layer(x, positions, key_valid, layer_cache, cache_index, segment_ids, shared)
            if new_cache is not None:
                new_cache.append(layer_cache)
        return self.norm(x), new_cache

    def head(self) -> tuple[jax.Array, str]:
        """The output projection and its layout: the tied embedding [V, D] ("vd") or lm_head's kernel ("dv")."""
        if self.lm_head is None:
            return self.embed_tokens.weight.get_value(), "vd"
        return self.lm_head.kernel.get_value(), "dv"

    def logits(self, hidden: jax.Array) -> jax.Array:
        """Output head (tied or not) with Gemma's final soft-capping, in float32."""
        return head_logits(hidden, *self.head(), self.spec.final_softcap)

    def token_loss(self, hidden: jax.Array, targets: jax.Array, weights: jax.Array) -> jax.Array:
        """Per-position loss [...] (float32) = sum_k weights[..., k] * -log q(targets[..., k]) for hidden [..., D]
        and targets/weights [..., K], without materialising the [..., V] logits.

        Gradients flow to `hidden` only: the output head is frozen (LoRA never adapts it).
        """
        weight, layout = self.head()
        k = targets.shape[-1]
        loss = chunked_loss(
            hidden.reshape(-1, hidden.shape[-1]),
            jax.lax.stop_gradient(weight),
            targets.reshape(-1, k),
            weights.reshape(-1, k).astype(jnp.float32),
            layout,
            self.spec.final_softcap,
            NLL_CHUNK,
        )
        return loss.reshape(targets.shape[:-1])

    def token_nll(self, hidden: jax.Array, targets: jax.Array) -> jax.Array:
        """Per-token NLL [...] (float32) of hard `targets` [...] given final hidden states [..., D]."""
        return self.token_loss(hidden, targets[..., None], jnp.ones((*targets.shape, 1), jnp.float32))

    def __call__(
        self,
        input_ids: jax.Array,
        positions: jax.Array | None = None,
        attention_mask: jax.Array | None = None,
    ) -> jax.Array:
        hidden, _ = self.hidden_states(input_ids, positions, attention_mask)
        return self.logits(hidden)

    def init_cache(self, batch: int, slots: int, dtype: jnp.dtype | None = None) -> list[LayerCache]:
        """An empty KV cache with `slots` positions per sequence (k [batch, kv_heads, head_dim, slots],
        v [batch, kv_heads, slots, head_dim])."""
        spec = self.spec
        shape = (batch, spec.num_kv_heads, slots, spec.head_dim)
        keys = (batch, spec.num_kv_heads, spec.head_dim, slots)
        dtype = dtype or self.dtype
        return [
            LayerCache(jnp.zeros(keys, dtype), jnp.zeros(shape, dtype), jnp.full((batch, slots), -1, jnp.int32))
            for _ in range(spec.num_layers)
        ]

    def forward_with_cache(
        self,
        input_ids: jax.Array,
        positions: jax.Array,
        attention_mask: jax.Array,
        cache: list[LayerCache],
        cache_index: jax.Array | int,
    ) -> tuple[jax.Array, list[LayerCache]]:
        """Write the new tokens into cache slots [cache_index, cache_index + seq) and return their logits.

        With a Python int `cache_index` (a static prefill position) attention reads slots [0, cache_index + seq)
        only: later slots must be empty. A traced index reads every slot (empty ones are masked)."""
        hidden, cache = self.hidden_states(input_ids, positions, attention_mask, cache, cache_index)
        return self.logits(hidden), cache


class KeyStream:
    """Initialisation keys fold_in(seed key, 0, 1, ...) with the count kept in Python. Unlike nnx.Rngs, drawing
    one inside a trace adds no counter update to it: under `nnx.eval_shape` each nnx.Rngs draw walks the whole
    trace built so far (jax's tracer error text): 2.3 s against 0.4 s for SmolLM2's 30 layers, measured on a
    busy 2-core CPU."""

    def __init__(self, seed: int):
        self._key = jax.random.key(seed)
        self._count = 0

    def params(self) -> jax.Array:
        """The next key."""
        self._count += 1
        return jax.random.fold_in(self._key, self._count - 1)


def abstract_transformer(spec: ModelSpec, dtype: jnp.dtype = jnp.float32) -> Transformer:
    """The model `spec` describes with shape-only parameters (nothing computed or allocated), to fill from a
    checkpoint."""
    return nnx.eval_shape(lambda: Transformer(spec, dtype=dtype, rngs=KeyStream(0)))
