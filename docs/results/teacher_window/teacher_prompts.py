"""Does the teacher prompt's wording shorten the teacher's answers? The bundled SmolLM2-135M answers the gold
questions of the first N SQuAD paragraphs reading the paragraph, as the `lift+cd` teacher does (chat template,
greedy, `cd.max_answer_tokens` of `eval_squad`), once per prompt below; each answer is scored against the gold
spans. The teacher's answers are what `lift+cd` trains the student to say, so their length and F1 bound the
student's. Runs the model: about 3 minutes for 5 paragraphs on two cores.

    python docs/results/teacher_window/teacher_prompts.py ../shared/data/squad/dev-v1.1-half-a.json 5 \
        > docs/results/teacher_window/teacher_prompts.log
"""

import sys

from lift_jax.answering import split_shared_prefix
from lift_jax.config import TEACHER_PROMPT, load_config_file
from lift_jax.eval.metrics import contains_answer, exact_match, f1_score
from lift_jax.eval.squad_data import load_squad
from lift_jax.models import load
from lift_jax.prompting import PromptFormat, encode_prompt
from lift_jax.sampling import SamplingParams, generate_ids
from lift_jax.special_tokens import pad_token_id, stop_token_ids

PROMPTS = {
    "default (one short sentence)": TEACHER_PROMPT,
    "a few words": TEACHER_PROMPT.replace("in one short sentence", "in a few words"),
    "a short phrase from the document": TEACHER_PROMPT.replace(
        "in one short sentence", "with a short phrase from the document"
    ),
}
SHOWN = 6  # questions printed with every prompt's answer


def main() -> None:
    path, count = sys.argv[1], int(sys.argv[2])
    cfg = load_config_file("eval_squad")
    loaded = load(cfg.model_path)
    tok = loaded.tokenizer
    fmt = PromptFormat(cfg.use_chat_template, cfg.system_prompt or None)
    stops = stop_token_ids(tok, loaded.spec.eos_token_ids)
    pad = pad_token_id(tok, stops)
    params = SamplingParams(max_new_tokens=cfg.cd.max_answer_tokens)
    docs = load_squad(path, count)
    answers: dict[str, list[str]] = {}
    for name, template in PROMPTS.items():
        answers[name] = []
        for doc in docs:
            prompts = [encode_prompt(tok, template.format(document=doc.text, question=q.question), fmt)
                       for q in doc.questions]
            prefix, rest = split_shared_prefix(prompts)
            ids = generate_ids(loaded.module, rest, params, stops, pad, prefix=prefix)
            answers[name] += [tok.decode(x, skip_special_tokens=True).strip() for x in ids]
    golds = [q.answers for doc in docs for q in doc.questions]
    print(f"{count} paragraphs, {len(golds)} questions, model {cfg.model_path}, "
          f"max {cfg.cd.max_answer_tokens} answer tokens, greedy")
    print("| teacher prompt asks for | F1 | exact match (%) | gold in answer (%) | words per answer |")
    print("|---|---:|---:|---:|---:|")
    n = len(golds)
    for name, said in answers.items():
        f1 = 100 * sum(f1_score(a, g) for a, g in zip(said, golds, strict=True)) / n
        em = 100 * sum(exact_match(a, g) for a, g in zip(said, golds, strict=True)) / n
        contains = 100 * sum(contains_answer(a, g) for a, g in zip(said, golds, strict=True)) / n
        words = sum(len(a.split()) for a in said) / n
        print(f"| {name} | {f1:.2f} | {em:.2f} | {contains:.2f} | {words:.1f} |")
    questions = [q.question for doc in docs for q in doc.questions]
    for i in range(0, n, max(1, n // SHOWN))[:SHOWN]:
        print(f"\nQ: {questions[i]}  gold: {golds[i][0]}")
        for name, said in answers.items():
            print(f"  [{name}] {said[i]}")


if __name__ == "__main__":
    main()
