"""The teacher: the frozen base model (the trainer's base arrays with a zero adapter: no second copy of the
weights) answers questions with a window of the document in its prompt, greedily, keeping the top-K
log-probabilities of every answer position.

Per window, the prompt opening the questions share is computed once
(`sampling.generate_with_logprobs(prefix=...)`), and the greedy decoding keeps the top-K log-probabilities of
every step: the teacher's distribution at every answer position and at the one that chose the stop token.

The teacher may be barred from words that only make sense with the document in view (`cd.suppress_words`,
e.g. "document"): a small model reading one tends to answer "The document says that ...", and a student
trained on that learns to cite a document it never sees instead of the fact.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from lift_jax.distill.cache import TeacherAnswer
from lift_jax.models.transformer import Transformer
from lift_jax.prompting import PromptFormat, encode_prompt
from lift_jax.sampling import Decoded, SamplingParams, ShapeFloor, generate_with_logprobs
from lift_jax.synth.split import Sentence

PREFIX_BLOCK = 128  # shared openings are cut to whole blocks: few distinct shapes to compile


def document_windows(tokenizer: Any, document: str, sentences: Sequence[Sentence], budget: int,
                     whole_sentences: bool = False) -> list[str]:
    """Per sentence, the document text around it: the sentence plus preceding and following text, about
    `budget` tokens in all (split evenly; a side the document runs out of gives its share to the other).

    With `whole_sentences` each side is cut back to the nearest boundary of `sentences` inside it, so the window
    neither opens nor ends mid-sentence: a teacher shown a cut-off sentence ("... and sit in Dol") finishes it
    with its own guess, and the questions of every sentence whose window ends there are answered with it."""
    enc = tokenizer(document, add_special_tokens=False, return_offsets_mapping=True)
    offsets = [tuple(o) for o in enc["offset_mapping"]]
    n_tokens = len(offsets)
    starts, ends = [a for a, _ in offsets], [b for _, b in offsets]  # both non-decreasing: binary search
    sentence_starts, sentence_ends = [s.start for s in sentences], [s.end for s in sentences]
    windows = []
    for s in sentences:
        lo = bisect.bisect_right(ends, s.start)  # the first token ending after the sentence starts
        hi = bisect.bisect_left(starts, s.end, lo)  # the first one from there starting at or after its end
        if hi - lo >= budget:  # a sentence longer than the window: its first `budget` tokens
            windows.append(document[s.start : offsets[lo + budget - 1][1]].strip())
            continue
        rest = budget - (hi - lo)
        after = min(rest - min(rest // 2, lo), n_tokens - hi)
        before = min(rest - after, lo)
        start = min(offsets[lo - before][0], s.start) if lo - before < n_tokens else s.start
        end = max(offsets[hi + after - 1][1], s.end) if hi + after > 0 else s.end
        if whole_sentences:  # the first sentence starting inside, the last one ending inside (s itself at worst)
            start = min(sentence_starts[bisect.bisect_left(sentence_starts, start)], s.start)
            end = max(sentence_ends[bisect.bisect_right(sentence_ends, end) - 1], s.end)
        windows.append(document[start:end].strip())
    return windows


def word_token_ids(tokenizer: Any, words: Sequence[str]) -> tuple[int, ...]:
    """The ids of the single tokens that spell one of `words` as a word: lower-case and capitalised, with and
    without a leading space. A spelling the tokenizer splits into several tokens is left alone (banning its
    first piece would ban other words too)."""
    ids = set()
    for word in words:
        for spelling in {word, word.capitalize()}:
            for text in (spelling, " " + spelling):
                pieces = tokenizer(text, add_special_tokens=False)["input_ids"]
                if len(pieces) == 1 and tokenizer.decode(pieces).strip() == spelling:
                    ids.add(pieces[0])
    return tuple(sorted(ids))


class Teacher:
    """Answers questions about a window of the document with `module` (the frozen base model)."""

    def __init__(self, module: Transformer, tokenizer: Any, fmt: PromptFormat, stop_ids: Sequence[int],
                 pad_id: int, top_k: int, max_answer_tokens: int, template: str, batch: int = 1,
                 suppress_ids: Sequence[int] = ()):
        self.module, self.tokenizer, self.fmt, self.template = module, tokenizer, fmt, template
        self.suppress_ids = tuple(suppress_ids)  # never written: words that point at a document the student lacks
        self.stop_ids, self.pad_id = tuple(stop_ids), pad_id
        self.top_k, self.max_answer_tokens = top_k, max_answer_tokens
        self.batch = batch  # questions per call are padded to this many rows: one compiled shape
        self.prefix_limit: int | None = None  # see `fix_prefix`

    def fix_prefix(self, windows: Sequence[str]) -> None:
        """Share the same number of prompt tokens for every one of `windows` (whole blocks within the shortest
        prompt), so a document's windows compile one prefix shape instead of one per window length."""
        shortest = min(len(self.prompt_ids(w, "")) for w in windows)
        self.prefix_limit = shortest // PREFIX_BLOCK * PREFIX_BLOCK

    def prompt_ids(self, window: str, question: str) -> list[int]:
        """Exactly the token ids the teacher reads before answering `question`."""
        return encode_prompt(self.tokenizer, self.template.format(document=window, question=question), self.fmt)

    def answer(self, window: str, questions: Sequence[str]) -> list[TeacherAnswer]:
        """Greedy answers with their top-K log-probs for `questions`, all reading `window`."""
        out: list[TeacherAnswer] = []
        for start in range(0, len(questions), self.batch):
            out.extend(self._answer(window, list(questions[start : start + self.batch])))
        return out

    def _answer(self, window: str, questions: list[str]) -> list[TeacherAnswer]:
        prompts = [self.prompt_ids(window, q) for q in questions]
        common = len(os.path.commonprefix(prompts)) if len(set(map(tuple, prompts))) > 1 else len(prompts[0]) - 1
        n = min(common, min(len(p) for p in prompts) - 1)
        if self.prefix_limit is not None:
            n = min(n, self.prefix_limit)
        n = n // PREFIX_BLOCK * PREFIX_BLOCK
        prefix, rests = prompts[0][:n], [p[n:] for p in prompts]
        params = SamplingParams(max_new_tokens=self.max_answer_tokens)
        decoded = generate_with_logprobs(self.module, rests, params, self.stop_ids, self.pad_id, prefix=prefix,
                                         logprob_k=self.top_k, suppress_ids=self.suppress_ids,
                                         floor=ShapeFloor(rows=self.batch, dense=True))
        return [self._teacher_answer(d) for d in decoded]

    def _teacher_answer(self, decoded: Decoded) -> TeacherAnswer:
        """The answer with its stop token (when the teacher ended it) and the top-K of every position."""
        full = (*decoded.ids, decoded.stop) if decoded.stop is not None else tuple(decoded.ids)
        return TeacherAnswer(full, decoded.top_ids[: len(full)].astype(np.int32),
                             decoded.top_logprobs[: len(full)].astype(np.float32)).canonical()
