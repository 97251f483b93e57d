"""lift_jax's jitted KV-cache sampler against transformers `generate`, same prompts, same float32 weights.

    python benchmarks/sampler.py [--batches 1 16 64] [--new-tokens 128] [--modes greedy top_p]

The prompts are the embedded QA generator's: the chat-formatted "general" prompt (m = 5) for the sentences
of the bundled sample document, with up to --context-chars of preceding text, cycled to fill each batch. Both
sides load the bundled SmolLM2-135M-Instruct GGUF in float32 (transformers with `gguf_file=`) and decode
exactly --new-tokens tokens per row (no stop token; transformers with its EOS id unset, so it neither stops
nor suppresses EOS), greedy
and top-p (temperature 0.7, top-p 0.95: the generator's defaults). Each side runs in its own subprocess and
times its second call of every shape; the first call (compilation for lift_jax, warm-up for transformers) is
reported separately. transformers runs the way its users run it: `model.generate(**tok(prompts,
padding=True, padding_side="left"), ...)` with torch using every core. Timed: text prompts in, new token
ids out (tokenization included on both sides). tokens/s counts new tokens. Greedy outputs are compared
token for token. Each batch is also timed with one new token per row (its prefill); the table splits each side's
time into that and the decode rate of the remaining tokens.

The last line is `sampler_ratio_vs_hf=<min over the measured batch sizes and modes of lift_jax tokens/s over
transformers tokens/s>`. The JSON goes to --out/sampler.json.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import subprocess
import sys
import time
from importlib.resources import files
from pathlib import Path
from typing import Any

MODES = {"greedy": (0.0, 1.0), "top_p": (0.7, 0.95)}
MODEL = "bundled:smollm2-135m-instruct"


def qa_prompts(tokenizer: Any, context_chars: int) -> list[str]:
    """The generator's chat-formatted QA-generation prompt text for every sentence of the sample document."""
    from lift_jax.synth.prompts import load_prompt
    from lift_jax.synth.split import sentence_tasks

    document = files("lift_jax.assets").joinpath("sample_document.txt").read_text()
    template = load_prompt("general", "local")
    return [
        tokenizer.apply_chat_template(template.messages(task, 5), add_generation_prompt=True, tokenize=False)
        for task in sentence_tasks(document, max_context_chars=context_chars)
    ]


def batch_of(prompts: list[str], batch: int) -> list[str]:
    """The first `batch` prompts, cycling through the list."""
    return [prompts[i % len(prompts)] for i in range(batch)]


def timed(run: Any) -> tuple[Any, float]:
    """(result, seconds) of `run()`."""
    began = time.perf_counter()
    result = run()
    return result, time.perf_counter() - began


def second_call(run: Any) -> float:
    """Seconds of the second of two calls of `run` (the first compiles or warms up)."""
    run()
    return timed(run)[1]


def digest(ids: list[list[int]]) -> str:
    """A short fingerprint of token-id rows (to check both sides saw the same prompts)."""
    return hashlib.sha256(json.dumps(ids).encode()).hexdigest()[:16]


