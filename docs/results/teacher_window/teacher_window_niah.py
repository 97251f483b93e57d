"""Teacher-only check of the `lift+cd` teacher window on the NIAH grid's documents (lengths 1000, 2000, 3000 x
depths 0-1, sample 0, as `scripts/run_results.sh` builds them): the frozen SmolLM2-135M reads the window of
`budget` tokens around the needle sentence and answers questions about it; an answer is right when it has
"sandwich" and "Dolores". No training involved.

    python docs/results/teacher_window/teacher_window_niah.py 64,128,256,512 > docs/results/teacher_window/niah.log
writes docs/results/teacher_window/niah.json (every answer) and prints a count per (question form, budget).
"""

import json
import sys
from pathlib import Path

from lift_jax.config import TEACHER_PROMPT
from lift_jax.distill.questions import fallback_question
from lift_jax.distill.teacher import Teacher, document_windows
from lift_jax.eval.niah_benchmark import token_counter
from lift_jax.eval.niah_data import build_documents, grid, load_essays
from lift_jax.models import load
from lift_jax.prompting import PromptFormat
from lift_jax.special_tokens import pad_token_id, stop_token_ids
from lift_jax.synth.split import split_sentences

ESSAYS = "../shared/data/niah/PaulGrahamEssays"
FORMS = {  # the `what_about` fallback as shipped, and three rewordings of it
    "fallback": lambda s: fallback_question(s, "what_about"),
    "text_about": lambda s: fallback_question(s, "text_about"),
    "continue": lambda s: f'How does the sentence that begins "{" ".join(s.split()[:5])}" continue?',
    "tell": lambda s: "What does it say about " + " ".join(fallback_question(s, "what_about").split()[6:]),
}


def main() -> None:
    budgets = [int(b) for b in sys.argv[1].split(",")]
    loaded = load("bundled:smollm2-135m-instruct", dtype="float32")
    tok = loaded.tokenizer
    stops = stop_token_ids(tok, loaded.spec.eos_token_ids)
    pad = pad_token_id(tok, stops)
    fmt = PromptFormat(use_chat_template=True, system=None)
    rows = []
    cells = grid([1000, 2000, 3000], [0, 0.25, 0.5, 0.75, 1], 1)
    count = token_counter("bundled:smollm2-135m-instruct")  # as the NIAH harness counts lengths
    for niah_doc in build_documents(load_essays(ESSAYS), cells, count):
        doc = niah_doc.text
        sents = split_sentences(doc, 20, 1000)
        i = next(i for i, s in enumerate(sents) if "San Francisco" in s.text)
        for budget in budgets:
            window = document_windows(tok, doc, sents, budget)[i]
            teacher = Teacher(loaded.module, tok, fmt, stops, pad, 20, 40, TEACHER_PROMPT, batch=len(FORMS))
            questions = [f(sents[i].text) for f in FORMS.values()]
            outputs = teacher.answer(window, questions)
            answers = [tok.decode(list(a.answer_ids), skip_special_tokens=True) for a in outputs]
            for form, q, a in zip(FORMS, questions, answers, strict=True):
                ok = "sandwich" in a.lower() and "dolores" in a.lower()
                rows.append({"run": niah_doc.id, "budget": budget, "form": form, "question": q, "answer": a,
                             "right": ok})
                shown = a.replace("\n", " ")[:150]
                print(niah_doc.id, budget, form, "OK" if ok else "--", "|", q, "=>", shown, flush=True)
    (Path(__file__).parent / "niah.json").write_text(json.dumps(rows, indent=1) + "\n")
    for form in FORMS:
        for budget in budgets:
            oks = [r["right"] for r in rows if r["form"] == form and r["budget"] == budget]
            print(f"{form:12s} budget {budget:4d}: {sum(oks)}/{len(oks)}")


if __name__ == "__main__":
    main()
