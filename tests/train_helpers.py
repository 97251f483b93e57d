"""Deterministic synthetic SFT batches and a LoRA-wrapped tiny model, shared by the training tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tiny_models import VOCAB

from lift_jax.batching import length_buckets, make_batch
from lift_jax.lora import LoRAConfig, apply_lora
from lift_jax.models import load
from lift_jax.models.transformer import Transformer

LORA = LoRAConfig(rank=4, alpha=8)


def examples(seed: int, count: int, lengths: tuple[int, int] = (8, 30)) -> list[tuple[list[int], list[int]]]:
    """`count` random (ids, loss mask) pairs; the mask covers a random-length answer suffix."""
    rng = np.random.RandomState(seed)
    out = []
    for _ in range(count):
        n = rng.randint(*lengths)
        prompt = rng.randint(2, n - 2)
        out.append((rng.randint(6, VOCAB, n).tolist(), [0] * prompt + [1] * (n - prompt)))
    return out


def step_examples(
    steps: int, rows: int = 8, accum: int = 2, distinct: int = 4
) -> list[list[tuple[list[int], list[int]]]]:
    """The raw examples of `steps` batches cycling over `distinct` fixed ones, so the loss visibly falls."""
    fixed = [examples(s, rows * accum) for s in range(distinct)]
    return [fixed[i % distinct] for i in range(steps)]


def batches(steps: int, rows: int = 8, accum: int = 2, distinct: int = 4) -> list[dict[str, np.ndarray]]:
    """`step_examples` as lift_jax batches."""
    buckets = length_buckets(64, 16)
    return [make_batch(ex, rows, accum, buckets, pad_id=0) for ex in step_examples(steps, rows, accum, distinct)]


def lora_model(checkpoint: Path, mesh=None, seed: int = 1) -> Transformer:
    """The tiny checkpoint loaded (onto `mesh` if given) with a fresh LoRA adapter."""
    module = load(checkpoint, mesh=mesh).module
    return apply_lora(module, LORA, seed=seed)
