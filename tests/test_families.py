"""One home per model family: the registry in lift_jax.models.families is the only place that names a family, and
adding a record there is all LoRA, PEFT export, sharding and the loader need for a decoder of that layout."""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx
from jax.sharding import PartitionSpec
from tiny_models import tiny_configs

import lift_jax.models.families as families
from lift_jax.lora import LoRAConfig, apply_lora, lora_modules
from lift_jax.models import SUPPORTED_MODEL_TYPES, UnsupportedModelError, spec_from_hf_config
from lift_jax.models.families import FAMILIES, ModelFamily, family_of
from lift_jax.models.loader import hf_name_to_path
from lift_jax.models.transformer import Transformer
from lift_jax.peft_io import export_peft_adapter
from lift_jax.sharding import make_mesh, param_partition_spec, shard_params
from lift_jax.special_tokens import END_OF_TURN_TOKENS

PACKAGE = Path(__file__).resolve().parents[1] / "lift_jax"
REGISTRY = PACKAGE / "models" / "families.py"


def _family_words() -> set[str]:
    """Every name that identifies a family: its own name, model types and llama.cpp architecture, and the
    linear-layer names LoRA, PEFT and sharding use."""
    words: set[str] = set()
    for family in FAMILIES:
        words |= {family.name, *family.model_types, *family.wrapper_model_types, *family.linears}
        words |= {family.llama_cpp_arch} - {None}
    return words


def test_the_registry_covers_every_model_type_the_loader_accepts():
    assert set(SUPPORTED_MODEL_TYPES) == {"llama", "gemma2", "gemma3_text", "qwen2", "qwen3"}
    assert [family_of(t).name for t in SUPPORTED_MODEL_TYPES] == ["llama", "gemma2", "gemma3", "qwen2", "qwen3"]
    # each tiny test checkpoint (one per family feature set) parses to its family
    assert {spec_from_hf_config(c).family.name for c in tiny_configs().values()} == {f.name for f in FAMILIES}
    with pytest.raises(UnsupportedModelError, match="model_type 'mistral' is not supported; supported: llama"):
        family_of("mistral")
    # stop tokens are the families' end-of-turn tokens, the same set as before the registry
    assert set(END_OF_TURN_TOKENS) == {
        "<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|end|>", "<|endoftext|>", "<|end_of_text|>"
    }


def test_no_module_outside_the_registry_names_a_family():
    words = _family_words()
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == REGISTRY:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            # a literal (or f-string piece) that is a family's name: `model_type == "qwen2"`, `"q_proj"`, ...
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in words:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {node.value!r}")
    assert not found, found


@pytest.fixture
def fake_family(monkeypatch) -> ModelFamily:
    """A family whose decoders adapt and shard only q_proj, v_proj and down_proj, added to the registry only."""
    family = ModelFamily(
        name="fake",
        model_types=("fake_decoder",),
        attention_linears=("q_proj", "v_proj"),
        mlp_linears=("down_proj",),
        column_parallel=("q_proj",),
        row_parallel=("down_proj",),
        end_of_turn_tokens=("<|fake_end|>",),
    )
    monkeypatch.setattr(families, "FAMILIES", (*families.FAMILIES, family))
    return family


