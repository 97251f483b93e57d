"""What the `lift+cd` teacher answered in a NIAH grid run, read from its committed caches (shared by
needle_questions.py and cut_needles.py): the grid's documents split as the run split them, the questions of its
QA cache, and lookups of a question asked with a window across the run's teacher cache and its starting ones.
The run settings are `eval_niah`'s (scripts/run_results.sh changes none of the fields that key the caches)."""

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

from lift_jax.config import load_config_file
from lift_jax.distill.cache import TeacherCache, teacher_identity, teacher_key
from lift_jax.distill.questions import fallback_question
from lift_jax.distill.teacher import document_windows
from lift_jax.eval.benchmark import Document
from lift_jax.eval.niah_benchmark import token_counter
from lift_jax.eval.niah_data import build_documents, grid, load_essays
from lift_jax.eval.paths import niah_essays_dir
from lift_jax.models.loader import load_tokenizer, resolve_source
from lift_jax.synth.split import Sentence, split_sentences


class GridAnswers:
    """The teacher answers of the run in `root`, whose teacher cache started from those of `starting` runs, made
    with `budget`-token windows (cut to whole sentences with `whole_sentences`) and the `fallback` question form."""

    def __init__(self, root: Path, starting: Sequence[str], budget: int, fallback: str, whole_sentences: bool):
        self.budget, self.fallback_form, self.whole_sentences = budget, fallback, whole_sentences
        self.cfg = load_config_file("eval_niah")
        self.tokenizer = load_tokenizer(resolve_source(str(self.cfg.model_path)))
        self.identity = teacher_identity(self.cfg)
        self.caches = [TeacherCache(Path(d) / "teacher_cache") for d in [root, *starting]]
        records = map(json.loads, (root / "qa_cache" / "qa_cache.jsonl").read_text().splitlines())
        self.questions = sorted({r["question"] for r in records if "question" in r})

    @classmethod
    def from_argv(cls, argv: Sequence[str]) -> "GridAnswers":
        """From the scripts' command line: [--whole-sentences] ROOT BUDGET FALLBACK [STARTING_ROOT ...]."""
        args = [a for a in argv if a != "--whole-sentences"]
        return cls(Path(args[0]), args[3:], int(args[1]), args[2], "--whole-sentences" in argv)

    def windows(self, doc: Document, sentences: Sequence[Sentence]) -> list[str]:
        """Each sentence's teacher window, as the run cut them."""
        return document_windows(self.tokenizer, doc.text, sentences, self.budget, self.whole_sentences)

    def fallback(self, sentence: Sentence) -> str:
        """The sentence's fallback question, in the run's form."""
        return fallback_question(sentence.text, self.fallback_form)

    def documents(self) -> Iterator[tuple[Document, list[Sentence]]]:
        """The 15 cells' documents (1000-3000 tokens x 5 depths, one sample) with their sentences."""
        g = self.cfg.generator
        cells = grid([1000, 2000, 3000], [0, 0.25, 0.5, 0.75, 1], 1)
        for doc in build_documents(load_essays(niah_essays_dir()), cells, token_counter(str(self.cfg.model_path))):
            yield doc, split_sentences(doc.text, g.min_sentence_chars, g.max_sentence_chars)

    def answer(self, question: str, window: str) -> str | None:
        """The teacher's answer text (one line) to `question` asked with `window`, None if it was never asked."""
        key = teacher_key(question=question, window=window, **self.identity)
        answer = next((a for c in self.caches if (a := c.lookup(key)) is not None), None)
        if answer is None:
            return None
        return self.tokenizer.decode(list(answer.answer_ids), skip_special_tokens=True).replace("\n", " ")
