"""What llama.cpp reads from a GGUF file that transformers' GGUF config drops: rope frequency scaling (Llama
3.1+'s `rope_freqs` tensor, `rope.scaling.*` keys) and the Gemma query scale (a GGUF has no
`query_pre_attn_scalar`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from lift_jax.models.families import UnsupportedModelError
from lift_jax.models.gguf_parse import gguf_field, parsed_gguf
from lift_jax.models.spec import ModelSpec

ROPE_FREQS_TENSOR = "rope_freqs.weight"  # llama.cpp divides each rotary frequency by its entry
_SCALINGS = (None, "none", "linear")


def _rope_divisors(reader: Any) -> np.ndarray | None:
    import gguf

    for tensor in reader.tensors:
        if tensor.name == ROPE_FREQS_TENSOR:
            return gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32).reshape(-1)
    return None


def gguf_corrected_spec(spec: ModelSpec, path: str | Path, rope: bool = True) -> ModelSpec:
    """`spec` (built from transformers' config of the GGUF at `path`) with the rope frequencies (unless `rope`
    is False) and query scale llama.cpp uses for the file; an unsupported rope scaling type is an
    UnsupportedModelError."""
    reader = parsed_gguf(path)
    arch = gguf_field(reader, "general.architecture")
    kind = gguf_field(reader, f"{arch}.rope.scaling.type") if rope else None
    factor = gguf_field(reader, f"{arch}.rope.scaling.factor")
    if kind not in _SCALINGS:
        raise UnsupportedModelError(f"{path}: GGUF rope scaling {kind!r} is not supported; supported: linear")
    divisors = _rope_divisors(reader) if rope else None
    ropes = []
    for layer_type, r in spec.rope:
        inv = np.asarray(r.inv_freq, np.float32)
        if divisors is not None:
            if divisors.shape != inv.shape:
                raise UnsupportedModelError(f"{path}: {ROPE_FREQS_TENSOR} has {divisors.size} entries for "
                                            f"{inv.size} rotary frequencies")
            inv = inv / divisors
        if kind == "linear" and factor and layer_type == "full_attention":  # Gemma 3: global layers only
            inv = inv / np.float32(factor)
        ropes.append((layer_type, dataclasses.replace(r, inv_freq=tuple(float(x) for x in inv))))
    changes: dict[str, Any] = {"rope": tuple(ropes)}
    if spec.family.gemma_norms:
        wide = spec.num_layers in spec.family.llama_cpp_wide_query_scale_layers
        changes["query_scale"] = float(spec.hidden_size // spec.num_heads if wide else spec.head_dim) ** -0.5
    return dataclasses.replace(spec, **changes)
