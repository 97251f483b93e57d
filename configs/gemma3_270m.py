"""Gemma 3 270M (bundled, GGUF, base model: plain `Question: ... Answer:` prompts) on CPU."""

from lift_jax.config import base_config


def get_config():
    cfg = base_config()
    cfg.model_path = "bundled:gemma3-270m"
    cfg.output_dir = "runs/gemma3_270m"
    cfg.use_chat_template = False
    cfg.lora.rank = 16
    cfg.lora.alpha = 32.0
    cfg.train.lr = 3e-4
    cfg.train.epochs = 8
    cfg.train.batch_size = 8
    cfg.train.max_length = 256
    cfg.generator.kind = "local"
    cfg.generator.model = "bundled:smollm2-135m-instruct"
    cfg.generator.qa_per_sentence = 5
    return cfg
