"""Training throughput of the LoRA step: lift_jax vs PyTorch + PEFT on SmolLM2-135M, float32 and bfloat16.

Both sides train a rank-16 adapter on every linear layer (alpha 32, AdamW, global-norm clipping 1.0, loss on
every token) on the same random batch of 8 x 256 tokens. Each side runs in its own subprocess (its own thread
pool and memory); after loading and warm-up (compilation excluded) the parent asks them for steps in turns, the
sides alternating, so a load change on the machine hits both sides alike and the idle side never competes for the
cores. A step is timed to completion (its loss is read back on the host).

A turn is `--block` (default 3) consecutive steps of one side, as a training loop runs them; the first step of
each turn is reported apart (`first_in_turn` in the JSON) and the others are timed. On the VMs this project runs
on, memory a process freed is taken back by the host after a few idle seconds, and touching it again costs
about a second per GB (`benchmarks/memory_refault.py` measures it): with strict alternation (`--block 1`) every
lift_jax step paid that for the activations XLA allocates afresh per step while the other side ran, which no
training loop does.

Model FLOPs per token: 4 x parameters (the forward pass and the backward pass to the activations; the frozen
base weights get no weight gradient) plus attention (QK^T and PV: 4 * T * width per layer forward, twice that
backward, full T x T). Each side's ceiling is a 2048 x 2048 matmul timed in its own process between steps (XLA's
for lift_jax, PyTorch's for the reference): float32 x float32 for float32, bfloat16 x bfloat16 with float32
accumulation for bfloat16. A step made only of matmuls runs at its library's ceiling, so the ratio of the two
ceilings bounds what lift_jax / torch can reach on the machine.

    python benchmarks/train_throughput.py [--steps 8] [--warmup 2]

The last line reads `ratio_vs_torch_f32=<x>`: lift_jax tokens/s over PyTorch + PEFT tokens/s in float32,
each side's median step.

    python benchmarks/train_throughput.py --data qa [--steps 12] [--dtypes float32]

LIFT's real training data instead: the QA pairs committed under docs/results/*/qa_cache, chat-formatted as absorb
formats them (answer-only loss), 8 examples per optimizer step, length buckets up to 256. Three lift_jax workers
train on the same steps, interleaved: one example per row with the output head on every position (the old step),
the head on the loss positions only, and packed rows with the answer-only head. It prints loss (answer) tokens/s
per layout and, last, `qa_packed_speedup=<packed answer-only over unpacked full head>`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from bench_common import save_results

DTYPES = ("float32", "bfloat16")
CEILING_SIZE = 2048
# XLA:CPU settings for the JAX process (CPU-only tuning lives here, not in the library).
JAX_ENV = {"XLA_FLAGS": os.environ.get("XLA_FLAGS", "")}

_SERVE = r"""
import json, sys, time
import numpy as np

def serve(step, info, extra=None):
    '''Warm up, report `info`, then answer "step" (seconds, loss) and other commands until "quit".'''
    for _ in range(ARGS["warmup"]):
        step()
    print(json.dumps(info), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            return
        t0 = time.perf_counter()
        loss = step() if command == "step" else extra()
        print(json.dumps({"seconds": time.perf_counter() - t0, "loss": loss}), flush=True)

ARGS = json.loads(sys.argv[1])
IDS = np.random.RandomState(0).randint(0, ARGS["vocab"], (ARGS["batch"], ARGS["seq"] + 1))
"""

_LIFT_JAX = r"""
import jax
import jax.numpy as jnp
from lift_jax.lora import LoRAConfig, apply_lora, count_lora_params
from lift_jax.models import load
from lift_jax.batching import make_batch
from lift_jax.train import LoRATrainer, OptimizerConfig

model = load("bundled:smollm2-135m-instruct", dtype=ARGS["dtype"]).module
apply_lora(model, LoRAConfig(rank=ARGS["rank"], alpha=2.0 * ARGS["rank"]), seed=0)
trainer = LoRATrainer(model, OptimizerConfig(lr=1e-4))
rows = [(ids.tolist(), [1] * len(ids)) for ids in IDS]  # loss on every token
batch = make_batch(rows, len(rows), 1, (ARGS["seq"],), pad_id=0, full_head=True)
n = ARGS["ceiling_size"]
a, b = (jax.random.normal(jax.random.key(i), (n, n), ARGS["dtype"]) for i in range(2))
matmul = jax.jit(lambda a, b: jnp.dot(a, b, preferred_element_type=jnp.float32))
matmul(a, b).block_until_ready()
t0 = time.perf_counter()
trainer.train_step(batch)["loss"].block_until_ready()
spec = model.spec
serve(
    lambda: float(trainer.train_step(batch)["loss"]),
    {"compile_s": time.perf_counter() - t0, "lora_params": count_lora_params(model),
     "layers": spec.num_layers, "attn_width": spec.num_heads * spec.head_dim},
    lambda: float(matmul(a, b)[0, 0]),
)
"""

_TORCH = r"""
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM
from lift_jax.models.bundled import smollm2_gguf

torch.set_num_threads(2)
gguf = smollm2_gguf()
dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[ARGS["dtype"]]
model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=dtype)
base_params = sum(p.numel() for p in model.parameters())
config = LoraConfig(r=ARGS["rank"], lora_alpha=2 * ARGS["rank"], lora_dropout=0.0, target_modules="all-linear")
model = get_peft_model(model, config).train()
params = [p for p in model.parameters() if p.requires_grad]
opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
inputs, targets = torch.tensor(IDS[:, :-1]), torch.tensor(IDS[:, 1:])
mask = torch.ones_like(inputs)

