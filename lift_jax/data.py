"""Training data for absorb: a growing QA buffer fed by the generator thread, read as Grain datasets.

Epoch 1 streams the buffer in arrival order (the order the QA cache records), blocking only while the next
example has not been generated yet. Epochs 2+ read the finished buffer through a seeded Grain shuffle. The
iterator state (epoch, position) is a small dict saved with each checkpoint, so a resumed run sees exactly the
batches it would have seen.

With several processes each buffer holds only this process's share of the document, and every batch is the
process's rows of one global batch. Epoch 1: each process streams its own buffer and all agree, before every
step, whether anyone still has rows (a process short of rows contributes fully masked ones), so all take the
same number of steps. Epochs 2+: every process shuffles the union of all buffers, in canonical order
(`TrainItem.order`), with the shared seed, and takes its slice of each global batch; that union and its order
do not depend on the process count, so these epochs match a single-process run batch for batch.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grain
import jax
import numpy as np

from lift_jax.batching import (
    BatchShape,
    Example,
    Placement,
    batch_width,
    build_batch,
    pack_into,
    place,
    reuse_shape,
)
from lift_jax.distributed import all_processes, all_processes_json
from lift_jax.errors import LiftError


@dataclasses.dataclass(frozen=True)
class TrainItem:
    """One training item: a QA pair, or a raw text chunk (Finetune-Raw) when `question` is None.

    `order` is the item's canonical place in the document: (sentence index, pair index) for a QA pair, (-1,
    chunk index) for a raw chunk; items that tie keep their arrival order.
    """

    answer: str
    question: str | None = None
    order: tuple[int, int] = (0, 0)
    teacher: Any = None  # lift+cd: the teacher's TeacherAnswer for `question` (answer = its text)


class QAGenerationError(LiftError, RuntimeError):
    """The QA generator thread stopped on a LiftError; raised in the trainer's thread, naming the cause."""


class ItemBuffer:
    """Thread-safe append-only list of TrainItems with an end-of-stream marker (and producer error)."""

    def __init__(self, items: Sequence[TrainItem] = ()):
        self._items: list[TrainItem] = list(items)
        self._closed = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()

    def extend(self, items: Sequence[TrainItem]) -> None:
        """Append items and wake the consumer."""
        with self._cond:
            self._items.extend(items)
            self._cond.notify_all()

    def close(self, error: BaseException | None = None) -> None:
        """Mark the stream complete (or failed with `error`)."""
        with self._cond:
            self._closed, self._error = True, error
            self._cond.notify_all()

    def get(self, index: int) -> TrainItem | None:
        """Item `index`, waiting for it if the producer is still running; None past the end of the stream."""
        with self._cond:
            while index >= len(self._items) and not self._closed:
                self._cond.wait()
            self._raise_error()
            return self._items[index] if index < len(self._items) else None

    def wait_closed(self) -> list[TrainItem]:
        """Block until the stream is complete and return a snapshot of all items."""
        with self._cond:
            while not self._closed:
                self._cond.wait()
            self._raise_error()
            return list(self._items)

    def _raise_error(self) -> None:
        if self._error is not None:
            # A LiftError (generator unusable, cache unwritable) is the CLI's one `error:` line; anything else
            # is a bug and keeps its traceback.
            kind = QAGenerationError if isinstance(self._error, LiftError) else RuntimeError
            raise kind(f"the QA generator failed: {self._error}") from self._error

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


class _StreamIterator(grain.DatasetIterator):
    """Epoch-1 iterator over an ItemBuffer in arrival order; state = next index."""

    def __init__(self, buffer: ItemBuffer, start: int = 0):
        super().__init__()
        self._buffer = buffer
        self._next = start

    def __next__(self) -> TrainItem:
        item = self._buffer.get(self._next)
        if item is None:
            raise StopIteration
        self._next += 1
        return item

    def get_state(self) -> dict[str, int]:
        return {"next": self._next}

    def set_state(self, state: dict[str, int]) -> None:
        self._next = int(state["next"])


