"""Teacher-only: gold SQuAD questions, teacher reads the window (budget b) around the answer's sentence; F1 vs gold."""
import json, sys
from lift_jax.models import load
from lift_jax.prompting import PromptFormat
from lift_jax.special_tokens import pad_token_id, stop_token_ids
from lift_jax.distill.teacher import Teacher, document_windows
from lift_jax.synth.split import split_sentences
from lift_jax.eval.metrics import f1_score, contains_answer

data = json.load(open("/work/shared/data/squad/dev-v1.1-half-a.json"))["data"]
loaded = load("bundled:smollm2-135m-instruct", dtype="float32")
tok = loaded.tokenizer
stops = stop_token_ids(tok, loaded.spec.eos_token_ids)
pad = pad_token_id(tok, stops)
fmt = PromptFormat(use_chat_template=True, system=None)
template = "Read the document and answer the question in one short sentence.\n\nDocument:\n{document}\n\nQuestion: {question}"
budgets = [int(b) for b in sys.argv[1].split(",")]
mode = sys.argv[2]
docs = []  # (text, [(question, answers, answer_start)])
if mode == "paragraph":
    paras = [p for a in data for p in a["paragraphs"]][:20]
    docs = [(p["context"], [(q["question"], [x["text"] for x in q["answers"]], q["answers"][0]["answer_start"]) for q in p["qas"]]) for p in paras]
else:
    for a in data[: int(mode)]:
        text, qs = "", []
        for p in a["paragraphs"]:
            off = len(text) + (2 if text else 0)
            text = text + ("\n\n" if text else "") + p["context"]
            qs += [(q["question"], [x["text"] for x in q["answers"]], off + q["answers"][0]["answer_start"]) for q in p["qas"]][:3]
        docs.append((text, qs))
res = {b: [] for b in budgets}
for text, qs in docs:
    sents = split_sentences(text, 1, 100000)
    for b in budgets:
        wins = document_windows(tok, text, sents, b)
        t = Teacher(loaded.module, tok, fmt, stops, pad, 20, 40, template, batch=4)
        for q, golds, start in qs:
            i = max(j for j, s in enumerate(sents) if s.start <= start)
            a = tok.decode(list(t.answer(wins[i], [q])[0].answer_ids), skip_special_tokens=True)
            res[b].append((f1_score(a, golds), contains_answer(a, golds)))
    print({b: (len(r), round(100 * sum(x for x, _ in r) / len(r), 1), round(100 * sum(y for _, y in r) / len(r), 1)) for b, r in res.items()}, flush=True)
