"""Time one context-distillation teacher call (`Teacher.answer`) as the `lift+cd` absorb makes it.

    python benchmarks/teacher.py [--config smollm2_135m] [--sentences 3] [--questions 4]

The run config's model (default: the bundled SmolLM2-135M-Instruct, float32) gets the config's LoRA adapter and
the teacher is built the way absorb builds it (`distill.run.teacher_for`: the frozen base, adapter off). Each
call answers --questions questions about one sentence of the bundled sample document, reading that sentence's
window (`cd.context_tokens`, 512 for smollm2_135m), greedily up to `cd.max_answer_tokens` (64) tokens with the
top-`cd.top_k` log-probs. The first call (compilation) is reported apart; the next --sentences calls (other
sentences, the same shapes) are the steady state. Prints seconds per call and answer tokens per second, and
saves the JSON under --out.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from importlib.resources import files
from pathlib import Path

QUESTIONS = (
    "What is this part of the document about?",
    "Who is mentioned here, and what did they do?",
    "When did the events described here take place?",
    "Why does the document mention this detail?",
    "What happened next, according to the document?",
    "Where does this take place?",
    "How is this described in the document?",
    "What is the main point of this passage?",
)


def build_teacher(config: str) -> tuple[object, object, str, list]:
    """(teacher, run config, document, its sentences) with the teacher made as `absorb` makes it."""
    from lift_jax.absorbing.settings import lora_config, optimizer_config, prompt_format
    from lift_jax.config import load_config_file
    from lift_jax.distill.run import teacher_for
    from lift_jax.lora import apply_lora
    from lift_jax.models import load
    from lift_jax.special_tokens import pad_token_id, stop_token_ids
    from lift_jax.synth.split import split_sentences
    from lift_jax.train import LoRATrainer

    cfg = load_config_file(config)
    loaded = load(cfg.model_path, dtype=cfg.dtype)
    apply_lora(loaded.module, lora_config(cfg), seed=cfg.seed)
    trainer = LoRATrainer(loaded.module, optimizer_config(cfg, total_steps=1))
    tokenizer = loaded.require_tokenizer("the teacher benchmark")
    stops = stop_token_ids(tokenizer, loaded.spec.eos_token_ids)
    pad_id = pad_token_id(tokenizer, stops)
    teacher = teacher_for(loaded, trainer, cfg, prompt_format(cfg), stops, pad_id)
    document = files("lift_jax.assets").joinpath("sample_document.txt").read_text()
    return teacher, cfg, document, split_sentences(document)


def main() -> None:
    """Time the first and the steady-state teacher calls; print them and save the JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="smollm2_135m")
    parser.add_argument("--sentences", type=int, default=3, help="timed calls after the first one")
    parser.add_argument("--questions", type=int, default=4, choices=range(1, len(QUESTIONS) + 1))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()

    from lift_jax.distill.teacher import document_windows

    teacher, cfg, document, sentences = build_teacher(args.config)
    budget = min(cfg.cd.context_tokens, teacher.module.spec.max_position_embeddings - cfg.cd.max_answer_tokens - 128)
    middle = len(sentences) // 2
    chosen = sentences[middle : middle + args.sentences + 1]
    windows = document_windows(teacher.tokenizer, document, chosen, budget)
    teacher.fix_prefix(document_windows(teacher.tokenizer, document, sentences, budget))
    load_before = os.getloadavg()
    calls = []
    for i, window in enumerate(windows):
        questions = list(QUESTIONS[i % 2 : i % 2 + args.questions])
        began = time.perf_counter()
        answers = teacher.answer(window, questions)
        calls.append({"seconds": time.perf_counter() - began,
                      "answer_tokens": sum(len(a.answer_ids) for a in answers),
                      "window_tokens": len(teacher.tokenizer(window, add_special_tokens=False)["input_ids"])})
    steady = calls[1:]
    seconds = statistics.median(c["seconds"] for c in steady)
    tokens = sum(c["answer_tokens"] for c in steady) / sum(c["seconds"] for c in steady)
    print(f"{cfg.model_path} {cfg.dtype}, window {budget} tokens, {args.questions} questions, "
          f"{cfg.cd.max_answer_tokens} answer tokens max, top-{cfg.cd.top_k}; {os.cpu_count()} cores, "
          f"load average {load_before[0]:.1f}")
    print(f"first call (compiles): {calls[0]['seconds']:.1f} s")
    print(f"steady state: {seconds:.2f} s per call (median of {len(steady)}), {tokens:.1f} answer tokens/s")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "teacher.json").write_text(json.dumps({
        "args": {k: v for k, v in vars(args).items() if k != "out"}, "cores": os.cpu_count(),
        "load_average_before": load_before, "load_average_after": os.getloadavg(), "calls": calls,
        "first_call_s": calls[0]["seconds"], "seconds_per_call": seconds, "answer_tokens_per_s": tokens,
    }, indent=1))
    print(f"teacher_seconds_per_call={seconds:.2f}")


if __name__ == "__main__":
    main()
