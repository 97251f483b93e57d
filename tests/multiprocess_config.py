"""absorb config for the multi-process tests: a tiny model, an OpenAI-compatible generator on 127.0.0.1 that
returns one pair per sentence, requests one at a time (so QA pairs arrive in sentence order), no TTFT probe.
The model, document, output directory and generator URL come from the command line."""

import ml_collections

from lift_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = base_config()
    g = cfg.generator
    g.kind, g.model, g.prompt, g.api_key_env = "openai", "fake", "general", ""
    g.concurrency, g.timeout_s, g.max_retries, g.backoff_s, g.qa_per_sentence = 1, 10.0, 1, 0.01, 1
    cfg.lora.rank, cfg.lora.alpha = 4, 8.0
    cfg.train.lr, cfg.train.epochs, cfg.train.batch_size = 3e-3, 3, 8
    cfg.train.max_length, cfg.train.min_bucket, cfg.train.checkpoint_every = 128, 128, 1
    cfg.ask.measure_first_token = False
    cfg.mesh.heartbeat_timeout_s = 10
    return cfg
