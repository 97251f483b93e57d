"""Teacher-only check of the `lift+cd` teacher window on SQuAD's gold questions: for each question of the first 20
paragraphs of `dev-v1.1-half-a.json` (the SQuAD table's passages), the frozen SmolLM2-135M reads the window of
`budget` tokens around the sentence holding the gold answer's start and answers; token F1 and "contains a gold
answer" against the gold answers. No training involved. Prints, after each paragraph, the running
{budget: (questions, F1, contains %)}.

    timeout 1500 python docs/results/teacher_window/teacher_window_squad.py 64,128,256,512 paragraph \
        | tail -3 > docs/results/teacher_window/squad_paragraphs.log
(`article`-mode: give the number of articles instead of `paragraph`; the first 3 questions of each paragraph.)
"""

import json
import sys
from pathlib import Path

from lift_jax.config import TEACHER_PROMPT
from lift_jax.distill.teacher import Teacher, document_windows
from lift_jax.eval.metrics import contains_answer, f1_score
from lift_jax.models import load
from lift_jax.prompting import PromptFormat
from lift_jax.special_tokens import pad_token_id, stop_token_ids
from lift_jax.synth.split import split_sentences

DATA = Path("/work/shared/data/squad/dev-v1.1-half-a.json")


def _gold(qa: dict, offset: int = 0) -> tuple[str, list[str], int]:
    return qa["question"], [a["text"] for a in qa["answers"]], offset + qa["answers"][0]["answer_start"]


def documents(data: list[dict], mode: str) -> list[tuple[str, list[tuple[str, list[str], int]]]]:
    """(text, [(question, gold answers, character offset of the first gold answer)]) per document."""
    if mode == "paragraph":
        paragraphs = [p for a in data for p in a["paragraphs"]][:20]
        return [(p["context"], [_gold(q) for q in p["qas"]]) for p in paragraphs]
    docs = []
    for article in data[: int(mode)]:
        text, questions = "", []
        for p in article["paragraphs"]:
            offset = len(text) + (2 if text else 0)
            text = text + ("\n\n" if text else "") + p["context"]
            questions += [_gold(q, offset) for q in p["qas"]][:3]
        docs.append((text, questions))
    return docs


def main() -> None:
    budgets = [int(b) for b in sys.argv[1].split(",")]
    with DATA.open() as f:
        data = json.load(f)["data"]
    loaded = load("bundled:smollm2-135m-instruct", dtype="float32")
    tok = loaded.tokenizer
    stops = stop_token_ids(tok, loaded.spec.eos_token_ids)
    pad = pad_token_id(tok, stops)
    fmt = PromptFormat(use_chat_template=True, system=None)
    results: dict[int, list[tuple[float, float]]] = {b: [] for b in budgets}
    for text, questions in documents(data, sys.argv[2]):
        sentences = split_sentences(text, 1, 100000)
        for budget in budgets:
            windows = document_windows(tok, text, sentences, budget)
            teacher = Teacher(loaded.module, tok, fmt, stops, pad, 20, 40, TEACHER_PROMPT, batch=4)
            for question, golds, start in questions:
                i = max(j for j, s in enumerate(sentences) if s.start <= start)
                output = teacher.answer(windows[i], [question])[0]
                answer = tok.decode(list(output.answer_ids), skip_special_tokens=True)
                results[budget].append((f1_score(answer, golds), contains_answer(answer, golds)))
        print({b: (len(r), round(100 * sum(x for x, _ in r) / len(r), 1), round(100 * sum(y for _, y in r) / len(r), 1))
               for b, r in results.items()}, flush=True)


if __name__ == "__main__":
    main()