def jax_side(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Time lift_jax's `generate_ids` (tokenization included) on every batch size and mode."""
    from lift_jax.models import load
    from lift_jax.sampling import SamplingParams, generate_ids

    loaded, load_s = timed(lambda: load(MODEL, dtype="float32"))
    tok = loaded.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    prompts = qa_prompts(tok, args.context_chars)
    rows = []

    def run(texts: list[str], params: SamplingParams) -> list[list[int]]:
        ids = [tok(t)["input_ids"] for t in texts]
        return generate_ids(loaded.module, ids, params, (), pad)

    for batch in args.batches:
        texts = batch_of(prompts, batch)
        prefill_s = second_call(functools.partial(run, texts, SamplingParams(max_new_tokens=1)))
        for mode in args.modes:
            temperature, top_p = MODES[mode]
            params = SamplingParams(max_new_tokens=args.new_tokens, temperature=temperature, top_p=top_p)
            _, first_s = timed(functools.partial(run, texts, params))
            out, seconds = timed(functools.partial(run, texts, params))
            prompt_ids = [tok(t)["input_ids"] for t in texts]
            rows.append(row(batch, mode, seconds, first_s, load_s, prompt_ids, out, prefill_s))
    return rows


def hf_side(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Time transformers `generate` the way its users call it, on every batch size and mode."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lift_jax.models.bundled import smollm2_gguf

    torch.set_num_threads(os.cpu_count() or 1)
    path = smollm2_gguf()

    def load() -> tuple[Any, Any]:
        tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
        return tok, model.eval()

    (tok, model), load_s = timed(load)
    model.generation_config.eos_token_id = None  # every row decodes --new-tokens tokens, as lift_jax's do
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    prompts = qa_prompts(tok, args.context_chars)
    rows = []
    def run(texts: list[str], new_tokens: int, sampling: dict) -> list[list[int]]:
        inputs = tok(texts, padding=True, padding_side="left", return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=new_tokens, pad_token_id=pad, **sampling)
        return out[:, inputs["input_ids"].shape[1] :].tolist()

    for batch in args.batches:
        texts = batch_of(prompts, batch)
        prefill_s = second_call(functools.partial(run, texts, 1, {"do_sample": False}))
        for mode in args.modes:
            temperature, top_p = MODES[mode]
            sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": 0}
            if mode == "greedy":
                sampling = {"do_sample": False}
            _, first_s = timed(functools.partial(run, texts, args.new_tokens, sampling))
            out, seconds = timed(functools.partial(run, texts, args.new_tokens, sampling))
            prompt_ids = [tok(t)["input_ids"] for t in texts]
            rows.append(row(batch, mode, seconds, first_s, load_s, prompt_ids, out, prefill_s))
    return rows


def row(
    batch: int,
    mode: str,
    seconds: float,
    first_s: float,
    load_s: float,
    prompts: list[list[int]],
    out: list,
    prefill_s: float,
) -> dict[str, Any]:
    """One measurement; greedy rows keep their token ids for the comparison. `prefill_s`: the same batch with
    one new token (the prompts' prefill and the first token's choice)."""
    return {
        "batch": batch,
        "mode": mode,
        "seconds": seconds,
        "prefill_s": prefill_s,
        "first_call_s": first_s,
        "load_s": load_s,
        "new_tokens": sum(len(x) for x in out),
        "prompt_tokens": sum(len(p) for p in prompts),
        "prompts_digest": digest(prompts),
        "ids": out if mode == "greedy" else None,
    }


def run_side(side: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Run one side in its own subprocess and return its rows."""
    command = [sys.executable, __file__, "--side", side, "--batches", *map(str, args.batches),
               "--new-tokens", str(args.new_tokens), "--modes", *args.modes, "--context-chars", str(args.context_chars)]
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)  # stderr: shown as it comes
    return json.loads(done.stdout.strip().splitlines()[-1])


def decode_rate(r: dict[str, Any]) -> float:
    """New tokens after each row's first, per second of the run beyond its one-token (prefill) time."""
    return (r["new_tokens"] - r["batch"]) / max(r["seconds"] - r["prefill_s"], 1e-9)


def compare_greedy(ours: list[list[int]], ref: list[list[int]]) -> dict[str, Any]:
    """How many rows are token-identical, and where the first differing row diverges."""
    same = sum(a == b for a, b in zip(ours, ref, strict=True))
    first = None
    for r, (a, b) in enumerate(zip(ours, ref, strict=True)):
        if a != b:
            first = {"row": r, "token": next((i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y))}
            break
    return {"identical_rows": same, "rows": len(ref), "first_divergence": first}


def main() -> None:
    """Run both sides, print the table and the ratio line, save the JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parser.add_argument("--context-chars", type=int, default=512, help="preceding text shown with each sentence")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--side", choices=["jax", "hf"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print(json.dumps((jax_side if args.side == "jax" else hf_side)(args)))
        return

    load_before = os.getloadavg()
    ours, ref = run_side("jax", args), run_side("hf", args)
    results = []
    print(f"SmolLM2-135M float32, {args.new_tokens} new tokens per row, {os.cpu_count()} cores, "
          f"load average {load_before[0]:.1f} before the run")
    print(f"{'batch':>5} {'mode':>6} {'prompt tok':>10} {'lift_jax tok/s':>14} {'HF tok/s':>9} {'ratio':>6} "
          f"{'prefill s lift_jax / HF':>23} {'decode tok/s lift_jax / HF':>27} {'compile s':>9} "
          f"{'greedy identical':>16}")
    for a, b in zip(ours, ref, strict=True):
        if a["prompts_digest"] != b["prompts_digest"]:
            raise SystemExit(f"error: the two sides tokenized the batch-{a['batch']} prompts differently")
        ours_rate, ref_rate = a["new_tokens"] / a["seconds"], b["new_tokens"] / b["seconds"]
        same = compare_greedy(a["ids"], b["ids"]) if a["mode"] == "greedy" else None
        results.append({"batch": a["batch"], "mode": a["mode"], "prompt_tokens": a["prompt_tokens"],
                        "lift_jax_tokens_per_s": ours_rate, "hf_tokens_per_s": ref_rate,
                        "ratio": ours_rate / ref_rate, "lift_jax_s": a["seconds"], "hf_s": b["seconds"],
                        "lift_jax_compile_s": a["first_call_s"] - a["seconds"],
                        "hf_first_call_s": b["first_call_s"], "greedy": same,
                        "lift_jax_prefill_s": a["prefill_s"], "hf_prefill_s": b["prefill_s"],
                        "lift_jax_decode_tokens_per_s": decode_rate(a), "hf_decode_tokens_per_s": decode_rate(b)})
        r = results[-1]
        identical = f"{same['identical_rows']}/{same['rows']} rows" if same else "-"
        prefill = f"{a['prefill_s']:.1f} / {b['prefill_s']:.1f}"
        decode = f"{decode_rate(a):.1f} / {decode_rate(b):.1f}"
        print(f"{r['batch']:>5} {r['mode']:>6} {r['prompt_tokens']:>10} {ours_rate:>14.1f} {ref_rate:>9.1f} "
              f"{r['ratio']:>5.2f}x {prefill:>23} {decode:>27} {r['lift_jax_compile_s']:>9.1f} {identical:>16}")
    greedy = [r["greedy"] for r in results if r["greedy"]]
    all_same = all(g["identical_rows"] == g["rows"] for g in greedy)
    print("greedy outputs token-identical to transformers: " + ("yes" if all_same else "NO " + json.dumps(greedy)))
    print(f"model load: lift_jax {ours[0]['load_s']:.1f} s, transformers {ref[0]['load_s']:.1f} s")
    ratio = min(r["ratio"] for r in results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sampler.json").write_text(json.dumps({
        "args": {k: v for k, v in vars(args).items() if k not in ("out", "side")},
        "cores": os.cpu_count(), "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "rows": results, "greedy_identical": all_same, "sampler_ratio_vs_hf": ratio,
    }, indent=1))
    print(f"sampler_ratio_vs_hf={ratio:.2f}")


if __name__ == "__main__":
    main()
