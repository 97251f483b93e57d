"""`python -m lift_jax.synth --config <name>.py --config.document=PATH --config.output_dir=DIR`

Runs the synthetic-QA generation stage alone and fills DIR/qa_cache (e.g. on a GPU host serving the generator
with vLLM); an absorb run with the same document and generator settings then reuses every cached sentence.
Prints the generation summary as one JSON line. Exit codes: 0 done (failed sentences are listed in the summary
and retried by the next run), 1 generator or cache unusable, 2 bad input.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import ml_collections

from lift_jax.cli import UsageError, enable_compilation_cache, fail, parse_config_args
from lift_jax.documents import read_document
from lift_jax.errors import LiftError
from lift_jax.runio import RunDir
from lift_jax.synth.cache import CacheError, QACache
from lift_jax.synth.generators import GeneratorUnavailable
from lift_jax.synth.pipeline import GenerationSummary, generate_document

USAGE = __doc__


def run(cfg: ml_collections.ConfigDict, progress: bool = True) -> GenerationSummary:
    """Generate (or reuse) the QA pairs of `cfg.document` into `cfg.output_dir`'s QA cache."""
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


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        cfg = parse_config_args(argv, "smollm2_135m", USAGE)
        if cfg.generator.kind == "local":
            enable_compilation_cache()  # the local sampler's compilations are reused across runs
        summary = run(cfg)
    except (GeneratorUnavailable, CacheError) as e:
        fail(str(e), code=1)
    except LiftError as e:
        fail(str(e))
    print(json.dumps(summary.as_dict()))


if __name__ == "__main__":
    main()
