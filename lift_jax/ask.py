"""`python -m lift_jax.ask --run DIR --question "..."`: answer with the LIFTed model, no document in context.

`--base` answers with the untouched base model; `--context truncated` puts the run's document (middle-truncated
to the model's window) in the prompt: truncated ICL with `--base`, LIFT + truncated ICL without. The answer is
the last line of stdout. `--questions FILE` answers one question per line. Decoding follows the run's `ask`
settings (max_new_tokens, temperature, top_p); a flag given here overrides its setting.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lift_jax.answering import answerer_for_run, ask_sampling, run_settings
from lift_jax.cli import UsageError, enable_compilation_cache, fail
from lift_jax.errors import LiftError, MissingInputError
from lift_jax.runio import RunDir


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lift_jax.ask", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="absorb output directory")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--question", help="one question")
    group.add_argument("--questions", type=Path, help="a text file with one question per line")
    parser.add_argument("--base", action="store_true", help="use the untouched base model")
    parser.add_argument("--context", choices=["none", "truncated"], default="none")
    parser.add_argument("--max-new-tokens", type=int, help="default: the run's ask.max_new_tokens")
    parser.add_argument("--temperature", type=float, help="0 = greedy; default: the run's ask.temperature")
    parser.add_argument("--top-p", type=float, help="default: the run's ask.top_p")
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
        params = ask_sampling(run_settings(args.run), max_new_tokens=args.max_new_tokens,
                              temperature=args.temperature, top_p=args.top_p, seed=args.seed)
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
