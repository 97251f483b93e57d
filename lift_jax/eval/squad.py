"""`python -m lift_jax.eval.squad [--config eval_squad] [--config.<field>=VALUE ...]`

SQuAD v1.1 in the paper's single-passage setting: each paragraph of a file in the official JSON format is one
document, absorbed on its own; its questions are asked without it. Exact match and F1 (official normalisation,
max over the gold answers) per method, plus the LLM judge when judge.enabled.
Example: python -m lift_jax.eval.squad --config.data=FILE --config.max_documents=2 --config.methods=icl,lift
--config.output_dir=DIR
"""

from __future__ import annotations

import ml_collections

from lift_jax.eval.cli import eval_main
from lift_jax.eval.harness import Benchmark
from lift_jax.eval.metrics import SQUAD_METRICS
from lift_jax.eval.squad_data import load_squad

USAGE = __doc__


def squad_benchmark(cfg: ml_collections.ConfigDict) -> Benchmark:
    """The SQuAD harness over `cfg.data` (first `cfg.max_documents` paragraphs)."""
    return Benchmark(
        name="squad",
        title="SQuAD v1.1 (single passage)",
        metrics=SQUAD_METRICS,
        load_documents=lambda: load_squad(cfg.data, cfg.max_documents or None),
    )


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    eval_main(argv, "eval_squad", USAGE, squad_benchmark)


if __name__ == "__main__":
    main()