def step():
    opt.zero_grad(set_to_none=True)
    logits = model(input_ids=inputs, attention_mask=mask).logits
    loss = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    return loss.item()

n = ARGS["ceiling_size"]
a, b = (torch.randn(n, n, generator=torch.Generator().manual_seed(i)).to(dtype) for i in range(2))
serve(step, {"base_params": base_params, "lora_params": sum(p.numel() for p in params),
             "attention": model.config._attn_implementation}, lambda: float((a @ b)[0, 0]))
"""


_QA = r"""
import itertools
from lift_jax.batching import length_buckets, make_batch
from lift_jax.lora import LoRAConfig, apply_lora
from lift_jax.models import load
from lift_jax.prompting import PromptFormat, encode_example
from lift_jax.special_tokens import stop_token_ids
from lift_jax.train import LoRATrainer, OptimizerConfig

loaded = load("bundled:smollm2-135m-instruct", dtype=ARGS["dtype"])
stops = stop_token_ids(loaded.tokenizer, loaded.spec.eos_token_ids)
examples = [encode_example(loaded.tokenizer, q, a, PromptFormat(), stops) for q, a in ARGS["pairs"]]
apply_lora(loaded.module, LoRAConfig(rank=ARGS["rank"], alpha=2.0 * ARGS["rank"]), seed=0)
trainer = LoRATrainer(loaded.module, OptimizerConfig(lr=1e-4))
per_step, buckets = ARGS["batch"], length_buckets(ARGS["seq"], 32)
batches = [
    make_batch(examples[i : i + per_step], per_step, 1, buckets, pad_id=0, **ARGS["layout"])
    for i in range(0, len(examples), per_step)
]
t0 = time.perf_counter()
for batch in {tuple(v.shape for v in b.values()): b for b in batches}.values():  # compile every shape
    trainer.train_step(batch)["loss"].block_until_ready()
compile_s = time.perf_counter() - t0
cycle = itertools.cycle(batches)

def step():
    batch = next(cycle)
    metrics = trainer.train_step(batch)
    return [float(metrics["loss"]), int(metrics["tokens"]), int(batch["inputs"].size)]

serve(step, {"compile_s": compile_s, "compilations": trainer.compilations(), "steps_per_epoch": len(batches),
             "prompt_tokens": float(np.mean([len(e[0]) - sum(e[1]) for e in examples])),
             "answer_tokens": float(np.mean([sum(e[1]) for e in examples]))})
