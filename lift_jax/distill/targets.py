"""Teacher outputs -> student training examples with soft targets (the loss is defined in /work/INTERFACE.md).

At each answer position the weights are the teacher's top-K probabilities renormalised over the K (the tail
mass beyond the K is dropped, not kept as a bucket), and the offset is `sum_k p_k log p_k`, so the position's
loss is KL(p || q) over the K; `ce_weight` adds cross-entropy on the teacher's greedy token as one extra slot.
The student reads only the chat-formatted question.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lift_jax.batching import Example
from lift_jax.distill.cache import TeacherAnswer
from lift_jax.prompting import PromptFormat, encode_prompt


def renormalised(top_logprobs: np.ndarray) -> np.ndarray:
    """Probabilities [n, K] of the top-K log-probs renormalised over the K (float64)."""
    lp = top_logprobs.astype(np.float64)
    lp = lp - lp.max(axis=-1, keepdims=True)
    p = np.exp(lp)
    return p / p.sum(axis=-1, keepdims=True)


def distill_example(
    tokenizer: Any, question: str, teacher: TeacherAnswer, fmt: PromptFormat, ce_weight: float = 0.0
) -> Example:
    """The student's example for `question`: the question prompt, then the teacher's answer tokens carrying
    the teacher's top-K distribution (plus `ce_weight` on the greedy token) as soft targets."""
    prompt = encode_prompt(tokenizer, question, fmt)
    answer = list(teacher.answer_ids)
    n, k = teacher.top_ids.shape
    p = renormalised(teacher.top_logprobs)
    ids = prompt + answer
    extra = 1 if ce_weight > 0 else 0
    soft_ids = np.zeros((len(ids), k + extra), np.int32)
    soft_weights = np.zeros((len(ids), k + extra), np.float32)
    soft_offset = np.zeros(len(ids), np.float32)
    rows = slice(len(prompt), len(ids))
    soft_ids[rows, :k] = teacher.top_ids
    soft_weights[rows, :k] = p
    soft_offset[rows] = np.sum(p * np.log(np.maximum(p, 1e-300)), axis=-1)
    if extra:
        soft_ids[rows, k] = answer
        soft_weights[rows, k] = ce_weight
    return Example(ids, [0] * len(prompt) + [1] * n, soft_ids, soft_weights, soft_offset)
