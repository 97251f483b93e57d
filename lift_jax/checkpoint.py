"""Orbax checkpoints of a LoRA run: adapter, optimizer state, dropout RNG, step and data-iterator state.

Saves are synchronous and atomic (orbax finalises a step directory only once it is complete), so a run killed
at any moment resumes from the last finished step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from lift_jax.errors import MissingInputError
from lift_jax.train import LoRATrainer


def _abstract(tree: Any) -> Any:
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), tree)


class TrainCheckpointer:
    """Save and restore a LoRATrainer's state under `directory/<step>`."""

    def __init__(self, directory: str | Path, max_to_keep: int = 2):
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, enable_async_checkpointing=False)
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        """The newest complete checkpoint's step, or None."""
        return self.manager.latest_step()

    def save(self, trainer: LoRATrainer, extra: dict[str, Any] | None = None) -> None:
        """Checkpoint the trainer at its current step; `extra` (JSON) carries e.g. the data-iterator state."""
        meta = {"step": trainer.step, **(extra or {})}
        items = {
            "lora": ocp.args.StandardSave(trainer.lora),
            "opt": ocp.args.StandardSave(trainer.opt_state),
            "meta": ocp.args.JsonSave(meta),
        }
        if jax.tree.leaves(trainer.rngs):  # dropout RNG state exists only with dropout > 0
            items["rngs"] = ocp.args.StandardSave(trainer.rngs)
        args = ocp.args.Composite(**items)
        self.manager.save(trainer.step, args=args, force=True)
        self.manager.wait_until_finished()

    def restore(self, trainer: LoRATrainer, step: int | None = None) -> dict[str, Any]:
        """Load the checkpoint at `step` (default: latest) into `trainer`; returns its JSON metadata."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise MissingInputError(f"no checkpoint in {self.directory}")
        items = {
            "lora": ocp.args.StandardRestore(_abstract(trainer.lora)),
            "opt": ocp.args.StandardRestore(_abstract(trainer.opt_state)),
            "meta": ocp.args.JsonRestore(),
        }
        if jax.tree.leaves(trainer.rngs):
            items["rngs"] = ocp.args.StandardRestore(_abstract(trainer.rngs))
        restored = self.manager.restore(step, args=ocp.args.Composite(**items))
        trainer.lora, trainer.opt_state = restored.lora, restored.opt
        if "rngs" in items:
            trainer.rngs = restored.rngs
        trainer.step = int(restored.meta["step"])
        return dict(restored.meta)

    def close(self) -> None:
        """Release the manager's resources."""
        self.manager.close()
