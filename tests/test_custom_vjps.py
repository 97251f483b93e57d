"""The hand-written VJPs of the training step equal autodiff of the plain formulas they replace."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lift_jax.lora import lora_dense
from lift_jax.models.layers import attention_mask, grouped_attention


def _reference_attention(
    q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array, scale: float, softcap: float | None
) -> jax.Array:
    b, t, heads, d = q.shape
    kv_heads = k.shape[2]
    scores = jnp.einsum("btkgd,bskd->bkgts", q.reshape(b, t, kv_heads, heads // kv_heads, d), k) * scale
    if softcap is not None:
        scores = jnp.tanh(scores / softcap) * softcap
    scores = jnp.where(mask[:, None, None], scores, jnp.finfo(jnp.float32).min)
    return jnp.einsum("bkgts,bskd->btkgd", jax.nn.softmax(scores, axis=-1), v).reshape(q.shape)


@pytest.mark.parametrize("softcap", [None, 5.0])
def test_grouped_attention_matches_autodiff_with_padding_and_window(softcap: float | None) -> None:
    keys = jax.random.split(jax.random.key(0), 4)
    b, t, heads, kv_heads, d = 2, 7, 6, 2, 8
    q = jax.random.normal(keys[0], (b, t, heads, d))
    k = jax.random.normal(keys[1], (b, t, kv_heads, d))
    v = jax.random.normal(keys[2], (b, t, kv_heads, d))
    weights = jax.random.normal(keys[3], (b, t, heads, d))
    positions = jnp.broadcast_to(jnp.arange(t), (b, t))
    valid = jnp.ones((b, t), bool).at[1, :2].set(False)  # left padding: two queries see no key at all
    mask = attention_mask(positions, jnp.where(valid, positions, -1), valid, 3)

    def loss(fn, q, k, v):
        return jnp.sum(fn(q, k, v, mask, 0.3, softcap) * weights)

    ours = jax.grad(lambda *a: loss(grouped_attention, *a), argnums=(0, 1, 2))(q, k, v)
    reference = jax.grad(lambda *a: loss(_reference_attention, *a), argnums=(0, 1, 2))(q, k, v)
    np.testing.assert_allclose(
        grouped_attention(q, k, v, mask, 0.3, softcap), _reference_attention(q, k, v, mask, 0.3, softcap), atol=1e-5
    )
    for name, got, want in zip("qkv", ours, reference, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5, err_msg=f"d{name}")


def test_lora_dense_matches_autodiff_of_the_two_products() -> None:
    keys = jax.random.split(jax.random.key(1), 6)
    n, d_in, d_out, rank, scaling = 10, 12, 9, 4, 1.5
    x = jax.random.normal(keys[0], (n, d_in))
    h = x * jax.random.bernoulli(keys[1], 0.8, x.shape) / 0.8  # the adapter sees a dropped-out input
    kernel = jax.random.normal(keys[2], (d_in, d_out))
    a = jax.random.normal(keys[3], (d_in, rank))
    b = jax.random.normal(keys[4], (rank, d_out))
    g = jax.random.normal(keys[5], (n, d_out))

    def reference(x, h, a, b):
        return x @ jax.lax.stop_gradient(kernel) + (h @ a) @ b * scaling

    def ours(x, h, a, b):
        return lora_dense(x, h, kernel, a, b, scaling)

    np.testing.assert_allclose(ours(x, h, a, b), reference(x, h, a, b), rtol=1e-5, atol=1e-5)
    got = jax.vjp(ours, x, h, a, b)[1](g)
    want = jax.vjp(reference, x, h, a, b)[1](g)
    for name, gv, wv in zip(("x", "h", "a", "b"), got, want, strict=True):
        np.testing.assert_allclose(gv, wv, rtol=1e-5, atol=1e-4, err_msg=f"d{name}")
