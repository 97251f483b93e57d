"""benchmarks/decode_step.py times every linear layer of the blocks, and only those, against the right FLOPs."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from flax import nnx
from tiny_models import tiny_configs

from lift_jax.models.spec import spec_from_hf_config
from lift_jax.models.transformer import Transformer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
bench = importlib.import_module("decode_step")


def test_layer_matmuls_cover_every_block_linear_and_not_the_head():
    spec = spec_from_hf_config(tiny_configs()["llama3"])  # untied head: a Dense outside the blocks
    model = Transformer(spec, rngs=nnx.Rngs(0))
    assert len(bench.dense_layers(model)) == 7 * spec.num_layers
    h, n, kv, d, f = spec.hidden_size, spec.num_heads, spec.num_kv_heads, spec.head_dim, spec.intermediate_size
    per_row = spec.num_layers * (2 * h * n * d + 2 * h * kv * d + 3 * h * f)
    seconds, flops = bench.layer_matmul_seconds(model, batch=3, repeats=1)
    assert flops == 2 * 3 * per_row
    assert seconds > 0
    _, head_flops = bench.head_seconds(model, batch=3, repeats=1)
    assert head_flops == 2 * 3 * h * spec.vocab_size
    assert bench.attention_seconds(model, batch=3, slots=16, opening=8, repeats=1) > 0
