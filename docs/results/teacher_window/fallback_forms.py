"""How often `cd.fallback=what_is` changes anything on SQuAD: for the documents of the SQuAD runs (the first 20
paragraphs, and the two articles of the beyond-the-window run), the sentences (split as the eval configs split
them) whose fallback question differs from `what_about`'s ("What is X?" for "X is Y"), and the share of the
documents' gold questions that open with What/Who + is/are/was/were (the form `what_is` writes).

    python docs/results/teacher_window/fallback_forms.py > docs/results/teacher_window/fallback_forms.log
"""

import re

from lift_jax.config import load_config_file
from lift_jax.distill.questions import fallback_question
from lift_jax.eval.paths import squad_file
from lift_jax.eval.squad_data import load_squad
from lift_jax.synth.split import split_sentences

COPULA_QUESTION = re.compile(r"^(what|who) (is|are|was|were)\b", re.IGNORECASE)


def main() -> None:
    g = load_config_file("eval_squad").generator
    runs = {"20 paragraphs": load_squad(squad_file(), 20),
            "2 articles": load_squad(squad_file(), unit="article", titles=["Construction", "1973_oil_crisis"])}
    for name, docs in runs.items():
        sentences = [s.text for d in docs for s in split_sentences(d.text, g.min_sentence_chars, g.max_sentence_chars)]
        changed = [s for s in sentences if fallback_question(s, "what_is") != fallback_question(s, "what_about")]
        questions = [q.question for d in docs for q in d.questions]
        copula = sum(bool(COPULA_QUESTION.match(q)) for q in questions)
        print(f"{name}: {len(changed)} of {len(sentences)} sentences get a what_is question; "
              f"{copula} of {len(questions)} gold questions open with What/Who is/are/was/were")
        for s in changed:
            print(f"  {fallback_question(s, 'what_is')}  <- {s[:80]}")


if __name__ == "__main__":
    main()
