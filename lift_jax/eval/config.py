"""Evaluation configs: an absorb config (model, generator, lora, train, ask) plus the harness fields.

Harness fields, each overridable as `--config.<field>=...`: `data` (benchmark file or folder),
`max_documents` (first N documents; 0 = all), `methods` (comma list of EVAL_METHODS), `output_dir`, the
`judge` group (`judge.enabled` plus the judge server settings) and the `eval` group (answer batch size, the
shared QA cache, checkpoint clean-up).
"""

from __future__ import annotations

import ml_collections

from lift_jax.config import METHODS, load_config_file
from lift_jax.errors import ConfigError
from lift_jax.judge import judge_config

ICL_METHODS = ("icl", "lift+icl")
EVAL_METHODS = (*METHODS, *ICL_METHODS)


def eval_config(benchmark: str, data: str, methods: str, base: str = "smollm2_135m") -> ml_collections.ConfigDict:
    """The `base` absorb config with the harness fields of `benchmark` added."""
    cfg = load_config_file(base)
    cfg.data = data
    cfg.max_documents = 0
    cfg.methods = methods
    cfg.output_dir = f"runs/eval_{benchmark}"
    cfg.ask.measure_first_token = False  # the harness times its own answers
    cfg.judge = judge_config()
    cfg.judge.enabled = False
    cfg.eval = ml_collections.ConfigDict()
    cfg.eval.answer_batch_size = 8  # questions decoded together
    cfg.eval.shared_qa_cache = True  # one QA cache (output_dir/qa_cache) for every document and method
    cfg.eval.keep_checkpoints = False  # drop a run's training checkpoints once its adapter is exported
    cfg.eval.progress = True  # tqdm bars of generation and training
    return cfg


def parse_methods(text: str) -> tuple[str, ...]:
    """The comma list `text` as methods in the given order, duplicates dropped; ValueError names a bad one."""
    methods = tuple(dict.fromkeys(m.strip() for m in str(text).split(",") if m.strip()))
    if not methods:
        raise ConfigError(f"no methods given; use a comma list of {', '.join(EVAL_METHODS)}")
    unknown = [m for m in methods if m not in EVAL_METHODS]
    if unknown:
        raise ConfigError(f"unknown method {unknown[0]!r} in methods={text!r}; use {', '.join(EVAL_METHODS)}")
    return methods


def absorb_method(method: str) -> str | None:
    """The absorb run a method answers with: `lift+icl` uses the `lift` adapter, `icl` none."""
    if method == "icl":
        return None
    return "lift" if method == "lift+icl" else method


def check_eval_config(cfg: ml_collections.ConfigDict) -> tuple[str, ...]:
    """Validate the harness fields; returns the parsed methods."""
    methods = parse_methods(cfg.methods)
    if cfg.max_documents < 0:
        raise ConfigError(f"max_documents must be >= 0 (0 = all), got {cfg.max_documents}")
    if not cfg.data:
        raise ConfigError("no benchmark data given; pass --config.data=PATH")
    if not cfg.output_dir:
        raise ConfigError("no output directory given; pass --config.output_dir=DIR")
    if cfg.eval.answer_batch_size < 1:
        raise ConfigError(f"eval.answer_batch_size must be at least 1, got {cfg.eval.answer_batch_size}")
    return methods
