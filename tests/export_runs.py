"""Run directories for the export tests: a base model with a random, nonzero LoRA adapter in absorb's layout
(config.json + adapter/), with no absorb; and lift_jax's merged model of such a run."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from lift_jax.answering import answerer_for_run
from lift_jax.config import base_config
from lift_jax.lora import LoRAConfig, apply_lora, lora_modules
from lift_jax.models import LoadedModel, load
from lift_jax.peft_io import export_peft_adapter
from lift_jax.runio import RunDir, write_json_atomic
from lift_jax.sampling import SamplingParams


def make_run(
    model_path: str | Path, run_dir: Path, lora: LoRAConfig, b_scale: float, seed: int = 0
) -> Path:
    """Write `run_dir` as absorb would leave it finished: config.json naming `model_path` and `adapter/` holding
    a PEFT-initialised A and a random normal B (std `b_scale`) on `lora.targets`."""
    loaded = load(model_path, dtype="float32")
    apply_lora(loaded.module, lora, seed=seed)
    key = jax.random.key(seed + 1)
    for i, (_, layer) in enumerate(lora_modules(loaded.module)):
        shape = layer.lora_b.get_value().shape
        layer.lora_b.set_value(jax.random.normal(jax.random.fold_in(key, i), shape) * b_scale)
    run = RunDir(run_dir).create()
    export_peft_adapter(loaded.module, lora, run.adapter, base_model_name=str(model_path))
    cfg = base_config()
    cfg.model_path = str(model_path)
    cfg.output_dir = str(run_dir)
    cfg.lora.rank, cfg.lora.alpha = lora.rank, lora.alpha
    write_json_atomic(run.config, cfg.to_dict())
    return run_dir


def merged_model(run_dir: Path) -> LoadedModel:
    """lift_jax's LIFTed model of the run as `lift_jax.ask` decodes with it: base + adapter, merged, float32."""
    return answerer_for_run(run_dir, base=False, params=SamplingParams()).loaded


def lift_jax_logits(loaded: LoadedModel, ids: np.ndarray) -> np.ndarray:
    """Float32 logits [batch, seq, vocab] of `ids`."""
    return np.asarray(loaded.module(jax.numpy.asarray(ids)), np.float32)
