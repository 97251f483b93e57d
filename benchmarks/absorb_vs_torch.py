"""The whole absorb of one document: lift_jax's CLI against a PyTorch reference pipeline, in one run.

    python benchmarks/absorb_vs_torch.py [--document PATH] [--config smollm2_135m] [--max-sentences N]
        [--epochs N] [--config.<field>=value ...]

lift_jax's side is the real command, `python -m lift_jax.absorb --config ...` in a subprocess (generation and
training overlapped, its one-token time-to-first-token probe switched off); its marks are read from the run's
timing.json and metrics.jsonl. The PyTorch side, in a second subprocess after it, is written here the way the
LIFT authors' code does it (MuLabPKU/LIFT: every sentence's QA pairs generated first, then an SFT pass with
PEFT LoRA and answer-only labels over batches padded to their longest row, AdamW), sequentially:

- the same weights (the config's model; GGUF through transformers' `gguf_file=`), float32, torch threads =
  usable cores; loaded once and used for both generation and training;
- generation: transformers `generate` in batches of `generator.local_batch_size` sentences x the samples per
  sentence, with exactly lift_jax's rendered prompt per sentence (lift_jax.synth's sentence plan and prompt
  template), sampling settings (temperature, top-p, new-token budget, samples per sentence, the same per-row
  stop rule: a stop token or the template's line budget), reply parsing and filtering
  (lift_jax.synth.pipeline.extract_pairs) and retries of sentences without a usable pair;
- training: transformers + PEFT LoRA (same rank, alpha, dropout, targets, seed), answer-only loss on the
  chat-formatted pairs tokenised by lift_jax.prompting.encode_example, rows cut to train.max_length, batches of
  train.batch_size x train.grad_accum pairs padded to their longest row, loss = sum over answer tokens / answer
  tokens of the step, global-norm clipping, torch.optim.AdamW with the config's lr and weight decay, constant
  schedule, epoch 1 in generation order and later epochs shuffled; the adapter is saved with save_pretrained.

By default the PyTorch side trains on the pairs lift_jax's run generated (read from its QA cache), so both
sides train on identical examples for the same number of optimizer steps; its own generation still runs in
full, is timed, and its pair count is reported beside lift_jax's (they differ by sampling noise only).
`--torch-pairs own` trains it on its own pairs instead.

The table shows each phase's seconds (load, generation, training, to the adapter, process total) and
throughput (generated tokens/s, pairs/s, loss tokens/s), what differs between the sides, and last
`absorb_ratio_vs_torch=<lift_jax total / torch total>` (process wall times, imports and exit included).
The JSON goes to benchmarks/results/absorb_vs_torch_<document>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from bench_common import RESULTS_DIR, machine_info, save_results

SAMPLE_DOCUMENT = Path(__file__).resolve().parent.parent / "lift_jax" / "assets" / "sample_document.txt"
# Chat end-of-turn markers lift_jax's sampler also stops on (lift_jax.special_tokens.END_OF_TURN_TOKENS; a test checks
# that both give the same stop ids). Not imported: that module would pull JAX into the PyTorch process.
END_OF_TURN_TOKENS = ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|end|>", "<|endoftext|>", "<|end_of_text|>")
IGNORE = -100  # label of a position without loss (PyTorch's cross_entropy ignore_index)
PAIR_COUNT_TOLERANCE = 0.15  # pair counts further apart than this are flagged in the table
FIRST_LOSS_TOLERANCE = 1e-3  # relative; the same first batch through the same weights (adapters start at zero)


class Marks:
    """Wall-clock marks in seconds since construction; the first occurrence of a name wins."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.marks: dict[str, float] = {}

    def mark(self, name: str) -> None:
        """Record `name` now."""
        self.marks.setdefault(name, round(time.perf_counter() - self.start, 3))


# ---------------------------------------------------------------------------------------------------------------
# Pure helpers of the PyTorch side (tested against lift_jax in tests/test_absorb_vs_torch.py)


def reference_stop_ids(tokenizer: Any, config_eos: int | Sequence[int] | None) -> tuple[int, ...]:
    """The ids generation stops at: the model config's and tokenizer's EOS plus the chat end-of-turn tokens
    the vocabulary holds (the rule of lift_jax.special_tokens.stop_token_ids)."""
    ids = set([config_eos] if isinstance(config_eos, int) else list(config_eos or ()))
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    vocab = tokenizer.get_vocab()
    ids.update(vocab[t] for t in END_OF_TURN_TOKENS if t in vocab)
    return tuple(sorted(ids))


