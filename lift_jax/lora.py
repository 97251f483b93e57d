"""Hand-written LoRA for the decoder's linear layers, scaled by alpha / rank as PEFT does.

`apply_lora` wraps the targeted `Dense` layers in place; only `nnx.LoRAParam` variables are trainable, so the
base weights are selected with `nnx.Not(nnx.LoRAParam)` and never copied by the optimizer.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterator

import jax
import jax.numpy as jnp
from flax import nnx

from lift_jax.errors import ConfigError
from lift_jax.models.families import ModelFamily
from lift_jax.models.layers import Dense
from lift_jax.models.transformer import Transformer

ALL_LINEAR = "all-linear"


@dataclasses.dataclass(frozen=True)
class LoRAConfig:
    """LoRA hyperparameters; `targets` uses PEFT's module names or "all-linear" (every linear but lm_head)."""

    rank: int = 128
    alpha: float = 256.0
    dropout: float = 0.0
    targets: tuple[str, ...] | str = ALL_LINEAR

    @property
    def scaling(self) -> float:
        return self.alpha / self.rank

    def target_names(self, family: ModelFamily) -> tuple[str, ...]:
        """The PEFT module names this config adapts in a decoder of `family`."""
        targets = (self.targets,) if isinstance(self.targets, str) else tuple(self.targets)
        if ALL_LINEAR in targets:
            return family.linears
        unknown = sorted(set(targets) - set(family.linears))
        if unknown:
            raise ConfigError(
                f"unknown LoRA target modules {unknown} for a {family.name} model; use {list(family.linears)} "
                f"or '{ALL_LINEAR}'"
            )
        return targets


def peft_init_a(key: jax.Array, in_features: int, rank: int) -> jax.Array:
    """PEFT's A init: kaiming_uniform(a=sqrt(5)) on torch's [rank, in], i.e. U(-1/sqrt(in), 1/sqrt(in))."""
    bound = 1.0 / math.sqrt(in_features)
    return jax.random.uniform(key, (in_features, rank), jnp.float32, -bound, bound)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def lora_dense(
    x: jax.Array, h: jax.Array, kernel: jax.Array, a: jax.Array, b: jax.Array, scaling: float
) -> jax.Array:
    """x @ kernel + (h @ a) @ b * scaling for x [n, in] (the base input), h [n, in] (the adapter's input,
    float32, after dropout), kernel [in, out], a [in, rank], b [rank, out]; returned in x's dtype.

    The scaling multiplies the small [n, rank] product, not the [n, out] output, and the sum is formed in
    float32 before the one cast. The VJP differentiates x, h, a and b (the kernel is frozen: no weight
    gradient is formed) and writes the B gradient as (g^T @ ha)^T, so the large [n, out] cotangent stays the
    left operand of the dot (autodiff's form makes XLA:CPU transpose it).
    """
    return _lora_dense_fwd(x, h, kernel, a, b, scaling)[0]


def _lora_dense_fwd(
    x: jax.Array, h: jax.Array, kernel: jax.Array, a: jax.Array, b: jax.Array, scaling: float
) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    ha = (h @ a) * scaling  # [n, rank] float32
    y = jnp.dot(x, kernel, preferred_element_type=jnp.float32) + ha @ b
    y = y.astype(x.dtype)
    return y, (h, ha, kernel, a, b)


def _lora_dense_bwd(
    scaling: float, residuals: tuple[jax.Array, ...], g: jax.Array
) -> tuple[jax.Array, jax.Array, None, jax.Array, jax.Array]:
    h, ha, kernel, a, b = residuals
    dx = jnp.dot(g.astype(kernel.dtype), kernel.T, preferred_element_type=jnp.float32).astype(kernel.dtype)
    g32 = g.astype(jnp.float32)
    gha = (g32 @ b.T) * scaling  # [n, rank]
    return dx, gha @ a.T, None, h.T @ gha, (g32.T @ ha).T


lora_dense.defvjp(_lora_dense_fwd, _lora_dense_bwd)


class LoRADense(nnx.Module):
    """base(x) + dropout(x) @ A @ B * alpha / rank, with A [in, rank] and B [rank, out] in float32."""

    def __init__(self, base: Dense, config: LoRAConfig, *, rngs: nnx.Rngs):
        self.base = base
        self.rank = config.rank
        self.scaling = config.scaling
        self.lora_a = nnx.LoRAParam(peft_init_a(rngs.params(), base.in_features, config.rank))
        self.lora_b = nnx.LoRAParam(jnp.zeros((config.rank, base.out_features), jnp.float32))
        self.dropout = nnx.Dropout(config.dropout, rngs=rngs) if config.dropout > 0 else None
        self.merged = False

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    def delta(self) -> jax.Array:
        """The dense weight update A @ B * scaling, [in, out] float32."""
        return self.lora_a.get_value() @ self.lora_b.get_value() * self.scaling

    def __call__(self, x: jax.Array) -> jax.Array:
        if self.merged:
            return self.base(x)
        x2d = x.reshape(-1, self.in_features)
        h = x2d.astype(jnp.float32)
        if self.dropout is not None:
            h = self.dropout(h)
        a, b = self.lora_a.get_value(), self.lora_b.get_value()
        y = lora_dense(x2d, h, self.base.kernel.get_value(), a, b, self.scaling)
        y = y.reshape(*x.shape[:-1], self.out_features)
        return y if self.base.bias is None else y + self.base.bias.get_value()


