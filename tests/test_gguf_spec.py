"""What a GGUF carries that transformers' GGUF config drops: llama.cpp's per-frequency rope divisors (Llama
3.1+), linear rope scaling (Gemma 3's global layers) and the 27B Gemmas' query scale. The corrected spec must be
the one transformers builds from the original config.json."""

from __future__ import annotations

import math
from pathlib import Path

import gguf
import numpy as np
import pytest
from tiny_models import tiny_configs
from transformers import Gemma2Config

from lift_jax.models.families import UnsupportedModelError
from lift_jax.models.gguf_spec import ROPE_FREQS_TENSOR, gguf_corrected_spec
from lift_jax.models.spec import ModelSpec, spec_from_hf_config


def _gguf(path: Path, arch: str, strings: dict[str, str] = {}, floats: dict[str, float] = {},  # noqa: B006
          tensors: dict[str, np.ndarray] = {}) -> Path:  # noqa: B006
    writer = gguf.GGUFWriter(str(path), arch)
    for key, text in strings.items():
        writer.add_string(f"{arch}.{key}", text)
    for key, number in floats.items():
        writer.add_float32(f"{arch}.{key}", number)
    for name, array in tensors.items():
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _unscaled(config) -> ModelSpec:
    """The spec transformers' GGUF config gives: the same model with plain rope at the same bases."""
    plain = config.__class__.from_dict(config.to_dict())
    params = plain.rope_parameters
    if all(isinstance(v, dict) for v in params.values()):
        plain.rope_parameters = {t: {"rope_type": "default", "rope_theta": p["rope_theta"]} for t, p in params.items()}
    else:
        plain.rope_parameters = {"rope_type": "default", "rope_theta": params["rope_theta"]}
    return spec_from_hf_config(plain)


def _llama3_divisors(rope: dict, head_dim: int) -> np.ndarray:
    """llama.cpp's converter: the factor each rotary frequency is divided by (its `rope_freqs` tensor)."""
    freqs = 1.0 / rope["rope_theta"] ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    factor, low, high = rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"]
    old = rope["original_max_position_embeddings"]
    out = []
    for wavelength in 2 * math.pi / freqs:
        if wavelength < old / high:
            out.append(1.0)
        elif wavelength > old / low:
            out.append(factor)
        else:
            s = (old / wavelength - low) / (high - low)
            out.append(1 / ((1 - s) / factor + s))
    return np.asarray(out, np.float32)


def _inv_freqs(spec: ModelSpec) -> dict[str, np.ndarray]:
    return {t: np.asarray(r.inv_freq) for t, r in spec.rope}


def test_llama3_rope_freqs_tensor_gives_transformers_llama3_rope(tmp_path):
    config = tiny_configs()["llama3"]
    reference = spec_from_hf_config(config)
    plain = _unscaled(config)
    assert not np.allclose(_inv_freqs(plain)["full_attention"], _inv_freqs(reference)["full_attention"])
    divisors = _llama3_divisors(config.rope_parameters, reference.head_dim)
    path = _gguf(tmp_path / "llama3.gguf", "llama", tensors={ROPE_FREQS_TENSOR: divisors})
    corrected = gguf_corrected_spec(plain, path)
    np.testing.assert_allclose(_inv_freqs(corrected)["full_attention"], _inv_freqs(reference)["full_attention"],
                               rtol=1e-6)
    assert gguf_corrected_spec(plain, path, rope=False).rope == plain.rope  # transformers already scaled it


def test_linear_scaling_applies_to_gemma3_global_layers_only(tmp_path):
    config = tiny_configs()["gemma3"]
    reference = spec_from_hf_config(config)
    path = _gguf(tmp_path / "gemma3.gguf", "gemma3", strings={"rope.scaling.type": "linear"},
                 floats={"rope.scaling.factor": 4.0})
    corrected = _inv_freqs(gguf_corrected_spec(_unscaled(config), path))
    for layer_type, inv in _inv_freqs(reference).items():
        np.testing.assert_allclose(corrected[layer_type], inv, rtol=1e-6)
    assert gguf_corrected_spec(_unscaled(config), path).query_scale == config.head_dim ** -0.5


def test_a_27b_gemma_gguf_scales_queries_by_hidden_over_heads(tmp_path):
    path = _gguf(tmp_path / "gemma2.gguf", "gemma2")
    small = dict(vocab_size=64, hidden_size=64, intermediate_size=32, num_attention_heads=2, num_key_value_heads=1,
                 head_dim=16, query_pre_attn_scalar=256)  # 256: what transformers assumes for a GGUF
    wide = spec_from_hf_config(Gemma2Config(**small, num_hidden_layers=46))
    assert gguf_corrected_spec(wide, path).query_scale == pytest.approx(32 ** -0.5)
    narrow = spec_from_hf_config(Gemma2Config(**small, num_hidden_layers=2))
    assert gguf_corrected_spec(narrow, path).query_scale == pytest.approx(16 ** -0.5)


def test_an_unsupported_gguf_rope_scaling_is_named(tmp_path):
    path = _gguf(tmp_path / "yarn.gguf", "llama", strings={"rope.scaling.type": "yarn"})
    with pytest.raises(UnsupportedModelError, match="GGUF rope scaling 'yarn' is not supported; supported: linear"):
        gguf_corrected_spec(spec_from_hf_config(tiny_configs()["llama_tied"]), path)
