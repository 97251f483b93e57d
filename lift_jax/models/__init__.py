"""Flax NNX decoders (Llama, Gemma 2/3, Qwen 2/3) loaded from Hugging Face checkpoints or GGUF."""

from lift_jax.models.loader import LoadedModel, load
from lift_jax.models.spec import SUPPORTED_MODEL_TYPES, ModelSpec, UnsupportedModelError, spec_from_hf_config
from lift_jax.models.transformer import Transformer

__all__ = [
    "SUPPORTED_MODEL_TYPES",
    "LoadedModel",
    "ModelSpec",
    "Transformer",
    "UnsupportedModelError",
    "load",
    "spec_from_hf_config",
]
