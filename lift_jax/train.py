"""The sharded LoRA SFT step: optax AdamW over adapter parameters only, gradient accumulation, one jit.

The base weights enter the step as (sharded) arguments and are never copied or differentiated; the adapter and
optimizer state are donated. Batches (`lift_jax.batching`) are [accum, rows, ...] with rows split over the mesh's
data and fsdp axes; the loss of a step is the mean over its loss positions of each position's (soft) loss.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from lift_jax.errors import ConfigError
from lift_jax.lora import frozen_base
from lift_jax.models.transformer import Transformer
from lift_jax.sharding import make_mesh, shard_params

SCHEDULES = ("constant", "linear", "cosine")


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """AdamW with the paper's defaults: constant lr 5e-5, no weight decay, global-norm clip 1.0."""

    lr: float = 5e-5
    schedule: str = "constant"
    warmup_steps: int = 0
    total_steps: int = 0  # needed by the decaying schedules
    weight_decay: float = 0.0
    clip_norm: float = 1.0
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8


def learning_rate(cfg: OptimizerConfig) -> optax.Schedule:
    """The learning-rate schedule named by `cfg.schedule`, with optional linear warm-up."""
    if cfg.schedule not in SCHEDULES:
        raise ConfigError(f"unknown schedule {cfg.schedule!r}; use one of {SCHEDULES}")
    if cfg.schedule != "constant" and cfg.total_steps <= cfg.warmup_steps:
        raise ConfigError(f"schedule {cfg.schedule!r} needs total_steps > warmup_steps ({cfg.warmup_steps})")
    decay_steps = max(cfg.total_steps - cfg.warmup_steps, 1)
    main = {
        "constant": optax.constant_schedule(cfg.lr),
        "linear": optax.linear_schedule(cfg.lr, 0.0, decay_steps),
        "cosine": optax.cosine_decay_schedule(cfg.lr, decay_steps),
    }[cfg.schedule]
    if cfg.warmup_steps <= 0:
        return main
    warmup = optax.linear_schedule(0.0, cfg.lr, cfg.warmup_steps)
    return optax.join_schedules([warmup, main], [cfg.warmup_steps])


def make_optimizer(cfg: OptimizerConfig) -> optax.GradientTransformation:
    """Global-norm clipping followed by AdamW (decoupled weight decay, as torch.optim.AdamW)."""
    parts = [optax.clip_by_global_norm(cfg.clip_norm)] if cfg.clip_norm > 0 else []
    parts.append(
        optax.adamw(learning_rate(cfg), b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=cfg.weight_decay)
    )
    return optax.chain(*parts)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """[accum, rows, ...] arrays: rows split over data and fsdp."""
    return NamedSharding(mesh, PartitionSpec(None, ("data", "fsdp")))


def row_multiple(mesh: Mesh, process_count: int) -> int:
    """Rows per process must be a multiple of this for the global rows to split over the data-parallel axes."""
    ways = mesh.shape["data"] * mesh.shape["fsdp"]
    return ways // math.gcd(ways, process_count)