class StreamDataset(grain.IterDataset):
    """A Grain IterDataset over an ItemBuffer that may still be growing."""

    def __init__(self, buffer: ItemBuffer):
        super().__init__()
        self._buffer = buffer

    def __iter__(self) -> _StreamIterator:
        return _StreamIterator(self._buffer)


def shuffled_epoch(items: Sequence[TrainItem], seed: int, epoch: int) -> grain.MapDataset:
    """Epoch `epoch` (>= 2) over the complete item list in canonical order, shuffled by (seed, epoch)."""
    return grain.MapDataset.source(sorted(items, key=lambda item: item.order)).shuffle(seed=seed * 1000 + epoch)


def all_items(items: Sequence[TrainItem]) -> list[TrainItem]:
    """The union of every process's `items` (process order; collective: every process must call it)."""
    if jax.process_count() == 1:  # nothing to exchange; items keep every field (lift+cd's teacher targets)
        return list(items)
    rows = all_processes_json([[item.answer, item.question, list(item.order)] for item in items])
    return [TrainItem(answer=a, question=q, order=(o[0], o[1])) for part in rows for a, q, o in part]


class BatchStream:
    """Yields this process's part of each global batch over `epochs` epochs; `state()` / `restore()` for
    checkpoints.

    A batch holds `rows * accum` examples (rows = this process's share of the global batch's examples per
    micro-batch); the last batch of an epoch is padded with fully masked rows. With `pack` the examples of a
    batch are packed into fewer, fuller rows (a multiple of `row_multiple` per micro-batch; see
    `lift_jax.batching.place`): the same examples and loss, less padding. With several processes, iterating is
    collective: every process must iterate its stream in step with the others.
    """

    def __init__(
        self,
        buffer: ItemBuffer,
        encode: Callable[[TrainItem], Example],
        *,
        epochs: int,
        rows: int,
        accum: int,
        buckets: Sequence[int],
        pad_id: int,
        seed: int,
        pack: bool = False,
        row_multiple: int = 1,
    ):
        self.buffer, self.encode = buffer, encode
        self.epochs, self.rows, self.accum = epochs, rows, accum
        self.pack, self.row_multiple = pack, row_multiple
        self.buckets, self.pad_id, self.seed = buckets, pad_id, seed
        self.epoch, self.position = 1, 0
        self.shapes: list[BatchShape] = []  # every batch shape yielded so far: each is one compiled step
        self.borrowed: dict[BatchShape, int] = {}  # how often a batch shape took one of `shapes` instead
        self._union: list[TrainItem] | None = None

    def state(self) -> dict[str, Any]:
        """Where the next batch starts: epoch (1-based) and item position within it (epoch 1: within this
        process's buffer; later epochs: within the global shuffled epoch); and the batch shapes used so far
        (`shapes`, as [accum, rows, width, slots, k]), so a resumed run lays its batches out as this one would."""
        shapes = [[s.accum, *s.as_list()] for s in self.shapes]
        borrowed = [[s.accum, *s.as_list(), n] for s, n in self.borrowed.items()]
        return {"epoch": self.epoch, "position": self.position, "shapes": shapes, "borrowed": borrowed}

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a `state()` taken earlier."""
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self.shapes = [BatchShape(*map(int, s)) for s in state.get("shapes", [])]
        self.borrowed = {BatchShape(*map(int, s[:5])): int(s[5]) for s in state.get("borrowed", [])}

    def _streamed(self) -> Iterator[tuple[list[TrainItem | None], int]]:
        """Epoch 1: (this process's next chunk, items it consumed), empty chunks once its stream has ended."""
        iterator = StreamDataset(self.buffer).__iter__()
        iterator.set_state({"next": self.position})
        while True:
            chunk: list[TrainItem | None] = [item for _, item in zip(range(self.rows * self.accum), iterator,
                                                                      strict=False)]
            yield chunk, len(chunk)

    def _shuffled(self) -> Iterator[tuple[list[TrainItem | None], int]]:
        """Epochs 2+: (this process's slots of the next global chunk, global items consumed)."""
        if self._union is None:
            self._union = all_items(self.buffer.wait_closed())
        dataset = shuffled_epoch(self._union, self.seed, self.epoch)
        ways, rank = jax.process_count(), jax.process_index()
        global_rows = self.rows * ways  # per micro-batch; micro-batch a of a chunk is its a-th run of them
        for start in range(self.position, len(dataset), global_rows * self.accum):
            end = min(start + global_rows * self.accum, len(dataset))
            slots = [
                start + a * global_rows + rank * self.rows + r for a in range(self.accum) for r in range(self.rows)
            ]
            yield [dataset[i] if i < end else None for i in slots], end - start

    def __iter__(self) -> Iterator[tuple[dict[str, np.ndarray], dict[str, int]]]:
        """Yield (batch, state after the batch); the state is what a checkpoint taken after it should store."""
        while self.epoch <= self.epochs:
            chunks = self._streamed() if self.epoch == 1 else self._shuffled()
            for chunk, consumed in chunks:
                examples = [None if item is None else self.encode(item) for item in chunk]
                filled = sum(item is not None for item in chunk)
                agreed = all_processes([filled, batch_width(examples, self.buckets)])
                if not agreed[:, 0].any():
                    break
                self.position += consumed
                yield self._batch(examples, int(agreed[:, 1].max())), self.state()
                if agreed[:, 0].max() < self.rows * self.accum:  # nobody had a full chunk: the epoch is over
                    break
            self.epoch, self.position = self.epoch + 1, 0

    def _batch(self, examples: list[Example | None], longest: int) -> dict[str, np.ndarray]:
        """This process's part of one global batch; every process agrees on its shape (collective)."""
        def placed(width: int | None) -> Placement:
            return place(examples, self.rows, self.accum, self.buckets, pack=self.pack,
                         row_multiple=self.row_multiple, width=width)

        width = longest
        if self.pack:  # each process proposes the width it packs best at; all pack at the widest proposal
            width = int(all_processes([max(placed(None).shape.width, longest)])[:, 0].max())
        placement = placed(width)
        own = placement.shape.merged(all_processes(placement.shape.as_list()))
        if self.pack and own not in self.shapes:
            repacked = self._repacked(examples, placement, own, longest)
            if repacked is not None:
                return build_batch(examples, repacked, self.pad_id)
        shape = reuse_shape(own, self.shapes, self.borrowed.get(own, 0))
        if shape != own:
            self.borrowed[own] = self.borrowed.get(own, 0) + 1
        elif shape not in self.shapes:
            self.shapes.append(shape)
        return build_batch(examples, placement, self.pad_id, shape)

    def _repacked(
        self, examples: list[Example | None], placement: Placement, own: BatchShape, longest: int
    ) -> Placement | None:
        """The batch packed into a compiled shape of no more token cells than its own new one, if every process's
        examples fit one (collective; the cheapest such shape); None otherwise. Free: no padding is added, so
        unlike borrowing it is not counted against the shape."""
        cells = own.accum * own.rows * own.width
        candidates = sorted(
            (c for c in self.shapes
             if (c.accum, c.k) == (own.accum, own.k) and c.width >= longest and c.accum * c.rows * c.width <= cells),
            key=lambda c: (c.rows * c.width, c.rows * c.slots, -c.width),
        )
        if not candidates:
            return None
        rows = [row for micro in placement.rows for row in micro]
        placements = [pack_into(examples, c) or pack_into(examples, c, rows) for c in candidates]
        fits = all_processes([p is not None for p in placements]).all(axis=0)
        return next((p for p, ok in zip(placements, fits, strict=True) if ok), None)
