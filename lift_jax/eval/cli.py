"""The command line every harness shares: `--config` / `--config.<field>=...` / `--help`, one `error:` line."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path

import ml_collections

from lift_jax.cli import enable_compilation_cache, fail, parse_config_args
from lift_jax.config import METHODS
from lift_jax.errors import LiftError
from lift_jax.eval.harness import Benchmark, run_benchmark
from lift_jax.eval.records import SUMMARY_MD

COMMON_USAGE = """
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


class _Stderr(logging.StreamHandler):
    """A handler writing to whatever `sys.stderr` is at the time of each record."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def log_to_stderr() -> None:
    """Show lift_jax's INFO records (progress, QA pairs generated vs reused) on stderr, once per process."""
    logger = logging.getLogger("lift_jax")
    if not any(isinstance(h, _Stderr) for h in logger.handlers):
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # absl puts a bare handler on the root logger; print each line once


def eval_main(
    argv: list[str] | None,
    default_config: str,
    usage: str,
    make_benchmark: Callable[[ml_collections.ConfigDict], Benchmark],
) -> None:
    """Parse the config, run the harness, print the summary table; bad input is one `error:` line, exit 2."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        common = COMMON_USAGE.format(absorbed=", ".join(METHODS))
        cfg = parse_config_args(argv, default_config, usage + common)
        enable_compilation_cache()
        log_to_stderr()
        run_benchmark(cfg, make_benchmark(cfg))
    except LiftError as e:
        fail(str(e))
    print((Path(cfg.output_dir) / SUMMARY_MD).read_text(), end="")
