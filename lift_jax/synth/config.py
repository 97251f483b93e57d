"""Defaults of the generation stage (`cfg.generator` of every run config)."""

from __future__ import annotations

import ml_collections

from lift_jax.errors import ConfigError

KINDS = ("local", "openai", "vllm")


def generator_config() -> ml_collections.ConfigDict:
    """Generator settings. `kind` is local | openai | vllm; `prompt` is auto | general | squad | niah |
    fewshot or a prompt file's path (`auto`: fewshot for local models, else the paper's general prompt)."""
    g = ml_collections.ConfigDict()
    g.kind = "local"
    g.base_url = "http://127.0.0.1:8000/v1"  # openai: the server's /v1 root
    g.model = "bundled:smollm2-135m-instruct"  # served name (openai), HF id (vllm) or model path (local)
    g.api_key_env = "OPENAI_API_KEY"  # name of the environment variable holding the key (unset: no key)
    g.concurrency = 64  # requests in flight (openai) / sentences per engine call (vllm)
    g.timeout_s = 120.0  # per request, including reading the reply
    g.max_retries = 4  # extra attempts after a transient failure
    g.backoff_s = 0.5  # exponential backoff base (full jitter), capped at backoff_max_s
    g.backoff_max_s = 30.0
    g.json_mode = True  # ask for response_format=json_object; dropped once if the server rejects it
    g.empty_retries = 1  # extra requests for a sentence whose reply held no usable pair
    g.qa_per_sentence = 10  # m
    g.prompt = "auto"
    g.max_context_chars = 2048  # preceding text shown with each sentence
    g.min_sentence_chars = 20  # shorter sentences merge with the next
    g.max_sentence_chars = 1000  # longer ones are cut at whitespace
    g.temperature = 0.7
    g.top_p = 0.95
    g.max_new_tokens = 1024  # per chat reply (m pairs as JSON)
    g.completion_max_new_tokens = 128  # per sample of a few-shot completion prompt
    g.samples_per_sentence = 3  # completion prompts: independent samples per sentence
    g.local_batch_size = 8  # local: sentences per sampler call
    return g


def check_generator_config(cfg: ml_collections.ConfigDict) -> None:
    """Raise ValueError naming the first generator setting that cannot work."""
    if cfg.kind not in KINDS:
        raise ConfigError(f"generator.kind {cfg.kind!r} is unknown; use one of {', '.join(KINDS)}")
    for name in ("qa_per_sentence", "concurrency", "samples_per_sentence", "local_batch_size",
                 "max_new_tokens", "completion_max_new_tokens", "min_sentence_chars", "max_sentence_chars"):
        if cfg[name] < 1:
            raise ConfigError(f"generator.{name} must be at least 1, got {cfg[name]}")
    for name in ("max_retries", "empty_retries", "max_context_chars"):
        if cfg[name] < 0:
            raise ConfigError(f"generator.{name} must not be negative, got {cfg[name]}")
    if cfg.timeout_s <= 0:
        raise ConfigError(f"generator.timeout_s must be positive, got {cfg.timeout_s}")
    if cfg.kind == "openai" and not cfg.base_url.startswith(("http://", "https://")):
        raise ConfigError(f"generator.base_url {cfg.base_url!r} must start with http:// or https://")
