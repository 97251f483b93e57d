"""Tokenized examples -> fixed-shape training batches (buckets bound the number of compilations).

A batch is a dict of arrays with a leading micro-batch axis [accum, rows, ...]:

- `inputs`, `positions`, `segments` [accum, rows, T]: token ids, positions (restarting at 0 for every example)
  and the example each token belongs to (1, 2, ... within its row; 0 = padding). Several examples may share
  a row ("packing"); attention stays inside an example (see `attention_mask`).
- `loss_index` [accum, rows, L]: the positions of a row whose output carries loss, so the output head runs on
  L slots instead of T positions; `slot_mask` [accum, rows, L] is 1.0 on used slots.
- `targets` / `weights` [accum, rows, L, K] and `offsets` [accum, rows, L]: a slot's loss is
  `sum_k weights[k] * -log q(targets[k]) + offset` (hard targets: K = 1, weight 1, offset 0).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

MIN_SLOTS = 16  # the smallest bucket of loss slots per row
WIDE_ROWS = 512  # of equally cheap packed layouts, the one with the widest rows up to this many tokens
# A batch whose shape is new borrows an already compiled shape of up to REUSE_GROWTH times its token cells and
# its head slots (rows x loss slots: with a large vocabulary the head costs as much as the layers), but only its
# first REUSE_TIMES times: a one-off shape (an epoch's partial last batch) never compiles, a recurring
# one compiles on its next occurrence instead of wasting cells at every step (rent, then buy).
REUSE_GROWTH = 4.0
REUSE_TIMES = 2


class Example(NamedTuple):
    """One training example; see INTERFACE.md. Row i of the soft arrays gives the targets of position i
    (predicted from ids[:i]); rows where `loss_mask` is 0 are ignored. Without soft arrays the target is the
    next token itself (weight 1, offset 0)."""

    ids: Sequence[int]
    loss_mask: Sequence[int]
    soft_ids: np.ndarray | None = None  # [len(ids), K] int32
    soft_weights: np.ndarray | None = None  # [len(ids), K] float32, 0 = unused slot
    soft_offset: np.ndarray | None = None  # [len(ids)] float32


def as_example(example: Example | tuple) -> Example:
    """An Example from an Example or a plain (ids, loss_mask) tuple."""
    return example if isinstance(example, Example) else Example(*example)


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


def _inputs_len(example: Example) -> int:
    """Input tokens of an example (its last token is only a target)."""
    return max(len(example.ids) - 1, 1)


def batch_width(examples: Sequence[Example | tuple | None], buckets: Sequence[int]) -> int:
    """The bucket (T) that `examples` would be padded to on their own."""
    longest = max((_inputs_len(as_example(e)) for e in examples if e is not None), default=1)
    return pick_bucket(longest, buckets)


@dataclasses.dataclass(frozen=True)
class BatchShape:
    """The array sizes of one batch: micro-batches, rows per micro-batch, T, loss slots per row, K."""

    accum: int
    rows: int
    width: int
    slots: int
    k: int

    def as_list(self) -> list[int]:
        return [self.rows, self.width, self.slots, self.k]

    def merged(self, others: np.ndarray) -> BatchShape:
        """The elementwise maximum with other processes' `as_list()` rows (so all agree on one shape)."""
        rows, width, slots, k = (int(x) for x in np.max(others, axis=0))
        return dataclasses.replace(self, rows=rows, width=width, slots=slots, k=k)