def unique_tasks(planned: Sequence[Any]) -> list[Any]:
    """The sentence tasks of lift_jax.synth.pipeline.plan_document, a repeated key (same sentence after the same
    context) kept once, at its first place, in sentence order, as lift_jax generates them."""
    first: dict[str, Any] = {}
    for p in planned:
        first.setdefault(p.key, p.task)
    return sorted(first.values(), key=lambda task: task.index)


def decoded_rows(rows: Sequence[Sequence[int]], lengths: Sequence[int], stop_ids: Sequence[int]) -> list[list[int]]:
    """Each row's sampled tokens up to its recorded length, cut before its first stop token (as lift_jax)."""
    stops = set(stop_ids)
    out = []
    for row, length in zip(rows, lengths, strict=True):
        ids = list(row[:length])
        out.append(ids[: next((i for i, t in enumerate(ids) if t in stops), len(ids))])
    return out


def collate(examples: Sequence[tuple[Sequence[int], Sequence[int]]], max_length: int, pad_id: int) -> dict[str, Any]:
    """(ids, loss mask) examples -> `input_ids`, `attention_mask`, `labels` [rows, longest row] (numpy int64).

    A row keeps its first max_length + 1 tokens (lift_jax feeds at most max_length inputs and predicts the token
    after each); `labels` is the id where the mask is 1, else IGNORE; the model's logits at position t are scored
    against labels[t + 1]. Rows are right-padded to the longest one.
    """
    cut = [(list(ids)[: max_length + 1], list(mask)[: max_length + 1]) for ids, mask in examples]
    width = max(len(ids) for ids, _ in cut)
    input_ids = np.full((len(cut), width), pad_id, np.int64)
    attention = np.zeros((len(cut), width), np.int64)
    labels = np.full((len(cut), width), IGNORE, np.int64)
    for row, (ids, mask) in enumerate(cut):
        n = len(ids)
        input_ids[row, :n] = ids
        attention[row, :n] = 1
        labels[row, :n] = np.where(np.asarray(mask) == 1, ids, IGNORE)
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


def loss_tokens(labels: np.ndarray) -> int:
    """Positions that carry loss: labels after the first column (position t predicts labels[t + 1])."""
    return int((labels[:, 1:] != IGNORE).sum())


def epoch_order(n: int, epoch: int, seed: int) -> list[int]:
    """Example order of `epoch` (1-based): generation order first, then a seeded shuffle per epoch."""
    if epoch == 1:
        return list(range(n))
    return np.random.default_rng(seed * 1000 + epoch).permutation(n).tolist()


def step_batches(n: int, epochs: int, per_step: int, seed: int) -> list[list[int]]:
    """Example indices of every optimizer step: each epoch cut into runs of `per_step` (the last one shorter)."""
    steps = []
    for epoch in range(1, epochs + 1):
        order = epoch_order(n, epoch, seed)
        steps.extend(order[i : i + per_step] for i in range(0, n, per_step))
    return steps


def cut_to_sentences(document: str, sentences: int, min_chars: int, max_chars: int) -> str:
    """`document` up to the end of its `sentences`-th sentence (lift_jax.synth's splitting)."""
    from lift_jax.synth.split import split_sentences

    found = split_sentences(document, min_chars, max_chars)
    return document[: found[min(sentences, len(found)) - 1].end]


# ---------------------------------------------------------------------------------------------------------------
# The PyTorch side (runs in its own process: `absorb_vs_torch.py --torch-worker JOB.json`)


def _line_break_mask(tokenizer: Any, size: int) -> Any:
    import torch

    mask = torch.zeros(size, dtype=torch.bool)
    for i in range(len(tokenizer)):
        if "\n" in tokenizer.decode([i]):
            mask[i] = True
    return mask


