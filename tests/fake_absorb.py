"""Run absorb on a tiny checkpoint with a deterministic fake QA producer (used in-process and as a script).

python tests/fake_absorb.py CHECKPOINT OUTPUT_DIR [PAIR_DELAY_S]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import conftest  # noqa: E402,F401  (same XLA flags as the test session)

import lift_jax.absorbing.job as absorb_module  # noqa: E402
from lift_jax.config import base_config  # noqa: E402
from lift_jax.data import ItemBuffer  # noqa: E402
from lift_jax.producer import QAProducer  # noqa: E402

PAIRS = [(f"What is fact number {i}?", f"Fact {i} is that item {i} weighs {3 * i + 1} grams.") for i in range(24)]


def fake_producer(delay_s: float):
    """A start_qa_producer replacement yielding PAIRS one sentence at a time."""

    def start(cfg, document, cache_dir, buffer: ItemBuffer, progress=True, completer=None) -> QAProducer:
        def results():
            for i, pair in enumerate(PAIRS):
                time.sleep(delay_s)
                yield i, [pair]

        producer = QAProducer(results, buffer)
        producer.start()
        return producer

    return start


def tiny_config(checkpoint: Path, output_dir: Path):
    """A fast absorb config over a tiny checkpoint."""
    cfg = base_config()
    cfg.model_path = str(checkpoint)
    cfg.output_dir = str(output_dir)
    document = output_dir.parent / "document.txt"
    document.write_text("Item one weighs four grams. Item two weighs seven grams.")
    cfg.document = str(document)
    cfg.lora.rank, cfg.lora.alpha = 4, 8.0
    cfg.train.lr, cfg.train.epochs, cfg.train.batch_size = 3e-3, 3, 4
    cfg.train.max_length, cfg.train.min_bucket, cfg.train.checkpoint_every = 64, 64, 1
    cfg.mesh.data = 1
    return cfg


def run(checkpoint: Path, output_dir: Path, delay_s: float = 0.0) -> dict:
    """absorb() with the fake producer (restored afterwards: later tests in the process need the real one)."""
    real = absorb_module.start_qa_producer
    absorb_module.start_qa_producer = fake_producer(delay_s)
    try:
        return absorb_module.absorb(tiny_config(checkpoint, output_dir), progress=False)
    finally:
        absorb_module.start_qa_producer = real


if __name__ == "__main__":
    run(Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 0.0)
