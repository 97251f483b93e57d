"""NIAH evaluation on the bundled SmolLM2-135M-Instruct (CPU): lengths 1k-3k tokens x 5 depths x 1 sample,
LIFT, Finetune-Raw and truncated ICL, the smollm2_135m absorb settings (local generator, m = 5, batch 4). The generator
sees 512 characters before each sentence (2048 elsewhere), so only the few sentences right after the needle
differ between the cells of one length and the rest of their QA pairs come from the shared cache."""

import ml_collections

from lift_jax.eval.config import eval_config
from lift_jax.eval.niah_data import NEEDLE, QUESTION
from lift_jax.eval.paths import niah_essays_dir


def get_config():
    cfg = eval_config("niah", str(niah_essays_dir()), "lift,raw,icl")
    cfg.generator.max_context_chars = 512
    cfg.train.batch_size = 4  # smaller batches pad less on a CPU
    cfg.niah = ml_collections.ConfigDict()
    cfg.niah.lengths = "1000,2000,3000"  # tokens of the model's tokenizer
    cfg.niah.depths = "0,0.25,0.5,0.75,1"  # fractions of the document
    cfg.niah.samples = 1  # documents per cell, each with its own essay order (the paper: 5)
    cfg.niah.needle = NEEDLE
    cfg.niah.question = QUESTION
    cfg.niah.keywords = "sandwich,Dolores Park,sunny"
    cfg.niah.seed = 0
    return cfg
