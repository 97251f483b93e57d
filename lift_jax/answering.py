"""Answering questions with a loaded model: LIFTed (adapter merged or in place) or base, with or without the
document middle-truncated into the prompt, and loading what an absorb run needs to answer."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ml_collections

from lift_jax.config import base_config
from lift_jax.errors import CorruptFileError, MissingInputError
from lift_jax.lora import fold_lora
from lift_jax.models import LoadedModel, load
from lift_jax.peft_io import import_peft_adapter
from lift_jax.prompting import PromptFormat, encode_prompt
from lift_jax.runio import RunDir
from lift_jax.sampling import SamplingParams, generate_ids
from lift_jax.special_tokens import pad_token_id, stop_token_ids

ICL_TEMPLATE = "Read the document and answer the question.\n\nDocument:\n{document}\n\nQuestion: {question}"
PREFIX_BLOCK = 512  # a shared prompt opening is computed once in whole blocks (few distinct shapes to compile)


def middle_truncate(ids: Sequence[int], budget: int) -> list[int]:
    """Keep the first and last halves of `ids` so that at most `budget` tokens remain (the paper's truncation)."""
    if budget <= 0:
        return []
    if len(ids) <= budget:
        return list(ids)
    head = budget // 2
    return list(ids[:head]) + list(ids[len(ids) - (budget - head) :])


def split_shared_prefix(
    prompts: Sequence[Sequence[int]], block: int = PREFIX_BLOCK
) -> tuple[list[int], list[list[int]]]:
    """The prompts' common opening (whole `block`s of it, every prompt keeping a token of its own) and the
    rest of each prompt: the questions about one document share its tokens, computed once."""
    if len(prompts) < 2:
        return [], [list(p) for p in prompts]
    common = len(os.path.commonprefix([list(p) for p in prompts]))
    n = min(common, min(len(p) for p in prompts) - 1) // block * block
    return list(prompts[0][:n]), [list(p[n:]) for p in prompts]


class Answerer:
    """A loaded base model (optionally with a run's adapter merged) that answers questions."""

    def __init__(self, loaded: LoadedModel, fmt: PromptFormat, params: SamplingParams, context_tokens: int = 0):
        self.loaded, self.fmt, self.params = loaded, fmt, params
        self.stops = stop_token_ids(loaded.require_tokenizer("answering"), loaded.spec.eos_token_ids)
        self.pad_id = pad_token_id(loaded.tokenizer, self.stops)
        self.window = context_tokens or loaded.spec.max_position_embeddings
        self.prefix_block = PREFIX_BLOCK

    def document_budget(self, question: str) -> int:
        """Document tokens that fit in the window beside `question`'s prompt and the answer."""
        empty = encode_prompt(self.loaded.tokenizer, ICL_TEMPLATE.format(document="", question=question), self.fmt)
        return self.window - len(empty) - self.params.max_new_tokens

    def _with_context(self, question: str, document: str) -> str:
        tok = self.loaded.tokenizer
        doc_ids = tok(document, add_special_tokens=False)["input_ids"]
        truncated = middle_truncate(doc_ids, self.document_budget(question))
        return ICL_TEMPLATE.format(document=tok.decode(truncated), question=question)

    def answer(self, questions: Sequence[str], document: str | None = None) -> list[str]:
        """Greedy (or sampled, per params) answers to `questions`, with the truncated document if given."""
        tok = self.loaded.tokenizer
        texts = [self._with_context(q, document) if document else q for q in questions]
        prompts = [encode_prompt(tok, t, self.fmt) for t in texts]
        prefix, rest = split_shared_prefix(prompts, self.prefix_block)
        ids = generate_ids(self.loaded.module, rest, self.params, self.stops, self.pad_id, prefix=prefix)
        return [tok.decode(x, skip_special_tokens=True).strip() for x in ids]


def run_settings(run_dir: Path) -> dict[str, Any]:
    """The resolved config an absorb run saved."""
    path = RunDir(run_dir).config
    if not path.exists():
        raise MissingInputError(f"{run_dir} is not an absorb run directory (no {path.name}); run lift_jax.absorb first")
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise CorruptFileError(f"{path} is not valid JSON ({e}); rerun lift_jax.absorb into a new directory") from None


def ask_sampling(
    settings: Mapping[str, Any] | ml_collections.ConfigDict, **overrides: float | int | None
) -> SamplingParams:
    """The decoding settings of a run config's `ask` group (`max_new_tokens`, `temperature`, `top_p`; a saved
    run's config.json or a ConfigDict; lift_jax.config's defaults for a field the run did not save), each replaced
    by an override that is not None (e.g. `seed`)."""
    ask = {**base_config().ask.to_dict(), **settings.get("ask", {})}
    params = SamplingParams(int(ask["max_new_tokens"]), float(ask["temperature"]), float(ask["top_p"]))
    return dataclasses.replace(params, **{k: v for k, v in overrides.items() if v is not None})


def answerer_for_run(run_dir: Path, base: bool = False, params: SamplingParams | None = None) -> Answerer:
    """Load the run's base model, plus its LIFTed adapter (folded into the base weights for decoding) unless
    `base`; `params` default to the run's `ask` settings. Both have the base model's structure, so the LIFTed and
    the base answerer share compiled programs."""
    settings = run_settings(run_dir)
    loaded = load(settings["model_path"], dtype=settings.get("dtype", "float32"))
    if not base:
        import_peft_adapter(loaded.module, RunDir(run_dir).adapter)
        fold_lora(loaded.module)
    fmt = PromptFormat(settings.get("use_chat_template", True), settings.get("system_prompt") or None)
    params = ask_sampling(settings) if params is None else params
    return Answerer(loaded, fmt, params, settings.get("ask", {}).get("context_tokens", 0))
