"""The generation stage alone for an absorb config: fill a run's QA cache ahead of absorb (e.g. on a host that
serves the generator), so the absorb run with the same document and generator settings reuses every sentence."""

from __future__ import annotations

from pathlib import Path

import ml_collections

from lift_jax.cli import UsageError
from lift_jax.documents import read_document
from lift_jax.runio import RunDir
from lift_jax.synth.cache import QACache
from lift_jax.synth.pipeline import GenerationSummary, generate_document


def prefill_qa_cache(cfg: ml_collections.ConfigDict, progress: bool = True) -> GenerationSummary:
    """Generate (or reuse) the QA pairs of `cfg.document` into `cfg.output_dir`'s QA cache; failed sentences
    are listed in the summary and retried by the next run."""
    if not cfg.document:
        raise UsageError("no document given; pass --config.document=PATH")
    if not cfg.output_dir:
        raise UsageError("no output directory given; pass --config.output_dir=DIR")
    document = read_document(Path(cfg.document))
    cache = QACache(RunDir(Path(cfg.output_dir)).qa_cache)
    summary = GenerationSummary()
    for _ in generate_document(
        document, cfg.generator, cache, dtype=cfg.get("dtype", "float32"), seed=cfg.get("seed", 0),
        progress=progress, summary=summary,
    ):
        pass
    return summary
