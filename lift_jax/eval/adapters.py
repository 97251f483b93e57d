"""The untouched base model inside an adapted one, for the baselines that must not see any adapter."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from lift_jax.lora import LoRADense, linear_slots
from lift_jax.models.transformer import Transformer


@contextlib.contextmanager
def base_model(model: Transformer) -> Iterator[Transformer]:
    """Inside the block `model` runs without its LoRA layers: each LoRADense is swapped for the Dense it wraps
    (the very base weights, no +0 update), and swapped back on exit. Merged adapters are refused: their base
    kernels hold the update."""
    swapped: list[tuple[object, str, LoRADense]] = []
    for block, name in linear_slots(model):
        current = getattr(block, name)
        if isinstance(current, LoRADense):
            if current.merged:
                raise RuntimeError("base_model on a merged adapter: unmerge_lora first")
            swapped.append((block, name, current))
    try:
        for block, name, wrapper in swapped:
            setattr(block, name, wrapper.base)
        yield model
    finally:
        for block, name, wrapper in swapped:
            setattr(block, name, wrapper)