def _row_stop(stop_ids: Sequence[int], line_break: Any, max_lines: int, rows: int) -> Any:
    """A per-row stopping criterion for `generate`: a row ends at a stop token or after `max_lines` line breaks
    (lift_jax's sampler rule); it also records how many tokens each row sampled."""
    import torch
    from transformers import StoppingCriteria

    class RowStop(StoppingCriteria):
        def __init__(self) -> None:
            self.stops = torch.tensor(sorted(stop_ids), dtype=torch.long)
            self.done = torch.zeros(rows, dtype=torch.bool)
            self.lines = torch.zeros(rows, dtype=torch.long)
            self.lengths = torch.zeros(rows, dtype=torch.long)

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            last = input_ids[:, -1]
            live = ~self.done
            self.lengths += live.long()
            if max_lines > 0:
                self.lines += (live & line_break[last]).long()
            ended = torch.isin(last, self.stops) | ((max_lines > 0) & (self.lines >= max_lines))
            self.done |= live & ended
            return self.done.clone()

    return RowStop()


def _generate_pairs(job: dict[str, Any], model: Any, tokenizer: Any, stops: tuple[int, ...], marks: Marks) -> dict:
    """Every sentence's pairs with transformers `generate`, batched as lift_jax's local generator batches."""
    import ml_collections
    import torch
    from tqdm.auto import tqdm
    from transformers import GenerationConfig, StoppingCriteriaList

    from lift_jax.synth.generators import Generation, GeneratorSampling
    from lift_jax.synth.pipeline import extract_pairs, plan_document
    from lift_jax.synth.prompts import load_prompt

    g = ml_collections.ConfigDict(job["config"]["generator"])
    template = load_prompt(g.prompt, g.kind)
    sampling = GeneratorSampling.from_config(g)
    k = sampling.samples_for(template)
    max_lines = sampling.lines_per_sample(template)
    tasks = unique_tasks(plan_document(job["document"], g))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
    line_break = _line_break_mask(tokenizer, max(len(tokenizer), model.config.vocab_size)) if max_lines else None
    settings = GenerationConfig(
        do_sample=sampling.temperature > 0,
        temperature=sampling.temperature if sampling.temperature > 0 else None,
        top_p=sampling.top_p if sampling.temperature > 0 else None,
        top_k=0,  # pure nucleus sampling, as configured (transformers' default adds top-k 50)
        repetition_penalty=1.0,  # unset fields would come from the checkpoint's generation config
        max_new_tokens=sampling.max_tokens_for(template),
        num_return_sequences=k,
        eos_token_id=list(stops),
        pad_token_id=pad_id,
    )
    tokenizer.padding_side = "left"
    pairs: dict[int, list] = {task.index: [] for task in tasks}
    generated = rows = calls = 0
    pending = tasks
    bar = tqdm(total=len(tasks), desc="QA generation (transformers)", unit="sentence")
    for attempt in range(g.empty_retries + 1):
        for i in range(0, len(pending), g.local_batch_size):
            chunk = pending[i : i + g.local_batch_size]
            encoded = tokenizer([template.text(task, sampling.m) for task in chunk], return_tensors="pt", padding=True)
            stop = _row_stop(stops, line_break, max_lines, len(chunk) * k)
            with torch.inference_mode():
                out = model.generate(**encoded, generation_config=settings,
                                     stopping_criteria=StoppingCriteriaList([stop]))
            new = out[:, encoded["input_ids"].shape[1] :].tolist()
            texts = [tokenizer.decode(ids, skip_special_tokens=True)
                     for ids in decoded_rows(new, stop.lengths.tolist(), stops)]
            generated += int(stop.lengths.sum())
            rows, calls = rows + len(texts), calls + 1
            for j, task in enumerate(chunk):
                pairs[task.index] = extract_pairs(Generation(texts[j * k : (j + 1) * k]), template, task, sampling.m)
                if pairs[task.index]:
                    marks.mark("first_pair")
            if attempt == 0:
                bar.update(len(chunk))
        pending = [task for task in pending if not pairs[task.index]]
        if not pending:
            break
    bar.close()
    return {
        "pairs": [p for task in tasks for p in pairs[task.index]],
        "sentences": len(tasks),
        "sentences_without_pairs": len(pending),
        "generated_tokens": generated,
        "sampled_rows": rows,
        "generate_calls": calls,
    }


def _lift_jax_pairs(qa_cache: str) -> list[tuple[str, str]]:
    from lift_jax.synth.cache import iter_qa_pairs

    return [tuple(pair) for _, pair in iter_qa_pairs(qa_cache)]


