"""How many SQuAD questions a cloze blank could teach, by `cd.cloze_per_sentence`: the blanks `lift+cd` makes in
the first N paragraphs of a SQuAD file (split as the `eval_squad` run splits them) against the questions' gold
answers. "exact": a gold answer is one of the blanked spans; "overlap": a gold answer and a blank contain one
another. Reads only the data file and the tokenizer-free sentence splitter: no model.

    python docs/results/teacher_window/cloze_coverage.py ../shared/data/squad/dev-v1.1-half-a.json 20 \
        > docs/results/teacher_window/cloze_coverage.log
"""

import json
import sys
from pathlib import Path

from lift_jax.config import load_config_file
from lift_jax.distill.questions import cloze_spans
from lift_jax.synth.split import split_sentences

LIMITS = (1, 2, 4, 6, 8, 16)


def blanks(context: str, limit: int, min_chars: int, max_chars: int) -> list[str]:
    """The spans `cloze_questions(sentence, limit)` blanks, over every sentence of `context`."""
    spans = []
    for sentence in split_sentences(context, min_chars, max_chars):
        text = " ".join(sentence.text.split())
        spans += [text[a:b] for a, b in cloze_spans(text)[:limit]]
    return spans


def main() -> None:
    path, count = sys.argv[1], int(sys.argv[2])
    g = load_config_file("eval_squad").generator
    paragraphs = [p for article in json.loads(Path(path).read_text())["data"] for p in article["paragraphs"]][:count]
    questions = sum(len(p["qas"]) for p in paragraphs)
    print(f"{count} paragraphs, {questions} questions")
    print("| cloze_per_sentence | blanks | questions with a gold answer blanked (exact) | (overlap) |")
    print("|---:|---:|---:|---:|")
    for limit in LIMITS:
        exact = overlap = made = 0
        for p in paragraphs:
            spans = blanks(p["context"], limit, g.min_sentence_chars, g.max_sentence_chars)
            made += len(spans)
            for qa in p["qas"]:
                golds = [a["text"].strip().rstrip(".") for a in qa["answers"]]
                exact += any(gold in spans for gold in golds)
                overlap += any(gold in s or s in gold for gold in golds for s in spans)
        print(f"| {limit} | {made} | {exact} | {overlap} |")


if __name__ == "__main__":
    main()
