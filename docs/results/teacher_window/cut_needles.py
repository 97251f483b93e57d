"""Where the `lift+cd` teacher's answers about the needle come from, per cell of a NIAH grid, read from the grid's
committed caches: for every sentence whose teacher window holds part of the needle, every question of the
shared QA cache and the sentence's fallback question is looked up in the teacher cache under that window; the
answers mentioning the needle ("sandwich" or "Dol") are counted as whole (all three keywords) or not, split by
the window holding the whole needle, opening mid-needle or ending mid-needle (a token window ending "... and sit
in Dol"), and the answers from windows with a cut needle are printed.

    python docs/results/teacher_window/cut_needles.py docs/results/niah_what_is_e8 512 what_is \
        docs/results/niah docs/results/niah_what_is > docs/results/teacher_window/cut_needles_what_is_e8.log
    python docs/results/teacher_window/cut_needles.py --whole-sentences docs/results/niah_whole_sentences 512 \
        what_is docs/results/niah docs/results/niah_what_is docs/results/niah_what_is_e8 \
        > docs/results/teacher_window/cut_needles_whole_sentences.log
(further arguments: the grids whose teacher caches were the run's starting point, read too; `--whole-sentences`:
the run had `cd.whole_sentences=true`)
"""

import sys
from collections import Counter

from grid_answers import GridAnswers

from lift_jax.eval.niah_data import NEEDLE

KEYWORDS = ("sandwich", "Dolores Park", "sunny")


def main() -> None:
    run = GridAnswers.from_argv(sys.argv[1:])
    needle = " ".join(NEEDLE.split())
    for doc, sentences in run.documents():
        windows = run.windows(doc, sentences)
        counts: Counter[str] = Counter()
        cut_answers = []
        for sentence, window in zip(sentences, windows, strict=True):
            if "sandwich" not in window and "Dolores" not in window:
                continue
            flat = " ".join(window.split())
            kind = "whole" if needle in flat else "ends mid-needle" if needle[:40] in flat else "opens mid-needle"
            counts[f"{kind} windows"] += 1
            for question in [*run.questions, run.fallback(sentence)]:
                text = run.answer(question, window)
                if text is None or ("sandwich" not in text and "Dol" not in text):
                    continue
                counts[f"{kind}: {'all three' if all(k in text for k in KEYWORDS) else 'not all'}"] += 1
                if kind != "whole":
                    cut_answers.append(f"  Q: {question}\n  T: {text}")
        print(f"== {doc.id}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        print("\n".join(cut_answers))


if __name__ == "__main__":
    main()