def _train(job: dict[str, Any], model: Any, tokenizer: Any, stops: tuple[int, ...],
           pairs: Sequence[tuple[str, str]], marks: Marks) -> dict[str, Any]:
    """PEFT LoRA SFT with answer-only loss over `pairs`; returns step counts, loss tokens and losses."""
    import torch
    from peft import LoraConfig, get_peft_model
    from tqdm.auto import tqdm

    from lift_jax.prompting import PromptFormat, encode_example

    cfg = job["config"]
    lora, train = cfg["lora"], cfg["train"]
    fmt = PromptFormat(use_chat_template=cfg["use_chat_template"], system=cfg["system_prompt"] or None)
    examples = [encode_example(tokenizer, q, a, fmt, stops) for q, a in pairs]
    targets = lora["targets"] if isinstance(lora["targets"], str) else list(lora["targets"])
    torch.manual_seed(cfg["seed"])
    model = get_peft_model(model, LoraConfig(r=lora["rank"], lora_alpha=lora["alpha"],
                                             lora_dropout=lora["dropout"], target_modules=targets)).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=train["lr"], betas=(0.9, 0.999), eps=1e-8,
                                  weight_decay=train["weight_decay"])
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
    rows = train["batch_size"]
    steps = step_batches(len(examples), train["epochs"], rows * train["grad_accum"], cfg["seed"])
    losses, tokens, compute_s = [], 0, 0.0
    for indices in tqdm(steps, desc="training (PEFT)", unit="step"):
        marks.mark("first_step_started")
        t0 = time.perf_counter()
        micro = [collate([examples[i] for i in indices[a : a + rows]], train["max_length"], pad_id)
                 for a in range(0, len(indices), rows)]
        count = sum(loss_tokens(b["labels"]) for b in micro)
        optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for b in micro:
            logits = model(input_ids=torch.from_numpy(b["input_ids"]),
                           attention_mask=torch.from_numpy(b["attention_mask"])).logits
            loss = torch.nn.functional.cross_entropy(
                logits[:, :-1].flatten(0, 1).float(), torch.from_numpy(b["labels"][:, 1:]).flatten(),
                ignore_index=IGNORE, reduction="sum",
            ) / max(count, 1)
            loss.backward()
            total += loss.item()
        if train["clip_norm"] > 0:
            torch.nn.utils.clip_grad_norm_(params, train["clip_norm"])
        optimizer.step()
        compute_s += time.perf_counter() - t0
        losses.append(round(total, 5))
        tokens += count
    marks.mark("training_done")
    model.save_pretrained(job["adapter_dir"])
    marks.mark("adapter_written")
    return {"steps": len(steps), "pairs_trained": len(examples), "loss_tokens": tokens,
            "train_compute_s": round(compute_s, 3), "losses": losses,
            "attention": model.config._attn_implementation}


def torch_worker(job_path: Path) -> None:
    """The PyTorch side: load, generate every sentence's pairs, train, save; results to job['result']."""
    job = json.loads(job_path.read_text())
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if job["config"]["train"]["schedule"] != "constant" or job["config"]["train"]["warmup_steps"]:
        raise SystemExit("error: the PyTorch reference uses a constant learning rate; leave train.schedule "
                         "at 'constant' and train.warmup_steps at 0")
    torch.set_num_threads(job["threads"])
    torch.manual_seed(job["config"]["seed"])
    marks = Marks()
    source = {"gguf_file": job["gguf_file"]} if job["gguf_file"] else {}
    tokenizer = AutoTokenizer.from_pretrained(job["model_dir"], local_files_only=True, **source)
    model = AutoModelForCausalLM.from_pretrained(job["model_dir"], dtype=torch.float32, local_files_only=True,
                                                 **source).eval()
    marks.mark("model_loaded")
    stops = reference_stop_ids(tokenizer, model.config.eos_token_id)
    generation = _generate_pairs(job, model, tokenizer, stops, marks)
    marks.mark("generation_done")
    trained_on = generation["pairs"] if job["torch_pairs"] == "own" else _lift_jax_pairs(job["lift_jax_qa_cache"])
    summary = _train(job, model, tokenizer, stops, trained_on, marks)
    generation["pairs"] = len(generation["pairs"])
    result = {"generation": generation, **summary, "timing": marks.marks, "threads": torch.get_num_threads()}
    Path(job["result"]).write_text(json.dumps(result))


