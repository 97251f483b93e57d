"""Where one decode step of lift_jax's sampler spends its time, against the limits of the machine it runs on.

    python benchmarks/decode_step.py [--batches 16 64] [--new-tokens 64] [--context-chars 512]

The prompts are benchmarks/sampler.py's (the embedded generator's QA prompts for the bundled sample document,
cycled to fill each batch), laid out as `generate_ids` lays them out (`plan_prefill`), so the cache has the
slots a real call has. For each batch, float32, each part jitted on its own and timed as the median of
--repeats calls after a warm-up:

- step: one decode step as the sampler's loop runs it, (time for --new-tokens new tokens - time for 1) /
  (--new-tokens - 1), greedy, no stop token (the one-token call is the prefill and the first choice; the
  --new-tokens call has the cache slots benchmarks/sampler.py's calls have);
- layer matmuls: every linear layer of every block on [batch, in] rows (the step's projections and MLP);
- head: the output projection on [batch, hidden] and the argmax;
- attention: every layer's `cached_attention` of one query per row over the call's cache slots and the
  shared opening (random keys and values of the cache's shapes);
- rest: the step minus those three (norms, rotary embedding, cache writes, sampling, the loop).

Beside them, the machine's limits measured in the same process: the time to read every weight once (a jitted
sum over the parameters: no decode step can take less at any batch) and XLA's 2048^3 float32 matmul rate,
from which `matmul floor` is the time the step's matmul FLOPs would take at that rate. A part far above its
floor is where a faster step would come from. The JSON goes to --out/decode_step.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
from bench_common import RESULTS_DIR, save_results
from flax import nnx
from sampler import MODEL, batch_of, qa_prompts

from lift_jax.models import load
from lift_jax.models.layers import Dense, cached_attention
from lift_jax.models.transformer import Transformer
from lift_jax.sampling import SamplingParams, batch_rows, bucket, generate_ids, plan_prefill


def median_seconds(run: Callable[[], Any], repeats: int) -> float:
    """Median wall time of `repeats` calls of `run` after one untimed call (compilation, warm-up)."""
    jax.block_until_ready(run())
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        jax.block_until_ready(run())
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def dense_layers(module: Transformer) -> list[Dense]:
    """Every linear layer of the blocks (not the embedding or the head), in order."""
    return [m for _, m in nnx.iter_graph(module.layers) if isinstance(m, Dense)]


def weight_read_seconds(module: Transformer, repeats: int) -> tuple[float, int]:
    """Seconds to read every parameter once (a jitted sum) and the bytes read."""
    leaves = jax.tree.leaves(nnx.state(module, nnx.Param))
    total = jax.jit(lambda arrays: sum(jnp.sum(a.astype(jnp.float32)) for a in arrays))
    return median_seconds(lambda: total(leaves), repeats), sum(a.nbytes for a in leaves)


def matmul_rate(repeats: int) -> float:
    """XLA's float32 FLOP/s on a 2048^3 matmul."""
    a = jnp.ones((2048, 2048), jnp.float32)
    product = jax.jit(lambda x, y: x @ y)
    return 2 * 2048**3 / median_seconds(lambda: product(a, a), repeats)


def step_seconds(module: Transformer, prompts: list[list[int]], new_tokens: int, pad: int, repeats: int) -> float:
    """One decode step of `generate_ids` on `prompts`: the time of its `new_tokens` - 1 tokens after the first,
    per token."""

    def run(n: int) -> Callable[[], list[list[int]]]:
        return lambda: generate_ids(module, prompts, SamplingParams(max_new_tokens=n), (), pad)

    return (median_seconds(run(new_tokens), repeats) - median_seconds(run(1), repeats)) / (new_tokens - 1)


def layer_matmul_seconds(module: Transformer, batch: int, repeats: int) -> tuple[float, float]:
    """Seconds for every block's linear layers on [batch, in] rows, and their FLOPs."""
    kernels = [d.kernel.get_value() for d in dense_layers(module)]
    rows = {k.shape[0]: jnp.ones((batch, k.shape[0]), k.dtype) for k in kernels}
    products = jax.jit(lambda ks, xs: [xs[k.shape[0]] @ k for k in ks])
    flops = sum(2 * batch * k.shape[0] * k.shape[1] for k in kernels)
    return median_seconds(lambda: products(kernels, rows), repeats), flops


def head_seconds(module: Transformer, batch: int, repeats: int) -> tuple[float, float]:
    """Seconds for the output projection of [batch, hidden] rows and the argmax, and its FLOPs."""
    hidden = jnp.ones((batch, module.spec.hidden_size), module.dtype)
    choose = jax.jit(lambda h: jnp.argmax(module.logits(h), axis=-1))
    return median_seconds(lambda: choose(hidden), repeats), 2 * batch * module.spec.hidden_size * module.spec.vocab_size


