"""`python -m lift_jax.absorb --config <name>.py --config.document=PATH --config.output_dir=DIR`

A document goes in; a LIFTed LoRA adapter comes out (orbax checkpoints + PEFT export), trained while the
generator is still writing QA pairs. Rerunning the same command after a crash resumes: cached sentences are
not regenerated and training continues from the last checkpoint.

With `mesh.num_processes` > 1 (or JAX_NUM_PROCESSES; scripts/absorb_multiprocess.sh starts local ones) every
process runs this same command: each generates its share of the sentences into its own QA cache shard and
feeds its rows of each global batch; process 0 alone writes the adapter, metrics.jsonl and timing.json and
shows progress bars, the others log to process_<i>.log.

The job itself is lift_jax.absorbing (`prepare`, `absorb_document`, `absorb`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from lift_jax.absorbing import absorb
from lift_jax.cli import enable_compilation_cache, fail, parse_config_args
from lift_jax.errors import LiftError

USAGE = __doc__


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    enable_compilation_cache()
    argv = sys.argv[1:] if argv is None else argv
    try:
        cfg = parse_config_args(argv, "smollm2_135m", USAGE)
        summary = absorb(cfg)
    except LiftError as e:
        fail(str(e))
    print(f"adapter written to {Path(cfg.output_dir) / 'adapter'}; {summary['steps']} steps")


if __name__ == "__main__":
    main()