# ---------------------------------------------------------------------------------------------------------------
# The parent: runs both sides and prints the comparison


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **extra}


def _run(command: list[str], env: dict[str, str], side: str) -> float:
    """Run `command` (its progress on this terminal); wall seconds. A failure ends the benchmark."""
    began = time.perf_counter()
    code = subprocess.run(command, env=env, stdout=sys.stderr).returncode
    if code:
        raise SystemExit(f"error: the {side} side exited with code {code} (its output is above)")
    return round(time.perf_counter() - began, 3)


def run_lift_jax(opts: argparse.Namespace, overrides: list[str], document: Path, run_dir: Path,
                 env: dict[str, str]) -> dict[str, Any]:
    """`python -m lift_jax.absorb` on `document`; its timing.json summary, metrics and wall time."""
    command = [sys.executable, "-m", "lift_jax.absorb", "--config", opts.config, *overrides,
               f"--config.document={document}", f"--config.output_dir={run_dir}",
               "--config.ask.measure_first_token=false"]
    wall = _run(command, env, "lift_jax")
    summary = json.loads((run_dir / "timing.json").read_text())
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return {
        "wall_s": wall,
        "timing": summary["timing"],
        "steps": summary["steps"],
        "loss_tokens": sum(m["tokens"] for m in metrics),
        "train_compute_s": summary["train_compute_s"],
        "losses": [m["loss"] for m in metrics],
        "generation": {**summary.get("generation", {})},
        "command": command,
    }


def run_torch(opts: argparse.Namespace, cfg: dict[str, Any], document: str, work: Path,
              env: dict[str, str]) -> dict[str, Any]:
    """The PyTorch reference in its own process; its result and wall time."""
    from lift_jax.models.loader import resolve_source

    source = resolve_source(cfg["model_path"])
    job = {
        "config": cfg, "document": document, "threads": len(os.sched_getaffinity(0)),
        "model_dir": str(source.directory), "gguf_file": source.gguf_file,
        "torch_pairs": opts.torch_pairs, "lift_jax_qa_cache": str(work / "lift_jax" / "qa_cache"),
        "adapter_dir": str(work / "torch" / "adapter"), "result": str(work / "torch" / "result.json"),
    }
    (work / "torch").mkdir(parents=True, exist_ok=True)
    job_path = work / "torch" / "job.json"
    job_path.write_text(json.dumps(job))
    wall = _run([sys.executable, str(Path(__file__).resolve()), "--torch-worker", str(job_path)], env, "PyTorch")
    return {"wall_s": wall, **json.loads(Path(job["result"]).read_text())}


def phases(side: dict[str, Any]) -> dict[str, float]:
    """Seconds per phase from a side's marks (since its own start, after imports) and its process wall time."""
    m = side["timing"]
    return {
        "load": m["model_loaded"],
        "generation": m["generation_done"] - m["model_loaded"],
        "training": m["training_done"] - m.get("first_step_started", m["training_done"]),
        "to_adapter": m["adapter_written"],
        "startup_exit": side["wall_s"] - m["adapter_written"],
        "total": side["wall_s"],
    }


def _first(losses: Sequence[float]) -> str:
    return f"{losses[0]:.4f}" if losses else "n/a"


def _last(losses: Sequence[float]) -> str:
    return f"{losses[-1]:.4f}" if losses else "n/a"


def _rate(amount: float | None, seconds: float) -> str:
    return "n/a" if amount is None or seconds <= 0 else f"{amount / seconds:.3g}"


