"""Tokenized examples -> fixed-shape training batches (length buckets bound the number of compilations)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Example = tuple[Sequence[int], Sequence[int]]  # (token ids, loss mask; 1 where the token is a target)


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
    inputs = np.full((accum * rows, width), pad_id, np.int32)
    targets = np.full((accum * rows, width), pad_id, np.int32)
    weights = np.zeros((accum * rows, width), np.float32)
    mask = np.zeros((accum * rows, width), bool)
    for row, example in enumerate(examples):
        if example is None:
            continue
        ids, loss_mask = example
        ids = np.asarray(ids, np.int32)[: width + 1]
        loss_mask = np.asarray(loss_mask, np.float32)[: width + 1]
        n = len(ids) - 1
        inputs[row, :n] = ids[:-1]
        targets[row, :n] = ids[1:]
        weights[row, :n] = loss_mask[1:]
        mask[row, :n] = True
    shape = (accum, rows, width)
    return {
        "inputs": inputs.reshape(shape),
        "targets": targets.reshape(shape),
        "weights": weights.reshape(shape),
        "mask": mask.reshape(shape),
    }
