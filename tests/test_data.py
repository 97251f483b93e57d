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
    def place(state: dict) -> tuple[int, int]:
        return state["epoch"], state["position"]

    assert [place(s) for _, s in packed] == [place(s) for _, s in plain]  # same steps, same data positions
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


def _encode_length(item: TrainItem) -> tuple[list[int], list[int]]:
    n = int(item.answer)
    return list(range(5, 5 + n)), [0] + [1] * (n - 1)


def _encode_prompted(item: TrainItem) -> tuple[list[int], list[int]]:
    inputs, loss = (int(x) for x in item.answer.split(","))
    return list(range(5, 6 + inputs)), [0] * (inputs + 1 - loss) + [1] * loss


def test_a_batch_whose_own_layout_is_new_packs_into_a_compiled_shape_of_as_many_cells_instead():
    first = ["14,2"] * 8  # 4 per row of 64 tokens: the compiled 1 x 2 x 64 with 16 loss slots
    # first-fit decreasing needs 3 rows of 64 (4 with the bucket): the own layout is 4 rows of 32, which end to
    # end are the compiled 2 rows of 64
    second = ["24,5", "13,1", "8,5", "26,5", "19,1", "5,1", "5,1", "26,2"]
    buffer = ItemBuffer([TrainItem(answer=a) for a in first + second])
    buffer.close()
    stream = BatchStream(buffer, _encode_prompted, epochs=1, rows=8, accum=1, buckets=(16, 32, 64), pad_id=0,
                         seed=0, pack=True)
    run = [(b, s) for b, s in stream]
    assert [b["inputs"].shape for b, _ in run] == [(1, 2, 64), (1, 2, 64)]
    assert [float(b["slot_mask"].sum()) for b, _ in run] == [16.0, 21.0]  # every answer token
    assert run[-1][1]["shapes"] == [[1, 2, 64, 16, 1]] and run[-1][1]["borrowed"] == []


def test_a_new_batch_shape_borrows_a_compiled_one_twice_then_compiles_and_resume_does_the_same():
    lengths = [7] * 4 + [5] * 12 + [3]
    buffer = ItemBuffer([TrainItem(answer=str(n)) for n in lengths])
    buffer.close()

    def stream() -> BatchStream:
        return BatchStream(buffer, _encode_length, epochs=1, rows=2, accum=2, buckets=(4, 8), pad_id=0, seed=7,
                           pack=True)

    run = [(b, s) for b, s in stream()]
    shapes = [b["inputs"].shape for b, _ in run]
    # four 5-token examples pack into 2 x 1 x 8: twice they take the first batch's 2 x 2 x 8 (no compilation),
    # the third time their own shape; the 3-token example (2 x 1 x 4) then takes 2 x 1 x 8
    assert shapes == [(2, 2, 8), (2, 2, 8), (2, 2, 8), (2, 1, 8), (2, 1, 8)]
    assert [float(b["slot_mask"].sum()) for b, _ in run] == [24.0, 16.0, 16.0, 16.0, 2.0]  # every answer token
    last = run[-1][1]
    assert [s[:3] for s in last["shapes"]] == [[2, 2, 8], [2, 1, 8]]  # [accum, rows, width, slots, k]
    assert [(s[:3], s[-1]) for s in last["borrowed"]] == [([2, 1, 8], 2), ([2, 1, 4], 1)]
    for cut in range(len(run)):
        resumed = stream()
        resumed.restore(run[cut][1])
        assert [b["inputs"].shape for b, _ in resumed] == shapes[cut + 1 :]
    fresh = stream()
    fresh.restore({k: v for k, v in run[1][1].items() if k in ("epoch", "position")})  # an older checkpoint
    assert next(iter(fresh))[0]["inputs"].shape == (2, 1, 8)