def reuse_shape(shape: BatchShape, compiled: Sequence[BatchShape], borrowed: int = 0) -> BatchShape:
    """The cheapest of the `compiled` shapes that holds `shape` (the same micro-batches and K, no size smaller)
    with at most REUSE_GROWTH times its token cells and head slots; `shape` itself when none does or when `shape`
    has already borrowed REUSE_TIMES times. A step over some padding costs a fraction of compiling the step for
    one more shape (on two CPU cores, seconds against 10-30 s), but only a few times."""
    if borrowed >= REUSE_TIMES or shape in compiled:
        return shape
    cells = shape.accum * shape.rows * shape.width
    fits = [
        c for c in compiled
        if (c.accum, c.k) == (shape.accum, shape.k)
        and c.rows >= shape.rows and c.width >= shape.width and c.slots >= shape.slots
        and c.accum * c.rows * c.width <= REUSE_GROWTH * cells
        and c.rows * c.slots <= REUSE_GROWTH * shape.rows * shape.slots
    ]
    return min(fits, key=lambda c: (c.rows * c.width, c.rows * c.slots), default=shape)


@dataclasses.dataclass(frozen=True)
class Placement:
    """Which examples go where: `rows[a]` lists micro-batch a's rows, each a list of example indices."""

    rows: list[list[list[int]]]
    shape: BatchShape


def _first_fit(
    sizes: Sequence[tuple[int, int]], width: int, slots: int, max_rows: int | None = None
) -> list[list[int]] | None:
    """First-fit decreasing of units of (input tokens, loss positions) into rows of at most `width` tokens and
    `slots` loss positions, at most `max_rows` rows: each row's unit indices (sorted), or None when they do not
    fit."""
    rows: list[list[int]] = []
    room: list[tuple[int, int]] = []
    for u in sorted(range(len(sizes)), key=lambda u: (-sizes[u][0], -sizes[u][1], u)):
        n, loss = sizes[u]
        row = next((r for r, (free, left) in enumerate(room) if free >= n and left >= loss), None)
        if row is None:
            if n > width or loss > slots or len(rows) == max_rows:
                return None
            rows.append([])
            room.append((width, slots))
            row = len(rows) - 1
        rows[row].append(u)
        room[row] = (room[row][0] - n, room[row][1] - loss)
    return [sorted(r) for r in rows]


def _pack(lengths: dict[int, int], width: int) -> list[list[int]]:
    """First-fit decreasing: example indices grouped into rows of at most `width` input tokens."""
    ids = sorted(lengths, key=lambda i: (-lengths[i], i))  # longest first before clipping, as ties break by it
    rows = _first_fit([(min(lengths[i], width), 0) for i in ids], width, 0)
    assert rows is not None  # every length is clipped to the width and no row limit applies
    return [sorted(ids[u] for u in row) for row in rows]


def pack_into(
    examples: Sequence[Example | tuple | None], shape: BatchShape, groups: Sequence[Sequence[int]] | None = None
) -> Placement | None:
    """`examples` laid out in a given (compiled) `shape`, or None when they do not fit it: first-fit
    decreasing into its accum x rows rows of `shape.width` tokens holding at most `shape.slots` loss positions
    each, of single examples or, with `groups` (e.g. the rows of another placement), of those groups kept
    end to end. A batch whose own cheapest layout is a new shape often fits a compiled one of no more token
    cells (4 rows of 128 tokens are 2 rows of 256 end to end), with the same loss: no compilation for nothing."""
    present = {i: as_example(e) for i, e in enumerate(examples) if e is not None}
    if shape.slots == shape.width or max((_k(e) for e in present.values()), default=1) > shape.k:
        return None  # a full head, or more soft targets than the step takes
    if any(_inputs_len(e) > shape.width for e in present.values()):
        return None  # rows this narrow would cut an example
    units = [list(g) for g in groups if g] if groups is not None else [[i] for i in present]
    sizes = [
        (sum(_inputs_len(present[i]) for i in u), sum(_loss_positions(present[i], shape.width) for i in u))
        for u in units
    ]
    rows = _first_fit(sizes, shape.width, shape.slots, shape.accum * shape.rows)
    if rows is None:
        return None
    packed = [sorted(i for u in row for i in units[u]) for row in rows]
    layout = [[packed[j] for j in range(a, len(packed), shape.accum)] for a in range(shape.accum)]
    layout = [micro + [[] for _ in range(shape.rows - len(micro))] for micro in layout]
    return Placement(layout, shape)


