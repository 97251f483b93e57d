"""`python -m lift_jax.eval.niah [--config eval_niah] [--config.<field>=VALUE ...]`

Needle in a Haystack: a grid of document lengths (tokens of the model's tokenizer) x needle depths (fractions
of the document, the needle at the nearest sentence boundary) x niah.samples documents per cell, each sample
with its own essay order as distractor text. A prediction is correct when it holds every keyword. Writes a
heatmap per method (output_dir/heatmap_<method>.png) beside the summary. Question ids are the cell ids
(`L1000_D0.25_S0`: length, depth, sample). Each record carries `in_window` (the whole needle lies inside the
truncated-ICL window of ask.context_tokens tokens that icl and <method>+icl see) and the summary splits every
metric inside / outside the window.
NIAH fields: niah.lengths (comma list of ints), niah.depths (comma list of fractions in [0, 1]),
niah.samples, niah.needle, niah.question, niah.keywords (comma list), niah.seed (essay orders); data is the
folder of haystack essays (*.txt) and max_documents takes the first N cells of the grid.
"""

from __future__ import annotations

import sys

from lift_jax.cli import fail
from lift_jax.errors import LiftError
from lift_jax.eval.harness import run_from_args
from lift_jax.eval.niah_benchmark import niah_benchmark

USAGE = __doc__


def main(argv: list[str] | None = None) -> None:
    """CLI entry point: run the benchmark, print its summary table; bad input is one `error:` line, exit 2."""
    try:
        summary = run_from_args(sys.argv[1:] if argv is None else argv, "eval_niah", USAGE, niah_benchmark)
    except LiftError as e:
        fail(str(e))
    print(summary, end="")


if __name__ == "__main__":
    main()
