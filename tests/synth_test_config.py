"""Run config for the generation-stage CLI tests: an OpenAI-compatible generator on 127.0.0.1."""

import ml_collections

from lift_jax.synth.config import generator_config


def get_config() -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict()
    cfg.document = ""
    cfg.output_dir = ""
    cfg.model_path = ""
    cfg.dtype = "float32"
    cfg.seed = 0
    cfg.generator = generator_config()
    cfg.generator.kind = "openai"
    cfg.generator.model = "fake"
    cfg.generator.prompt = "general"
    cfg.generator.api_key_env = ""
    cfg.generator.concurrency = 2
    cfg.generator.timeout_s = 5.0
    cfg.generator.max_retries = 1
    cfg.generator.backoff_s = 0.01
    cfg.generator.qa_per_sentence = 3
    return cfg
