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
    python docs/results/teacher_window/needle_questions.py --whole-sentences docs/results/niah_whole_sentences 512 \
        what_is docs/results/niah docs/results/niah_what_is docs/results/niah_what_is_e8 \
        > docs/results/teacher_window/needle_questions_whole_sentences.log
(further arguments: the grids whose teacher caches were the run's starting point, read too; `--whole-sentences`:
the run had `cd.whole_sentences=true`)
"""

import sys

from grid_answers import GridAnswers

from lift_jax.distill.stage import is_held_out


def main() -> None:
    run = GridAnswers.from_argv(sys.argv[1:])
    about = [q for q in run.questions if any(w in q for w in ("San Francisco", "Dolores", "sandwich"))]
    for doc, sentences in run.documents():
        i = next(i for i, s in enumerate(sentences) if "San Francisco" in s.text)
        window = run.windows(doc, sentences)[i]
        print(f"== {doc.id}: needle = sentence {i}")
        for question in [*about, run.fallback(sentences[i])]:
            text = run.answer(question, window)
            if text is not None:
                held = " [held]" if is_held_out(question, 0, 0.1) else ""
                print(f"  Q{held}: {question}\n  T: {text}")


if __name__ == "__main__":
    main()
