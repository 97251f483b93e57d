"""Batches of soft / hard targets, answer-only heads and packed rows: the step's loss and gradients equal a float64
reference computed from the full logits of one unpacked example per row."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from tiny_models import VOCAB
from train_helpers import lora_model

from lift_jax.batching import (
    REUSE_TIMES,
    WIDE_ROWS,
    BatchShape,
    Example,
    build_batch,
    length_buckets,
    make_batch,
    pack_into,
    place,
    reuse_shape,
)
from lift_jax.train import LoRATrainer, OptimizerConfig

BUCKETS = length_buckets(64, 16)


def _examples(seed: int) -> list[Example | tuple | None]:
    """Soft examples (varying K, unused slots holding -1, nonzero offsets), hard tuples and a missing one."""
    rng = np.random.RandomState(seed)
    out: list[Example | tuple | None] = []
    for i, n in enumerate((23, 9, 30, 14, 17, 11, 26)):
        ids = rng.randint(6, VOCAB, n).tolist()
        prompt = rng.randint(2, n - 3)
        mask = [0] * prompt + [1] * (n - prompt)
        if i % 3 == 2:
            out.append((ids, mask))
            continue
        k = 3 + i % 4
        soft_ids = rng.randint(0, VOCAB, (n, k)).astype(np.int32)
        soft_weights = rng.dirichlet(np.ones(k), n).astype(np.float32) * 1.3
        soft_weights[:, -1] = 0.0  # an unused slot ...
        soft_ids[:, -1] = -1  # ... may hold anything
        soft_ids[:prompt] = 999_999  # rows without loss are ignored
        offset = rng.normal(size=n).astype(np.float32)
        out.append(Example(ids, mask, soft_ids, soft_weights, offset))
    out.insert(3, None)  # a fully padded row
    return out


def _randomize_adapter(trainer: LoRATrainer, seed: int) -> None:
    """Nonzero A and B, so every adapter parameter gets a gradient."""
    leaves, treedef = jax.tree.flatten(trainer.lora)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    trainer.lora = jax.tree.unflatten(
        treedef, [0.1 * jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves, strict=True)]
    )


def _reference(trainer: LoRATrainer, examples: list) -> tuple[float, list[np.ndarray]]:
    """Loss and adapter gradients from the full [rows, T, V] logits (autodiff of the plain model) with the loss
    and its logit gradient computed in float64 NumPy straight from the Examples."""
    rows = [Example(*e) if not isinstance(e, Example) else e for e in examples if e is not None]
    width = max(len(e.ids) for e in rows) - 1
    inputs = np.zeros((len(rows), width), np.int32)
    mask = np.zeros((len(rows), width), bool)
    for r, e in enumerate(rows):
        inputs[r, : len(e.ids) - 1] = e.ids[:-1]
        mask[r, : len(e.ids) - 1] = True

    def logits_of(lora: nnx.State) -> jax.Array:
        model = nnx.merge(trainer.graphdef, lora, trainer.rngs, trainer.base)
        return model(jnp.asarray(inputs), attention_mask=jnp.asarray(mask))

    logits, vjp = jax.vjp(logits_of, trainer.lora)
    logits = np.asarray(logits, np.float64)
    logp = logits - np.log(np.sum(np.exp(logits - logits.max(-1, keepdims=True)), -1, keepdims=True)) \
        - logits.max(-1, keepdims=True)
    total, count = 0.0, 0
    dlogits = np.zeros_like(logits)
    for r, e in enumerate(rows):
        for i in np.flatnonzero(np.asarray(e.loss_mask)[1:]) + 1:  # position i - 1 predicts token i
            if e.soft_ids is None:
                ids, weights, offset = np.array([e.ids[i]]), np.array([1.0]), 0.0
            else:
                used = e.soft_weights[i] != 0
                ids, weights = e.soft_ids[i][used], e.soft_weights[i][used].astype(np.float64)
                offset = float(e.soft_offset[i])
            total += float(-(weights * logp[r, i - 1, ids]).sum()) + offset
            count += 1
            dlogits[r, i - 1] += weights.sum() * np.exp(logp[r, i - 1])
            np.add.at(dlogits[r, i - 1], ids, -weights)
    (grads,) = vjp(jnp.asarray(dlogits / count, jnp.float32))
    return total / count, [np.asarray(g) for g in jax.tree.leaves(grads)]


LAYOUTS = {
    "unpacked_full_head": {"full_head": True},
    "unpacked_answer_only": {},
    "packed_answer_only": {"pack": True},
    "packed_full_head": {"pack": True, "full_head": True},
}


def _layout_batch(name: str, examples: list) -> dict[str, np.ndarray]:
    """The batch of `examples` in layout `name`: one of LAYOUTS, or `repacked_wider`, the packed rows put
    end to end into a shape of half the rows, twice the width and twice the loss slots (as a batch that fits
    a compiled shape takes it)."""
    if name != "repacked_wider":
        return make_batch(examples, rows=4, accum=2, buckets=BUCKETS, pad_id=0, **LAYOUTS[name])
    own = place(examples, 4, 2, BUCKETS, pack=True)
    s = own.shape
    wider = BatchShape(s.accum, max(s.rows // 2, 1), 2 * s.width, 2 * s.slots, s.k)
    placement = pack_into(examples, wider) or pack_into(examples, wider, [r for micro in own.rows for r in micro])
    assert placement is not None
    return build_batch(examples, placement, pad_id=0)


# Every layout on Llama 3; on the Gemma families (sliding windows crossing packed segments, soft-capped heads) the
# training default, packed with the answer-only head, and the unpacked full head. Each layout is its own compile.
@pytest.mark.parametrize(
    ("family", "layouts"),
    [
        ("llama3", [*LAYOUTS, "repacked_wider"]),
        ("gemma2", ["unpacked_full_head", "packed_answer_only"]),
        ("gemma3", ["unpacked_full_head", "packed_answer_only"]),
    ],
)
def test_every_layout_gives_the_float64_reference_loss_and_gradients(tiny_checkpoints, family, layouts):
    trainer = LoRATrainer(lora_model(tiny_checkpoints[family]), OptimizerConfig())
    _randomize_adapter(trainer, seed=3)
    examples = _examples(seed=0)
    want_loss, want_grads = _reference(trainer, examples)
    scale = max(float(np.abs(g).max()) for g in want_grads)
    for name in layouts:
        batch = _layout_batch(name, examples)
        loss, grads = trainer.gradients(batch)
        assert abs(float(loss) - want_loss) <= 1e-5 * max(1.0, abs(want_loss)), name
        for got, want in zip(jax.tree.leaves(grads), want_grads, strict=True):
            np.testing.assert_allclose(np.asarray(got) / scale, want / scale, atol=1e-5, err_msg=name)


def test_packing_lays_examples_end_to_end_with_positions_restarting():
    examples = [([7] * 10, [0] * 5 + [1] * 5), ([8] * 6, [0, 0, 1, 1, 1, 1]), ([9] * 30, [0] * 20 + [1] * 10)]
    # widths up to 32: two rows (the 29-token example alone, then the 9 and 5 of the other two)
    batch = make_batch(examples, rows=4, accum=1, buckets=BUCKETS[:2], pad_id=0, pack=True)
    assert batch["inputs"].shape == (1, 2, 32)
    segments, positions = batch["segments"][0], batch["positions"][0]
    assert segments[0].tolist() == [1] * 29 + [0] * 3
    assert segments[1].tolist() == [1] * 9 + [2] * 5 + [0] * 18
    assert positions[1, :14].tolist() == list(range(9)) + list(range(5))
    assert batch["slot_mask"].shape == (1, 2, 16) and batch["slot_mask"][0].sum(-1).tolist() == [10, 9]
    # slot j of a row predicts the token after loss_index[j]
    index, targets = batch["loss_index"][0], batch["targets"][0, :, :, 0]
    assert index[0, :10].tolist() == list(range(19, 29)) and set(targets[0, :10].tolist()) == {9}
    assert index[1, :9].tolist() == [4, 5, 6, 7, 8, 10, 11, 12, 13]
    assert targets[1, :9].tolist() == [7] * 5 + [8] * 4


def test_packed_rows_are_bucketed_and_respect_the_row_multiple():
    examples = [([5] * 12, [0] * 6 + [1] * 6)] * 8
    # 8 x 11 tokens: 8 rows of 16, 4 of 32 or 2 of 64 tokens tie; 4 x 16 and 2 x 32 head slots beat 8 x 16,
    # and of those two the wider rows win (fewer distinct shapes, so fewer compilations, over a run)
    assert place(examples, 8, 1, BUCKETS, pack=True).shape.as_list() == [2, 64, 32, 1]
    assert place(examples[:7], 8, 1, BUCKETS, pack=True).shape.as_list() == [2, 64, 32, 1]  # the same shape
    assert place(examples, 8, 1, BUCKETS, pack=True, row_multiple=3).shape.as_list() == [9, 16, 16, 1]
    assert place(examples, 4, 2, BUCKETS, pack=True).shape.as_list() == [1, 64, 32, 1]
    # 64 x 31 input tokens, 16 with loss: rows of 32 ... 512 and one row of 2048 tie on cells and head slots;
    # rows wider than WIDE_ROWS cost attention, so 512 wins
    many = [([5] * 32, [0] * 16 + [1] * 16)] * 64
    assert place(many, 64, 1, length_buckets(2048, 16), pack=True).shape.width == WIDE_ROWS
    assert place(examples[:1], 8, 1, BUCKETS).shape.as_list() == [8, 16, 16, 1]  # unpacked: rows stay rows
    with pytest.raises(ValueError, match="9 examples do not fit 1 micro-batches of 8 rows"):
        place(examples + examples[:1], 8, 1, BUCKETS)


def test_a_batch_packs_into_a_compiled_shape_of_as_many_cells_example_by_example_or_row_by_row():
    # inputs of 24, 13, 8, 26, 19, 5, 5, 26 tokens with 5, 1, 5, 5, 1, 1, 1, 2 loss positions: first-fit
    # decreasing needs 3 rows of 64 tokens (4 with the row bucket), so the batch's own layout is 4 rows of 32
    inputs, losses = (24, 13, 8, 26, 19, 5, 5, 26), (5, 1, 5, 5, 1, 1, 1, 2)
    examples = [([5] * (n + 1), [0] * (n + 1 - k) + [1] * k) for n, k in zip(inputs, losses, strict=True)]
    own = place(examples, 8, 1, BUCKETS, pack=True)
    assert own.shape == BatchShape(1, 4, 32, 16, 1)
    compiled = BatchShape(1, 2, 64, 16, 1)
    assert pack_into(examples, compiled) is None  # example by example it needs a third row
    rows = [row for micro in own.rows for row in micro]
    repacked = pack_into(examples, compiled, rows)  # ... but the 4 rows of 32 go end to end in 2 of 64
    assert repacked is not None and repacked.shape == compiled
    assert repacked.rows == [[[0, 1, 2, 4], [3, 5, 6, 7]]]
    batch = build_batch(examples, repacked, pad_id=0)
    assert batch["inputs"].shape == (1, 2, 64) and batch["slot_mask"].sum() == sum(losses)
    assert pack_into(examples, BatchShape(1, 2, 64, 8, 1), rows) is None  # 21 loss positions, 2 x 8 slots
    assert pack_into(examples, BatchShape(1, 8, 16, 8, 1)) is None  # rows of 16 would cut examples
    assert pack_into(examples, BatchShape(1, 2, 64, 64, 1)) is None  # slots = width: the full-head step
    ten = BatchShape(1, 1, 128, 32, 1)  # a longer row takes the examples one by one
    assert pack_into(examples, ten).rows == [[list(range(8))]]
    soft = [Example([5] * 9, [0] * 5 + [1] * 4, np.zeros((9, 3), np.int32), np.ones((9, 3), np.float32))]
    assert pack_into(soft, ten) is None  # 3 soft targets per position: not the hard-target (K = 1) step


def test_reuse_shape_takes_the_cheapest_compiled_shape_that_holds_the_batch():
    shape = BatchShape(accum=1, rows=4, width=128, slots=32, k=1)
    compiled = [
        BatchShape(1, 4, 256, 128, 1),  # holds it at twice the cells, more head slots
        BatchShape(1, 8, 128, 32, 1),  # holds it at twice the cells: the cheapest
        BatchShape(1, 4, 128, 32, 20),  # another K: another step
        BatchShape(1, 4, 128, 16, 1),  # too few loss slots
        BatchShape(2, 4, 128, 32, 1),  # another number of micro-batches
        BatchShape(1, 8, 512, 64, 1),  # 8x the cells: compiling is cheaper than a few steps on it
        BatchShape(1, 4, 512, 512, 1),  # 4x the cells but 16x the head slots (a large vocabulary's cost)
    ]
    assert reuse_shape(shape, compiled) == BatchShape(1, 8, 128, 32, 1)
    assert reuse_shape(shape, compiled, borrowed=REUSE_TIMES - 1) == BatchShape(1, 8, 128, 32, 1)
    assert reuse_shape(shape, compiled, borrowed=REUSE_TIMES) == shape  # recurring: it gets its own
    assert reuse_shape(shape, compiled[2:]) == shape
    assert reuse_shape(shape, compiled[-1:]) == shape
    assert reuse_shape(shape, [BatchShape(1, 4, 512, 128, 1)]) == BatchShape(1, 4, 512, 128, 1)  # 4x and 4x
