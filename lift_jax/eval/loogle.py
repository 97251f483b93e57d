"""`python -m lift_jax.eval.loogle [--config eval_loogle] [--config.<field>=VALUE ...]`

LooGLE: each line of a LooGLE JSONL file (or of every *.jsonl in a folder, in name order) is one long document
with its questions. Exact match / F1 per method and, for LongQA, per category (comprehension & reasoning,
multiple info retrieval, computation, timeline reorder); ShortQA items are grouped as `short_dependency`. Run
on longdep_qa.jsonl alone for the overall LongQA row; the judge (judge.enabled) is the paper's metric.
"""

from __future__ import annotations

import sys

from lift_jax.cli import fail
from lift_jax.errors import LiftError
from lift_jax.eval.harness import run_from_args
from lift_jax.eval.loogle_benchmark import loogle_benchmark

USAGE = __doc__


def main(argv: list[str] | None = None) -> None:
    """CLI entry point: run the benchmark, print its summary table; bad input is one `error:` line, exit 2."""
    try:
        summary = run_from_args(sys.argv[1:] if argv is None else argv, "eval_loogle", USAGE, loogle_benchmark)
    except LiftError as e:
        fail(str(e))
    print(summary, end="")


if __name__ == "__main__":
    main()
