"""LoRA wrapper: parity with PEFT on exported adapters, import of PEFT-made adapters, merge and reset."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from peft import LoraConfig as PeftLoraConfig
from peft import PeftModel, get_peft_model
from tiny_models import VOCAB, load_reference

from lift_jax.lora import (
    LoRAConfig,
    apply_lora,
    count_lora_params,
    fold_lora,
    lora_modules,
    merge_lora,
    reset_lora,
    unmerge_lora,
)
from lift_jax.models import load
from lift_jax.models.families import family_of
from lift_jax.peft_io import AdapterError, export_peft_adapter, import_peft_adapter


def _randomize_b(model, seed: int) -> None:
    key = jax.random.key(seed)
    for i, (_, layer) in enumerate(lora_modules(model)):
        shape = layer.lora_b.get_value().shape
        layer.lora_b.set_value(jax.random.normal(jax.random.fold_in(key, i), shape) * 0.1)


def _ids(seed: int = 0) -> np.ndarray:
    return np.random.RandomState(seed).randint(6, VOCAB, (2, 11))


@pytest.mark.parametrize("family", ["llama3", "gemma2", "qwen2"])
def test_lora_logits_match_peft_on_the_exported_adapter(tiny_checkpoints, tmp_path, family):
    model = load(tiny_checkpoints[family])
    config = LoRAConfig(rank=4, alpha=12, targets="all-linear")
    apply_lora(model.module, config, seed=3)
    _randomize_b(model.module, seed=4)
    export_peft_adapter(model.module, config, tmp_path / "adapter")
    ref = PeftModel.from_pretrained(load_reference(tiny_checkpoints[family]), tmp_path / "adapter").eval()
    ids = _ids()
    ours = np.asarray(model.module(jnp.asarray(ids)))
    with torch.no_grad():
        theirs = ref(torch.tensor(ids)).logits.numpy()
        base = load_reference(tiny_checkpoints[family])(torch.tensor(ids)).logits.numpy()
    assert np.abs(theirs - base).max() > 0.1  # the adapter really changes the output
    assert np.abs(ours - theirs).max() <= 1e-4


def test_import_of_a_peft_made_adapter_matches(tiny_checkpoints, tmp_path):
    torch.manual_seed(0)
    peft_cfg = PeftLoraConfig(
        r=6, lora_alpha=9, target_modules=["q_proj", "v_proj", "down_proj"], lora_dropout=0.0
    )
    ref = get_peft_model(load_reference(tiny_checkpoints["qwen3"]), peft_cfg)
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    ref.save_pretrained(tmp_path / "peft")
    model = load(tiny_checkpoints["qwen3"])
    config = import_peft_adapter(model.module, tmp_path / "peft")
    assert config.rank == 6 and config.alpha == 9.0
    assert sorted(p.rsplit(".", 1)[-1] for p, _ in lora_modules(model.module))[:3] == ["down_proj"] * 3
    assert len(lora_modules(model.module)) == 3 * 3
    ids = _ids(1)
    with torch.no_grad():
        theirs = ref.eval()(torch.tensor(ids)).logits.numpy()
    assert np.abs(np.asarray(model.module(jnp.asarray(ids))) - theirs).max() <= 1e-4


def test_adapter_shape_mismatch_is_named(tiny_checkpoints, tmp_path):
    model = load(tiny_checkpoints["llama3"])
    apply_lora(model.module, LoRAConfig(rank=4, alpha=8), seed=0)
    export_peft_adapter(model.module, LoRAConfig(rank=4, alpha=8), tmp_path / "a")
    other = load(tiny_checkpoints["llama3"])
    apply_lora(other.module, LoRAConfig(rank=2, alpha=8), seed=0)
    with pytest.raises(AdapterError, match="rank or model mismatch"):
        import_peft_adapter(other.module, tmp_path / "a")


def test_peft_init_and_only_adapters_are_trainable(tiny_checkpoints):
    model = load(tiny_checkpoints["llama3"])
    apply_lora(model.module, LoRAConfig(rank=4, alpha=8, targets=("q_proj", "v_proj")), seed=0)
    layers = lora_modules(model.module)
    assert len(layers) == 2 * 3
    q = layers[0][1]
    a = np.asarray(q.lora_a.get_value())
    assert np.abs(a).max() <= 1 / np.sqrt(64) and np.abs(a).max() > 0.5 / np.sqrt(64)
    assert not np.asarray(q.lora_b.get_value()).any()
    assert count_lora_params(model.module) == 3 * (4 * (64 + 4 * 24) + 4 * (64 + 2 * 24))
    lora_leaves = jax.tree.leaves(nnx.state(model.module, nnx.LoRAParam))
    base_leaves = jax.tree.leaves(nnx.state(model.module, nnx.Not(nnx.LoRAParam)))
    assert len(lora_leaves) == 12 and all(x.dtype == jnp.float32 for x in lora_leaves)
    assert len(base_leaves) == 30


def test_merge_unmerge_and_reset(tiny_checkpoints):
    model = load(tiny_checkpoints["gemma3"])
    apply_lora(model.module, LoRAConfig(rank=4, alpha=8), seed=0)
    ids = jnp.asarray(_ids(2))
    base_logits = np.asarray(model.module(ids))
    kernel_before = np.asarray(model.module.layers[0].self_attn.q_proj.base.kernel.get_value())
    _randomize_b(model.module, seed=1)
    adapted = np.asarray(model.module(ids))
    merge_lora(model.module)
    assert np.abs(np.asarray(model.module(ids)) - adapted).max() <= 1e-4
    with pytest.raises(RuntimeError, match="unmerge_lora first"):
        reset_lora(model.module, seed=2)
    unmerge_lora(model.module)
    kernel_after = np.asarray(model.module.layers[0].self_attn.q_proj.base.kernel.get_value())
    assert np.abs(kernel_after - kernel_before).max() <= 1e-6
    reset_lora(model.module, seed=2)
    assert np.abs(np.asarray(model.module(ids)) - base_logits).max() <= 1e-5


def test_fold_gives_the_adapted_logits_with_the_base_models_structure(tiny_checkpoints):
    base = load(tiny_checkpoints["llama3"])
    model = load(tiny_checkpoints["llama3"])
    apply_lora(model.module, LoRAConfig(rank=4, alpha=8), seed=0)
    _randomize_b(model.module, seed=1)
    ids = jnp.asarray(_ids(2))
    adapted = np.asarray(model.module(ids))
    fold_lora(model.module)
    assert np.abs(np.asarray(model.module(ids)) - adapted).max() <= 1e-4
    assert nnx.graphdef(model.module) == nnx.graphdef(base.module)  # one compiled program for base and LIFTed
    assert not lora_modules(model.module) and count_lora_params(model.module) == 0


def test_unknown_target_module_is_rejected():
    with pytest.raises(ValueError, match="unknown LoRA target modules"):
        LoRAConfig(targets=("qkv",)).target_names(family_of("llama"))