def test_a_family_added_to_the_registry_sets_lora_targets_peft_names_and_sharding(fake_family, tmp_path):
    llama = spec_from_hf_config(tiny_configs()["llama3"])
    spec = dataclasses.replace(llama, model_type="fake_decoder")
    assert spec.family is fake_family
    model = Transformer(spec, rngs=nnx.Rngs(0))
    apply_lora(model, LoRAConfig(rank=2, alpha=4.0))  # all-linear: the family's linears
    paths = [path for path, _ in lora_modules(model)]
    assert len(paths) == 3 * spec.num_layers
    assert {p.split(".", 2)[2] for p in paths} == {"self_attn.q_proj", "self_attn.v_proj", "mlp.down_proj"}
    export_peft_adapter(model, LoRAConfig(rank=2, alpha=4.0), tmp_path)
    assert json.loads((tmp_path / "adapter_config.json").read_text())["target_modules"] == [
        "down_proj", "q_proj", "v_proj"
    ]
    with pytest.raises(ValueError, match="unknown LoRA target modules \\['k_proj'\\] for a fake model"):
        LoRAConfig(targets=("k_proj",)).target_names(fake_family)

    mesh = make_mesh(data=1, fsdp=2, tensor=2, devices=jax.devices()[:4])
    shape = (64, 64)
    assert param_partition_spec("layers/0/self_attn/q_proj/base/kernel", shape, mesh, fake_family) == PartitionSpec(
        "fsdp", "tensor"
    )
    assert param_partition_spec("layers/0/mlp/down_proj/kernel", shape, mesh, fake_family) == PartitionSpec(
        "tensor", "fsdp"
    )
    # k_proj and up_proj are no parallel layers of this family (they are of Llama's): replicated
    assert param_partition_spec("layers/0/self_attn/k_proj/kernel", shape, mesh, fake_family) == PartitionSpec()
    assert param_partition_spec("layers/0/mlp/up_proj/kernel", shape, mesh, family_of("llama")) == PartitionSpec(
        "fsdp", "tensor"
    )
    base = shard_params(nnx.state(model, nnx.Not(nnx.LoRAParam)), mesh, fake_family)
    q_kernel = base["layers"][0]["self_attn"]["q_proj"]["base"]["kernel"]
    assert q_kernel.get_value().sharding.spec == PartitionSpec("fsdp", "tensor")
    k_kernel = base["layers"][0]["self_attn"]["k_proj"]["kernel"]
    assert k_kernel.get_value().sharding.spec == PartitionSpec()
    # the loader transposes exactly the family's linears: k_proj is a plain tensor for this family
    assert hf_name_to_path("model.layers.0.self_attn.q_proj.weight", fake_family) == (
        ("layers", 0, "self_attn", "q_proj", "kernel"), True
    )
    assert hf_name_to_path("model.layers.0.self_attn.k_proj.weight", fake_family) == (
        ("layers", 0, "self_attn", "k_proj", "weight"), False
    )


def test_a_multimodal_wrappers_own_tie_flag_and_eos_ids_decide_and_its_adapter_names_the_language_model(tmp_path):
    from safetensors.numpy import load_file
    from transformers import Gemma3Config

    from lift_jax.lora import LoRAConfig
    from lift_jax.peft_io import WEIGHTS_FILE, read_peft_weights, write_peft_adapter

    text = tiny_configs()["gemma3"].to_dict()
    spec = spec_from_hf_config(Gemma3Config(text_config=text, tie_word_embeddings=False, eos_token_id=[1, 106]))
    assert (spec.tie_embeddings, spec.eos_token_ids, spec.in_wrapper) == (False, (1, 106), True)
    assert hf_name_to_path("language_model.lm_head.weight", spec.family) == (("lm_head", "kernel"), True)
    weights = {"layers.0.self_attn.q_proj": (np.ones((2, 8), np.float32), np.full((8, 2), 2.0, np.float32))}
    write_peft_adapter(weights, LoRAConfig(rank=2, alpha=4.0), tmp_path, wrapped=True)
    # where transformers' Gemma3ForConditionalGeneration keeps its text decoder (PEFT ignores other keys)
    assert sorted(load_file(tmp_path / WEIGHTS_FILE)) == [
        "base_model.model.model.language_model.layers.0.self_attn.q_proj.lora_A.weight",
        "base_model.model.model.language_model.layers.0.self_attn.q_proj.lora_B.weight",
    ]
    assert list(read_peft_weights(tmp_path)) == list(weights)


def test_a_model_type_lift_jax_does_not_run_is_named_before_transformers_reads_it(tmp_path):
    from transformers import Gemma3TextConfig

    from lift_jax.models.loader import load_hf_config, resolve_source

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "internlm2", "auto_map": {}}))
    with pytest.raises(UnsupportedModelError, match="model_type 'internlm2' is not supported; supported: llama"):
        load_hf_config(resolve_source(tmp_path))
    encoder = Gemma3TextConfig(**{**tiny_configs()["gemma3"].to_dict(), "use_bidirectional_attention": True})
    with pytest.raises(UnsupportedModelError, match="use_bidirectional_attention is an encoder"):
        spec_from_hf_config(encoder)