class LoRATrainer:
    """Owns the adapter parameters and optimizer state of a LoRA-wrapped model and runs the jitted step."""

    def __init__(self, model: Transformer, cfg: OptimizerConfig, mesh: Mesh | None = None):
        self.model = model
        self.mesh = mesh if mesh is not None else make_mesh(devices=jax.devices()[:1])
        self.tx = make_optimizer(cfg)
        self.learning_rate = learning_rate(cfg)  # optimizer step (0-based) -> lr, for the metrics log
        graphdef, lora, rngs, base = nnx.split(model, nnx.LoRAParam, nnx.RngState, ...)
        if not jax.tree.leaves(lora):
            raise ValueError("the model has no LoRA parameters; call lift_jax.lora.apply_lora first")
        self.graphdef = graphdef
        replicated = NamedSharding(self.mesh, PartitionSpec())
        # a no-op for weights load(mesh=...) already placed
        self.base = shard_params(base, self.mesh, model.spec.family)
        self.lora = jax.device_put(lora, replicated)
        self.rngs = jax.device_put(rngs, replicated)
        self.opt_state = jax.jit(self.tx.init, out_shardings=replicated)(self.lora)
        self.step = 0
        self._step_fn = self._build_step()
        self._gradients_fn = jax.jit(self._accumulate)

    @functools.cached_property
    def base_model(self) -> Transformer:
        """The model with the adapter off over this trainer's base arrays (`lora.frozen_base`), made once: the
        run's teacher and its QA generator share it instead of each holding a zero adapter of its own."""
        return frozen_base(self.graphdef, self.lora, self.rngs, self.base)

    def _build_step(self) -> Any:
        accumulate, tx = self._accumulate, self.tx

        def step(lora: nnx.State, opt_state: Any, rngs: nnx.State, base: nnx.State, batch: dict) -> tuple:
            grads, loss, count, rngs = accumulate(lora, rngs, base, batch)
            updates, opt_state = tx.update(grads, opt_state, lora)
            lora = optax.apply_updates(lora, updates)
            metrics = {"loss": loss, "tokens": count, "grad_norm": optax.global_norm(grads)}
            return lora, opt_state, rngs, metrics

        return jax.jit(step, donate_argnums=(0, 1, 2))

    def _accumulate(self, lora: nnx.State, rngs: nnx.State, base: nnx.State, batch: dict) -> tuple:
        """(gradients, loss, loss positions, rngs) of a batch: each the mean over its loss positions."""
        graphdef = self.graphdef

        def loss_sum(lora: nnx.State, rngs: nnx.State, mb: dict) -> tuple[jax.Array, tuple]:
            model = nnx.merge(graphdef, lora, rngs, base)
            hidden, _ = model.hidden_states(mb["inputs"], positions=mb["positions"], segment_ids=mb["segments"])
            # The head runs on the loss slots only: [rows, L, D] gathered from [rows, T, D].
            at_slots = jnp.take_along_axis(hidden, mb["loss_index"][..., None], axis=1)
            per_slot = model.token_loss(at_slots, mb["targets"], mb["weights"]) + mb["offsets"]
            total = jnp.sum(per_slot * mb["slot_mask"])
            return total, (jnp.sum(mb["slot_mask"]), nnx.state(model, nnx.RngState))

        grad_fn = jax.value_and_grad(loss_sum, has_aux=True)

        def micro(carry: tuple, mb: dict) -> tuple:
            grads, loss, count, rngs = carry
            (mb_loss, (n, rngs)), g = grad_fn(lora, rngs, mb)
            return (jax.tree.map(jnp.add, grads, g), loss + mb_loss, count + n, rngs), None

        zeros = jax.tree.map(jnp.zeros_like, lora)
        init = (zeros, jnp.float32(0), jnp.float32(0), rngs)
        (grads, loss, count, rngs), _ = jax.lax.scan(micro, init, batch)
        denom = jnp.maximum(count, 1.0)
        return jax.tree.map(lambda g: g / denom, grads), loss / denom, count, rngs

    def gradients(self, batch: dict[str, np.ndarray]) -> tuple[jax.Array, nnx.State]:
        """The loss and adapter gradients the next step would use on `batch` (no update; for checks)."""
        grads, loss, _, _ = self._gradients_fn(self.lora, self.rngs, self.base, self.shard_batch(batch))
        return loss, grads

    def shard_batch(self, batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
        """Place a host batch ([accum, rows, ...], this process's rows) onto the mesh."""
        sharding = batch_sharding(self.mesh)
        rows = next(iter(batch.values())).shape[1]
        ways = self.mesh.shape["data"] * self.mesh.shape["fsdp"]
        if (rows * jax.process_count()) % ways:
            raise ConfigError(f"{rows} rows per process do not split over {ways} data-parallel devices")
        if jax.process_count() == 1:
            return {k: jax.device_put(v, sharding) for k, v in batch.items()}
        return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}

    def train_step(self, batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
        """One optimizer step on `batch`; returns device metrics (no host sync here)."""
        self.lora, self.opt_state, self.rngs, metrics = self._step_fn(
            self.lora, self.opt_state, self.rngs, self.base, self.shard_batch(batch)
        )
        self.step += 1
        return metrics

    def compilations(self) -> int:
        """How many times the step has been compiled (one per distinct batch shape)."""
        return self._step_fn._cache_size()

    def sync_model(self) -> Transformer:
        """Write the current adapter into the module (for decoding or export) and return it."""
        nnx.update(self.model, self.lora, self.rngs)
        return self.model
