"""One home per model family: every fact that differs between the decoders lift_jax runs.

The loader, LoRA, sharding, PEFT and llama.cpp export, stop tokens and prompting read these records and name no
family themselves. Adding a family with Hugging Face's usual decoder layout (`model.layers.{i}.self_attn.*`,
`model.layers.{i}.mlp.*`) means adding one `ModelFamily` to `FAMILIES`; one whose numbers need a new kind of
layer also needs that layer in `layers.py` and a flag here that `spec.py` reads.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

from lift_jax.errors import LiftError

ATTENTION_LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP_LINEARS = ("gate_proj", "up_proj", "down_proj")
# llama.cpp block tensor kind -> Hugging Face name inside `model.layers.{i}.`; `ffn_norm` (the pre-MLP norm)
# differs per family and is `ModelFamily.llama_cpp_ffn_norm`.
LLAMA_CPP_BLOCK_NAMES = (
    ("attn_norm", "input_layernorm"),
    ("attn_q", "self_attn.q_proj"),
    ("attn_k", "self_attn.k_proj"),
    ("attn_v", "self_attn.v_proj"),
    ("attn_output", "self_attn.o_proj"),
    ("attn_q_norm", "self_attn.q_norm"),
    ("attn_k_norm", "self_attn.k_norm"),
    ("ffn_gate", "mlp.gate_proj"),
    ("ffn_up", "mlp.up_proj"),
    ("ffn_down", "mlp.down_proj"),
    ("post_attention_norm", "post_attention_layernorm"),
    ("post_ffw_norm", "post_feedforward_layernorm"),
)
_LLAMA_END_OF_TURN = ("<|eot_id|>", "<|end_of_text|>")


class UnsupportedModelError(LiftError, ValueError):
    """The checkpoint describes an architecture lift_jax does not implement."""


@dataclasses.dataclass(frozen=True)
class ModelFamily:
    """What one decoder family needs beyond the numbers of its config.json."""

    name: str
    model_types: tuple[str, ...]  # Hugging Face `model_type`s of the text decoder
    # A multimodal wrapper whose `text_config` holds the decoder (Gemma 3's "gemma3").
    wrapper_model_types: tuple[str, ...] = ()
    # The attention and feed-forward blocks of a decoder layer and their linear layers (Hugging Face attribute
    # names): LoRA's "all-linear", the PEFT target_modules and the weights the loader transposes.
    attention_block: str = "self_attn"
    mlp_block: str = "mlp"
    attention_linears: tuple[str, ...] = ATTENTION_LINEARS
    mlp_linears: tuple[str, ...] = MLP_LINEARS
    # Tensor parallelism: column-parallel layers split their output, row-parallel ones their input.
    column_parallel: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj")
    row_parallel: tuple[str, ...] = ("o_proj", "down_proj")
    embedding: str = "embed_tokens"
    output_head: str = "lm_head"
    query_linear: str = "q_proj"  # the projections llama.cpp interleaves for its rope (see below)
    key_linear: str = "k_proj"
    # Architecture traits spec.py turns into ModelSpec fields.
    always_qkv_bias: bool = False  # q/k/v carry a bias whatever `attention_bias` says (Qwen 2)
    qk_norm: bool = False  # RMSNorm on queries and keys per head
    # Gemma: sandwich norms, (1 + w) norm scales, sqrt(hidden) embedding scale, logit soft-capping and
    # `query_pre_attn_scalar`.
    gemma_norms: bool = False
    # Chat: end-of-turn tokens generation stops on, and variables every chat template is rendered with.
    end_of_turn_tokens: tuple[str, ...] = ()
    chat_template_kwargs: tuple[tuple[str, Any], ...] = ()
    # llama.cpp: its architecture name (gguf.MODEL_ARCH_NAMES), whether its converter interleaves the q/k rows,
    # and what its `ffn_norm` is called in Hugging Face's layout.
    llama_cpp_arch: str | None = None
    llama_cpp_rope_interleaved: bool = False
    llama_cpp_ffn_norm: str = "post_attention_layernorm"
    # Layer counts at which llama.cpp scales a GGUF's queries by (hidden / heads) ** -0.5 instead of
    # head_dim ** -0.5 (the 27B Gemmas, whose query_pre_attn_scalar a GGUF does not carry).
    llama_cpp_wide_query_scale_layers: tuple[int, ...] = ()

    @property
    def linears(self) -> tuple[str, ...]:
        """Every linear layer of a decoder block, attention first."""
        return self.attention_linears + self.mlp_linears


FAMILIES: tuple[ModelFamily, ...] = (
    ModelFamily(
        name="llama",
        model_types=("llama",),
        # Llama 3's own markers, plus ChatML's and Phi-style ones that Llama fine-tunes (SmolLM2) use.
        end_of_turn_tokens=(*_LLAMA_END_OF_TURN, "<|im_end|>", "<|end|>"),
        # Llama 3.2's template writes today's date into the system turn unless given one: pinned (to the
        # template's own fallback) so a prompt asked on another day is the prompt trained on.
        chat_template_kwargs=(("date_string", "26 Jul 2024"),),
        llama_cpp_arch="llama",
        llama_cpp_rope_interleaved=True,
    ),
    ModelFamily(
        name="gemma2",
        model_types=("gemma2",),
        gemma_norms=True,
        end_of_turn_tokens=("<end_of_turn>",),
        llama_cpp_arch="gemma2",
        llama_cpp_ffn_norm="pre_feedforward_layernorm",
        llama_cpp_wide_query_scale_layers=(46,),
    ),
    ModelFamily(
        name="gemma3",
        model_types=("gemma3_text",),
        wrapper_model_types=("gemma3",),
        qk_norm=True,
        gemma_norms=True,
        end_of_turn_tokens=("<end_of_turn>",),
        llama_cpp_arch="gemma3",
        llama_cpp_ffn_norm="pre_feedforward_layernorm",
        llama_cpp_wide_query_scale_layers=(62,),
    ),
    ModelFamily(
        name="qwen2",
        model_types=("qwen2",),
        always_qkv_bias=True,
        end_of_turn_tokens=("<|im_end|>", "<|endoftext|>"),
        llama_cpp_arch="qwen2",
    ),
    ModelFamily(
        name="qwen3",
        model_types=("qwen3",),
        qk_norm=True,
        end_of_turn_tokens=("<|im_end|>", "<|endoftext|>"),
        # Qwen 3's template otherwise opens a thinking block before every answer.
        chat_template_kwargs=(("enable_thinking", False),),
        llama_cpp_arch="qwen3",
    ),
)


def supported_model_types() -> tuple[str, ...]:
    """Every Hugging Face `model_type` of a decoder lift_jax loads."""
    return tuple(t for family in FAMILIES for t in family.model_types)


def family_of(model_type: str) -> ModelFamily:
    """The family of a decoder `model_type`; an unknown one is an UnsupportedModelError."""
    for family in FAMILIES:
        if model_type in family.model_types:
            return family
    raise UnsupportedModelError(
        f"model_type {model_type!r} is not supported; supported: {', '.join(supported_model_types())}"
    )


def is_wrapper(model_type: str) -> bool:
    """Whether `model_type` is a multimodal wrapper whose `text_config` is a supported decoder."""
    return any(model_type in family.wrapper_model_types for family in FAMILIES)


def family_of_llama_cpp_arch(arch: str) -> ModelFamily:
    """The family of a GGUF file's `general.architecture`."""
    for family in FAMILIES:
        if family.llama_cpp_arch == arch:
            return family
    known = ", ".join(f.llama_cpp_arch for f in FAMILIES if f.llama_cpp_arch)
    raise UnsupportedModelError(f"GGUF architecture {arch!r} is not supported; supported: {known}")


def all_linears() -> tuple[str, ...]:
    """Every linear-layer name any family has (what a PEFT adapter's target_modules may name)."""
    return tuple(dict.fromkeys(name for family in FAMILIES for name in family.linears))


def all_end_of_turn_tokens() -> tuple[str, ...]:
    """Every family's end-of-turn tokens: a tokenizer does not say its family, and a fine-tune may use another
    family's chat format (SmolLM2 is a Llama with ChatML), so decoding stops on any the vocabulary holds."""
    return tuple(dict.fromkeys(itertools.chain.from_iterable(f.end_of_turn_tokens for f in FAMILIES)))


def chat_template_kwargs() -> dict[str, Any]:
    """Variables every chat template is rendered with; a template ignores the ones it does not use."""
    return {key: value for family in FAMILIES for key, value in family.chat_template_kwargs}
