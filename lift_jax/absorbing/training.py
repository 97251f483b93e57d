"""The training loop of an absorb run: steps over the batch stream, metrics one step late, checkpoints with
every process's data-iterator position, so a rerun resumes with exactly the batches it would have seen."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import ml_collections
from tqdm.auto import tqdm

from lift_jax.absorbing.timing import Timing
from lift_jax.checkpoint import TrainCheckpointer
from lift_jax.data import BatchStream
from lift_jax.distributed import all_processes
from lift_jax.models.weight_files import CheckpointError
from lift_jax.train import LoRATrainer


def _data_states(state: dict[str, Any]) -> list[dict[str, Any]]:
    """Every process's data-iterator state, in process order (collective; the batch shapes are global)."""
    positions = all_processes([state["epoch"], state["position"]])
    shapes = {"shapes": state["shapes"], "borrowed": state["borrowed"]}
    return [{"epoch": int(e), "position": int(p), **shapes} for e, p in positions]


def own_data_state(states: list[dict[str, Any]] | dict[str, Any], step: int | None) -> dict[str, Any]:
    """This process's entry of a checkpoint's per-process data states (a single dict: a checkpoint written
    before runs had several processes, i.e. by one process)."""
    if isinstance(states, dict):
        states = [states]
    if len(states) != jax.process_count():
        raise CheckpointError(
            f"checkpoint {step} was written by {len(states)} process(es), this run has {jax.process_count()}; "
            f"resume with {len(states)} processes or use a new output_dir"
        )
    return states[jax.process_index()]


def resume(checkpointer: TrainCheckpointer, trainer: LoRATrainer, stream: BatchStream) -> None:
    """Restore the trainer and this process's stream position from the latest checkpoint, if there is one."""
    if checkpointer.latest_step() is not None:
        meta = checkpointer.restore(trainer)
        stream.restore(own_data_state(meta["data"], checkpointer.latest_step()))


def train(
    cfg: ml_collections.ConfigDict,
    trainer: LoRATrainer,
    stream: BatchStream,
    checkpointer: TrainCheckpointer,
    record_metrics: Callable[[dict[str, Any]], None],
    timing: Timing,
    progress: bool,
) -> dict[str, Any]:
    """Train on every batch of `stream`, checkpointing every `train.checkpoint_every` steps and at the end;
    returns the step count, compute seconds and loss tokens."""
    bar = tqdm(desc="training", unit="step", disable=not progress, initial=trainer.step)
    pending: tuple[int, int, dict, float] | None = None  # metrics are read one step late: no host sync per step
    compute_s = 0.0
    tokens = 0

    def flush(p: tuple[int, int, dict, float], logged: bool = False) -> None:
        nonlocal compute_s, tokens
        step, epoch, metrics, t0 = p
        host = jax.device_get(metrics)
        elapsed = time.perf_counter() - t0
        compute_s += elapsed
        tokens += int(host["tokens"])
        record = {"step": step, "epoch": epoch, "loss": float(host["loss"]), "tokens": int(host["tokens"]),
                  "grad_norm": float(host["grad_norm"]), "lr": float(trainer.learning_rate(step - 1)),
                  "time": round(time.perf_counter() - timing.start, 3)}
        if logged or step % cfg.train.log_every == 0:
            record_metrics(record)
        bar.set_postfix(loss=f"{record['loss']:.3f}", epoch=epoch, tok_s=f"{tokens / max(compute_s, 1e-9):.0f}")

    for batch, state in stream:
        timing.mark("first_step_started")
        t0 = time.perf_counter()
        metrics = trainer.train_step(batch)
        if pending is not None:
            flush(pending)
        pending = (trainer.step, state["epoch"], metrics, t0)  # the state after a batch is still in its epoch
        bar.update(1)
        if trainer.step % cfg.train.checkpoint_every == 0:
            flush(pending, logged=True)  # every checkpointed step is in metrics.jsonl before the checkpoint exists
            pending = None
            checkpointer.save(trainer, {"data": _data_states(state)})
    if pending is not None:
        flush(pending, logged=True)  # the last step is checkpointed below
    bar.close()
    if checkpointer.latest_step() != trainer.step:
        checkpointer.save(trainer, {"data": _data_states(stream.state())})
    timing.mark("training_done")
    return {"steps": trainer.step, "train_compute_s": round(compute_s, 3), "loss_tokens": tokens}
