"""SQuAD v1.1 evaluation on the bundled SmolLM2-135M-Instruct (CPU): the first 20 paragraphs of the bundled
dev half, truncated ICL, LIFT and Finetune-Raw, the smollm2_135m absorb settings (local generator, m = 5, batch 4)."""

from lift_jax.eval.config import eval_config
from lift_jax.eval.paths import squad_file


def get_config():
    cfg = eval_config("squad", str(squad_file()), "icl,lift,raw")
    cfg.max_documents = 20
    cfg.document_unit = "paragraph"  # or "article": one document per article, all its paragraphs
    cfg.titles = ""  # 'A|B': only the articles with these titles, '|'-separated as titles hold commas ('' = all)
    cfg.train.batch_size = 4  # a paragraph gives a few pairs: smaller batches pad less on a CPU
    cfg.ask.max_new_tokens = 32  # SQuAD answers are short spans
    return cfg
