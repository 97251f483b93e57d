"""Run absorb with method lift+cd on a tiny checkpoint, with deterministic fake generated questions (the real
teacher and trainer run); used in-process and as a script.

python tests/fake_cd_absorb.py CHECKPOINT OUTPUT_DIR [QUESTION_DELAY_S]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import conftest  # noqa: E402,F401  (same XLA flags as the test session)

import lift_jax.absorbing.job as absorb_module  # noqa: E402
import lift_jax.synth.pipeline as pipeline  # noqa: E402
from lift_jax.config import base_config  # noqa: E402

DOCUMENT = " ".join(
    f"Crate {name} at the dock weighs {3 * i + 4} kilograms and holds {name} apples." for i, name in enumerate(
        ["amber", "birch", "cobalt", "dune", "ember", "fjord", "garnet", "heron", "indigo", "juniper"])
)


def fake_pairs(delay_s: float):
    """A document_pairs replacement: per sentence two on-topic questions, a duplicate and an off-topic one
    (sentence 3: none, so it gets the fallback question)."""

    def document_pairs(cfg, document, cache_dir, progress=True, shard_index=0, shard_count=1, completer=None):
        from lift_jax.synth.split import split_sentences

        sentences = split_sentences(document, cfg.generator.min_sentence_chars, cfg.generator.max_sentence_chars)
        for i, s in enumerate(sentences):
            time.sleep(delay_s)
            name = s.text.split()[1]
            if i == 3:
                yield i, []
                continue
            yield i, [(f"How much does crate {name} weigh?", "x"), (f"How much does crate {name} weigh ?", "x"),
                      (f"What does crate {name} hold?", "x"), ("Who won the match yesterday?", "x")]

    return document_pairs


def tiny_cd_config(checkpoint: Path, output_dir: Path):
    """A fast lift+cd absorb config over a tiny checkpoint."""
    cfg = base_config()
    cfg.method = "lift+cd"
    cfg.model_path = str(checkpoint)
    cfg.output_dir = str(output_dir)
    document = output_dir.parent / "document.txt"
    document.write_text(DOCUMENT)
    cfg.document = str(document)
    cfg.lora.rank, cfg.lora.alpha = 4, 8.0
    cfg.train.lr, cfg.train.epochs, cfg.train.batch_size = 3e-3, 2, 4
    cfg.train.max_length, cfg.train.min_bucket, cfg.train.checkpoint_every = 128, 128, 1
    cfg.cd.context_tokens, cfg.cd.max_answer_tokens, cfg.cd.top_k = 96, 6, 5
    cfg.cd.holdout, cfg.cd.ce_weight = 0.25, 0.5
    cfg.ask.max_new_tokens = 4
    cfg.mesh.data = 1
    return cfg


def run(checkpoint: Path, output_dir: Path, delay_s: float = 0.0) -> dict:
    """absorb() with the fake questions (restored afterwards: later tests in the process need the real ones)."""
    real = pipeline.document_pairs
    pipeline.document_pairs = fake_pairs(delay_s)
    try:
        return absorb_module.absorb(tiny_cd_config(checkpoint, output_dir), progress=False)
    finally:
        pipeline.document_pairs = real


if __name__ == "__main__":
    print(run(Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 0.0))
