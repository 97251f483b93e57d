"""The absorb data stream: epoch-1 streaming order, seeded later epochs, exact resume, producer errors."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from lift_jax.data import BatchStream, ItemBuffer, TrainItem


def _encode(item: TrainItem) -> tuple[list[int], list[int]]:
    n = int(item.answer)
    return [n, n + 1, n + 2], [0, 1, 1]


def _stream(buffer: ItemBuffer, epochs: int = 3, pack: bool = False) -> BatchStream:
    return BatchStream(buffer, _encode, epochs=epochs, rows=2, accum=2, buckets=(4,), pad_id=0, seed=7, pack=pack)


def _firsts(batch: dict[str, np.ndarray]) -> list[int]:
    """The first token of every example in the batch, micro-batch by micro-batch, row by row."""
    inputs = batch["inputs"].reshape(-1, batch["inputs"].shape[-1])
    positions = batch["positions"].reshape(inputs.shape)
    segments = batch["segments"].reshape(inputs.shape)
    return [int(t) for t, p, s in zip(inputs.ravel(), positions.ravel(), segments.ravel(), strict=True)
            if s > 0 and p == 0]


def _items(n: int) -> list[TrainItem]:
    return [TrainItem(answer=str(10 * (i + 1))) for i in range(n)]


def test_epochs_cover_every_item_once_and_later_epochs_are_shuffled():
    buffer = ItemBuffer(_items(10))
    buffer.close()
    seen = [(state["epoch"], _firsts(batch)) for batch, state in _stream(buffer)]
    by_epoch: dict[int, list[int]] = {}
    for i, (_, firsts) in enumerate(seen):
        epoch = 1 + i // 3  # 10 items in batches of 4 -> 3 batches per epoch
        by_epoch.setdefault(epoch, []).extend(firsts)
    assert len(seen) == 9
    assert by_epoch[1] == [10 * (i + 1) for i in range(10)]  # arrival order
    assert sorted(by_epoch[2]) == sorted(by_epoch[3]) == by_epoch[1]
    assert by_epoch[2] != by_epoch[1] and by_epoch[2] != by_epoch[3]


def test_partial_last_batch_is_padded_with_masked_rows():
    buffer = ItemBuffer(_items(5))
    buffer.close()
    batches = [b for b, _ in _stream(buffer, epochs=1)]
    assert [int((b["segments"][..., 0] > 0).sum()) for b in batches] == [4, 1]
    assert batches[1]["weights"].sum() == 2.0 and batches[1]["inputs"].shape == (2, 2, 4)


def test_packed_epochs_hold_the_same_examples_in_fewer_rows():
    buffer = ItemBuffer(_items(10))
    buffer.close()
    plain = [(b, s) for b, s in _stream(buffer)]
    packed = [(b, s) for b, s in _stream(buffer, pack=True)]
    assert [s for _, s in packed] == [s for _, s in plain]  # same steps, same checkpoint states
    for (p, _), (u, _) in zip(packed, plain, strict=True):
        assert sorted(_firsts(p)) == sorted(_firsts(u))
        assert p["slot_mask"].sum() == u["slot_mask"].sum()
    # two 2-token examples per row of 4: a micro-batch of 2 examples is one row
    assert packed[0][0]["inputs"].shape == (2, 1, 4) and plain[0][0]["inputs"].shape == (2, 2, 4)


def test_resume_from_any_state_gives_the_same_batches():
    buffer = ItemBuffer(_items(7))
    buffer.close()
    full = [(b, s) for b, s in _stream(buffer)]
    for cut in range(len(full)):
        resumed = _stream(buffer)
        resumed.restore(full[cut][1])
        rest = [_firsts(b) for b, _ in resumed]
        assert rest == [_firsts(b) for b, _ in full[cut + 1 :]]


def test_epoch_one_waits_for_the_producer_and_starts_before_it_finishes():
    buffer = ItemBuffer()
    started_at: list[float] = []

    def produce() -> None:
        for item in _items(8):
            time.sleep(0.05)
            buffer.extend([item])
        buffer.close()

    thread = threading.Thread(target=produce)
    t0 = time.perf_counter()
    thread.start()
    batches = []
    for batch, _ in _stream(buffer, epochs=2):
        started_at.append(time.perf_counter() - t0)
        batches.append(_firsts(batch))
    thread.join()
    assert batches[0] == [10, 20, 30, 40]
    assert started_at[0] < 0.05 * 8  # the first batch did not wait for the whole stream
    assert len(batches) == 4


def test_a_producer_error_reaches_the_trainer():
    buffer = ItemBuffer(_items(1))
    buffer.close(error=ConnectionError("server at 127.0.0.1:9 refused"))
    with pytest.raises(RuntimeError, match="QA generator failed: server at 127.0.0.1:9 refused"):
        list(_stream(buffer))
