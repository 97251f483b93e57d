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

import sys
from pathlib import Path

from grid_answers import GridAnswers

from lift_jax.distill.questions import fallback_question
from lift_jax.distill.stage import is_held_out
from lift_jax.distill.teacher import document_windows


def main() -> None:
    root, budget, fallback = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    run = GridAnswers(root, sys.argv[4:])
    about = [q for q in run.questions if any(w in q for w in ("San Francisco", "Dolores", "sandwich"))]
    for doc, sentences in run.documents():
        i = next(i for i, s in enumerate(sentences) if "San Francisco" in s.text)
        window = document_windows(run.tokenizer, doc.text, sentences, budget)[i]
        print(f"== {doc.id}: needle = sentence {i}")
        for question in [*about, fallback_question(sentences[i].text, fallback)]:
            text = run.answer(question, window)
            if text is not None:
                held = " [held]" if is_held_out(question, 0, 0.1) else ""
                print(f"  Q{held}: {question}\n  T: {text}")


if __name__ == "__main__":
    main()
