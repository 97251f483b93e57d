"""Logits parity of the Flax decoders with transformers on tiny random checkpoints of every family."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from jax.sharding import PartitionSpec
from tiny_models import VOCAB, load_reference, make_tiny_checkpoint, tiny_configs
from transformers import AutoModelForCausalLM

from lift_jax.models import UnsupportedModelError, load
from lift_jax.models.loader import load_hf_config, resolve_source
from lift_jax.models.spec import spec_from_hf_config
from lift_jax.models.weight_files import CheckpointError
from lift_jax.sharding import make_mesh

FAMILIES = list(tiny_configs())
SEQ = 14  # longer than every tiny sliding window


def _batch(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    ids = rng.randint(6, VOCAB, (3, SEQ))
    mask = np.ones_like(ids)
    mask[1, 9:] = 0  # right padding
    mask[2, 5:] = 0
    ids[mask == 0] = 0
    return ids, mask


def _reference_logits(directory: Path, ids: np.ndarray, mask: np.ndarray, positions=None) -> np.ndarray:
    ref = load_reference(directory)
    kwargs = {"position_ids": torch.tensor(positions)} if positions is not None else {}
    with torch.no_grad():
        return ref(torch.tensor(ids), attention_mask=torch.tensor(mask), **kwargs).logits.numpy()


@pytest.mark.parametrize("family", FAMILIES)
def test_logits_match_transformers_with_right_padding(tiny_checkpoints, family):
    ids, mask = _batch(0)
    model = load(tiny_checkpoints[family])
    ours = np.asarray(model.module(jnp.asarray(ids), attention_mask=jnp.asarray(mask)))
    ref = _reference_logits(tiny_checkpoints[family], ids, mask)
    valid = mask.astype(bool)
    assert ours.shape == (3, SEQ, VOCAB)
    assert np.abs(ours - ref)[valid].max() <= 1e-4


@pytest.mark.parametrize("family", ["llama3", "gemma2", "gemma3"])
def test_logits_match_transformers_with_left_padding(tiny_checkpoints, family):
    ids, mask = _batch(1)
    ids, mask = ids[:, ::-1].copy(), mask[:, ::-1].copy()
    positions = np.maximum(np.cumsum(mask, axis=1) - 1, 0)
    model = load(tiny_checkpoints[family])
    ours = np.asarray(
        model.module(jnp.asarray(ids), positions=jnp.asarray(positions), attention_mask=jnp.asarray(mask))
    )
    ref = _reference_logits(tiny_checkpoints[family], ids, mask, positions)
    assert np.abs(ours - ref)[mask.astype(bool)].max() <= 1e-4


def test_spec_is_parsed_from_config(tiny_checkpoints):
    spec = load(tiny_checkpoints["gemma3"]).spec
    assert spec.layer_types == (
        "sliding_attention",
        "sliding_attention",
        "full_attention",
        "sliding_attention",
    )
    assert spec.sliding_window == 6 and spec.head_dim == 16 and spec.qk_norm
    local, global_ = spec.layer_rope(0), spec.layer_rope(2)
    assert local.inv_freq[1] == pytest.approx(5000.0 ** (-2 / 16), rel=1e-6)
    assert global_.inv_freq[1] == pytest.approx(80000.0 ** (-2 / 16) / 4.0, rel=1e-6)


def _transformers_inv_freq(rotary: torch.nn.Module, layer_type: str) -> np.ndarray:
    """The inverse frequencies transformers' rotary embedding uses for `layer_type` (Gemma 3 keeps one set
    per layer type)."""
    per_type = f"{layer_type}_inv_freq"
    return (getattr(rotary, per_type) if hasattr(rotary, per_type) else rotary.inv_freq).numpy()


EXACT_ROPE = "bundled:smollm2-135m-instruct"


@pytest.mark.parametrize("model", [*FAMILIES, EXACT_ROPE, "bundled:gemma3-270m"])
def test_rope_frequencies_match_transformers(model):
    """lift_jax rounds each base ** exponent once (correctly); torch's vectorized float32 pow is an ulp off on
    about 1% of exponents (1 of Gemma 3 270M's 128; 2 ulp after Llama 3 smoothing), SmolLM2's 32 not at all.
    numpy's float32 pow (the former way) was off on 5 of those 32: in float64, where lift_jax and transformers
    otherwise agree to 4e-13, that moved SmolLM2's hidden states by 4e-5 and its logits by 1e-6."""
    config = tiny_configs()[model] if model in FAMILIES else load_hf_config(resolve_source(model))
    with torch.device("meta"):
        rotary = AutoModelForCausalLM.from_config(config).model.rotary_emb
    rotary = type(rotary)(rotary.config)  # rebuilt off the meta device, with its real buffers
    for layer_type, rope in spec_from_hf_config(config).rope:
        ours, theirs = np.asarray(rope.inv_freq, np.float32), _transformers_inv_freq(rotary, layer_type)
        if model == EXACT_ROPE:
            np.testing.assert_array_equal(ours, theirs)
        else:
            np.testing.assert_array_max_ulp(ours, theirs, maxulp=2)


def test_sharded_safetensors_checkpoint_loads_and_matches(tmp_path):
    directory = make_tiny_checkpoint("llama3", tmp_path / "sharded", seed=7, max_shard_size="60KB")
    assert (directory / "model.safetensors.index.json").exists()
    assert len(list(directory.glob("model-*.safetensors"))) >= 3
    ids, mask = _batch(2)
    ours = np.asarray(load(directory).module(jnp.asarray(ids), attention_mask=jnp.asarray(mask)))
    ref = _reference_logits(directory, ids, mask)
    assert np.abs(ours - ref)[mask.astype(bool)].max() <= 1e-4


def test_missing_shard_is_named(tmp_path):
    directory = make_tiny_checkpoint("qwen3", tmp_path / "broken", max_shard_size="60KB")
    victim = sorted(directory.glob("model-*.safetensors"))[1]
    victim.unlink()
    with pytest.raises(CheckpointError, match=victim.name):
        load(directory)


def test_weights_only_llama_directory_loads_without_a_tokenizer(tiny_checkpoints, tmp_path):
    full = tiny_checkpoints["llama3"]
    weights_only = tmp_path / "weights_only"
    weights_only.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(full / name, weights_only / name)
    loaded = load(weights_only)
    assert loaded.tokenizer is None
    ids, mask = _batch(4)
    ours = np.asarray(loaded.module(jnp.asarray(ids), attention_mask=jnp.asarray(mask)))
    assert np.abs(ours - _reference_logits(full, ids, mask))[mask.astype(bool)].max() <= 1e-4
    from lift_jax.answering import Answerer
    from lift_jax.prompting import PromptFormat
    from lift_jax.sampling import SamplingParams

    with pytest.raises(CheckpointError, match="no tokenizer files .* answering needs a tokenizer"):
        Answerer(loaded, PromptFormat(True, None), SamplingParams(max_new_tokens=1))


def test_bfloat16_weights_and_close_logits(tiny_checkpoints):
    ids, mask = _batch(3)
    f32 = np.asarray(
        load(tiny_checkpoints["qwen2"]).module(jnp.asarray(ids), attention_mask=jnp.asarray(mask))
    )
    model = load(tiny_checkpoints["qwen2"], dtype="bfloat16")
    assert model.module.layers[0].self_attn.q_proj.kernel.get_value().dtype == jnp.bfloat16
    bf16 = np.asarray(model.module(jnp.asarray(ids), attention_mask=jnp.asarray(mask)))
    assert bf16.dtype == np.float32
    valid = mask.astype(bool)
    assert np.abs(bf16 - f32)[valid].max() <= 0.05 * np.abs(f32)[valid].max()


def test_load_onto_a_mesh_shards_weights_and_keeps_logits(tiny_checkpoints):
    assert jax.device_count() == 8
    mesh = make_mesh(data=2, fsdp=2, tensor=2)
    model = load(tiny_checkpoints["gemma2"], mesh=mesh)
    q_kernel = model.module.layers[0].self_attn.q_proj.kernel.get_value()
    assert q_kernel.sharding.spec == PartitionSpec("fsdp", "tensor")
    assert model.module.layers[0].self_attn.o_proj.kernel.get_value().sharding.spec == PartitionSpec(
        "tensor", "fsdp"
    )
    assert len(q_kernel.addressable_shards) == 8
    ids, mask = _batch(4)
    sharded = np.asarray(nnx.jit(lambda m, x, k: m(x, attention_mask=k))(model.module, ids, mask))
    single = np.asarray(
        load(tiny_checkpoints["gemma2"]).module(jnp.asarray(ids), attention_mask=jnp.asarray(mask))
    )
    assert np.abs(sharded - single).max() <= 1e-5


def test_unsupported_model_type_names_the_supported_ones(tiny_checkpoints, tmp_path):
    directory = tmp_path / "gpt2ish"
    shutil.copytree(tiny_checkpoints["llama3"], directory)
    config = json.loads((directory / "config.json").read_text())
    config["model_type"] = "mistral"
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedModelError, match="'mistral' is not supported; supported: llama, gemma2"):
        load(directory)


def test_missing_model_path_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load(tmp_path / "nowhere")