def linear_slots(model: Transformer) -> Iterator[tuple[nnx.Module, str]]:
    """(block, attribute name) of every linear layer (plain or LoRA-wrapped) of the decoder blocks, in module
    order, by the names of the model's family."""
    family = model.spec.family
    for layer in model.layers:
        for block_name, names in (
            (family.attention_block, family.attention_linears),
            (family.mlp_block, family.mlp_linears),
        ):
            block = getattr(layer, block_name)
            for name in names:
                if isinstance(getattr(block, name, None), (Dense, LoRADense)):
                    yield block, name


def _lora_layers(module: nnx.Module) -> Iterator[LoRADense]:
    for _, node in nnx.iter_graph(module):
        if isinstance(node, LoRADense):
            yield node


def apply_lora(model: Transformer, config: LoRAConfig, seed: int = 0) -> Transformer:
    """Wrap every targeted linear layer of `model` in a LoRADense (in place); returns the model."""
    targets = set(config.target_names(model.spec.family))
    rngs = nnx.Rngs(params=seed, dropout=seed + 1)
    for block, name in list(linear_slots(model)):
        current = getattr(block, name)
        if name in targets and isinstance(current, Dense):
            setattr(block, name, LoRADense(current, config, rngs=rngs))
    return model


def lora_modules(model: nnx.Module) -> list[tuple[str, LoRADense]]:
    """(dotted path, layer) of every LoRA-wrapped linear, in module order."""
    return [
        (".".join(map(str, path)), node)
        for path, node in nnx.iter_graph(model)
        if isinstance(node, LoRADense)
    ]


def reset_lora(model: nnx.Module, seed: int) -> None:
    """Fresh adapter (new A, zero B) for the next document; the base weights are untouched."""
    if any(layer.merged for layer in _lora_layers(model)):
        raise RuntimeError(
            "reset_lora on a merged model: unmerge_lora first, or the base keeps the old update"
        )
    key = jax.random.key(seed)
    for i, layer in enumerate(_lora_layers(model)):
        a = peft_init_a(jax.random.fold_in(key, i), layer.in_features, layer.rank)
        layer.lora_a.set_value(jax.device_put(a, layer.lora_a.get_value().sharding))
        layer.lora_b.set_value(jnp.zeros_like(layer.lora_b.get_value()))


def merge_lora(model: nnx.Module) -> None:
    """Fold each adapter into its base kernel (for decoding without the LoRA matmuls)."""
    for layer in _lora_layers(model):
        if not layer.merged:
            kernel = layer.base.kernel.get_value()
            layer.base.kernel.set_value((kernel.astype(jnp.float32) + layer.delta()).astype(kernel.dtype))
            layer.merged = True


def fold_lora(model: Transformer) -> None:
    """Merge every adapter into its base kernel for good and put the plain linear back in its place: the model
    then has the base model's structure (the same compiled programs as the base, no adapter arrays)."""
    merge_lora(model)
    for block, name in list(linear_slots(model)):
        current = getattr(block, name)
        if isinstance(current, LoRADense):
            setattr(block, name, current.base)


def unmerge_lora(model: nnx.Module) -> None:
    """Subtract the adapters again; exact in float32, within bfloat16 rounding for a bfloat16 base."""
    for layer in _lora_layers(model):
        if layer.merged:
            kernel = layer.base.kernel.get_value()
            layer.base.kernel.set_value((kernel.astype(jnp.float32) - layer.delta()).astype(kernel.dtype))
            layer.merged = False


def count_lora_params(model: nnx.Module) -> int:
    """Number of trainable adapter parameters."""
    return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.LoRAParam)))


def frozen_base(graphdef: nnx.GraphDef, lora: nnx.State, rngs: nnx.State, base: nnx.State) -> Transformer:
    """The model with the adapter off, over the given base arrays (shared, not copied: a trainer's teacher or
    QA generator needs no second copy of the weights): a zero LoRA state, marked merged (base + 0 is the
    base), so its linear layers run the base kernels only, without the adapter's matmuls."""
    zero = jax.tree.map(jnp.zeros_like, lora)
    own_rngs = jax.tree.map(_copy, rngs)  # the trainer donates its rngs (a few keys and counters)
    module = nnx.merge(graphdef, zero, own_rngs, base)
    for _, layer in lora_modules(module):
        layer.merged = True
    return module


def _copy(x: jax.Array) -> jax.Array:
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        return jax.random.wrap_key_data(jnp.array(jax.random.key_data(x), copy=True),
                                        impl=jax.random.key_impl(x))
    return jnp.array(x, copy=True)
