"""Total time against output length: LIFT (absorb once, then decode without the document) against ICL with
the whole document in context (paper figure 6b).

    python benchmarks/decode.py [--doc-tokens 4096] [--output-lengths 64 256 1024 2048] [--epochs 1]

LIFT's total is the one-time absorb (QA generation overlapped with training, generator server as in
benchmarks/ttft.py) plus decoding the answer from a short prompt with the adapter merged; ICL's total is the
prefill of the document plus decoding with the document in the KV cache. Both decode greedily with no stop
token, so every run produces exactly the requested number of tokens; each decode shape is compiled by an
untimed call first. The table gives ICL / LIFT for decoding alone and for the totals (above 1: LIFT is
faster), and the output length where LIFT's total drops below ICL's, measured or extrapolated linearly from
the two longest outputs. A PNG and the raw numbers as JSON go to --out.
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
from lift_jax.answering import ICL_TEMPLATE
from lift_jax.eval.niah_data import QUESTION
from lift_jax.lora import merge_lora
from lift_jax.models import LoadedModel
from lift_jax.prompting import encode_prompt
from lift_jax.sampling import SamplingParams, generate_ids
from lift_jax.special_tokens import pad_token_id, stop_token_ids


def decode_seconds(loaded: LoadedModel, prompt: list[int], new_tokens: int) -> float:
    """Seconds to prefill `prompt` and decode exactly `new_tokens` tokens (compiled beforehand)."""
    pad = pad_token_id(loaded.tokenizer, stop_token_ids(loaded.tokenizer, loaded.spec.eos_token_ids))
    params = SamplingParams(max_new_tokens=new_tokens)
    generate_ids(loaded.module, [prompt], params, (), pad)  # compile this shape
    began = time.perf_counter()
    out = generate_ids(loaded.module, [prompt], params, (), pad)
    seconds = time.perf_counter() - began
    if len(out[0]) != new_tokens:
        raise RuntimeError(f"decoded {len(out[0])} tokens instead of {new_tokens}")
    return seconds


def crossover(lengths: list[int], lift: list[float], icl: list[float]) -> tuple[float | None, str]:
    """Output length where LIFT's total time falls below ICL's: measured, or extrapolated from the last two."""
    for n, a, b in zip(lengths, lift, icl, strict=True):
        if a <= b:
            return float(n), "measured"
    if len(lengths) < 2:
        return None, "needs two output lengths"
    (n0, n1), (a0, a1), (b0, b1) = lengths[-2:], lift[-2:], icl[-2:]
    gain = (b1 - b0) / (n1 - n0) - (a1 - a0) / (n1 - n0)  # how much faster ICL's total grows per token
    if gain <= 0:
        return None, "ICL's total does not grow faster than LIFT's"
    return n1 + (a1 - b1) / gain, "extrapolated"


def main() -> None:
    """Print the table, save the plot and the JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="smollm2_135m")
    parser.add_argument("--doc-tokens", type=int, default=4096)
    parser.add_argument("--output-lengths", type=int, nargs="+", default=[64, 256, 1024, 2048])
    parser.add_argument("--latency-ms", type=float, default=2000.0, help="generator server time per request")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--qa-per-sentence", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--max-seconds", type=float, default=7200.0)
    args = parser.parse_args()

    with LatencyServer(args.latency_ms / 1000, args.max_seconds) as server, tempfile.TemporaryDirectory() as tmp:
        cfg = server_run_config(
            args.config, f"http://127.0.0.1:{server.port}/v1", Path(tmp) / "run",
            epochs=args.epochs, qa_per_sentence=args.qa_per_sentence, concurrency=64,
        )
        loaded, mesh = prepare(cfg)
        window = loaded.spec.max_position_embeddings
        if args.doc_tokens + max(args.output_lengths) + 64 > window:
            raise SystemExit(f"--doc-tokens plus the longest output exceed the model's {window}-token window")
        document = haystack_document(loaded.tokenizer, args.doc_tokens)
        fmt = prompt_format(cfg)
        icl_prompt = encode_prompt(loaded.tokenizer, ICL_TEMPLATE.format(document=document, question=QUESTION), fmt)
        lift_prompt = encode_prompt(loaded.tokenizer, QUESTION, fmt)

        began = time.perf_counter()
        absorbed = absorb_document(loaded, mesh, cfg, document, progress=False)
        merge_lora(loaded.module)
        absorb_s = time.perf_counter() - began
        rows: list[dict[str, Any]] = []
        for n in args.output_lengths:
            lift_s, icl_s = decode_seconds(loaded, lift_prompt, n), decode_seconds(loaded, icl_prompt, n)
            rows.append({"output_tokens": n, "lift_decode_s": lift_s, "lift_total_s": absorb_s + lift_s,
                         "icl_total_s": icl_s})
            print(json.dumps(rows[-1]), flush=True)

    lengths = [r["output_tokens"] for r in rows]
    at, how = crossover(lengths, [r["lift_total_s"] for r in rows], [r["icl_total_s"] for r in rows])
    print(f"\n{args.config}: document {args.doc_tokens} tokens ({len(icl_prompt)} in the ICL prompt, "
          f"{len(lift_prompt)} in LIFT's); absorb {absorb_s:.1f} s ({absorbed['steps']} steps, "
          f"{args.epochs} epoch(s), generator latency {args.latency_ms:g} ms)")
    print(f"{'output tokens':>13} {'LIFT decode s':>13} {'LIFT total s':>12} {'ICL total s':>11} "
          f"{'ICL/LIFT decode':>15} {'ICL/LIFT total':>14}")
    for r in rows:
        print(f"{r['output_tokens']:>13} {r['lift_decode_s']:>13.2f} {r['lift_total_s']:>12.1f} "
              f"{r['icl_total_s']:>11.1f} {r['icl_total_s'] / r['lift_decode_s']:>14.2f}x "
              f"{r['icl_total_s'] / r['lift_total_s']:>13.2f}x")
    print("LIFT's total falls below ICL's at " + (f"{at:.0f} output tokens ({how})" if at else f"no length: {how}"))
    plot = line_plot(
        {
            "LIFT (absorb + decode)": (lengths, [r["lift_total_s"] for r in rows]),
            "LIFT decode only": (lengths, [r["lift_decode_s"] for r in rows]),
            "ICL (document in context)": (lengths, [r["icl_total_s"] for r in rows]),
        },
        args.out / "decode.png",
        xlabel="output length (tokens)",
        ylabel="total time (s)",
        title=f"{args.config}, {args.doc_tokens}-token document",
        logx=True,
    )
    save_results("decode", {"args": vars(args), "absorb_s": absorb_s, "rows": rows, "crossover_tokens": at,
                            "crossover": how}, args.out)
    print(f"plot: {plot}")


if __name__ == "__main__":
    main()
