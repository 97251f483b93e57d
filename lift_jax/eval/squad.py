"""`python -m lift_jax.eval.squad [--config eval_squad] [--config.<field>=VALUE ...]`

SQuAD v1.1 from a file in the official JSON format. document_unit=paragraph (default, the paper's
single-passage setting): each paragraph is one document, absorbed on its own; its questions are asked without
it. document_unit=article (beyond the window): each article is one document, its paragraphs joined by blank
lines in order, with every question of the article; max_documents counts articles; each record gains
`paragraph` (the question's source paragraph), `in_window` (that whole paragraph lies inside the truncated-ICL
window of ask.context_tokens tokens that icl and <method>+icl see), `position` and `window_edges` (fractions of
the document's tokens); the summary splits every metric inside / outside the window and
output_dir/f1_by_position.png plots F1 against the paragraph's position, one line per method.
titles='A|B' keeps only the articles with those titles ('|'-separated: titles hold commas). Exact match, F1
(official normalisation, max over the gold answers) and contains_answer (a gold answer inside the prediction)
per method, plus the LLM judge when judge.enabled.
Example: python -m lift_jax.eval.squad --config.data=FILE --config.document_unit=article --config.max_documents=2
--config.methods=base,icl,lift,lift+icl --config.ask.context_tokens=512 --config.output_dir=DIR
"""

from __future__ import annotations

import sys

from lift_jax.cli import fail
from lift_jax.errors import LiftError
from lift_jax.eval.harness import run_from_args
from lift_jax.eval.squad_benchmark import squad_benchmark

USAGE = __doc__


def main(argv: list[str] | None = None) -> None:
    """CLI entry point: run the benchmark, print its summary table; bad input is one `error:` line, exit 2."""
    try:
        summary = run_from_args(sys.argv[1:] if argv is None else argv, "eval_squad", USAGE, squad_benchmark)
    except LiftError as e:
        fail(str(e))
    print(summary, end="")


if __name__ == "__main__":
    main()
