"""Time to first token of LIFT with and without the asynchronous pipeline (paper figure 6a).

    python benchmarks/ttft.py [--lengths 1024 2048 4096 8192] [--latency-ms 2000] [--epochs 1]

TTFT is the wall time from a document going in to the first answer token coming out of the LIFTed model
(the base model is loaded once beforehand, as a server would keep it). For each document length:

- `overlap`: absorb as lift_jax runs it: the trainer consumes QA pairs while the generator is still writing
  them (epoch 1 blocks only on an empty buffer).
- `sequential`: the paper's "without pipeline": all QA pairs are generated first, training starts after.

The generator is an OpenAI-compatible server written in benchmarks/generation.py that answers every request
after a fixed latency (default 2 s, about what an API model takes to write m pairs as JSON), so the
generator's time is the server's and the two CPU cores go to training. Documents are Paul Graham essays cut to
the exact token count (the NIAH haystack). A warm-up absorb compiles the training and decoding steps first.
The table's last column is sequential / overlap; a PNG of TTFT against length and the raw numbers as JSON go
to --out.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_common import haystack_document, line_plot, save_results, server_run_config
from generation import LatencyServer

from lift_jax.absorbing import absorb_document, prepare, prompt_format
from lift_jax.answering import Answerer
from lift_jax.eval.niah_data import QUESTION
from lift_jax.lora import merge_lora
from lift_jax.models import LoadedModel
from lift_jax.runio import RunDir
from lift_jax.sampling import SamplingParams
from lift_jax.synth.cache import QACache
from lift_jax.synth.pipeline import GenerationSummary, generate_document


def first_token_seconds(loaded: LoadedModel, cfg: Any) -> float:
    """Merge the fresh adapter and decode one answer token; seconds taken."""
    began = time.perf_counter()
    merge_lora(loaded.module)
    Answerer(loaded, prompt_format(cfg), SamplingParams(max_new_tokens=1)).answer([QUESTION])
    return time.perf_counter() - began


def overlapped(loaded: LoadedModel, mesh: Any, cfg: Any, document: str) -> dict[str, Any]:
    """TTFT with generation and training overlapped."""
    began = time.perf_counter()
    summary = absorb_document(loaded, mesh, cfg, document, progress=False)
    first = first_token_seconds(loaded, cfg)
    return {
        "ttft_s": time.perf_counter() - began,
        "generation_s": summary["timing"]["generation_done"],
        "steps": summary["steps"],
        "pairs": summary["generation"]["pairs"],
        "first_token_s": first,
    }


def sequential(loaded: LoadedModel, mesh: Any, cfg: Any, document: str) -> dict[str, Any]:
    """TTFT when every QA pair is generated before training starts."""
    began = time.perf_counter()
    generated = GenerationSummary()
    cache = QACache(RunDir(Path(cfg.output_dir)).qa_cache)
    for _ in generate_document(document, cfg.generator, cache, progress=False, summary=generated):
        pass
    generation_s = time.perf_counter() - began
    summary = absorb_document(loaded, mesh, cfg, document, progress=False)
    first = first_token_seconds(loaded, cfg)
    return {
        "ttft_s": time.perf_counter() - began,
        "generation_s": generation_s,
        "steps": summary["steps"],
        "pairs": summary["generation"]["pairs"],
        "first_token_s": first,
    }


def main() -> None:
    """Print the TTFT table, save the plot and the JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="smollm2_135m", help="absorb config (model, LoRA, batch size)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 2048, 4096, 8192])
    parser.add_argument("--latency-ms", type=float, default=2000.0, help="generator server time per request")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=1, help="epochs before the first question is answered")
    parser.add_argument("--qa-per-sentence", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--max-seconds", type=float, default=7200.0, help="the server stops after this")
    args = parser.parse_args()

    rows: dict[int, dict[str, dict[str, Any]]] = {}
    with LatencyServer(args.latency_ms / 1000, args.max_seconds) as server, tempfile.TemporaryDirectory() as tmp:
        url = f"http://127.0.0.1:{server.port}/v1"

        def config(name: str):
            return server_run_config(
                args.config, url, Path(tmp) / name, epochs=args.epochs,
                qa_per_sentence=args.qa_per_sentence, concurrency=args.concurrency,
            )

        warm = config("warmup")
        loaded, mesh = prepare(warm)
        overlapped(loaded, mesh, warm, haystack_document(loaded.tokenizer, 256))
        for length in args.lengths:
            document = haystack_document(loaded.tokenizer, length)
            rows[length] = {
                "overlap": overlapped(loaded, mesh, config(f"{length}-overlap"), document),
                "sequential": sequential(loaded, mesh, config(f"{length}-sequential"), document),
            }
            print(f"{length} tokens: {json.dumps(rows[length])}", flush=True)

    print(f"\ngenerator latency {args.latency_ms:g} ms per request (concurrency {args.concurrency}), "
          f"m={args.qa_per_sentence}, {args.epochs} epoch(s), config {args.config}")
    print(f"{'tokens':>7} {'pairs':>6} {'steps':>6} {'generation s':>12} {'TTFT overlap s':>14} "
          f"{'TTFT sequential s':>17} {'sequential/overlap':>18}")
    for length, r in rows.items():
        o, s = r["overlap"], r["sequential"]
        print(f"{length:>7} {o['pairs']:>6} {o['steps']:>6} {s['generation_s']:>12.1f} {o['ttft_s']:>14.1f} "
              f"{s['ttft_s']:>17.1f} {s['ttft_s'] / o['ttft_s']:>17.2f}x")
    lengths = list(rows)
    plot = line_plot(
        {name: (lengths, [rows[n][name]["ttft_s"] for n in lengths]) for name in ("overlap", "sequential")},
        args.out / "ttft.png",
        xlabel="document length (tokens)",
        ylabel="time to first token (s)",
        title=f"LIFT TTFT, {args.config}, generator latency {args.latency_ms:g} ms",
        logx=True,
    )
    save_results("ttft", {"args": vars(args), "rows": rows}, args.out)
    print(f"plot: {plot}")


if __name__ == "__main__":
    main()
