"""Evaluation configs: an absorb config (model, generator, lora, train, ask) plus the harness fields.

Harness fields, each overridable as `--config.<field>=...`: `data` (benchmark file or folder),
`max_documents` (first N documents; 0 = all), `methods` (comma list of eval_methods()), `output_dir`, the
`judge` group (`judge.enabled` plus the judge server settings) and the `eval` group (answer batch size, the
shared caches, checkpoint clean-up).

Methods: every absorb method of lift_jax.config.METHODS answers with its adapter and no document;
`<method>+icl` answers with that adapter and the middle-truncated document (ask.context_tokens); `icl` answers
with the untouched base model and the truncated document (the paper's truncated-ICL baseline); `base` with the
untouched base model and no document (closed book).
"""

from __future__ import annotations

import ml_collections

from lift_jax import config as absorb_config
from lift_jax.errors import ConfigError
from lift_jax.judge import judge_config

BASE_MODEL_METHODS = ("base", "icl")  # answered by the untouched base model, no absorb
ICL_SUFFIX = "+icl"
_HARNESS_USAGE = """
Fields (each `--config.<field>=VALUE`): data (benchmark file or folder), max_documents (first N; 0 = all),
methods (comma list of: base (the untouched model, no document), icl (truncated ICL with the base model), an
absorb method ({absorbed}: its adapter, no document), or an absorb method + icl (its adapter and the truncated
document, e.g. lift+icl)), output_dir, judge.enabled (+ judge.base_url, judge.model, ...), eval.* (answer batch
size, shared caches, checkpoint clean-up), and every absorb field: model_path, generator.*, lora.*, train.*,
ask.* (max_new_tokens, context_tokens: the truncated-ICL window of icl and every +icl method, 0 = the model's),
mesh.*.

Writes output_dir/predictions.jsonl (one line per question and method), summary.json, summary.md, eval.log and
one absorb run per document and method in output_dir/runs/. Rerunning the same command resumes: finished
(document, method) pairs are skipped, errored answers are retried.
"""


def harness_usage() -> str:
    """The `--help` text every benchmark's command line ends with: the harness fields and what a run writes."""
    return _HARNESS_USAGE.format(absorbed=", ".join(absorb_config.METHODS))


def eval_methods() -> tuple[str, ...]:
    """Every method the harness runs: base, icl, each absorb method and each absorb method + icl."""
    absorbed = tuple(absorb_config.METHODS)
    return (*BASE_MODEL_METHODS, *absorbed, *(m + ICL_SUFFIX for m in absorbed))


def eval_config(benchmark: str, data: str, methods: str, base: str = "smollm2_135m") -> ml_collections.ConfigDict:
    """The `base` absorb config with the harness fields of `benchmark` added."""
    cfg = absorb_config.load_config_file(base)
    cfg.data = data
    cfg.max_documents = 0
    cfg.methods = methods
    cfg.output_dir = f"runs/eval_{benchmark}"
    cfg.ask.measure_first_token = False  # the harness times its own answers
    cfg.judge = judge_config()
    cfg.judge.enabled = False
    cfg.eval = ml_collections.ConfigDict()
    cfg.eval.answer_batch_size = 8  # questions decoded together
    # One QA cache (output_dir/qa_cache) for every document and method, and shared_cache_dir = output_dir for
    # the other caches of a method (e.g. output_dir/teacher_cache); False: each run keeps its own.
    cfg.eval.shared_qa_cache = True
    cfg.eval.keep_checkpoints = False  # drop a run's training checkpoints once its adapter is exported
    cfg.eval.progress = True  # tqdm bars of generation and training
    return cfg


def parse_methods(text: str) -> tuple[str, ...]:
    """The comma list `text` as methods in the given order, duplicates dropped; ConfigError names a bad one and
    lists the valid ones."""
    valid = eval_methods()
    methods = tuple(dict.fromkeys(m.strip() for m in str(text).split(",") if m.strip()))
    if not methods:
        raise ConfigError(f"no methods given; use a comma list of {', '.join(valid)}")
    unknown = [m for m in methods if m not in valid]
    if unknown:
        raise ConfigError(f"unknown method {unknown[0]!r} in methods={text!r}; use {', '.join(valid)}")
    return methods


def absorb_method(method: str) -> str | None:
    """The absorb run a method answers with: `<m>+icl` uses the `<m>` adapter, `base` and `icl` none."""
    if method in BASE_MODEL_METHODS:
        return None
    return method.removesuffix(ICL_SUFFIX)


def reads_document(method: str) -> bool:
    """True when the method answers with the middle-truncated document in its prompt."""
    return method == "icl" or method.endswith(ICL_SUFFIX)


def generates_qa(absorbed: str) -> bool:
    """True for the absorb methods that run the question generator (need it and the QA cache)."""
    return absorbed in absorb_config.GENERATING_METHODS


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
    if cfg.ask.context_tokens < 0:
        raise ConfigError(f"ask.context_tokens must be >= 0 (0 = the model's window), got {cfg.ask.context_tokens}")
    return methods
