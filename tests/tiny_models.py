"""Tiny random Hugging Face checkpoints (one per family) made with transformers + torch for parity tests."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import (
    AutoModelForCausalLM,
    Gemma2Config,
    Gemma3TextConfig,
    LlamaConfig,
    PretrainedConfig,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen3Config,
)

SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<|user|>", "<|assistant|>", "<|end|>"]
VOCAB = 256 + len(SPECIAL_TOKENS)
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ '<|' + m['role'] + '|>' + m['content'] + '<|end|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)
_COMMON = {
    "vocab_size": VOCAB,
    "hidden_size": 64,
    "intermediate_size": 96,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 256,
    "bos_token_id": 1,
    "eos_token_id": 5,
    "pad_token_id": 0,
}


def tiny_configs() -> dict[str, PretrainedConfig]:
    """One config per family, each exercising the features its family adds."""
    return {
        # Llama 3.1-style rope scaling, non-default theta, untied head, head_dim != hidden/heads.
        "llama3": LlamaConfig(
            **_COMMON,
            head_dim=24,
            rope_theta=50000.0,
            rope_scaling={
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 32,
            },
            tie_word_embeddings=False,
        ),
        # Llama 2 / SmolLM2-style: tied head, linear rope scaling, attention bias.
        "llama_tied": LlamaConfig(
            **_COMMON,
            rope_theta=20000.0,
            rope_scaling={"rope_type": "linear", "factor": 2.0},
            tie_word_embeddings=True,
            attention_bias=True,
        ),
        # Gemma 2: soft-caps, sliding window shorter than the test sequence on alternate layers.
        "gemma2": Gemma2Config(
            **_COMMON,
            head_dim=32,
            rope_theta=15000.0,
            query_pre_attn_scalar=48,
            sliding_window=5,
            attn_logit_softcapping=20.0,
            final_logit_softcapping=15.0,
            hidden_activation="gelu_pytorch_tanh",
        ),
        # Gemma 3 text: q/k norms, local/global layers with their own rope bases, linear scaling on global.
        "gemma3": Gemma3TextConfig(
            **{**_COMMON, "num_hidden_layers": 4},
            head_dim=16,
            rope_theta=80000.0,
            rope_local_base_freq=5000.0,
            rope_scaling={"rope_type": "linear", "factor": 4.0},
            sliding_window=6,
            layer_types=["sliding_attention", "sliding_attention", "full_attention", "sliding_attention"],
            query_pre_attn_scalar=16,
        ),
        # Qwen 2.5: q/k/v bias, tied head, YaRN scaling.
        "qwen2": Qwen2Config(
            **_COMMON,
            rope_theta=30000.0,
            rope_scaling={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64},
            tie_word_embeddings=True,
        ),
        # Qwen 3: q/k RMSNorm, explicit head_dim, untied.
        "qwen3": Qwen3Config(**_COMMON, head_dim=32, rope_theta=1234.0, tie_word_embeddings=False),
    }


def randomize_(model: torch.nn.Module, seed: int) -> None:
    """Give every parameter (norm scales and biases included) non-trivial random values."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.1)


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level tokenizer (one token per byte, no merges) with chat special tokens and a chat template."""
    byte_chars = list(pre_tokenizers.ByteLevel.alphabet())
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    vocab.update({ch: len(SPECIAL_TOKENS) + i for i, ch in enumerate(sorted(byte_chars))})
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="<|end|>",
        additional_special_tokens=SPECIAL_TOKENS[3:],
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok


def make_tiny_checkpoint(
    name: str, directory: Path, seed: int = 0, max_shard_size: str | None = None
) -> Path:
    """Save a randomly initialised tiny model of family `name` to `directory` and return it."""
    torch.manual_seed(seed)
    config = tiny_configs()[name]
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    randomize_(model, seed)
    kwargs = {"max_shard_size": max_shard_size} if max_shard_size else {}
    model.save_pretrained(directory, **kwargs)
    tiny_tokenizer().save_pretrained(directory)
    return directory


def load_reference(directory: Path) -> torch.nn.Module:
    """The transformers model for a saved tiny checkpoint, float32, eager attention."""
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32, attn_implementation="eager")
    return model.eval()