"""

QA_LAYOUTS = {
    "unpacked, full head": {"full_head": True},
    "unpacked, answer-only head": {},
    "packed, answer-only head": {"pack": True},
}


class Worker:
    """A benchmark subprocess that loads and warms up, then runs one timed command per request."""

    def __init__(self, proc: subprocess.Popen, log: IO[str]):
        self.proc, self.log = proc, log
        self.info = self._read()

    def _read(self) -> dict[str, Any]:
        """The next JSON line of the worker (libraries may print other lines)."""
        for line in self.proc.stdout:
            if line.startswith("{"):
                return json.loads(line)
        self.log.seek(0)
        raise RuntimeError(f"benchmark worker exited ({self.proc.wait()}):\n{self.log.read()[-3000:]}")

    def run(self, command: str = "step") -> dict[str, Any]:
        """Send `command` ("step" or "extra") and return {"seconds", "loss"}."""
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._read()


@contextlib.contextmanager
def start_worker(code: str, args: dict[str, Any], env: dict[str, str]) -> Iterator[Worker]:
    """Run `code` in a fresh interpreter (stderr kept for errors); stop it on exit."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **env}
    command = [sys.executable, "-c", _SERVE + code, json.dumps(args)]
    with (
        tempfile.TemporaryFile("w+") as log,
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
        as proc,
    ):
        try:
            yield Worker(proc, log)
        finally:
            if proc.poll() is None:
                proc.stdin.write("quit\n")
                proc.stdin.close()


def model_flops_per_token(params: int, layers: int, attn_width: int, seq: int) -> float:
    """4 x parameters plus attention (QK^T and PV: 4 * T * width per layer forward, x3 with backward)."""
    return 4.0 * params + 3 * 4.0 * seq * attn_width * layers


def measure(dtype: str, opts: argparse.Namespace) -> dict[str, Any]:
    """Step times of both sides, in turns of `opts.block` consecutive steps per side, and the matmul ceiling."""
    args = {"dtype": dtype, "batch": opts.batch, "seq": opts.seq, "rank": opts.rank, "vocab": 49152,
            "warmup": opts.warmup, "ceiling_size": CEILING_SIZE}
    times: dict[str, list[float]] = {"lift_jax": [], "torch": [], "ceiling": [], "torch_ceiling": []}
    first: dict[str, list[float]] = {"lift_jax": [], "torch": []}
    with start_worker(_LIFT_JAX, args, JAX_ENV) as ours, start_worker(_TORCH, args, {}) as theirs:
        order = [("lift_jax", ours), ("torch", theirs)]
        turn = 0
        while min(len(times["lift_jax"]), len(times["torch"])) < opts.steps:
            for name, worker in order if turn % 2 == 0 else order[::-1]:
                for j in range(opts.block):
                    seconds = worker.run()["seconds"]
                    (first[name] if j == 0 and opts.block > 1 else times[name]).append(seconds)
                time.sleep(opts.pause)  # let the other side's spinning threads go to sleep
            times["ceiling"].append(ours.run("extra")["seconds"])
            times["torch_ceiling"].append(theirs.run("extra")["seconds"])
            turn += 1
    params = theirs.info["base_params"] + ours.info["lora_params"]
    flops = model_flops_per_token(params, ours.info["layers"], ours.info["attn_width"], opts.seq)
    return {"times": times, "first_in_turn": first, "flops_per_token": flops, "attention": theirs.info["attention"],
            "ceiling_gflops": 2 * CEILING_SIZE**3 / min(times["ceiling"]) / 1e9,
            "torch_ceiling_gflops": 2 * CEILING_SIZE**3 / min(times["torch_ceiling"]) / 1e9}


