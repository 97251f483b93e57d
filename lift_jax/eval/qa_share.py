"""One QA cache for every document of an evaluation, and the count of pairs it already holds.

absorb writes its pairs to `<run dir>/qa_cache`; the harness points that folder at `output_dir/qa_cache` (a
symlink), so every document and method of the evaluation reads and appends one cache. Whatever the pipeline's
cache key leaves out (the document, the sentence index) is shared: sentences repeated across documents, such
as the NIAH cells of one length, are generated once.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import ml_collections

from lift_jax.synth.cache import QACache
from lift_jax.synth.pipeline import plan_document


@dataclasses.dataclass(frozen=True)
class CacheCoverage:
    """How much of a document's QA generation the cache already holds."""

    sentences: int
    cached_sentences: int
    cached_pairs: int


def link_shared_cache(run_dir: Path, shared: Path, name: str = "qa_cache") -> bool:
    """Make `run_dir/<name>` (qa_cache, teacher_cache) a symlink to `shared` (created if missing). False when
    the run already has a cache folder of its own (a run made without sharing), which is then left as it is."""
    shared.mkdir(parents=True, exist_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    link = run_dir / name
    target = os.path.relpath(shared, run_dir)
    if link.is_symlink():
        if link.resolve() == shared.resolve():
            return True
        link.unlink()
    elif link.exists():
        return False
    link.symlink_to(target, target_is_directory=True)
    return True


def coverage(generator_cfg: ml_collections.ConfigDict, document: str, cache_dir: Path) -> CacheCoverage:
    """The planned sentences of `document` under the pipeline's own cache keys, and how many of them (and
    their pairs) `cache_dir` already holds."""
    plan = plan_document(document, generator_cfg)
    cache = QACache(cache_dir)
    hits = [hit for p in plan if (hit := cache.lookup(p.key)) is not None]
    return CacheCoverage(len(plan), len(hits), sum(len(h.pairs) for h in hits))