def attention_seconds(module: Transformer, batch: int, slots: int, opening: int, repeats: int) -> float:
    """Seconds for every layer's attention of one query per row over `slots` cache slots and an `opening`
    shared by all rows (held once), with random keys and values."""
    spec = module.spec
    kv, d, layers = spec.num_kv_heads, spec.head_dim, spec.num_layers
    keys = iter(jax.random.split(jax.random.key(0), 5 * layers))

    def normal(*shape: int) -> jax.Array:
        return jax.random.normal(next(keys), shape, module.dtype)

    caches = [
        (
            normal(batch, 1, spec.num_heads, d),
            normal(batch, kv, d, slots),
            normal(batch, kv, slots, d),
            normal(kv, d, opening),
            normal(kv, opening, d),
        )
        for _ in range(layers)
    ]
    mask, shared_mask = jnp.ones((batch, 1, slots), bool), jnp.ones((batch, 1, opening), bool)

    def attend(all_layers: list[tuple[jax.Array, ...]]) -> list[jax.Array]:
        out = []
        for q, k, v, shared_k, shared_v in all_layers:
            shared = (shared_k, shared_v, shared_mask) if opening else None
            out.append(cached_attention(q, k, v, mask, spec.query_scale, spec.attn_softcap, shared))
        return out

    attend_jit = jax.jit(attend)
    return median_seconds(lambda: attend_jit(caches), repeats)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Every part and limit for every batch size."""
    loaded = load(MODEL, dtype="float32")
    module, tok = loaded.module, loaded.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    texts = qa_prompts(tok, args.context_chars)
    read_s, weight_bytes = weight_read_seconds(module, args.repeats)
    rate = matmul_rate(args.repeats)
    rows = []
    for batch in args.batches:
        prompts = [tok(t)["input_ids"] for t in batch_of(texts, batch)]
        plan = plan_prefill(prompts, (), batch_rows(batch), pad)
        slots, opening = plan.width + bucket(args.new_tokens), len(plan.prefix)
        step = step_seconds(module, prompts, args.new_tokens, pad, args.repeats)
        layer_s, layer_flops = layer_matmul_seconds(module, batch, args.repeats)
        head_s, head_flops = head_seconds(module, batch, args.repeats)
        attn_s = attention_seconds(module, batch, slots, opening, args.repeats)
        rows.append({
            "batch": batch, "slots": slots, "opening": opening, "step_s": step, "layer_matmuls_s": layer_s,
            "head_s": head_s, "attention_s": attn_s, "rest_s": step - layer_s - head_s - attn_s,
            "matmul_floor_s": (layer_flops + head_flops) / rate, "weight_read_s": read_s,
            "decode_tokens_per_s": batch / step,
        })
    return {"weight_bytes": weight_bytes, "weight_read_s": read_s, "matmul_flops_per_s": rate, "rows": rows}


def table(result: dict[str, Any]) -> list[str]:
    """Markdown rows, milliseconds per decode step."""
    lines = [
        "| batch | cache slots (+ shared opening) | step ms | layer matmuls ms | head ms | attention ms | rest ms "
        "| matmul floor ms | weight read ms | decode tok/s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        ms = {k: 1e3 * r[k] for k in r if k.endswith("_s")}
        lines.append(
            f"| {r['batch']} | {r['slots']} (+ {r['opening']}) | {ms['step_s']:.1f} | {ms['layer_matmuls_s']:.1f} "
            f"| {ms['head_s']:.1f} | {ms['attention_s']:.1f} | {ms['rest_s']:.1f} | {ms['matmul_floor_s']:.1f} "
            f"| {ms['weight_read_s']:.1f} | {r['decode_tokens_per_s']:.0f} |"
        )
    return lines


def main() -> None:
    """Measure, print the table and the limits, save the JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--context-chars", type=int, default=512, help="preceding text shown with each sentence")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    if min(args.batches) < 1 or args.new_tokens < 2 or args.repeats < 1:
        parser.error("--batches must be >= 1, --new-tokens >= 2 (one step after the first token) and --repeats >= 1")
    load_before = os.getloadavg()[0]
    result = measure(args)
    lines = table(result)
    print(f"SmolLM2-135M float32, load average {load_before:.2f} before the run")
    print("\n".join(lines))
    gb = result["weight_bytes"] / 1e9
    print(f"weights {gb:.3f} GB read once in {1e3 * result['weight_read_s']:.1f} ms "
          f"({gb / result['weight_read_s']:.1f} GB/s); XLA 2048^3 matmul {result['matmul_flops_per_s'] / 1e9:.0f} "
          "GFLOP/s")
    args_record = {k: v for k, v in vars(args).items() if k != "out"}
    save_results("decode_step", {"args": args_record, "load_average_before": load_before, **result, "table": lines},
                 args.out)


if __name__ == "__main__":
    main()
