"""What an absorb run's config means for its parts: prompt format, LoRA, optimizer, step count, rows."""

from __future__ import annotations

from typing import Any

import jax
import ml_collections

from lift_jax.cli import UsageError
from lift_jax.config import GENERATING_METHODS
from lift_jax.documents import raw_chunks
from lift_jax.lora import LoRAConfig
from lift_jax.prompting import PromptFormat
from lift_jax.synth.split import split_sentences
from lift_jax.train import OptimizerConfig


def prompt_format(cfg: ml_collections.ConfigDict) -> PromptFormat:
    """The prompt format shared by training and asking."""
    return PromptFormat(use_chat_template=cfg.use_chat_template, system=cfg.system_prompt or None)


def lora_config(cfg: ml_collections.ConfigDict) -> LoRAConfig:
    """LoRAConfig from the `lora` config group."""
    targets = cfg.lora.targets
    targets = targets if isinstance(targets, str) else tuple(targets)
    return LoRAConfig(rank=cfg.lora.rank, alpha=cfg.lora.alpha, dropout=cfg.lora.dropout, targets=targets)


def optimizer_config(cfg: ml_collections.ConfigDict, total_steps: int) -> OptimizerConfig:
    """OptimizerConfig from the `train` config group."""
    t = cfg.train
    return OptimizerConfig(
        lr=t.lr,
        schedule=t.schedule,
        warmup_steps=t.warmup_steps,
        total_steps=total_steps,
        weight_decay=t.weight_decay,
        clip_norm=t.clip_norm,
    )


def local_rows(batch_size: int, process_count: int) -> int:
    """This process's rows of each global micro-batch of `batch_size` rows."""
    if batch_size % process_count:
        raise UsageError(
            f"train.batch_size={batch_size} rows do not split over {process_count} processes; "
            f"use a multiple of {process_count}"
        )
    return batch_size // process_count


def estimate_total_steps(cfg: ml_collections.ConfigDict, document: str, tokenizer: Any) -> int:
    """The optimizer steps of the run, known before training starts (the linear and cosine schedules decay
    over them).

    Items: for `lift` (and `lift+raw`) every sentence of the document as the generator splits it times
    `generator.qa_per_sentence` pairs (`lift+cd`: `cd.max_questions_per_sentence` + `cd.cloze_per_sentence`
    questions), an upper bound (a sentence may yield fewer, or none), so training never runs past the schedule's
    end; for `raw` (and `lift+raw`) the document's `raw_chunk_tokens` chunks, exact. Epoch 1: each process streams
    its own share (sentence / chunk i goes to process i % N), so all take ceil(largest share / (its rows x
    grad_accum)) steps; later epochs: ceil(items / (batch_size x grad_accum)) each. With one process this is the
    step count of a run whose sentences all yield m items.
    """
    count = jax.process_count()
    sentences = chunks = m = 0
    if cfg.method in GENERATING_METHODS:
        g = cfg.generator
        sentences = len(split_sentences(document, g.min_sentence_chars, g.max_sentence_chars))
        cd = cfg.cd
        m = cd.max_questions_per_sentence + cd.cloze_per_sentence if cfg.method == "lift+cd" else g.qa_per_sentence
    if cfg.method in ("raw", "lift+raw"):
        chunks = len(raw_chunks(tokenizer, document, cfg.raw_chunk_tokens))
    share = -(-sentences // count) * m + -(-chunks // count)
    first = -(-share // (local_rows(cfg.train.batch_size, count) * cfg.train.grad_accum))
    later = -(-(sentences * m + chunks) // (cfg.train.batch_size * cfg.train.grad_accum))
    return first + (cfg.train.epochs - 1) * later
