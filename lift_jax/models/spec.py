"""ModelSpec: every architecture number of a decoder, read from a Hugging Face config, never typed in."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from lift_jax.models.families import (
    ModelFamily,
    UnsupportedModelError,
    family_of,
    is_wrapper,
    supported_model_types,
)

SUPPORTED_MODEL_TYPES = supported_model_types()
SUPPORTED_ROPE_TYPES = ("default", "linear", "llama3", "yarn")
_ACTIVATIONS = {"silu": "silu", "swish": "silu", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu"}

__all__ = ["SUPPORTED_MODEL_TYPES", "ModelSpec", "RopeSpec", "UnsupportedModelError", "spec_from_hf_config"]


@dataclasses.dataclass(frozen=True)
class RopeSpec:
    """Rotary embedding of one layer type: inverse frequencies and the cos/sin scale (YaRN)."""

    inv_freq: tuple[float, ...]
    attention_scaling: float = 1.0

    @property
    def rotary_dim(self) -> int:
        return 2 * len(self.inv_freq)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Architecture of one decoder-only transformer, covering Llama, Gemma 2/3 and Qwen 2/3."""

    model_type: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rms_norm_eps: float
    activation: str
    tie_embeddings: bool
    qkv_bias: bool
    o_bias: bool
    mlp_bias: bool
    qk_norm: bool
    sandwich_norms: bool  # Gemma 2/3: post-attention and pre/post feed-forward norms
    norm_offset: float  # Gemma scales by (1 + w)
    embed_scale: float
    query_scale: float
    attn_softcap: float | None
    final_softcap: float | None
    sliding_window: int | None
    layer_types: tuple[str, ...]  # "full_attention" | "sliding_attention" per layer
    rope: tuple[tuple[str, RopeSpec], ...]  # (layer type, rope) pairs; a tuple keeps the spec hashable
    max_position_embeddings: int
    bos_token_id: int | None = None
    eos_token_ids: tuple[int, ...] = ()
    pad_token_id: int | None = None
    in_wrapper: bool = False  # the decoder is a multimodal wrapper's text model (Gemma 3's gemma3)

    @property
    def family(self) -> ModelFamily:
        """The registry record of this decoder's family (lift_jax.models.families)."""
        return family_of(self.model_type)

    @property
    def num_query_groups(self) -> int:
        return self.num_heads // self.num_kv_heads

    def layer_rope(self, layer: int) -> RopeSpec:
        """Rotary embedding of `layer` (Gemma 3 uses a different base for its local layers)."""
        return dict(self.rope)[self.layer_types[layer]]

    def layer_window(self, layer: int) -> int | None:
        """Sliding-window size of `layer`, or None for global attention."""
        return self.sliding_window if self.layer_types[layer] == "sliding_attention" else None


def _get(config: Any, name: str, default: Any = None) -> Any:
    return getattr(config, name, default)


def _rope_dim(head_dim: int, params: dict[str, Any]) -> int:
    return int(head_dim * params.get("partial_rotary_factor", 1.0))


def _float32_power(base: float, exponents: np.ndarray) -> np.ndarray:
    """float32 base ** exponents, each correctly rounded from the exact power, as torch's float32 pow (the
    reference's) rounds it on about 99% of exponents.

    numpy's float32 pow is one ulp off on some exponents (5 of SmolLM2's 32 frequencies), which moves a rotary
    angle by up to position * ulp: SmolLM2's hidden states then left transformers' by 4e-5 even in float64.
    """
    return (np.float64(np.float32(base)) ** exponents.astype(np.float64)).astype(np.float32)


def _default_inv_freq(base: float, dim: int) -> np.ndarray:
    # float32 like the reference, so positions * inv_freq round identically.
    exponents = np.arange(0, dim, 2, dtype=np.int64).astype(np.float32) / np.float32(dim)
    return (1.0 / _float32_power(base, exponents)).astype(np.float32)


