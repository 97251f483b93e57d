"""absorb's `lift+cd` pieces: start the generator + teacher stage, and measure absorption on held-out questions."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import jax
import ml_collections

from lift_jax.answering import Answerer
from lift_jax.config import suppressed_words
from lift_jax.data import ItemBuffer
from lift_jax.distill.stage import Distiller, make_distiller, summary
from lift_jax.distill.teacher import Teacher, word_token_ids
from lift_jax.models import LoadedModel
from lift_jax.producer import QAProducer, start_qa_producer
from lift_jax.prompting import PromptFormat
from lift_jax.sampling import SamplingParams
from lift_jax.synth.generators import LocalCompleter
from lift_jax.train import LoRATrainer

log = logging.getLogger("lift_jax.absorb")


def teacher_for(loaded: LoadedModel, trainer: LoRATrainer, cfg: ml_collections.ConfigDict, fmt: PromptFormat,
                stops: tuple[int, ...], pad_id: int) -> Teacher:
    """The frozen base model over the trainer's own base arrays (adapter off), as the run's teacher."""
    module = trainer.base_model
    suppress = []
    for word in suppressed_words(cfg.cd):
        ids = word_token_ids(loaded.tokenizer, [word])
        if not ids:
            log.warning("cd.suppress_words: no spelling of %r is one token of this tokenizer; not suppressed", word)
        suppress.extend(ids)
    return Teacher(module, loaded.tokenizer, fmt, stops, pad_id, cfg.cd.top_k, cfg.cd.max_answer_tokens,
                   cfg.cd.teacher_prompt, batch=cfg.cd.max_questions_per_sentence + cfg.cd.cloze_per_sentence,
                   suppress_ids=suppress)


def start_cd_producer(cfg: ml_collections.ConfigDict, document: str, teacher: Teacher, teacher_cache: Path,
                      qa_cache: Path, buffer: ItemBuffer, progress: bool = True,
                      completer: LocalCompleter | None = None) -> tuple[QAProducer, Distiller]:
    """Start generation -> teacher -> buffer for this process's share of `document` (a local generator on
    `completer` if given)."""
    distiller = make_distiller(cfg, document, teacher, teacher_cache, jax.process_index(), jax.process_count(),
                               progress=progress)
    producer = start_qa_producer(cfg, document, qa_cache, buffer, progress=progress, items_for=distiller,
                                 completer=completer)
    return producer, distiller


def holdout_report(loaded: LoadedModel, fmt: PromptFormat, distiller: Distiller,
                   cfg: ml_collections.ConfigDict) -> dict[str, Any]:
    """The stage's counts plus the LIFTed model's token F1 against the teacher on the held-out questions,
    answered without the document (the adapter in `loaded.module` must be the trained one)."""
    from lift_jax.eval.metrics import f1_score

    report = summary(distiller)
    held = distiller.held_out
    if held:
        params = SamplingParams(max_new_tokens=cfg.cd.max_answer_tokens)
        answers = Answerer(loaded, fmt, params).answer([h.question for h in held])
        scores = [f1_score(a, [h.teacher_answer]) for a, h in zip(answers, held, strict=True)]
        report["holdout_f1"] = round(100 * sum(scores) / len(scores), 2)  # percent, like the eval tables
        report["held_out_answers"] = [
            {"question": h.question, "teacher": h.teacher_answer, "lifted": a, "f1": round(100 * f, 2)}
            for h, a, f in zip(held, answers, scores, strict=True)
        ]
        log.info("held-out questions: %d, token F1 of the LIFTed model (no document) against the teacher "
                 "(document in context): %.2f", len(held), report["holdout_f1"])
        print(f"absorption check: {len(held)} held-out questions, token F1 vs the teacher {report['holdout_f1']:.2f}")
    return report