def table(results: dict[str, dict[str, Any]], tokens: int) -> list[str]:
    """Markdown rows: tokens/s (median and best step), achieved GFLOP/s, and each side's own matmul ceiling (a
    square matmul in its own library and process) with the fraction of it the step reaches."""
    lines = [
        "| dtype | implementation | tokens/s (median) | tokens/s (best) | model GFLOP/s | own matmul "
        "GFLOP/s | of own ceiling | lift_jax / torch |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for dtype, r in results.items():
        median = {k: tokens / statistics.median(v) for k, v in r["times"].items() if "ceiling" not in k}
        best = {k: tokens / min(v) for k, v in r["times"].items() if "ceiling" not in k}
        labels = (("lift_jax", "lift_jax", "ceiling_gflops"),
                  ("torch", f"PyTorch + PEFT ({r['attention']})", "torch_ceiling_gflops"))
        for name, label, ceiling_key in labels:
            gflops = median[name] * r["flops_per_token"] / 1e9
            ratio = median[name] / median["torch"]
            ceiling = r[ceiling_key]
            lines.append(
                f"| {dtype} | {label} | {median[name]:.0f} | {best[name]:.0f} | {gflops:.0f} | "
                f"{ceiling:.0f} | {gflops / ceiling:.0%} | {ratio:.2f} |"
            )
    return lines


def qa_pairs(limit: int) -> list[tuple[str, str]]:
    """(question, answer) pairs of the committed QA caches (pairs the bundled generator wrote for LIFT runs)."""
    root = Path(__file__).resolve().parent.parent / "docs" / "results"
    pairs = []
    for cache in sorted(root.glob("*/qa_cache/qa_cache*.jsonl")):
        for line in cache.read_text().splitlines():
            record = json.loads(line)
            if "question" in record:
                pairs.append((record["question"], record["answer"]))
    if not pairs:
        raise SystemExit(f"error: no QA pairs under {root}/*/qa_cache; run from a full checkout of the repo")
    return pairs[:limit]


def measure_qa(opts: argparse.Namespace) -> list[str]:
    """Loss tokens/s of each batch layout on LIFT's QA examples, steps interleaved; returns table lines."""
    args = {"dtype": opts.dtypes[0], "batch": opts.batch, "seq": opts.seq, "rank": opts.rank, "vocab": 49152,
            "warmup": opts.warmup, "pairs": qa_pairs(opts.pairs)}
    names = list(QA_LAYOUTS)
    seconds = {name: 0.0 for name in names}
    tokens = {name: 0 for name in names}
    cells = {name: 0 for name in names}
    with contextlib.ExitStack() as stack:
        workers = {}
        for name in names:
            workers[name] = stack.enter_context(start_worker(_QA, {**args, "layout": QA_LAYOUTS[name]}, JAX_ENV))
            print(f"{name}: ready {workers[name].info}", file=sys.stderr, flush=True)
        for i in range(opts.steps):
            for name in names if i % 2 == 0 else names[::-1]:
                result = workers[name].run()
                seconds[name] += result["seconds"]
                tokens[name] += result["loss"][1]
                cells[name] += result["loss"][2]
                time.sleep(opts.pause)
    info = workers[names[0]].info
    base = tokens[names[0]] / seconds[names[0]]
    lines = [
        f"QA data: {len(args['pairs'])} pairs, mean prompt {info['prompt_tokens']:.0f} + answer "
        f"{info['answer_tokens']:.0f} tokens, {opts.batch} examples per step, {opts.dtypes[0]}",
        "| layout | loss tokens/s | token cells per loss token | compilations | vs unpacked, full head |",
        "|---|---|---|---|---|",
    ]
    for name in names:
        rate = tokens[name] / seconds[name]
        lines.append(f"| {name} | {rate:.1f} | {cells[name] / tokens[name]:.2f} | "
                     f"{workers[name].info['compilations']} | {rate / base:.2f} |")
    lines.append(f"qa_packed_speedup={tokens[names[-1]] / seconds[names[-1]] / base:.3f}")
    return lines


def main() -> None:
    """Print the throughput table and, last, `ratio_vs_torch_f32=<x>` (or `qa_packed_speedup=<x>` for QA data)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="timed steps per side and dtype")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps after compilation")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--pause", type=float, default=0.5, help="seconds between two turns")
    parser.add_argument("--block", type=int, default=3,
                        help="consecutive steps per side and turn; the first of each turn is kept apart "
                             "(first_in_turn), the rest are timed (1: strict alternation, every step timed)")
    parser.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=DTYPES)
    parser.add_argument("--data", choices=("random", "qa"), default="random",
                        help="random: full rows of random tokens vs PyTorch + PEFT; qa: LIFT's QA examples, "
                             "batch layouts side by side (first dtype only)")
    parser.add_argument("--pairs", type=int, default=96, help="QA pairs used with --data qa")
    opts = parser.parse_args()
    if opts.block < 1 or opts.steps < 1:
        parser.error("--block and --steps must be at least 1")
    if opts.data == "qa":
        print("\n".join(measure_qa(opts)))
        return

    results = {dtype: measure(dtype, opts) for dtype in opts.dtypes}
    print("\n".join(table(results, opts.batch * opts.seq)))
    if "float32" in results:
        times = results["float32"]["times"]
        print(f"ratio_vs_torch_f32={statistics.median(times['torch']) / statistics.median(times['lift_jax']):.3f}")
    save_results("train_throughput", {"args": vars(opts), "results": results,
                                      "table": table(results, opts.batch * opts.seq)})


if __name__ == "__main__":
    main()