def _llama3_inv_freq(inv_freq: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    factor = params["factor"]
    low, high = params["low_freq_factor"], params["high_freq_factor"]
    old_len = params["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv_freq
    scaled = np.where(wavelen > old_len / low, inv_freq / factor, inv_freq)
    smooth = (old_len / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < old_len / high) & ~(wavelen > old_len / low)
    return np.where(medium, smoothed, scaled).astype(np.float32)


def _yarn_inv_freq(base: float, dim: int, params: dict[str, Any], max_pos: int) -> tuple[np.ndarray, float]:
    factor = params.get("factor")
    original = params["original_max_position_embeddings"]
    if factor is None:
        factor = max_pos / original

    def mscale(scale: float, m: float = 1.0) -> float:
        return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0

    attention_factor = params.get("attention_factor")
    if attention_factor is None:
        m, m_all = params.get("mscale"), params.get("mscale_all_dim")
        attention_factor = mscale(factor, m) / mscale(factor, m_all) if m and m_all else mscale(factor)
    beta_fast = params.get("beta_fast") or 32
    beta_slow = params.get("beta_slow") or 1

    def correction_dim(rotations: float) -> float:
        return (dim * math.log(original / (rotations * 2 * math.pi))) / (2 * math.log(base))

    low, high = correction_dim(beta_fast), correction_dim(beta_slow)
    if params.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001
    ramp = np.clip((np.arange(dim // 2, dtype=np.float32) - low) / (high - low), 0, 1)
    pos_freqs = _float32_power(base, np.arange(0, dim, 2).astype(np.float32) / np.float32(dim))
    extrapolation_weight = 1 - ramp
    inv_freq = (1.0 / (factor * pos_freqs)) * (1 - extrapolation_weight) + (
        1.0 / pos_freqs
    ) * extrapolation_weight
    return inv_freq.astype(np.float32), float(attention_factor)


def rope_from_params(params: dict[str, Any], head_dim: int, max_pos: int) -> RopeSpec:
    """Inverse frequencies for one Hugging Face `rope_parameters` dict."""
    rope_type = params.get("rope_type", params.get("type", "default"))
    if rope_type not in SUPPORTED_ROPE_TYPES:
        raise UnsupportedModelError(
            f"rope type {rope_type!r} is not supported; supported: {', '.join(SUPPORTED_ROPE_TYPES)}"
        )
    base = float(params["rope_theta"])
    dim = _rope_dim(head_dim, params)
    scaling = 1.0
    if rope_type == "yarn":
        inv_freq, scaling = _yarn_inv_freq(base, dim, params, max_pos)
    else:
        inv_freq = _default_inv_freq(base, dim)
        if rope_type == "linear":
            inv_freq = (inv_freq / np.float32(params["factor"])).astype(np.float32)
        elif rope_type == "llama3":
            inv_freq = _llama3_inv_freq(inv_freq, params)
    return RopeSpec(inv_freq=tuple(float(x) for x in inv_freq), attention_scaling=scaling)


def _rope_by_layer_type(
    config: Any, head_dim: int, layer_types: tuple[str, ...]
) -> tuple[tuple[str, RopeSpec], ...]:
    if hasattr(config, "standardize_rope_params"):
        config.standardize_rope_params()
    params = _get(config, "rope_parameters") or {
        "rope_type": "default",
        "rope_theta": _get(config, "rope_theta"),
    }
    max_pos = _get(config, "max_position_embeddings", 2048)
    nested = all(t in params for t in set(layer_types))
    return tuple(
        (t, rope_from_params(params[t] if nested else params, head_dim, max_pos))
        for t in sorted(set(layer_types))
    )


def _eos_ids(value: Any) -> tuple[int, ...]:
    if value is None:
        return ()
    return tuple(value) if isinstance(value, (list, tuple)) else (int(value),)


def text_decoder_config(config: Any) -> Any:
    """The config of the text decoder: a multimodal wrapper's `text_config` (Gemma 3), else `config` itself."""
    if is_wrapper(_get(config, "model_type")) and _get(config, "text_config") is not None:
        return config.text_config
    return config


def spec_from_hf_config(config: Any) -> ModelSpec:
    """Build a ModelSpec from a `transformers` config object (AutoConfig of config.json or GGUF)."""
    outer, config = config, text_decoder_config(config)  # a wrapper's own tie flag and eos ids are the ones used
    model_type = _get(config, "model_type")
    family = family_of(model_type)
    if _get(config, "use_bidirectional_attention"):
        raise UnsupportedModelError(f"{model_type} with use_bidirectional_attention is an encoder (an embedding "
                                    "model), not a causal LM; use the generative checkpoint")
    gemma_norms = family.gemma_norms
    hidden = config.hidden_size
    heads = config.num_attention_heads
    head_dim = _get(config, "head_dim") or hidden // heads
    num_layers = config.num_hidden_layers
    layer_types = tuple(_get(config, "layer_types") or ["full_attention"] * num_layers)
    act_name = _get(config, "hidden_activation") or _get(config, "hidden_act", "silu")
    if act_name not in _ACTIVATIONS:
        raise UnsupportedModelError(
            f"activation {act_name!r} is not supported; supported: {sorted(_ACTIVATIONS)}"
        )
    query_pre_attn = _get(config, "query_pre_attn_scalar") if gemma_norms else None
    attention_bias = bool(_get(config, "attention_bias", False))
    return ModelSpec(
        model_type=model_type,
        vocab_size=config.vocab_size,
        hidden_size=hidden,
        intermediate_size=config.intermediate_size,
        num_layers=num_layers,
        num_heads=heads,
        num_kv_heads=_get(config, "num_key_value_heads") or heads,
        head_dim=head_dim,
        rms_norm_eps=float(config.rms_norm_eps),
        activation=_ACTIVATIONS[act_name],
        tie_embeddings=bool(_get(outer, "tie_word_embeddings", True)),
        qkv_bias=family.always_qkv_bias or attention_bias,
        o_bias=attention_bias and not family.always_qkv_bias,
        mlp_bias=bool(_get(config, "mlp_bias", False)),
        qk_norm=family.qk_norm,
        sandwich_norms=gemma_norms,
        norm_offset=1.0 if gemma_norms else 0.0,
        embed_scale=math.sqrt(hidden) if gemma_norms else 1.0,
        query_scale=float(query_pre_attn if query_pre_attn else head_dim) ** -0.5,
        attn_softcap=_get(config, "attn_logit_softcapping") if gemma_norms else None,
        final_softcap=_get(config, "final_logit_softcapping") if gemma_norms else None,
        sliding_window=_get(config, "sliding_window"),
        layer_types=layer_types,
        rope=_rope_by_layer_type(config, head_dim, layer_types),
        max_position_embeddings=_get(config, "max_position_embeddings", 2048),
        bos_token_id=_get(config, "bos_token_id"),
        eos_token_ids=_eos_ids(_get(outer, "eos_token_id")) or _eos_ids(_get(config, "eos_token_id")),
        pad_token_id=_get(config, "pad_token_id"),
        in_wrapper=config is not outer,
    )
