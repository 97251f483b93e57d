"""The teacher stage of `lift+cd`: between the question generator and the trainer.

For each sentence the generator finishes (cached sentences first, in cache order), its questions are
filtered (`questions.select_questions`, a fallback question when none survives), fill-in-the-blank questions are
added when `cd.cloze_per_sentence` asks for them, the teacher answers them reading the sentence's window (from
the teacher cache when it holds them), answers that add nothing to their question are dropped with
`cd.drop_echo`, and a seeded share of the rest is held out.
Training items carry their teacher targets; held-out questions never reach the buffer.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import ml_collections
from tqdm.auto import tqdm

from lift_jax.data import TrainItem
from lift_jax.distill.cache import TeacherAnswer, TeacherCache, teacher_identity, teacher_key
from lift_jax.distill.questions import adds_nothing, cloze_questions, fallback_question, select_questions
from lift_jax.distill.teacher import Teacher, document_windows
from lift_jax.synth.split import preceding_context, split_sentences

log = logging.getLogger(__name__)


def is_held_out(question: str, seed: int, share: float) -> bool:
    """Whether `question` is in the run's held-out share: a seeded hash, so it does not depend on order."""
    digest = hashlib.sha256(f"{seed}\0{question}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


@dataclasses.dataclass
class HeldOut:
    """A held-out question and the teacher's answer to it (text)."""

    question: str
    teacher_answer: str


@dataclasses.dataclass
class DistillStats:
    """Counts of one run's teacher stage."""

    sentences: int = 0
    fallback_questions: int = 0
    cloze_questions: int = 0
    questions: int = 0
    held_out: int = 0
    teacher_computed: int = 0
    teacher_cached: int = 0
    empty_answers: int = 0
    echo_answers: int = 0


class Distiller:
    """Turns one sentence's generated pairs into training items with teacher targets (callable per sentence)."""

    def __init__(self, cfg: ml_collections.ConfigDict, document: str, teacher: Teacher, cache: TeacherCache,
                 progress: bool = False):
        g, self.cd, self.seed = cfg.generator, cfg.cd, cfg.seed
        self.teacher, self.cache = teacher, cache
        sentences = split_sentences(document, g.min_sentence_chars, g.max_sentence_chars)
        self.sentences = [s.text for s in sentences]
        self.contexts = [preceding_context(document, s.start, g.max_context_chars) for s in sentences]
        room = teacher.module.spec.max_position_embeddings - self.cd.max_answer_tokens - 128  # + template, question
        self.windows = document_windows(teacher.tokenizer, document, sentences, min(self.cd.context_tokens, room),
                                        self.cd.whole_sentences)
        if self.windows:
            teacher.fix_prefix(self.windows)
        made_by = {"cd.teacher_prompt": teacher.template, "cd.top_k": teacher.top_k,
                   "cd.max_answer_tokens": teacher.max_answer_tokens}
        configured = {"cd.teacher_prompt": self.cd.teacher_prompt, "cd.top_k": self.cd.top_k,
                      "cd.max_answer_tokens": self.cd.max_answer_tokens}
        if made_by != configured:  # the cache would file its answers under settings that did not make them
            wrong = [k for k in made_by if made_by[k] != configured[k]]
            raise ValueError(f"the teacher was built with other {', '.join(wrong)} than the config holds; "
                             "build it from the same config (lift_jax.distill.run.teacher_for)")
        self.identity = teacher_identity(cfg, teacher.suppress_ids)
        self.stats = DistillStats()
        self.held_out: list[HeldOut] = []
        self.bar = tqdm(total=len(sentences), desc="teacher", unit="sentence", disable=not progress)

    def questions(self, index: int, generated: Iterable[str]) -> list[str]:
        """The questions of sentence `index`: the filtered generated ones (the fallback one if none is left, or
        always with `cd.fallback_always`), then its fill-in-the-blank ones not already among them."""
        kept = self._generated_questions(index, generated)
        cloze = [q for q in cloze_questions(self.sentences[index], self.cd.cloze_per_sentence) if q not in kept]
        self.stats.cloze_questions += len(cloze)
        return kept + cloze

    def _generated_questions(self, index: int, generated: Iterable[str]) -> list[str]:
        kept = select_questions(generated, self.sentences[index], self.contexts[index],
                                self.cd.max_questions_per_sentence, self.cd.duplicate_overlap)
        if kept and not self.cd.fallback_always:
            return kept
        fallback = fallback_question(self.sentences[index], self.cd.fallback)
        if fallback is None or fallback in kept:
            return kept
        self.stats.fallback_questions += 1
        return [*kept[: self.cd.max_questions_per_sentence - 1], fallback]

    def answers(self, window: str, questions: list[str]) -> list[TeacherAnswer]:
        """Teacher outputs for `questions` reading `window`: cached ones read, the rest computed and cached."""
        keys = [teacher_key(question=q, window=window, **self.identity) for q in questions]
        todo = [i for i, k in enumerate(keys) if self.cache.lookup(k) is None]
        if todo:
            fresh = self.teacher.answer(window, [questions[i] for i in todo])
            self.cache.append({keys[i]: a for i, a in zip(todo, fresh, strict=True)})
        self.stats.teacher_computed += len(todo)
        self.stats.teacher_cached += len(questions) - len(todo)
        return [self.cache.lookup(k) for k in keys]

    def __call__(self, index: int, pairs: list[tuple[str, str]]) -> list[TrainItem]:
        questions = self.questions(index, [q for q, _ in pairs])
        self.stats.sentences += 1
        self.bar.update(1)
        if not questions:
            return []
        answers = self.answers(self.windows[index], questions)
        items = []
        decode = self.teacher.tokenizer.decode
        for j, (question, answer) in enumerate(zip(questions, answers, strict=True)):
            text = decode(list(answer.answer_ids), skip_special_tokens=True).strip()
            if not text:
                self.stats.empty_answers += 1
                continue
            if self.cd.drop_echo and adds_nothing(question, text):
                self.stats.echo_answers += 1
                continue
            self.stats.questions += 1
            if is_held_out(question, self.seed, self.cd.holdout):
                self.stats.held_out += 1
                self.held_out.append(HeldOut(question, text))
                continue
            items.append(TrainItem(answer=text, question=question, order=(index, j), teacher=answer))
        return items

    def close(self) -> None:
        """Release the cache writer and the progress bar."""
        self.cache.close()
        self.bar.close()


def make_distiller(cfg: ml_collections.ConfigDict, document: str, teacher: Teacher, cache_dir: Path,
                   shard_index: int = 0, shard_count: int = 1, progress: bool = False) -> Distiller:
    """A Distiller writing this process's teacher cache shard in `cache_dir`."""
    cache = TeacherCache(cache_dir, shard_index, shard_count).open_writer()
    return Distiller(cfg, document, teacher, cache, progress)


def summary(distiller: Distiller) -> dict[str, Any]:
    """The stage's counts as a plain dict."""
    return dataclasses.asdict(distiller.stats)
