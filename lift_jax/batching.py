"""Tokenized examples -> fixed-shape training batches (length buckets bound the number of compilations)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np


class Example(NamedTuple):
    """One training example (/work/INTERFACE.md). Without soft arrays: the hard target ids[i], weight 1.

    At a loss position i the loss is `sum_k soft_weights[i, k] * -log q_i(soft_ids[i, k]) + soft_offset[i]`.
    """

    ids: Sequence[int]  # token ids
    loss_mask: Sequence[int]  # 1 where ids[i] is a target predicted from ids[:i]
    soft_ids: np.ndarray | None = None  # [len(ids), K] int32 candidate targets of position i
    soft_weights: np.ndarray | None = None  # [len(ids), K] float32 their weights (0 = unused slot)
    soft_offset: np.ndarray | None = None  # [len(ids)] float32 constant added to position i's loss


def length_buckets(max_length: int, min_length: int = 32) -> tuple[int, ...]:
    """Powers of two from `min_length` up to (and always including) `max_length`."""
    buckets, n = [], min_length
    while n < max_length:
        buckets.append(n)
        n *= 2
    return (*buckets, max_length)


def pick_bucket(length: int, buckets: Sequence[int]) -> int:
    """Smallest bucket holding `length` input tokens (else the largest one: the row is truncated)."""
    return next((b for b in buckets if b >= length), buckets[-1])


def batch_width(examples: Sequence[Example | None], buckets: Sequence[int]) -> int:
    """The bucket (T) that `examples` would be padded to on their own."""
    longest = max((len(e[0]) - 1 for e in examples if e is not None), default=1)
    return pick_bucket(max(longest, 1), buckets)


def make_batch(
    examples: Sequence[Example | None],
    rows: int,
    accum: int,
    buckets: Sequence[int],
    pad_id: int,
    width: int | None = None,
) -> dict[str, np.ndarray]:
    """Arrays [accum, rows, T] for `accum` micro-batches of `rows` examples each (row-major: micro-batch a is
    examples[a * rows : (a + 1) * rows]); T is `width`, by default `batch_width(examples, buckets)`.

    `inputs` are the ids, `targets` the ids shifted by one, `weights` 1.0 on target tokens that carry loss,
    `mask` the valid (non-padding) input positions. Missing examples (None, or past the end) become fully
    masked rows, so every batch has the same shape and every process can take the same number of steps.
    """
    if len(examples) > rows * accum:
        raise ValueError(f"{len(examples)} examples do not fit {accum} micro-batches of {rows} rows")
    width = batch_width(examples, buckets) if width is None else width
    examples = [None if e is None else Example(*e) for e in examples]
    k = max((e.soft_ids.shape[1] for e in examples if e is not None and e.soft_ids is not None), default=0)
    inputs = np.full((accum * rows, width), pad_id, np.int32)
    targets = np.full((accum * rows, width), pad_id, np.int32)
    weights = np.zeros((accum * rows, width), np.float32)
    mask = np.zeros((accum * rows, width), bool)
    if k:
        soft_ids = np.zeros((accum * rows, width, k), np.int32)
        soft_weights = np.zeros((accum * rows, width, k), np.float32)
        soft_offset = np.zeros((accum * rows, width), np.float32)
    for row, example in enumerate(examples):
        if example is None:
            continue
        ids, loss_mask = example.ids, example.loss_mask
        ids = np.asarray(ids, np.int32)[: width + 1]
        loss_mask = np.asarray(loss_mask, np.float32)[: width + 1]
        n = len(ids) - 1
        inputs[row, :n] = ids[:-1]
        targets[row, :n] = ids[1:]
        weights[row, :n] = loss_mask[1:]
        mask[row, :n] = True
        if k and example.soft_ids is not None:
            kk = example.soft_ids.shape[1]
            soft_ids[row, :n, :kk] = example.soft_ids[1 : n + 1]
            soft_weights[row, :n, :kk] = example.soft_weights[1 : n + 1]
            soft_offset[row, :n] = example.soft_offset[1 : n + 1]
        elif k:  # a hard-target example in a soft batch: K = 1, weight 1
            soft_ids[row, :n, 0] = ids[1:]
            soft_weights[row, :n, 0] = 1.0
    shape = (accum, rows, width)
    batch = {
        "inputs": inputs.reshape(shape),
        "targets": targets.reshape(shape),
        "weights": weights.reshape(shape),
        "mask": mask.reshape(shape),
    }
    if k:
        batch["soft_ids"] = soft_ids.reshape((*shape, k))
        batch["soft_weights"] = soft_weights.reshape((*shape, k))
        batch["soft_offset"] = soft_offset.reshape(shape)
    return batch
