"""LooGLE evaluation on the bundled SmolLM2-135M-Instruct (CPU): every document of the bundled ShortQA and
LongQA samples, truncated ICL, LIFT and Finetune-Raw, the smollm2_135m absorb settings (local generator, batch 4)."""

from lift_jax.eval.config import eval_config
from lift_jax.eval.paths import loogle_dir


def get_config():
    cfg = eval_config("loogle", str(loogle_dir()), "icl,lift,raw")
    cfg.train.batch_size = 4  # smaller batches pad less on a CPU
    return cfg
