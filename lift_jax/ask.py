"""`python -m lift_jax.ask --run DIR --question "..."`: answer with the LIFTed model, no document in context.

`--base` answers with the untouched base model; `--context truncated` puts the run's document (middle-truncated
to the model's window) in the prompt: truncated ICL with `--base`, LIFT + truncated ICL without. The answer is
the last line of stdout. `--questions FILE` answers one question per line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lift_jax.cli import UsageError, enable_compilation_cache, fail
from lift_jax.errors import CorruptFileError, LiftError, MissingInputError
from lift_jax.lora import merge_lora
from lift_jax.models import LoadedModel, load
from lift_jax.peft_io import import_peft_adapter
from lift_jax.prompting import PromptFormat, encode_prompt
from lift_jax.runio import RunDir
from lift_jax.sampling import SamplingParams, generate_ids, stop_token_ids

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
        pad = tok.pad_token_id if tok.pad_token_id is not None else self.stops[0]
        prefix, rest = split_shared_prefix(prompts, self.prefix_block)
        ids = generate_ids(self.loaded.module, rest, self.params, self.stops, pad, prefix=prefix)
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


def answerer_for_run(run_dir: Path, base: bool, params: SamplingParams) -> Answerer:
    """Load the run's base model, plus its LIFTed adapter (merged for decoding) unless `base`."""
    settings = run_settings(run_dir)
    loaded = load(settings["model_path"], dtype=settings.get("dtype", "float32"))
    if not base:
        import_peft_adapter(loaded.module, RunDir(run_dir).adapter)
        merge_lora(loaded.module)
    fmt = PromptFormat(settings.get("use_chat_template", True), settings.get("system_prompt") or None)
    return Answerer(loaded, fmt, params, settings.get("ask", {}).get("context_tokens", 0))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lift_jax.ask", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="absorb output directory")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--question", help="one question")
    group.add_argument("--questions", type=Path, help="a text file with one question per line")
    parser.add_argument("--base", action="store_true", help="use the untouched base model")
    parser.add_argument("--context", choices=["none", "truncated"], default="none")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    return parser


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except OSError as e:
        raise MissingInputError(f"cannot read the {what} {path}: {e.strerror or e}") from None


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    enable_compilation_cache()
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.questions:
            questions = [q.strip() for q in _read_text(args.questions, "questions file").splitlines() if q.strip()]
            if not questions:
                raise UsageError(f"{args.questions} holds no questions")
        else:
            questions = [args.question]
        params = SamplingParams(args.max_new_tokens, args.temperature, args.top_p, args.seed)
        answerer = answerer_for_run(args.run, args.base, params)
        document = _read_text(RunDir(args.run).document_copy, "run's document") if args.context == "truncated" else None
        answers = answerer.answer(questions, document)
    except LiftError as e:
        fail(str(e))
    if len(questions) > 1:
        for q, a in zip(questions, answers, strict=True):
            print(f"Q: {q}\nA: {' '.join(a.split())}")
    else:
        print(" ".join(answers[0].split()))


if __name__ == "__main__":
    main()
