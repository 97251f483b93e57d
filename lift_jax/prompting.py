"""One prompt format for training and for asking: the model's chat template, or `Question: ... Answer:`.

`encode_example` returns token ids and a loss mask that covers the answer and its end-of-turn token only;
`encode_prompt` returns exactly the ids the model saw before the answer during training.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jinja2

from lift_jax.models.families import chat_template_kwargs

BASE_TEMPLATE = "Question: {question}\nAnswer:"


@dataclasses.dataclass(frozen=True)
class PromptFormat:
    """How questions are presented: chat template (with optional system turn) or the plain base format."""

    use_chat_template: bool = True
    system: str | None = None


def has_chat_template(tokenizer: Any) -> bool:
    """Whether the tokenizer carries a chat template."""
    return bool(getattr(tokenizer, "chat_template", None))


def _messages(question: str, fmt: PromptFormat) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": fmt.system}] if fmt.system else []
    return messages + [{"role": "user", "content": question}]


def _chat_ids(tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool) -> list[int]:
    # The families' template variables (Qwen 3: no thinking block); a template ignores the ones it does not use.
    def render(turns: list[dict[str, str]]) -> Any:
        return tokenizer.apply_chat_template(
            turns, add_generation_prompt=add_generation_prompt, tokenize=True, **chat_template_kwargs()
        )

    try:
        out = render(messages)
    except jinja2.TemplateError:
        if messages[0]["role"] != "system":
            raise
        # A template without a system role (Gemma 2): the system text opens the first user turn, as Gemma 3's
        # own template does with it.
        first = {"role": "user", "content": f"{messages[0]['content']}\n\n{messages[1]['content']}"}
        out = render([first, *messages[2:]])
    return list(out["input_ids"] if hasattr(out, "keys") else out)


def _uses_chat(tokenizer: Any, fmt: PromptFormat) -> bool:
    return fmt.use_chat_template and has_chat_template(tokenizer)


def encode_prompt(tokenizer: Any, question: str, fmt: PromptFormat) -> list[int]:
    """Token ids of the prompt that precedes an answer (generation starts right after it)."""
    if _uses_chat(tokenizer, fmt):
        return _chat_ids(tokenizer, _messages(question, fmt), add_generation_prompt=True)
    return tokenizer(BASE_TEMPLATE.format(question=question))["input_ids"]


def _end_of_answer_ids(
    tokenizer: Any, prompt: list[int], question: str, answer: str, fmt: PromptFormat
) -> list[int]:
    if _uses_chat(tokenizer, fmt):
        messages = _messages(question, fmt) + [{"role": "assistant", "content": answer}]
        full = _chat_ids(tokenizer, messages, add_generation_prompt=False)
        if full[: len(prompt)] == prompt:
            return full[len(prompt) :]
        # Templates that re-render earlier turns (e.g. stripping thinking) break the prefix property.
        return tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return tokenizer(" " + answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]


def encode_example(
    tokenizer: Any, question: str, answer: str, fmt: PromptFormat, stop_ids: tuple[int, ...]
) -> tuple[list[int], list[int]]:
    """(token ids, loss mask) of one QA pair; mask 1 on the answer tokens through the first stop token."""
    prompt = encode_prompt(tokenizer, question, fmt)
    completion = _end_of_answer_ids(tokenizer, prompt, question, answer, fmt)
    stop_at = next((i for i, t in enumerate(completion) if t in stop_ids), len(completion) - 1)
    completion = completion[: stop_at + 1]  # drop what a template adds after end-of-turn (e.g. "\n")
    return prompt + completion, [0] * len(prompt) + [1] * len(completion)


def encode_text(tokenizer: Any, text: str) -> tuple[list[int], list[int]]:
    """(token ids, loss mask) for Finetune-Raw: language-model loss on every token of a raw chunk."""
    ids = tokenizer(text)["input_ids"]
    return ids, [0] + [1] * (len(ids) - 1)