def table(ours: dict[str, Any], ref: dict[str, Any], torch_pairs: str) -> tuple[list[str], list[str]]:
    """Markdown rows comparing the sides, and the notes on what differs."""
    a, b = phases(ours), phases(ref)
    pairs_a, pairs_b = ours["generation"].get("pairs", 0), ref["generation"]["pairs"]
    tokens_a = ours["generation"].get("generated_tokens")  # recorded only if lift_jax's timing.json has it
    lines = ["| | lift_jax | PyTorch reference | lift_jax / torch |", "|---|---:|---:|---:|"]
    labels = {
        "load": "load (model, s)",
        "generation": "generation (s)",
        "training": "training (s)",
        "to_adapter": "document in -> adapter written (s)",
        "startup_exit": "interpreter start, imports, exit (s)",
        "total": "total, process wall (s)",
    }
    for key, label in labels.items():
        lines.append(f"| {label} | {a[key]:.1f} | {b[key]:.1f} | {a[key] / b[key]:.2f} |" if b[key] > 0
                     else f"| {label} | {a[key]:.1f} | {b[key]:.1f} | - |")
    lines += [
        f"| sentences | {ours['generation'].get('sentences', 'n/a')} | {ref['generation']['sentences']} | |",
        f"| QA pairs generated | {pairs_a} | {pairs_b} | |",
        f"| generated tokens | {'n/a' if tokens_a is None else tokens_a} | "
        f"{ref['generation']['generated_tokens']} | |",
        f"| generated tokens/s | {_rate(tokens_a, a['generation'])} | "
        f"{_rate(ref['generation']['generated_tokens'], b['generation'])} | |",
        f"| QA pairs/s (generation) | {_rate(pairs_a, a['generation'])} | {_rate(pairs_b, b['generation'])} | |",
        f"| pairs trained on | {pairs_a} | {ref['pairs_trained']} | |",
        f"| optimizer steps | {ours['steps']} | {ref['steps']} | |",
        f"| loss tokens | {ours['loss_tokens']} | {ref['loss_tokens']} | |",
        f"| loss tokens/s (training phase) | {_rate(ours['loss_tokens'], a['training'])} | "
        f"{_rate(ref['loss_tokens'], b['training'])} | |",
        f"| loss tokens/s (step time only) | {_rate(ours['loss_tokens'], ours['train_compute_s'])} | "
        f"{_rate(ref['loss_tokens'], ref['train_compute_s'])} | |",
        f"| first step's loss | {_first(ours['losses'])} | {_first(ref['losses'])} | |",
        f"| last step's loss | {_last(ours['losses'])} | {_last(ref['losses'])} | |",
    ]
    notes = [
        "lift_jax overlaps generation with training (its generation and training rows share the wall clock and "
        "the cores); the reference generates every pair first, then trains (as the LIFT authors' code does).",
        "both sides load the model once for both phases (lift_jax's embedded generator samples from the "
        "trainer's base weights with the adapter off); both sides' first calls compile (XLA) or warm up.",
        "lift_jax pads rows to length buckets and writes orbax checkpoints beside the PEFT adapter; the reference "
        "pads to the longest row and only saves the adapter.",
    ]
    if torch_pairs == "lift_jax":
        notes.append(f"the reference trains on lift_jax's {pairs_a} pairs (identical examples and steps, so "
                     f"the first steps' losses agree); its own generation gave {pairs_b} pairs "
                     "and is timed in full.")
        first_a, first_b = ours["losses"][:1], ref["losses"][:1]
        if first_a and first_b and abs(first_a[0] - first_b[0]) > FIRST_LOSS_TOLERANCE * abs(first_b[0]):
            notes.append(f"WARNING: the first step's losses differ ({first_a[0]:.5f} vs {first_b[0]:.5f}): the "
                         "sides do not train on the same batch.")
    if max(pairs_a, pairs_b) and abs(pairs_a - pairs_b) > PAIR_COUNT_TOLERANCE * max(pairs_a, pairs_b):
        notes.append(f"WARNING: the pair counts differ by more than {PAIR_COUNT_TOLERANCE:.0%}: more than "
                     "sampling noise, check the generators.")
    if ours["steps"] != ref["steps"]:
        notes.append(f"WARNING: the sides took different numbers of optimizer steps ({ours['steps']} vs "
                     f"{ref['steps']}).")
    if tokens_a is None:
        notes.append("lift_jax's run does not record how many tokens its sampler generated: compare pairs/s.")
    return lines, notes


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_") or "document"


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """Options and the `--config.<field>=value` overrides passed through to lift_jax's side."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False)
    parser.add_argument("--document", type=Path, default=SAMPLE_DOCUMENT, help="text file to absorb")
    parser.add_argument("--config", default="smollm2_135m", help="lift_jax config (name in configs/ or path)")
    parser.add_argument("--max-sentences", type=int, help="absorb only the document's first N sentences")
    parser.add_argument("--epochs", type=int, help="training epochs (default: the config's)")
    parser.add_argument("--torch-pairs", choices=["lift_jax", "own"], default="lift_jax",
                        help="pairs the PyTorch side trains on: lift_jax's run's (same steps) or its own")
    parser.add_argument("--warm-compile-cache", action="store_true",
                        help="let lift_jax use the user's persistent XLA cache (default: a fresh one, as a new user)")
    parser.add_argument("--work-dir", type=Path, help="keep both runs here (default: a temporary directory)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--torch-worker", type=Path, help=argparse.SUPPRESS)
    opts, rest = parser.parse_known_args(argv)
    bad = [r for r in rest if not (r.startswith("--config.") and "=" in r)]
    if bad:
        parser.error(f"unknown argument(s) {' '.join(bad)}; lift_jax overrides are written --config.<field>=value")
    if opts.max_sentences is not None and opts.max_sentences < 1:
        parser.error("--max-sentences must be at least 1")
    if opts.epochs is not None and opts.epochs < 1:
        parser.error("--epochs must be at least 1")
    overrides = rest + ([f"--config.train.epochs={opts.epochs}"] if opts.epochs else [])
    return opts, overrides


def resolved_config(opts: argparse.Namespace, overrides: list[str]) -> dict[str, Any]:
    """The lift_jax run config the CLI will use (config file + overrides), as a plain dict."""
    from lift_jax.cli import UsageError, parse_config_args

    try:
        return parse_config_args(["--config", opts.config, *overrides], opts.config, "").to_dict()
    except (UsageError, FileNotFoundError, ValueError) as e:
        raise SystemExit(f"error: {e}") from None


def compare(opts: argparse.Namespace, overrides: list[str], work: Path) -> dict[str, Any]:
    """Run both sides on the (possibly cut) document; the saved record."""
    from lift_jax.documents import DocumentError, read_document

    try:
        text = read_document(opts.document)
    except DocumentError as e:
        raise SystemExit(f"error: {e}; pass --document PATH") from None
    cfg = resolved_config(opts, overrides)
    g = cfg["generator"]
    if opts.max_sentences:
        text = cut_to_sentences(text, opts.max_sentences, g["min_sentence_chars"], g["max_sentence_chars"])
    document = work / "document.txt"
    document.write_text(text)
    jax_env = {} if opts.warm_compile_cache else {"LIFT_JAX_COMPILATION_CACHE": str(work / "xla_cache")}
    machine_before = machine_info()
    ours = run_lift_jax(opts, overrides, document, work / "lift_jax", _child_env(jax_env))
    ref = run_torch(opts, cfg, text, work, _child_env({}))
    lines, notes = table(ours, ref, opts.torch_pairs)
    ratio = phases(ours)["total"] / phases(ref)["total"]
    return {"lines": lines, "notes": notes, "ratio": ratio, "record": {
        "document": str(opts.document), "document_chars": len(text), "config": cfg, "overrides": overrides,
        "machine_before": machine_before, "lift_jax": ours, "torch": ref,
        "phases": {"lift_jax": phases(ours), "torch": phases(ref)},
        "table": lines, "notes": notes, "absorb_ratio_vs_torch": round(ratio, 4),
    }}


def main(argv: Sequence[str] | None = None) -> None:
    """Run the comparison, print the table and notes, save the JSON; last line `absorb_ratio_vs_torch=<x>`."""
    opts, overrides = parse_args(sys.argv[1:] if argv is None else argv)
    if opts.torch_worker:
        torch_worker(opts.torch_worker)
        return
    if opts.work_dir:
        opts.work_dir.mkdir(parents=True, exist_ok=True)
        result = compare(opts, overrides, opts.work_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="absorb_vs_torch.") as tmp:
            result = compare(opts, overrides, Path(tmp))
    name = "absorb_vs_torch_" + _slug(opts.document.stem)
    if opts.max_sentences:
        name += f"_first{opts.max_sentences}"
    path = save_results(name, result["record"], opts.out)
    print("\n".join(result["lines"]))
    print("\n".join(f"- {note}" for note in result["notes"]))
    print(f"saved {path}")
    print(f"absorb_ratio_vs_torch={result['ratio']:.3f}")


if __name__ == "__main__":
    main()
