"""A finished absorb run's adapter and base model, read from its run directory."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from lift_jax.export.errors import ExportError
from lift_jax.lora import LoRAConfig
from lift_jax.peft_io import CONFIG_FILE, WEIGHTS_FILE, base_model_name, read_peft_config, read_peft_weights
from lift_jax.runio import RunDir


@dataclasses.dataclass(frozen=True)
class RunAdapter:
    """The run's LoRA adapter in PEFT's layout and the base model it was trained on."""

    run_dir: Path
    model_path: str  # as absorb was given it: a HF directory, a .gguf file or `bundled:<name>`
    config: LoRAConfig
    weights: dict[str, tuple[np.ndarray, np.ndarray]]  # module path -> (A [rank, in], B [out, rank])
    base_model_name: str  # the adapter's `base_model_name_or_path`

    def delta(self, path: str) -> np.ndarray:
        """The dense update of module `path` in Hugging Face's weight layout: scaling * B @ A, [out, in]."""
        a, b = self.weights[path]
        return (b @ a) * np.float32(self.config.scaling)


def read_run_adapter(run_dir: str | Path) -> RunAdapter:
    """Read the adapter and base model of the absorb run in `run_dir`."""
    run = RunDir(Path(run_dir))
    if not run.root.is_dir():
        raise ExportError(f"run directory {run.root} does not exist; pass the --config.output_dir of an absorb run")
    if not run.config.exists():
        raise ExportError(
            f"{run.root} is not an absorb run directory (no {run.config.name}); pass the --config.output_dir "
            "of an absorb run"
        )
    if not (run.adapter / CONFIG_FILE).exists() or not (run.adapter / WEIGHTS_FILE).exists():
        raise ExportError(
            f"{run.root} has no adapter ({run.adapter}/{CONFIG_FILE} and {WEIGHTS_FILE}): absorb writes it when "
            "training finishes; rerun the same absorb command to finish the run"
        )
    settings = json.loads(run.config.read_text())
    if not settings.get("model_path"):
        raise ExportError(f"{run.config} names no model_path; it is not an absorb run's config")
    return RunAdapter(
        run_dir=run.root,
        model_path=str(settings["model_path"]),
        config=read_peft_config(run.adapter),
        weights=read_peft_weights(run.adapter),
        base_model_name=base_model_name(run.adapter),
    )
