"""What the `lift+cd` teacher answered about the needle in each cell of a NIAH grid, read from the grid's committed
caches: every question of the shared QA cache that names San Francisco, Dolores Park or a sandwich, plus the
fallback question, looked up in the teacher cache under the needle sentence's window (the key covers question and
window, so a hit is a question that cell's teacher answered). "held" marks the seeded held-out share.

    python docs/results/teacher_window/needle_questions.py docs/results/niah 512 what_about \
        > docs/results/teacher_window/needle_questions_512.log
    python docs/results/teacher_window/needle_questions.py docs/results/niah_what_is 512 what_is \
        docs/results/niah > docs/results/teacher_window/needle_questions_what_is.log
    python docs/results/teacher_window/needle_questions.py docs/results/niah_what_is_e8 512 what_is \
        docs/results/niah docs/results/niah_what_is > docs/results/teacher_window/needle_questions_what_is_e8.log
(further arguments: the grids whose teacher caches were the run's starting point, read too)
"""

import json
import sys
from pathlib import Path

from lift_jax.config import load_config_file
from lift_jax.distill.cache import TeacherCache, teacher_identity, teacher_key
from lift_jax.distill.questions import fallback_question
from lift_jax.distill.stage import is_held_out
from lift_jax.distill.teacher import document_windows
from lift_jax.eval.niah_benchmark import token_counter
from lift_jax.eval.niah_data import build_documents, grid, load_essays
from lift_jax.models.loader import load_tokenizer, resolve_source
from lift_jax.synth.split import split_sentences

MODEL = "bundled:smollm2-135m-instruct"
ESSAYS = "../shared/data/niah/PaulGrahamEssays"


def main() -> None:
    root, budget, fallback = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    tok = load_tokenizer(resolve_source(MODEL))
    identity = teacher_identity(load_config_file("eval_niah"))  # run_results.sh changes none of its fields
    caches = [TeacherCache(Path(d) / "teacher_cache") for d in [root, *sys.argv[4:]]]
    records = [json.loads(line) for line in (root / "qa_cache" / "qa_cache.jsonl").read_text().splitlines()]
    about = sorted({r["question"] for r in records if "question" in r
                    and any(w in r["question"] for w in ("San Francisco", "Dolores", "sandwich"))})
    cells = grid([1000, 2000, 3000], [0, 0.25, 0.5, 0.75, 1], 1)
    for doc in build_documents(load_essays(ESSAYS), cells, token_counter(MODEL)):
        sentences = split_sentences(doc.text, 20, 1000)
        i = next(i for i, s in enumerate(sentences) if "San Francisco" in s.text)
        window = document_windows(tok, doc.text, sentences, budget)[i]
        print(f"== {doc.id}: needle = sentence {i}")
        for question in [*about, fallback_question(sentences[i].text, fallback)]:
            key = teacher_key(question=question, window=window, **identity)
            answer = next((a for c in caches if (a := c.lookup(key)) is not None), None)
            if answer is not None:
                held = " [held]" if is_held_out(question, 0, 0.1) else ""
                text = tok.decode(list(answer.answer_ids), skip_special_tokens=True).replace("\n", " ")
                print(f"  Q{held}: {question}\n  T: {text}")


if __name__ == "__main__":
    main()
