"""`python -m lift_jax.synth --config <name>.py --config.document=PATH --config.output_dir=DIR`

Runs the synthetic-QA generation stage alone and fills DIR/qa_cache (e.g. on a GPU host serving the generator
with vLLM); an absorb run with the same document and generator settings then reuses every cached sentence.
Prints the generation summary as one JSON line. Exit codes: 0 done (failed sentences are listed in the summary
and retried by the next run), 1 generator or cache unusable, 2 bad input.
"""

from __future__ import annotations

import json
import sys

from lift_jax.cli import enable_compilation_cache, fail, parse_config_args
from lift_jax.errors import LiftError
from lift_jax.synth.cache import CacheError
from lift_jax.synth.generators import GeneratorUnavailable
from lift_jax.synth.prefill import prefill_qa_cache

USAGE = __doc__


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        cfg = parse_config_args(argv, "smollm2_135m", USAGE)
        if cfg.generator.kind == "local":
            enable_compilation_cache()  # the local sampler's compilations are reused across runs
        summary = prefill_qa_cache(cfg)
    except (GeneratorUnavailable, CacheError) as e:
        fail(str(e), code=1)
    except LiftError as e:
        fail(str(e))
    print(json.dumps(summary.as_dict()))


if __name__ == "__main__":
    main()
