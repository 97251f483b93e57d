"""Training data for absorb: a growing QA buffer fed by the generator thread, read as Grain datasets.

Epoch 1 streams the buffer in arrival order (the order the QA cache records), blocking only while the next
example has not been generated yet. Epochs 2+ read the finished buffer through a seeded Grain shuffle. The
iterator state (epoch, position) is a small dict saved with each checkpoint, so a resumed run sees exactly the
batches it would have seen.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grain
import numpy as np

from lift_jax.batching import Example, make_batch


@dataclasses.dataclass(frozen=True)
class TrainItem:
    """One training item: a QA pair, or a raw text chunk (Finetune-Raw) when `question` is None."""

    answer: str
    question: str | None = None


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
            if self._error is not None:
                raise RuntimeError(f"the QA generator failed: {self._error}") from self._error
            return self._items[index] if index < len(self._items) else None

    def wait_closed(self) -> list[TrainItem]:
        """Block until the stream is complete and return a snapshot of all items."""
        with self._cond:
            while not self._closed:
                self._cond.wait()
            if self._error is not None:
                raise RuntimeError(f"the QA generator failed: {self._error}") from self._error
            return list(self._items)

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
    """Epoch `epoch` (>= 2) over the complete item list, shuffled by (seed, epoch)."""
    return grain.MapDataset.source(list(items)).shuffle(seed=seed * 1000 + epoch)


class BatchStream:
    """Yields training batches over `epochs` epochs of the buffer; `state()` / `restore()` for checkpoints.

    Each batch holds `rows * accum` examples (the last batch of an epoch is padded with fully masked rows).
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
    ):
        self.buffer, self.encode = buffer, encode
        self.epochs, self.rows, self.accum = epochs, rows, accum
        self.buckets, self.pad_id, self.seed = buckets, pad_id, seed
        self.epoch, self.position = 1, 0

    def state(self) -> dict[str, int]:
        """Where the next batch starts: epoch (1-based) and item position within it."""
        return {"epoch": self.epoch, "position": self.position}

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a `state()` taken earlier."""
        self.epoch, self.position = int(state["epoch"]), int(state["position"])

    def _epoch_iterator(self) -> Iterator[TrainItem]:
        if self.epoch == 1:
            iterator = StreamDataset(self.buffer).__iter__()
            iterator.set_state({"next": self.position})
            return iterator
        dataset = shuffled_epoch(self.buffer.wait_closed(), self.seed, self.epoch)
        return (dataset[i] for i in range(self.position, len(dataset)))

    def __iter__(self) -> Iterator[tuple[dict[str, np.ndarray], dict[str, int]]]:
        """Yield (batch, state after the batch); the state is what a checkpoint taken after it should store."""
        per_batch = self.rows * self.accum
        while self.epoch <= self.epochs:
            items = self._epoch_iterator()
            while True:
                chunk = [item for _, item in zip(range(per_batch), items, strict=False)]
                if not chunk:
                    break
                self.position += len(chunk)
                batch = make_batch([self.encode(i) for i in chunk], self.rows, self.accum, self.buckets, self.pad_id)
                yield batch, self.state()
                if len(chunk) < per_batch:
                    break
            self.epoch, self.position = self.epoch + 1, 0

    def epoch_length(self) -> int | None:
        """Items per epoch once generation has finished (None while epoch 1 is still streaming)."""
        return len(self.buffer) if self.buffer.closed else None