def _row_buckets(max_rows: int, multiple: int) -> list[int]:
    """Allowed rows per micro-batch: `multiple` times powers of two, capped at `max_rows` (rounded up)."""
    top = -(-max_rows // multiple) * multiple
    out, n = [], multiple
    while n < top:
        out.append(n)
        n *= 2
    return [*out, top]


def _loss_positions(example: Example, width: int) -> int:
    mask = np.asarray(example.loss_mask[1 : width + 1])
    return int(np.count_nonzero(mask))


def _k(example: Example) -> int:
    return 1 if example.soft_ids is None else int(np.asarray(example.soft_ids).shape[1])


def place(
    examples: Sequence[Example | tuple | None],
    rows: int,
    accum: int,
    buckets: Sequence[int],
    *,
    pack: bool = False,
    row_multiple: int = 1,
    full_head: bool = False,
    width: int | None = None,
) -> Placement:
    """Lay out `examples` (at most rows * accum of them; None = no example) and compute the batch shape.

    Unpacked: micro-batch a holds examples[a * rows : (a + 1) * rows], one per row, padded to `rows` rows of
    the bucket of the longest example. Packed: the examples are packed into as few rows as the cheapest bucket
    width allows (at least the longest example's), spread over the micro-batches, and the rows per
    micro-batch are rounded up to a bucket (a multiple of `row_multiple`, at most `rows` rounded up to it);
    of equally cheap layouts the one with the widest rows up to WIDE_ROWS tokens is taken.
    Loss slots per row: T with `full_head`, else the bucket of the most loss positions in a row.
    """
    if len(examples) > rows * accum:
        raise ValueError(f"{len(examples)} examples do not fit {accum} micro-batches of {rows} rows")
    present = {i: as_example(e) for i, e in enumerate(examples) if e is not None}
    k = max((_k(e) for e in present.values()), default=1)
    smallest = batch_width(list(present.values()), buckets) if width is None else width
    if not pack:
        layout = [[[a * rows + r] if a * rows + r in present else [] for r in range(rows)] for a in range(accum)]
        return _finish(layout, present, accum, rows, smallest, k, full_head)
    lengths = {i: _inputs_len(e) for i, e in present.items()}
    allowed = _row_buckets(rows, row_multiple)
    best: tuple[tuple[int, int, int], Placement] | None = None
    candidates = [width] if width is not None else [b for b in buckets if b >= smallest] or [smallest]
    for candidate in candidates:
        packed = _pack(lengths, candidate)
        per_micro = pick_bucket(max(-(-len(packed) // accum), 1), allowed)
        layout = [[packed[j] for j in range(a, len(packed), accum)] for a in range(accum)]
        layout = [micro + [[] for _ in range(per_micro - len(micro))] for micro in layout]
        placement = _finish(layout, present, accum, per_micro, candidate, k, full_head)
        # Cheapest first: token cells, then head slots, then the widest row up to WIDE_ROWS tokens: ties are
        # common (rows come in powers of two) and wide rows keep a run's batches to few shapes, each one
        # compilation of the step; past WIDE_ROWS the narrower (attention grows with the width at equal cells).
        cost = (per_micro * candidate, per_micro * placement.shape.slots, max(candidate, WIDE_ROWS), -candidate)
        if best is None or cost < best[0]:
            best = (cost, placement)
    assert best is not None
    return best[1]


def _finish(
    layout: list[list[list[int]]], present: dict[int, Example], accum: int, rows: int, width: int, k: int,
    full_head: bool,
) -> Placement:
    most = max((sum(_loss_positions(present[i], width) for i in row) for micro in layout for row in micro),
               default=1)
    slots = width if full_head else pick_bucket(max(most, 1), length_buckets(width, min(MIN_SLOTS, width)))
    return Placement(layout, BatchShape(accum=accum, rows=rows, width=width, slots=slots, k=k))


def _soft_rows(example: Example, n: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[n, k] target ids and weights and [n] offsets for the n targets ids[1 : n + 1] of an example."""
    ids = np.asarray(example.ids, np.int32)
    targets = np.zeros((n, k), np.int32)
    weights = np.zeros((n, k), np.float32)
    offsets = np.zeros((n,), np.float32)
    if example.soft_ids is None:
        targets[:, 0] = ids[1 : n + 1]
        weights[:, 0] = 1.0
        return targets, weights, offsets
    soft_ids = np.asarray(example.soft_ids)[1 : n + 1]
    soft_weights = np.asarray(example.soft_weights, np.float32)[1 : n + 1]
    used = soft_weights != 0
    width = soft_ids.shape[1]
    targets[:, :width] = np.where(used, soft_ids, 0)  # unused slots may hold anything, e.g. -1
    weights[:, :width] = np.where(used, soft_weights, 0.0)
    if example.soft_offset is not None:
        offsets[:] = np.asarray(example.soft_offset, np.float32)[1 : n + 1]
    return targets, weights, offsets


def build_batch(
    examples: Sequence[Example | tuple | None], placement: Placement, pad_id: int, shape: BatchShape | None = None
) -> dict[str, np.ndarray]:
    """The arrays of a placed batch (see the module docstring), sized by `shape` (default: the placement's; a
    larger one agreed with other processes is allowed)."""
    s = shape or placement.shape
    full_head = s.slots == s.width
    lead = (s.accum, s.rows)
    batch = {
        "inputs": np.full((*lead, s.width), pad_id, np.int32),
        "positions": np.zeros((*lead, s.width), np.int32),
        "segments": np.zeros((*lead, s.width), np.int32),
        "loss_index": np.broadcast_to(np.arange(s.slots, dtype=np.int32) if full_head else
                                      np.zeros(s.slots, np.int32), (*lead, s.slots)).copy(),
        "slot_mask": np.zeros((*lead, s.slots), np.float32),
        "targets": np.zeros((*lead, s.slots, s.k), np.int32),
        "weights": np.zeros((*lead, s.slots, s.k), np.float32),
        "offsets": np.zeros((*lead, s.slots), np.float32),
    }
    for a, micro in enumerate(placement.rows):
        for r, row in enumerate(micro):
            start, slot = 0, 0
            for segment, index in enumerate(row, start=1):
                example = as_example(examples[index])
                n = min(_inputs_len(example), s.width - start, len(example.ids) - 1)
                if n <= 0:
                    continue
                ids = np.asarray(example.ids, np.int32)
                cells = slice(start, start + n)
                batch["inputs"][a, r, cells] = ids[:n]
                batch["positions"][a, r, cells] = np.arange(n)
                batch["segments"][a, r, cells] = segment
                targets, weights, offsets = _soft_rows(example, n, s.k)
                loss = np.flatnonzero(np.asarray(example.loss_mask)[1 : n + 1])
                # The full head's slot of a position is the position itself; otherwise slots fill in order.
                slots = start + loss if full_head else np.arange(slot, slot + len(loss))
                batch["loss_index"][a, r, slots] = start + loss
                batch["slot_mask"][a, r, slots] = 1.0
                batch["targets"][a, r, slots] = targets[loss]
                batch["weights"][a, r, slots] = weights[loss]
                batch["offsets"][a, r, slots] = offsets[loss]
                slot += len(loss)
                start += n
    return batch


def make_batch(
    examples: Sequence[Example | tuple | None],
    rows: int,
    accum: int,
    buckets: Sequence[int],
    pad_id: int,
    width: int | None = None,
    *,
    pack: bool = False,
    full_head: bool = False,
    row_multiple: int = 1,
) -> dict[str, np.ndarray]:
    """Arrays [accum, rows, ...] for `accum` micro-batches of up to `rows` examples each (see `place`);
    missing examples (None, or past the end) leave fully masked rows, so every process can take the same
    number of steps."""
    placement = place(examples, rows, accum, buckets, pack=pack, row_multiple=row_multiple, full_head=full_head,
                      width=width)
    return build_batch(examples, placement, pad_id)
