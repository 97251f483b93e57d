"""The teacher: the frozen base model (the trainer's base arrays with a zero adapter: no second copy of the
weights) answers questions with a window of the document in its prompt, greedily, keeping the top-K
log-probabilities of every answer position.

Per window, the prompt opening the questions share is computed once for the greedy answers
(`sampling.generate_ids(prefix=...)`) and once more for one teacher-forced scoring pass over
question + answer on that cache, which yields the top-K of every answer position.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from lift_jax.distill.cache import TeacherAnswer
from lift_jax.models.transformer import Transformer
from lift_jax.prompting import PromptFormat, encode_prompt
from lift_jax.sampling import SamplingParams, bucket, generate_ids, prompt_bucket
from lift_jax.synth.split import Sentence

PREFIX_BLOCK = 128  # shared openings are cut to whole blocks: few distinct shapes to compile


def document_windows(tokenizer: Any, document: str, sentences: Sequence[Sentence], budget: int) -> list[str]:
    """Per sentence, the document text around it: the sentence plus preceding and following text, about
    `budget` tokens in all (split evenly; a side the document runs out of gives its share to the other)."""
    enc = tokenizer(document, add_special_tokens=False, return_offsets_mapping=True)
    offsets = [tuple(o) for o in enc["offset_mapping"]]
    n_tokens = len(offsets)
    windows = []
    for s in sentences:
        lo = next((i for i, (_, b) in enumerate(offsets) if b > s.start), n_tokens)
        hi = next((i for i in range(lo, n_tokens) if offsets[i][0] >= s.end), n_tokens)
        if hi - lo >= budget:  # a sentence longer than the window: its first `budget` tokens
            windows.append(document[s.start : offsets[lo + budget - 1][1]].strip())
            continue
        rest = budget - (hi - lo)
        after = min(rest - min(rest // 2, lo), n_tokens - hi)
        before = min(rest - after, lo)
        start = min(offsets[lo - before][0], s.start) if lo - before < n_tokens else s.start
        end = max(offsets[hi + after - 1][1], s.end) if hi + after > 0 else s.end
        windows.append(document[start:end].strip())
    return windows


def frozen_base(graphdef: nnx.GraphDef, lora: nnx.State, rngs: nnx.State, base: nnx.State) -> Transformer:
    """The model with the adapter off, over the given base arrays (shared, not copied): a zero LoRA state."""
    zero = jax.tree.map(jnp.zeros_like, lora)
    own_rngs = jax.tree.map(_copy, rngs)  # the trainer donates its rngs (a few keys and counters)
    return nnx.merge(graphdef, zero, own_rngs, base)


def _copy(x: jax.Array) -> jax.Array:
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        return jax.random.wrap_key_data(jnp.array(jax.random.key_data(x), copy=True),
                                        impl=jax.random.key_impl(x))
    return jnp.array(x, copy=True)


@functools.partial(jax.jit, static_argnames=("graphdef", "slots", "k"))
def _score(
    graphdef: nnx.GraphDef, state: nnx.State, prefix: jax.Array, tokens: jax.Array, mask: jax.Array, *,
    slots: int, k: int,
) -> tuple[jax.Array, jax.Array]:
    """Top-K log-probs and ids [B, T, K] after every token of left-padded `tokens` that follow `prefix`."""
    module: Transformer = nnx.merge(graphdef, state)
    batch = tokens.shape[0]
    shared = prefix.shape[0]
    if shared:
        cache = module.init_cache(1, slots)
        _, cache = module.forward_with_cache(
            prefix[None], jnp.arange(shared, dtype=jnp.int32)[None], jnp.ones((1, shared), bool), cache,
            jnp.int32(0),
        )
        cache = jax.tree.map(lambda x: jnp.repeat(x, batch, axis=0), cache)
    else:
        cache = module.init_cache(batch, slots)
    positions = (shared + jnp.maximum(jnp.cumsum(mask, axis=-1) - 1, 0)).astype(jnp.int32)
    logits, _ = module.forward_with_cache(tokens, positions, mask, cache, jnp.int32(shared))
    values, ids = jax.lax.top_k(jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1), k)
    return values, ids


class Teacher:
    """Answers questions about a window of the document with `module` (the frozen base model)."""

    def __init__(self, module: Transformer, tokenizer: Any, fmt: PromptFormat, stop_ids: Sequence[int],
                 pad_id: int, top_k: int, max_answer_tokens: int, template: str, batch: int = 1):
        self.module, self.tokenizer, self.fmt, self.template = module, tokenizer, fmt, template
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
            chunk = list(questions[start : start + self.batch])
            padded = chunk + [chunk[0]] * (self.batch - len(chunk))
            out.extend(self._answer(window, padded)[: len(chunk)])
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
        answers = generate_ids(self.module, rests, params, self.stop_ids, self.pad_id, prefix=prefix)
        return self._scored(prefix, rests, answers)

    def _scored(self, prefix: list[int], rests: list[list[int]], answers: list[list[int]]) -> list[TeacherAnswer]:
        rows = [r + a for r, a in zip(rests, answers, strict=True)]
        width = prompt_bucket(max(len(r) for r in rows))
        batch = bucket(len(rows), minimum=1)
        tokens = np.full((batch, width), self.pad_id, np.int32)
        mask = np.zeros((batch, width), bool)
        for i, row in enumerate(rows):
            tokens[i, width - len(row):] = row
            mask[i, width - len(row):] = True
        mask[len(rows):, -1] = True
        graphdef, state = nnx.split(self.module)
        values, ids = _score(graphdef, state, jnp.asarray(np.asarray(prefix, np.int32).reshape(-1)),
                             jnp.asarray(tokens), jnp.asarray(mask), slots=len(prefix) + width, k=self.top_k)
        values, ids = np.asarray(values), np.asarray(ids)
        out = []
        for i, answer in enumerate(answers):
            n = len(answer)
            # position width-1-n predicts answer[0]; the last one predicts what follows the answer
            top_v, top_i = values[i, width - 1 - n:], ids[i, width - 1 - n:]
            stopped = n < self.max_answer_tokens and int(top_i[-1, 0]) in self.stop_ids
            full = (*answer, int(top_i[-1, 0])) if stopped else tuple(answer)
            out.append(TeacherAnswer(full, top_i[: len(full)].astype(np.int32),
                                     top_v[: len(full)].astype(np.float32)).canonical())
        return out
