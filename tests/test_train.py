"""The LoRA SFT step: parity with PyTorch + PEFT, sharded == single-device, bounded compilations, resume."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest
from peft_reference import train_reference
from train_helpers import LORA, batches, examples, lora_model, step_examples

from lift_jax.batching import length_buckets, make_batch
from lift_jax.checkpoint import TrainCheckpointer
from lift_jax.peft_io import export_peft_adapter
from lift_jax.sharding import make_mesh
from lift_jax.train import LoRATrainer, OptimizerConfig, learning_rate

LR = 3e-3


def _adapter(trainer: LoRATrainer) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(trainer.lora)]


@pytest.mark.parametrize("family", ["llama3", "gemma2"])
def test_twenty_steps_match_pytorch_peft(tiny_checkpoints, tmp_path, family):
    model = lora_model(tiny_checkpoints[family])
    export_peft_adapter(model, LORA, tmp_path / "init")  # the same initial adapter for both
    trainer = LoRATrainer(model, OptimizerConfig(lr=LR))
    ours = [float(trainer.train_step(b)["loss"]) for b in batches(20)]
    theirs, _ = train_reference(tiny_checkpoints[family], tmp_path / "init", step_examples(20), LR, rows=8)
    assert ours[-1] < 0.9 * ours[0]  # it trains
    rel = np.abs(np.array(ours) - np.array(theirs)) / np.abs(np.array(theirs))
    assert rel.max() <= 1e-4


@pytest.mark.parametrize("shape", [{"data": 8}, {"data": 2, "fsdp": 4}, {"data": 1, "fsdp": 8}])
def test_sharded_step_equals_single_device(tiny_checkpoints, shape):
    data = batches(4)
    single = LoRATrainer(lora_model(tiny_checkpoints["qwen3"]), OptimizerConfig(lr=LR))
    single_losses = [float(single.train_step(b)["loss"]) for b in data]

    mesh = make_mesh(**shape)
    sharded = LoRATrainer(lora_model(tiny_checkpoints["qwen3"], mesh=mesh), OptimizerConfig(lr=LR), mesh=mesh)
    sharded_losses = [float(sharded.train_step(b)["loss"]) for b in data]
    if shape.get("fsdp", 1) > 1:
        kernel = sharded.base["layers"][0]["mlp"]["gate_proj"]["base"]["kernel"].get_value()
        assert len({str(s.index) for s in kernel.addressable_shards}) == shape["fsdp"]
    np.testing.assert_allclose(sharded_losses, single_losses, rtol=1e-5)
    for a, b in zip(_adapter(sharded), _adapter(single), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_gradient_accumulation_equals_one_big_batch(tiny_checkpoints):
    rows = examples(5, 8)
    buckets = length_buckets(64, 16)
    whole = LoRATrainer(lora_model(tiny_checkpoints["llama3"]), OptimizerConfig(lr=LR))
    whole.train_step(make_batch(rows, rows=8, accum=1, buckets=buckets, pad_id=0))
    accum = LoRATrainer(lora_model(tiny_checkpoints["llama3"]), OptimizerConfig(lr=LR))
    accum.train_step(make_batch(rows, rows=2, accum=4, buckets=buckets, pad_id=0))
    for a, b in zip(_adapter(whole), _adapter(accum), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("pack", [False, True])
def test_one_compilation_per_distinct_bucketed_shape(tiny_checkpoints, pack):
    trainer = LoRATrainer(lora_model(tiny_checkpoints["gemma3"]), OptimizerConfig(lr=LR))
    buckets = length_buckets(64, 16)  # (16, 32, 64)
    rng = np.random.RandomState(0)
    shapes = set()
    for step in range(12):
        rows = examples(step, 4, lengths=(6, int(rng.choice([12, 30, 60]))))
        batch = make_batch(rows, rows=4, accum=1, buckets=buckets, pad_id=0, pack=pack)
        shapes.add(tuple(v.shape for v in batch.values()))
        trainer.train_step(batch)
    assert trainer.compilations() == len(shapes)
    # widths come from the length buckets, loss slots from the same buckets below the width, packed rows per
    # micro-batch from (1, 2, 4)
    assert 2 <= len(shapes) <= sum(len(length_buckets(b, 16)) for b in buckets) * (3 if pack else 1)


def test_a_model_without_lora_is_rejected(tiny_checkpoints):
    from lift_jax.models import load

    with pytest.raises(ValueError, match="no LoRA parameters"):
        LoRATrainer(load(tiny_checkpoints["llama3"]).module, OptimizerConfig())


def test_schedules():
    warm = learning_rate(OptimizerConfig(lr=1.0, schedule="cosine", warmup_steps=2, total_steps=6))
    assert [round(float(warm(s)), 4) for s in (0, 1, 2, 4, 6)] == [0.0, 0.5, 1.0, 0.5, 0.0]
    with pytest.raises(ValueError, match="needs total_steps"):
        learning_rate(OptimizerConfig(schedule="linear"))


_RESUME_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    sys.path.insert(0, {tests!r})
    import conftest  # noqa: F401  (same XLA flags)
    from lift_jax.checkpoint import TrainCheckpointer
    from lift_jax.train import LoRATrainer, OptimizerConfig
    from train_helpers import batches, lora_model
    data = batches(10)
    trainer = LoRATrainer(lora_model({checkpoint!r}), OptimizerConfig(lr={lr}))
    ckpt = TrainCheckpointer({ckpt!r})
    meta = ckpt.restore(trainer)
    losses = [float(trainer.train_step(b)["loss"]) for b in data[meta["next_batch"]:]]
    print(json.dumps(losses))
    """
)


def test_restart_in_a_new_process_continues_exactly(tiny_checkpoints, tmp_path):
    data = batches(10)
    full = LoRATrainer(lora_model(tiny_checkpoints["qwen2"]), OptimizerConfig(lr=LR))
    full_losses = [float(full.train_step(b)["loss"]) for b in data]

    first = LoRATrainer(lora_model(tiny_checkpoints["qwen2"]), OptimizerConfig(lr=LR))
    for b in data[:4]:
        first.train_step(b)
    ckpt = TrainCheckpointer(tmp_path / "ckpt")
    ckpt.save(first, {"next_batch": 4})
    ckpt.close()
    script = _RESUME_SCRIPT.format(
        tests=str(Path(__file__).parent),
        checkpoint=str(tiny_checkpoints["qwen2"]),
        lr=LR,
        ckpt=str(tmp_path / "ckpt"),
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    resumed = [float(x) for x in out.stdout.strip().splitlines()[-1].strip("[]").split(",")]
    np.testing.assert_allclose(resumed, full_losses[4:], rtol=1e-6)
